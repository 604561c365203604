"""Run by test_keras.py in a fresh interpreter whose ``KERAS_BACKEND`` is JAX or TensorFlow
(Keras picks its backend once, at import): `StreamMetric` with ``run_eagerly=True`` through
``evaluate``, ``fit`` and the validation within ``fit``, beside the metrics updated directly
with the model's own predictions; then a jit-compiled ``evaluate``, which must be refused.
Prints one JSON object."""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np

import streammetric as sm
from streammetric.integrations.keras import StreamMetric

ROWS, FEATURES, CLASSES, BATCH = 23, 4, 3, 5  # 5 batches, the last of 3 rows
SPECS = ["ce", "acc"]


def data(seed: int, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, rows)


def tiny_model(run_eagerly: bool = True) -> Any:
    """The same weights each time; a learning rate of 0 keeps them through ``fit``, so the
    training batches' predictions are the final model's."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((FEATURES,)), keras.layers.Dense(CLASSES, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss="sparse_categorical_crossentropy",
        metrics=[StreamMetric(SPECS)],
        run_eagerly=run_eagerly,
    )
    return model


def direct(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The metrics updated directly, batch by batch, with the model's own forward."""
    metric = sm.create(SPECS)
    for start in range(0, len(x), BATCH):
        rows = slice(start, start + BATCH)
        metric.update(y[rows], keras.ops.convert_to_numpy(model(x[rows], training=False)))
    return dict(metric.get_name_value())


def main() -> None:
    (x, y), (xv, yv) = data(1), data(2, 13)
    out: dict[str, Any] = {"backend": keras.backend.backend()}
    model = tiny_model()  # evaluate first: the metrics are built by evaluate
    logs = model.evaluate(x, y, batch_size=BATCH, return_dict=True, verbose=0)
    out["evaluate"] = [logs, direct(model, x, y)]
    model = tiny_model()  # fit first
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
    out["fit"] = [{k: v[-1] for k, v in history.items()}, direct(model, x, y)]
    model = tiny_model()
    history = model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        validation_data=(xv, yv),
        validation_batch_size=BATCH,
        verbose=0,
    ).history
    out["fit_validation"] = [{k: v[-1] for k, v in history.items()}, direct(model, x, y)]
    out["validation"] = {f"val_{k}": v for k, v in direct(model, xv, yv).items()}
    try:
        tiny_model(run_eagerly=False).evaluate(x, y, batch_size=BATCH, verbose=0)
        out["jit"] = None
    except RuntimeError as exc:
        out["jit"] = str(exc)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
