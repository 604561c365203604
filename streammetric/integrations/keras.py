"""Keras 3: `StreamMetric`, streammetric metrics as one Keras metric.

``pip install streammetric[keras]``. Importing this module imports Keras (which reads
``KERAS_BACKEND`` then).

`StreamMetric` is a ``keras.metrics.Metric``: give it to ``model.compile(metrics=[...])`` and
Keras updates it with every batch of ``evaluate`` (and of ``fit``, and of the validation within
``fit``, where its names get Keras's ``val_`` prefix), resets it at the start of each, and reads
its values, one log entry per streammetric value: ``{"cross-entropy": ..., "accuracy": ...}``.
It keeps the streammetric metric only (exact sums and counts), no predictions.

Each batch is read on the host (``keras.ops.convert_to_numpy``), so the model must run
eagerly: the torch backend does by default; with TensorFlow or JAX, compile with
``run_eagerly=True`` (a jit-compiled step is refused, saying so). The call with symbolic tensors
by which Keras builds its metrics before the first batch counts nothing. Keras 3 runs in one
process here (its multi-device distribution is JAX's, within one process): nothing to merge.

>>> metric = StreamMetric(["ce", "acc"], prefix="sm_")
>>> metric.update_state([0, 1], [[0.25, 0.75], [0.5, 0.5]])
>>> metric.result()
{'sm_cross-entropy': 1.0397207708399179, 'sm_accuracy': 0.0}
"""

from __future__ import annotations

from typing import Any

import keras

from ..metrics.base import EvalMetric
from ._common import make_metric, scalars, to_host

__all__ = ["StreamMetric"]

try:  # Keras's own test of its symbolic stage (keras.src: not in the public API)
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope as _symbolic_scope_check
except ImportError:  # a Keras without it: symbolic calls are refused as non-eager ones
    _symbolic_scope_check = None


class StreamMetric(keras.metrics.Metric):
    """streammetric ``metrics`` updated with each batch's ``(y_true, y_pred, sample_weight)``.

    Parameters
    ----------
    metrics
        What `streammetric.create` takes: a name, a list of names (a composite), a config dict,
        or an `EvalMetric` (copied).
    prefix
        Put before each value's name in the logs (``"sm_"`` logs ``sm_accuracy``).
    name
        The Keras metric's own name.

    ``result()`` is a dict ``{prefix + name: value}`` of Python floats (a vector value gives
    ``name/0``, ``name/1``, ...), which Keras spreads over its logs.
    """

    def __init__(
        self, metrics: Any, prefix: str = "", name: str = "streammetric", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.metric: EvalMetric = make_metric(metrics)
        self.prefix = prefix

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if _in_symbolic_scope():
            # Keras building its metrics: ``compute_output_spec`` calls this with symbolic
            # tensors (JAX tracers, torch meta tensors) before the first batch: nothing to count
            return
        weight = None if sample_weight is None else _host(sample_weight)
        self.metric.update(_host(y_true), _host(y_pred), sample_weight=weight)

    def result(self) -> dict[str, float]:
        return scalars(self.metric, self.prefix)

    def reset_state(self) -> None:
        self.metric.reset()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "prefix": self.prefix, "metrics": self.metric.get_config()}


def _in_symbolic_scope() -> bool:
    """Whether Keras is tracing shapes (``backend.compute_output_spec``, within its
    ``SymbolicScope``: how ``Trainer._symbolic_build`` builds the compiled metrics on every
    backend), not running a batch. A jit-compiled step is no such scope: its tracers are refused
    by `_host`."""
    return _symbolic_scope_check is not None and bool(_symbolic_scope_check())


def _host(value: Any) -> Any:
    if hasattr(value, "detach"):  # the torch backend's tensor: streammetric reads it itself
        return to_host(value)
    try:
        return keras.ops.convert_to_numpy(value)
    except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
        # a symbolic tensor: TensorFlow's graph, JAX's tracing
        raise RuntimeError(
            "StreamMetric reads each batch on the host and needs the model to run eagerly: "
            "use the torch backend, or model.compile(..., run_eagerly=True)"
        ) from exc
