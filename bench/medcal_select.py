#!/usr/bin/env python3
"""MedCAL-Bench's own numpy selection code, timed on the features `medpick bench select` generated (a .npy file).

Usage: medcal_select.py MEDCAL_DIR FEATURES.npy STRATEGY BUDGET [THREADS]

MEDCAL_DIR is a checkout of github.com/HiLab-git/MedCAL-Bench (medpick compared against commit 22b8611). Nothing of
it is copied here: this script imports `FM-AL/select_samples.py` from the checkout and calls its
`select_valuable_samples` unchanged, the way MedCAL's `al_generation_plan` does (np.random.seed(12345) first).
Strategies (medpick name -> MedCAL name): coreset -> Coreset, typiclust -> Typiclust (MedCAL's variant),
probcover -> Probcover, repdiv -> RepDiv, alps -> ALPS, fps -> FPS, bal -> BAL.

MedCAL's Coreset, Probcover and RepDiv build dense N x N matrices (Coreset f32 products and their sum, Probcover
scipy's f64 distance matrix, RepDiv a similarity and a dissimilarity matrix). Before running, the script
estimates that peak from N and refuses, with exit status 3 and the figure, when it exceeds the memory this machine
has available (/proc/meminfo MemAvailable): that is where MedCAL's implementation stops.

Prints one JSON line: {"seconds": ..., "picks": ..., "unique": ..., "threads": ..., "blas": ...}; "picks" is the
number of names MedCAL returned and "unique" the number of distinct ones (MedCAL's Probcover and FPS can repeat).
Exit status 2 when the strategy has no MedCAL counterpart.
"""
import json
import os
import sys
import time

import numpy as np

NAMES = {
    "coreset": "Coreset",
    "typiclust": "Typiclust",
    "probcover": "Probcover",
    "repdiv": "RepDiv",
    "alps": "ALPS",
    "fps": "FPS",
    "bal": "BAL",
}

# Bytes per N^2 entry at the peak of each strategy's dense matrices (counted from select_samples.py at 22b8611;
# numpy frees or reuses each temporary before the next product): Coreset: the partial sum of the expression plus
# one feats @ feats.T product alive at a time, then the clip and the sqrt -> about 3 f32 matrices; Probcover:
# scipy.spatial.distance_matrix in f64 plus the `<= delta` row tests -> 1 f64 matrix and change; RepDiv: the cosine
# similarity matrix and 1 - S -> 2 f32 matrices.
DENSE_BYTES = {"Coreset": 3 * 4, "Probcover": 8 + 2, "RepDiv": 2 * 4}


def available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    medcal, path, strategy, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else None
    method = NAMES.get(strategy)
    if method is None:
        print(json.dumps({"error": f"no MedCAL-Bench counterpart for {strategy}"}))
        sys.exit(2)
    fm_al = os.path.join(medcal, "FM-AL")
    if not os.path.isfile(os.path.join(fm_al, "select_samples.py")):
        print(json.dumps({"error": f"{medcal} is not a MedCAL-Bench checkout: no FM-AL/select_samples.py"}))
        sys.exit(1)

    x = np.load(path, mmap_mode="r")
    n = x.shape[0]
    need = DENSE_BYTES.get(method, 0) * n * n + x.nbytes
    avail = available_bytes()
    if avail is not None and need > avail:
        print(
            json.dumps(
                {
                    "error": f"MedCAL's {method} needs about {need / 2**30:.1f} GiB for its {n} x {n} matrices; "
                    f"{avail / 2**30:.1f} GiB available",
                    "needs_bytes": need,
                    "available_bytes": avail,
                }
            )
        )
        sys.exit(3)
    x = np.ascontiguousarray(x)

    # select_samples.py imports `utils.feature_sampling_utils` relative to FM-AL, and tqdm writes to stderr. It is
    # imported before the thread limit: threadpoolctl limits only the libraries already loaded, and this import
    # loads scikit-learn's OpenMP runtime (its KMeans) besides numpy's BLAS.
    sys.path.insert(0, fm_al)
    import select_samples  # noqa: E402  (MedCAL-Bench's file, unchanged)

    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        limiter = threadpool_limits(limits=threads) if threads else None
        blas = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} x{i.get('num_threads')}"
            for i in threadpool_info()
        )
    except ImportError:
        limiter, blas = None, "threadpoolctl not installed"

    names = np.array([f"case_{i}" for i in range(n)])
    np.random.seed(select_samples.DEFAULT_RANDOM_STATE)
    t = time.perf_counter()
    picks = select_samples.select_valuable_samples(method, x, names, budget)
    secs = time.perf_counter() - t
    print(
        json.dumps(
            {"seconds": secs, "picks": len(picks), "unique": len(set(picks)), "threads": threads, "blas": blas}
        )
    )
    del limiter


if __name__ == "__main__":
    main()
