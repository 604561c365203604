"""update() throughput of streaming metrics in streammetric and the peers a user would use.

Run by scripts/bench.py under each interpreter (the project's .venv, and the peers' venvs in
.bench/), it prints one JSON object: {library: {batch_size: {"ns_per_row", "us_per_call",
"value"}}}. Only libraries importable by this interpreter are measured. Every library sees the
same data (PCG64 streams are stable across NumPy versions): 10-class float32 probabilities and
int64 labels, in batches of 64 and 65,536 rows, converted to the library's array type *before*
timing (users hold their arrays already). streammetric's ``CrossEntropy`` is timed under each
built-in convention, and ``Accuracy`` too, against MXNet 1.9.1's ``CrossEntropy`` and
``Accuracy``.

Usage: python scripts/bench_peers.py [--rows 1048576] [--only a,b] [--label SUFFIX]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

CLASSES = 10
BATCHES = (64, 65_536)


def make_data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    labels = rng.integers(0, CLASSES, rows)
    logits = rng.normal(size=(rows, CLASSES)).astype(np.float32)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return labels, probs.astype(np.float32)


def time_stream(
    make: Callable[[], Callable[[int], None]], finish: Callable[[], float], batches: int
) -> tuple[float, float]:
    """Median seconds for one pass over ``batches`` updates, and the final value."""
    runs, value = [], math.nan
    for _ in range(5):
        update = make()
        start = time.perf_counter()
        for i in range(batches):
            update(i)
        value = finish()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), value


def numpy_floor(labels, probs, size):  # the floor: a plain NumPy loop, float running sum
    state = {"sum": 0.0, "n": 0}

    def make():
        state.update(sum=0.0, n=0)

        def update(i):
            y, p = labels[i * size : (i + 1) * size], probs[i * size : (i + 1) * size]
            state["sum"] += float(-np.log(p[np.arange(len(y)), y]).sum())
            state["n"] += len(y)

        return update

    return make, lambda: state["sum"] / state["n"]


def streammetric_metric(create):
    """A library entry timing ``create()``'s update (a streammetric metric)."""

    def setup(labels, probs, size):
        count = min(len(labels) // size, 4096)
        ys = [labels[i * size : (i + 1) * size] for i in range(count)]  # as MXNet's: made before
        ps = [probs[i * size : (i + 1) * size] for i in range(count)]
        holder = {}

        def make():
            metric = holder["m"] = create()
            return lambda i: metric.update(ys[i], ps[i])

        return make, lambda: holder["m"].get()[1]

    return setup


def streammetric_ce(labels, probs, size):
    import streammetric as sm

    return streammetric_metric(sm.CrossEntropy)(labels, probs, size)


def streammetric_entries() -> dict:
    """CrossEntropy under each built-in convention but exact (timed above) and Accuracy, when
    streammetric is importable here."""
    try:
        import streammetric as sm
        from streammetric.conventions import list_conventions
    except ImportError:
        return {}
    entries = {}
    for name in list_conventions()[:6]:  # the built-ins
        if name != "exact":
            create = functools.partial(sm.CrossEntropy, convention=name)
            entries[f"streammetric CrossEntropy convention={name}"] = streammetric_metric(create)
    entries["streammetric Accuracy"] = streammetric_metric(sm.Accuracy)
    return entries


def sklearn_log_loss(labels, probs, size):  # not streaming: one call on everything seen
    from sklearn.metrics import log_loss

    chunks: list[int] = []

    def make():
        chunks.clear()
        return lambda i: chunks.append(i)

    def finish():
        n = len(chunks) * size
        return float(log_loss(labels[:n], probs[:n], labels=list(range(CLASSES))))

    return make, finish


def torchmetrics_mean(labels, probs, size):
    import torch
    import torch.nn.functional as F
    from torchmetrics.aggregation import MeanMetric

    y, p = torch.from_numpy(labels), torch.from_numpy(probs)
    holder = {}

    def make():
        metric = holder["m"] = MeanMetric()

        def update(i):
            sl = slice(i * size, (i + 1) * size)
            metric.update(F.nll_loss(torch.log(p[sl]), y[sl], reduction="none"))

        return update

    return make, lambda: float(holder["m"].compute())


def keras_metric(labels, probs, size):
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    holder = {}
    y, p = keras.ops.convert_to_tensor(labels), keras.ops.convert_to_tensor(probs)

    def make():
        metric = holder["m"] = keras.metrics.SparseCategoricalCrossentropy()
        return lambda i: metric.update_state(
            y[i * size : (i + 1) * size], p[i * size : (i + 1) * size]
        )

    return make, lambda: float(holder["m"].result())


def mxnet_metric(labels, probs, size, name="CrossEntropy"):
    import mxnet as mx

    count = min(len(labels) // size, 4096)
    ys = [mx.nd.array(labels[i * size : (i + 1) * size]) for i in range(count)]
    ps = [mx.nd.array(probs[i * size : (i + 1) * size]) for i in range(count)]
    holder = {}

    def make():
        metric = holder["m"] = getattr(mx.metric, name)()
        return lambda i: metric.update([ys[i]], [ps[i]])

    return make, lambda: holder["m"].get()[1]


def mxnet_accuracy(labels, probs, size):
    return mxnet_metric(labels, probs, size, "Accuracy")


LIBRARIES = {
    "numpy loop (floor)": numpy_floor,
    "streammetric CrossEntropy": streammetric_ce,
    "scikit-learn log_loss (whole array)": sklearn_log_loss,
    "torchmetrics MeanMetric(nll_loss)": torchmetrics_mean,
    "Keras SparseCategoricalCrossentropy": keras_metric,
    "MXNet 1.9.1 mx.metric.CrossEntropy": mxnet_metric,
    "MXNet 1.9.1 mx.metric.Accuracy": mxnet_accuracy,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1 << 20)
    parser.add_argument("--only", default="")
    parser.add_argument("--label", default="", help="appended to streammetric's names")
    args = parser.parse_args()
    labels, probs = make_data(args.rows)
    wanted = set(filter(None, args.only.split(",")))
    out: dict[str, dict[int, dict[str, float]]] = {}
    libraries = dict(LIBRARIES)
    if not wanted or any("streammetric" in w for w in wanted):
        libraries.update(streammetric_entries())
    for name, setup in libraries.items():
        if wanted and not any(w in name for w in wanted):
            continue
        try:
            results = {}
            for size in BATCHES:
                batches = min(len(labels) // size, 4096)
                make, finish = setup(labels, probs, size)
                seconds, value = time_stream(make, finish, batches)
                rows = batches * size
                results[size] = {
                    "ns_per_row": seconds / rows * 1e9,
                    "us_per_call": seconds / batches * 1e6,
                    "value": value,
                }
        except ImportError:
            continue
        out[f"{name}{args.label}" if name.startswith("streammetric") else name] = results
    print(json.dumps(out))


if __name__ == "__main__":
    main()
