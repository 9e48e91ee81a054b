#!/usr/bin/env python3
"""numpy's (OpenBLAS) single-precision GEMM at the shapes `medpick bench kernels --device cpu` times, on the
same thread count: one JSON object {"gflops": [...], "threadpools": [...]}. Exit status 3 without numpy."""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True, help="m,k,n;m,k,n;...")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    try:
        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError as e:
        print(json.dumps({"unavailable": f"python cannot import numpy and threadpoolctl ({e})"}))
        return 3
    out = []
    with threadpool_limits(limits=a.threads):
        rng = np.random.default_rng(0)
        for s in a.shapes.split(";"):
            m, k, n = (int(v) for v in s.split(","))
            x = rng.uniform(-1, 1, (m, k)).astype(np.float32)
            w = rng.uniform(-1, 1, (n, k)).astype(np.float32)  # [N, K] like a linear layer's weight
            x @ w.T
            times = []
            for _ in range(max(a.iters, 1)):
                t = time.perf_counter()
                x @ w.T
                times.append(time.perf_counter() - t)
            times.sort()
            out.append(2.0 * m * n * k / times[len(times) // 2] / 1e9)
        pools = [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads")} for i in threadpool_info()]
    print(json.dumps({"numpy": np.__version__, "gflops": out, "threadpools": pools}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
