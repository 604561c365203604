"""`streammetric.integrations.keras.StreamMetric` in a real Keras 3 model (the torch backend,
set by tests/conftest.py): the logged values equal to the metrics updated directly with the same
predictions, bit for bit."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

assert os.environ.get("KERAS_BACKEND") == "torch"
keras = pytest.importorskip("keras")

import streammetric as sm  # noqa: E402
from streammetric.integrations.keras import StreamMetric  # noqa: E402

ROWS, FEATURES, CLASSES, BATCH = 23, 4, 3, 5  # 5 batches, the last of 3 rows
REPO = Path(__file__).resolve().parents[2]


def tiny_model(metric: Any, weighted: bool = False) -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((FEATURES,)), keras.layers.Dense(CLASSES, activation="softmax")]
    )
    # Keras gives the sample weights to its `weighted_metrics` only
    where = "weighted_metrics" if weighted else "metrics"
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", **{where: [metric]})
    return model


def data(seed: int, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, rows)


def expected(model: Any, x: Any, y: Any, weight: Any = None, prefix: str = "") -> dict:
    """The metrics updated directly, batch by batch, with the model's own forward."""
    metric = sm.create(["ce", "acc"])
    for start in range(0, len(x), BATCH):
        rows = slice(start, start + BATCH)
        preds = model(x[rows], training=False).detach().numpy()  # the torch backend
        metric.update(y[rows], preds, None if weight is None else weight[rows])
    return {f"{prefix}{name}": value for name, value in metric.get_name_value()}


class StateSizes(keras.callbacks.Callback):
    def __init__(self, metric: StreamMetric) -> None:
        super().__init__()
        self.metric, self.sizes = metric, []

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        self.sizes.append(len(pickle.dumps(self.metric.metric)))


def test_evaluate_logs_the_exact_values():
    stream = StreamMetric(["ce", "acc"])
    model, (x, y) = tiny_model(stream), data(1)
    results = model.evaluate(x, y, batch_size=BATCH, return_dict=True, verbose=0)
    want = expected(model, x, y)
    assert {k: results[k] for k in want} == want  # bit for bit
    assert set(results) == {"loss", *want}
    # evaluated again: reset at the start, the same values
    again = model.evaluate(x, y, batch_size=BATCH, return_dict=True, verbose=0)
    assert {k: again[k] for k in want} == want


def test_the_state_does_not_grow_with_the_batches():
    """Over 47 batches the metric's pickled state stays within a few bytes (its exact sums'
    integers may gain a digit); kept predictions would add 12 bytes a row, 2,796 in all."""
    stream = StreamMetric(["ce", "acc"])
    model, (x, y), sizes = tiny_model(stream), data(5, 233), StateSizes(stream)
    model.evaluate(x, y, batch_size=BATCH, verbose=0, callbacks=[sizes])
    assert len(sizes.sizes) == 47 and max(sizes.sizes) - min(sizes.sizes) < 32
    # Keras's own lists of variables and sub-metrics stay empty: the state is streammetric's
    assert [
        k for k, v in vars(stream).items() if isinstance(v, (list, np.ndarray)) and len(v)
    ] == []


def test_sample_weights_and_validation_within_fit():
    stream = StreamMetric(["ce", "acc"], prefix="sm_")
    model, (x, y), (xv, yv) = tiny_model(stream, weighted=True), data(2, 17), data(3, 13)
    weight = np.random.default_rng(4).choice([0.5, 1.0, 2.0], size=len(x)).astype(np.float32)
    results = model.evaluate(
        x, y, sample_weight=weight, batch_size=BATCH, return_dict=True, verbose=0
    )
    want = expected(model, x, y, weight, prefix="sm_")
    assert {k: results[k] for k in want} == want
    assert want != expected(model, x, y, prefix="sm_")  # the weights mattered
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        validation_data=(xv, yv),
        validation_batch_size=BATCH,
        verbose=0,
    )
    # the validation after the epoch ran on the final weights
    want = expected(model, xv, yv, prefix="val_sm_")
    assert {k: history.history[k][-1] for k in want} == want


def test_config_round_trip():
    stream = StreamMetric("acc", prefix="p_", name="mine")
    copy = StreamMetric.from_config(stream.get_config())
    copy.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    assert (copy.name, copy.result()) == ("mine", {"p_accuracy": 0.5})


#: two metrics whose get() name is the same: cross-entropy, exact and as Keras computes it
SAME_NAME = ["ce", {"metric": "ce", "convention": "keras"}]
DISTINCT = ["cross-entropy[convention=exact]", "cross-entropy[convention=keras]"]


def test_metrics_of_one_name_get_distinct_names():
    """Each requested metric is logged, under the name the command line gives it
    (`distinct_names`): none is dropped for sharing ``cross-entropy`` with another."""
    from streammetric.metrics.specs import distinct_names

    stream = StreamMetric(SAME_NAME, prefix="sm_")
    model, (x, y) = tiny_model(stream), data(1)
    results = model.evaluate(x, y, batch_size=BATCH, return_dict=True, verbose=0)
    metric = sm.create(distinct_names(SAME_NAME))
    for start in range(0, len(x), BATCH):
        rows = slice(start, start + BATCH)
        metric.update(y[rows], model(x[rows], training=False).detach().numpy())
    want = {f"sm_{name}": value for name, value in metric.get_name_value()}
    assert sorted(want) == [f"sm_{name}" for name in DISTINCT]
    assert {k: results[k] for k in want} == want
    assert want["sm_" + DISTINCT[0]] != want["sm_" + DISTINCT[1]]  # two metrics, two values
    # the names survive a config round trip (Keras's saving)
    copy = StreamMetric.from_config(stream.get_config())
    assert copy.metric.get()[0] == DISTINCT


def test_names_that_cannot_be_told_apart_are_refused():
    with pytest.raises(sm.ConfigError, match="'ce' and 'ce' are the same metric"):
        StreamMetric(["ce", "ce"])
    with pytest.raises(
        sm.ConfigError,
        match=r"CrossEntropy\(convention='exact'\) and CrossEntropy\(convention='keras'\) "
        r"would both be named 'cross-entropy' in the results \(a metric given as an instance "
        r"keeps its name\)",
    ):
        StreamMetric(sm.create(SAME_NAME))  # instances keep their names


def test_keras_building_its_metrics_counts_nothing():
    """Keras builds the compiled metrics with symbolic tensors (``compute_output_spec``, in its
    ``SymbolicScope``) before the first batch: no rows to count there."""
    from keras.src.backend.common.symbolic_scope import SymbolicScope

    stream = StreamMetric("acc")
    with SymbolicScope():
        stream.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    assert stream.metric.num_inst == 0
    stream.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    assert stream.metric.num_inst == 2


@pytest.mark.slow  # a fresh interpreter importing JAX or TensorFlow and Keras: 10 to 30 s
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_run_eagerly_on_jax_and_tensorflow(backend: str) -> None:
    """``run_eagerly=True`` on JAX and TensorFlow: Keras builds the metrics with symbolic
    tensors first (JAX tracers), which count nothing; then every batch of ``evaluate``, ``fit``
    and its validation is counted, the values those of the metrics updated directly with the
    model's predictions. A jit-compiled evaluation is refused, saying why."""
    pytest.importorskip(backend)
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "JAX_PLATFORMS": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    script = REPO / "tests" / "integrations" / "keras_backend.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["backend"] == backend
    for run in ("evaluate", "fit", "fit_validation"):
        logs, want = out[run]
        assert set(want) == {"cross-entropy", "accuracy"}
        assert {k: logs[k] for k in want} == want, run  # bit for bit
    logs = out["fit_validation"][0]
    assert {k: logs[k] for k in out["validation"]} == out["validation"]
    assert "needs the model to run eagerly" in out["jit"]
