"""Cost of exact accumulation per value, side by side with a plain float64 np.sum, in one run.

Run: .venv/bin/python scripts/bench_accumulate.py
Prints ns/value and us/call for ExactSum.add at several batch sizes and value distributions,
next to float `np.sum` on the same arrays (the floor: fast, but order-dependent and inexact).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from streammetric.accumulate import ExactSum


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


if __name__ == "__main__":
    main()
