#!/usr/bin/env python3
"""scikit-activeml's time on the features `medpick bench select` generated (a .npy file), for comparison.

Usage: skactiveml_select.py FEATURES.npy STRATEGY BUDGET [THREADS]
Prints one JSON line: {"seconds": ..., "picks": ..., "threads": ..., "blas": ...} (BLAS: threadpoolctl's report
of the library and kernel numpy runs, limited to THREADS threads when given: medpick's own thread count). Strategies: coreset, typiclust, probcover (skactiveml's
CoreSet, TypiClust, ProbCover with their defaults, random_state=0, nothing labelled). Exit status 2 when the
strategy has no scikit-activeml counterpart.
"""
import json
import sys
import time

import numpy as np


def main():
    path, strategy, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else None
    from skactiveml.pool import CoreSet, ProbCover, TypiClust

    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        limiter = threadpool_limits(limits=threads) if threads else None
        blas = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} x{i.get('num_threads')}"
            for i in threadpool_info()
        )
    except ImportError:
        limiter, blas = None, "threadpoolctl not installed"

    x = np.load(path)
    y = np.full(x.shape[0], np.nan)
    qs = {
        "coreset": lambda: CoreSet(random_state=0),
        "typiclust-knn": lambda: TypiClust(random_state=0),
        "probcover": lambda: ProbCover(random_state=0),
    }.get(strategy)
    if qs is None:
        print(json.dumps({"error": f"no scikit-activeml counterpart for {strategy}"}))
        sys.exit(2)
    q = qs()
    t = time.perf_counter()
    picks = q.query(X=x, y=y, batch_size=budget)
    secs = time.perf_counter() - t
    print(json.dumps({"seconds": secs, "picks": int(len(np.unique(picks))), "threads": threads, "blas": blas}))
    del limiter


if __name__ == "__main__":
    main()
