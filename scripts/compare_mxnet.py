"""Compare streammetric with the real MXNet 1.9.1 ``mx.metric`` on the same seeded data.

MXNet needs numpy < 1.24, so it runs in its own venv (scripts/bench.py --setup-peers creates
.bench/venv-mxnet). This script runs itself there to get MXNet's values, computes ours here,
and prints both with their relative difference. Data comes in ONE batch, where MXNet 1.x is
batch-independent (its per-batch averages equal global values); float32 inputs, as MXNet uses.

    .venv/bin/python scripts/compare_mxnet.py [--python .bench/venv-mxnet/bin/python]
"""

from __future__ import annotations

import argparse
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
]


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


def mxnet_values() -> list[float]:
    import mxnet as mx

    out = []
    for _, (name, kwargs), kind in CASES:
        labels, preds = data(kind)
        metric = mx.metric.create(name, **kwargs)
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
    for (spec, _, kind), mx_value in zip(CASES, theirs, strict=True):
        labels, preds = data(kind)
        if kind == "class":
            labels = labels.astype(np.int64)
        ours = sm.create(spec).update([labels], [preds]).get()[1]
        diff = abs(ours - mx_value) / max(abs(mx_value), 1e-300)
        worst = max(worst, diff)
        print(f"{json.dumps(spec):48s} {mx_value:22.17g} {ours:22.17g} {diff:10.2e}")
    print(f"largest relative difference: {worst:.2e}")
    sys.exit(0)


if __name__ == "__main__":
    main()
