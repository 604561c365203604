"""Compare streammetric with the real MXNet 1.9.1 ``mx.metric`` on the same seeded data.

MXNet needs numpy < 1.24, so it runs in its own venv (scripts/bench.py --setup-peers creates
.bench/venv-mxnet). This script runs itself there to get MXNet's values, computes ours here,
and prints both with their relative difference. Data comes in ONE batch, where MXNet 1.x is
batch-independent (its per-batch averages equal global values); float32 inputs, as MXNet uses.
Then the cases whose MXNet value does not depend on the batching (``MULTI_BATCH``) again, with
the same rows in batches of unequal sizes: ours are the same numbers whatever the batching.

    .venv/bin/python scripts/compare_mxnet.py [--python .bench/venv-mxnet/bin/python]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# (our create() spec, MXNet metric name and kwargs, data kind)
CASES: list[tuple[Any, tuple[str, dict[str, Any]], str]] = [
    ("acc", ("acc", {}), "class"),
    ({"metric": "top_k_accuracy", "top_k": 3}, ("top_k_accuracy", {"top_k": 3}), "class"),
    ("f1", ("f1", {}), "binary2"),
    ({"metric": "f1", "average": "micro"}, ("f1", {"average": "micro"}), "binary2"),
    ("mcc", ("mcc", {}), "binary2"),
    ("pcc", ("pcc", {}), "class"),
    ("mae", ("mae", {}), "regression"),
    ("mse", ("mse", {}), "regression"),
    ("rmse", ("rmse", {}), "regression"),
    ("pearsonr", ("pearsonr", {}), "regression"),
    ({"metric": "ce", "convention": "mxnet"}, ("ce", {}), "class"),
    ({"metric": "nll_loss", "convention": "mxnet"}, ("nll_loss", {}), "class"),
    (
        {"metric": "perplexity", "convention": "mxnet"},
        ("perplexity", {"ignore_label": None}),
        "class",
    ),
    (
        {"metric": "perplexity", "convention": "mxnet", "ignore_label": 0},
        ("perplexity", {"ignore_label": 0}),
        "class",
    ),
    ("loss", ("loss", {}), "regression"),
    # MXNet 1.9.1's other constructor arguments and metrics
    ({"metric": "pearsonr", "average": "micro"}, ("pearsonr", {"average": "micro"}), "regression"),
    ({"metric": "pearsonr", "average": "macro"}, ("pearsonr", {"average": "macro"}), "regression"),
    ({"metric": "f1", "average": "macro"}, ("f1", {"average": "macro"}), "binary2"),
    ({"metric": "mcc", "average": "micro"}, ("mcc", {"average": "micro"}), "binary2"),
    ({"metric": "mcc", "average": "macro"}, ("mcc", {"average": "macro"}), "binary2"),
    ({"metric": "acc", "axis": -1}, ("acc", {"axis": -1}), "class"),
    ({"metric": "pcc", "has_global_stats": False}, ("pcc", {"has_global_stats": False}), "class"),
    ({"metric": "ce", "eps": 1e-3}, ("ce", {"eps": 1e-3}), "class"),
    ({"metric": "nll_loss", "eps": 1e-3}, ("nll_loss", {"eps": 1e-3}), "class"),
    (
        {"metric": "perplexity", "convention": "mxnet", "ignore_label": 3, "axis": 1},
        ("perplexity", {"ignore_label": 3, "axis": 1}),
        "class",
    ),
    ("torch", ("torch", {}), "regression"),
    ("caffe", ("caffe", {}), "regression"),
]


def _batch_independent(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether MXNet 1.9.1's value does not depend on the batching."""
    if name in ("mae", "mse", "rmse"):
        return False  # MXNet averages per-batch means (or roots)
    if name in ("f1", "mcc", "pearsonr"):
        return kwargs.get("average", "macro") == "micro"  # "macro": mean of per-batch values
    return True


# indices into CASES run again on several batches
MULTI_BATCH = [i for i, (_, (name, kw), _) in enumerate(CASES) if _batch_independent(name, kw)]
# batch boundaries (rows) for MULTI_BATCH
CUTS = [1, 700, 701, 1900, 3000, 4999]


def data(kind: str, n: int = 5000, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2024)
    if kind == "class":
        labels = rng.integers(0, k, n).astype(np.float32)
        probs = rng.random((n, k)).astype(np.float32)
        return labels, (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    if kind == "binary2":
        labels = rng.integers(0, 2, n).astype(np.float32)
        p1 = rng.random(n).astype(np.float32)
        return labels, np.stack([1 - p1, p1], axis=1).astype(np.float32)
    labels = rng.normal(size=n).astype(np.float32)
    return labels, (labels + rng.normal(size=n)).astype(np.float32)


def batches(labels: np.ndarray, preds: np.ndarray, several: bool) -> list[tuple[Any, Any]]:
    if not several:
        return [(labels, preds)]
    bounds = [0, *CUTS, len(labels)]
    return [(labels[a:b], preds[a:b]) for a, b in itertools.pairwise(bounds)]


def mxnet_values() -> list[float]:
    import mxnet as mx

    out = []
    for several, index in [(False, i) for i in range(len(CASES))] + [
        (True, i) for i in MULTI_BATCH
    ]:
        _, (name, kwargs), kind = CASES[index]
        metric = mx.metric.create(name, **kwargs)
        for labels, preds in batches(*data(kind), several):
            metric.update([mx.nd.array(labels)], [mx.nd.array(preds)])
        out.append(float(metric.get()[1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=str(ROOT / ".bench" / "venv-mxnet" / "bin" / "python"))
    parser.add_argument("--as-mxnet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_mxnet:
        print(json.dumps(mxnet_values()))
        return
    import streammetric as sm

    theirs = json.loads(
        subprocess.run(
            [args.python, __file__, "--as-mxnet"], capture_output=True, text=True, check=True
        ).stdout
    )
    print(f"{'metric':48s} {'MXNet 1.9.1':>22s} {'streammetric':>22s} {'rel. diff':>10s}")
    worst = 0.0
    runs = [(False, i) for i in range(len(CASES))] + [(True, i) for i in MULTI_BATCH]
    for (several, index), mx_value in zip(runs, theirs, strict=True):
        spec, _, kind = CASES[index]
        if several and index == MULTI_BATCH[0]:
            print(f"-- the same rows in {len(CUTS) + 1} batches (rows cut at {CUTS}):")
        labels, preds = data(kind)
        if kind == "class":
            labels = labels.astype(np.int64)
        metric = sm.create(spec)
        for label_batch, pred_batch in batches(labels, preds, several):
            metric.update([label_batch], [pred_batch])
        ours = metric.get()[1]
        diff = abs(ours - mx_value) / max(abs(mx_value), 1e-300)
        worst = max(worst, diff)
        print(f"{json.dumps(spec):48s} {mx_value:22.17g} {ours:22.17g} {diff:10.2e}")
    print(f"largest relative difference: {worst:.2e}")
    sys.exit(0)


if __name__ == "__main__":
    main()
