"""Cost of exact accumulation per value, side by side with a plain float64 np.sum, in one run.

Run: .venv/bin/python scripts/bench_accumulate.py
Prints ns/value and us/call for ExactSum.add at several batch sizes and value distributions,
next to float `np.sum` on the same arrays (the floor: fast, but order-dependent and inexact).
Then the segmented sum (`GroupedExactSum.add`: each value into its row's group, one pass in C)
at 1 to 100,000 groups, next to one ungrouped ExactSum.add of the same values, to np.bincount
of them (a float, order-dependent grouped sum) and to the Python way (one ExactSum per group).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from streammetric.accumulate import ExactSum, GroupedExactSum


def _time_exact(x: np.ndarray, reps: int) -> float:
    """Seconds per add() in a stream of `reps` adds, reading the value included."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        total = ExactSum()
        for _ in range(reps):
            total.add(x)
        total.value  # noqa: B018 - part of a stream's cost
        runs.append((time.perf_counter() - start) / reps)
    return statistics.median(runs)


def _time_float(x: np.ndarray, reps: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        total = 0.0
        for _ in range(reps):
            total += float(np.sum(x))
        runs.append((time.perf_counter() - start) / reps)
    return statistics.median(runs)


def main() -> None:
    rng = np.random.default_rng(0)
    kinds = {
        "CE losses, float64": lambda n: -np.log(rng.random(n)),
        "float32 values as float64": lambda n: (
            rng.random((n,)).astype(np.float32).astype(np.float64)
        ),
        "signed, 1e-30..1e30": lambda n: rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n),
    }
    print(
        f"{'values':28s} {'batch':>8s} {'ExactSum ns/value':>18s} {'us/call':>9s} {'np.sum ns/value':>16s} {'ratio':>6s}"
    )
    for kind, make in kinds.items():
        for n in (64, 4096, 65536, 1 << 20):
            x = make(n)
            reps = max(3, 1_000_000 // n)
            t_exact = _time_exact(x, reps)
            t_float = _time_float(x, reps)
            assert ExactSum.from_values(x).value == math.fsum(x)
            print(
                f"{kind:28s} {n:8d} {t_exact / n * 1e9:18.2f} {t_exact * 1e6:9.1f} "
                f"{t_float / n * 1e9:16.2f} {t_exact / t_float:6.1f}"
            )


def _best(call, reps: int = 7) -> float:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    return min(runs)


def grouped() -> None:
    """ns/value of one 65,536-value batch of CE losses into G groups, each way side by side."""
    rng = np.random.default_rng(1)
    n = 65_536
    x = -np.log(rng.random(n))
    print(
        f"\n{'groups':>8s} {'grouped ns/value':>17s} {'ungrouped':>10s} {'bincount':>9s} "
        f"{'one ExactSum per group':>23s} {'grouped/ungrouped':>18s}"
    )
    for groups in (1, 10, 1000, 100_000):
        codes = rng.integers(0, groups, n)

        def each_group(codes=codes, groups=groups):
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(groups + 1))
            ordered = x[order]
            for g in range(groups):
                ExactSum.from_values(ordered[bounds[g] : bounds[g + 1]])

        sums = GroupedExactSum()
        t_grouped = _best(lambda codes=codes, sums=sums: sums.add(x, codes))
        t_plain = _best(lambda: ExactSum().add(x))
        t_bincount = _best(lambda codes=codes, groups=groups: np.bincount(codes, x, groups))
        t_python = _best(each_group, reps=3 if groups > 1000 else 7)
        check = GroupedExactSum()
        check.add(x, codes)
        first = int(codes[0])
        assert check[first].value == math.fsum(x[codes == first])
        print(
            f"{groups:8d} {t_grouped / n * 1e9:17.2f} {t_plain / n * 1e9:10.2f} "
            f"{t_bincount / n * 1e9:9.2f} {t_python / n * 1e9:23.1f} {t_grouped / t_plain:18.2f}"
        )


if __name__ == "__main__":
    main()
    grouped()
