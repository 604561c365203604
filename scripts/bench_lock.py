"""What the per-metric lock costs an ``update`` of a small batch (64 rows, by default).

For each metric, the same object is timed in alternating rounds of one run: ``bare`` calls the
unwrapped ``update`` with a no-op context manager as lock (no lock at all: the code before
locks, give or take a composite's children's wrappers), ``no lock`` the wrapped ``update`` with
the no-op lock, ``RLock`` the real thing; each figure is the best round. Usage:

    .venv/bin/python scripts/bench_lock.py [--rows 64] [--calls 2000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import streammetric as sm


def _data(rows: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 5, rows)
    probs = rng.dirichlet(np.ones(5), rows)
    binary = rng.integers(0, 2, rows)
    y = rng.normal(size=rows)
    return {
        "ce": (classes, probs),
        "acc": (classes, probs),
        "f1": (binary, rng.random(rows)),
        "mcc": (binary, rng.random(rows)),
        "pcc": (classes, probs),
        "ece": (classes, probs),
        "mae": (y, y + rng.normal(size=rows)),
        "composite (acc, ce, pcc, ece)": (classes, probs),
    }


def _make(name: str) -> sm.EvalMetric:
    if name.startswith("composite"):
        return sm.create(["acc", "ce", "pcc", "ece"])
    return sm.create(name)


def _set_lock(metric: sm.EvalMetric, lock: Any) -> None:
    metric._lock = lock
    for child in getattr(metric, "metrics", []):
        _set_lock(child, lock)


def _best(run: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(f"update of {args.rows} rows, best of {args.rounds} rounds of {args.calls:,} calls")
    print(f"{'metric':32} {'bare µs':>8} {'no lock µs':>11} {'RLock µs':>9} {'RLock/bare':>11}")
    for name, (labels, preds) in _data(args.rows).items():
        bare, none, rlock = _measure(_make(name), labels, preds, args.calls, args.rounds)
        print(f"{name:32} {bare:8.2f} {none:11.2f} {rlock:9.2f} {rlock / bare:11.3f}")


def _measure(
    metric: sm.EvalMetric, labels: np.ndarray, preds: np.ndarray, calls: int, rounds: int
) -> tuple[float, float, float]:
    """Best µs per update: bare (unwrapped, no lock), wrapped with a no-op lock, with the RLock."""
    metric.update(labels, preds)  # warm up
    bare_update = type(metric).update.__wrapped__  # type: ignore[attr-defined]
    null = contextlib.nullcontext()
    cases = {"bare": null, "none": null, "rlock": threading.RLock()}
    best = dict.fromkeys(cases, float("inf"))

    def run_bare() -> None:
        for _ in range(calls):
            bare_update(metric, labels, preds)

    def run() -> None:
        for _ in range(calls):
            metric.update(labels, preds)

    for _ in range(rounds):
        for key, lock in cases.items():
            _set_lock(metric, lock)
            best[key] = min(best[key], _best(run_bare if key == "bare" else run, calls))
    _set_lock(metric, threading.RLock())
    return best["bare"] * 1e6, best["none"] * 1e6, best["rlock"] * 1e6


if __name__ == "__main__":
    main()
