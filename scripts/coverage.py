"""Coverage of streammetric's bootstrap intervals on simulated data with known population values.

    .venv/bin/python scripts/coverage.py [--datasets 400] [--rows 400] [--replicates 200]

A calibrated 3-class classifier: p ~ Dirichlet(1, 1, 1), the label drawn from p. Its population
accuracy is 11/18 and its cross-entropy 5/6 (see tests/metrics/test_bootstrap.py). For each of
``--datasets`` independent datasets of ``--rows`` rows, the 95% interval of `Bootstrap` (rows
hashed into 1,024 buckets, Poisson weights per bucket) and the textbook row bootstrap (NumPy,
multinomial resampling of rows, percentile interval) with the same number of replicates; prints
how often each covers the population value, and their mean widths.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import streammetric as sm
from streammetric.metrics.bootstrap import Bootstrap

POPULATION = {"accuracy": 11 / 18, "cross-entropy": 5 / 6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=400)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--level", type=float, default=0.95)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    resample = np.random.default_rng(1)
    covered = {("streammetric", n): 0 for n in POPULATION} | {("rows", n): 0 for n in POPULATION}
    widths: dict[tuple[str, str], list[float]] = {key: [] for key in covered}
    alpha = (1 - args.level) / 2
    started = time.perf_counter()
    for d in range(args.datasets):
        probs = rng.dirichlet(np.ones(3), args.rows)
        labels = np.minimum((rng.random(args.rows)[:, None] > np.cumsum(probs, axis=1)).sum(1), 2)
        boot = Bootstrap(
            sm.create(["ce", "acc"]), level=args.level, replicates=args.replicates, seed=d
        )
        boot.update(labels, probs, sample_ids=np.arange(args.rows))
        names, lower, upper = boot.get_interval()
        for name, lo, hi in zip(names, lower, upper, strict=True):
            covered["streammetric", name] += lo <= POPULATION[name] <= hi
            widths["streammetric", name].append(hi - lo)
        terms = {
            "accuracy": (probs.argmax(axis=1) == labels).astype(np.float64),
            "cross-entropy": -np.log(probs[np.arange(args.rows), labels]),
        }
        for name, values in terms.items():
            means = np.empty(args.replicates)
            for r in range(args.replicates):
                means[r] = values[resample.integers(0, args.rows, args.rows)].mean()
            lo, hi = np.quantile(means, [alpha, 1 - alpha])
            covered["rows", name] += lo <= POPULATION[name] <= hi
            widths["rows", name].append(hi - lo)
    print(
        f"{args.datasets} datasets x {args.rows:,} rows, {args.replicates} replicates, "
        f"level {args.level} ({time.perf_counter() - started:.1f} s)"
    )
    print(f"{'method':14s} {'metric':14s} {'coverage':>9s} {'mean width':>11s}")
    for (method, name), count in covered.items():
        rate = count / args.datasets
        print(f"{method:14s} {name:14s} {rate:9.3f} {np.mean(widths[method, name]):11.5f}")


if __name__ == "__main__":
    main()
