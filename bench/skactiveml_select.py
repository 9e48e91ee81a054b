#!/usr/bin/env python3
"""scikit-activeml's time on the features `medpick bench select` generated (a .npy file), for comparison.

Usage: skactiveml_select.py FEATURES.npy STRATEGY BUDGET
Prints one JSON line: {"seconds": ..., "picks": ...}. Strategies: coreset, typiclust, probcover (skactiveml's
CoreSet, TypiClust, ProbCover with their defaults, random_state=0, nothing labelled). Exit status 2 when the
strategy has no scikit-activeml counterpart.
"""
import json
import sys
import time

import numpy as np


def main():
    path, strategy, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from skactiveml.pool import CoreSet, ProbCover, TypiClust

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
    print(json.dumps({"seconds": time.perf_counter() - t, "picks": int(len(np.unique(picks)))}))


if __name__ == "__main__":
    main()
