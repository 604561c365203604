"""Two vector-valued metrics for the output tests: per-class and matrix values, as the per-class
metrics (``precision`` ... with ``average=None``, ``confusion_matrix``) give them.

`register_metrics()` registers them (``streammetric.create`` knows them by name;
`unregister_metrics()` forgets them again, so that the tests that go through every registered
metric do not meet them):

* ``vector_test_hit_rate`` (``get()`` name ``class_hit_rate``): per true class, the share of its
  rows whose argmax prediction is right; a float64 vector as long as the largest class seen
  (NaN for a class without rows).
* ``vector_test_confusion`` (``get()`` name ``test_confusion``): the ``num_classes`` x
  ``num_classes`` int64 counts, rows true class, columns predicted (argmax) class.

Their state is count vectors (row terms), so the engine groups them, checkpoints them and merges
them as any built-in metric. In tests the ``vector_metrics`` fixture (tests/conftest.py)
registers them for one test; a ``streammetric`` subprocess with them is `CLI_PREFIX`; Dask
workers in other processes register them through Dask's worker preload (`DASK_PRELOAD`: this
module as a preload, whose `dask_setup` registers them).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from streammetric import InvalidInputError
from streammetric.metrics import EvalMetric, register
from streammetric.metrics import registry as _registry
from streammetric.metrics.registry import alias
from streammetric.metrics.state import At, State, Terms

#: ``streammetric`` in a subprocess (cwd: the repository) with these metrics registered:
#: ``[*CLI_PREFIX, "eval", ...]``
CLI_PREFIX = (
    sys.executable,
    "-c",
    "from tests.helpers.vector_metrics import register_metrics; register_metrics(); "
    "from streammetric.cli import run; run()",
)
#: The environment variable that makes Dask workers preload this module (Dask's config).
DASK_PRELOAD = {"DASK_DISTRIBUTED__WORKER__PRELOAD": '["tests.helpers.vector_metrics"]'}


def _predicted(label: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    label = np.asarray(label).reshape(-1)
    if label.dtype.kind not in "iu" or (label.size and label.min() < 0):
        raise InvalidInputError(f"`labels` must be class indices >= 0, got {label[:3]!r}")
    pred = np.asarray(pred)
    predicted = pred.argmax(axis=1) if pred.ndim > 1 else (pred >= 0.5).astype(np.int64)
    return label.astype(np.int64), predicted.astype(np.int64)


class VectorTestHitRate(EvalMetric):
    """Per true class: hits / rows (NaN for a class without rows)."""

    higher_is_better = True

    def __init__(self, name: str = "class_hit_rate", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)

    def _init_states(self) -> None:
        self._add_state("hits", "counts")
        self._add_state("rows", "counts")

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        label, predicted = _predicted(label, pred)
        return {"hits": At(np.where(predicted == label, label, -1)), "rows": At(label)}

    def _compute(self, state: State) -> Any:
        rows = state["rows"]
        hits = np.zeros(rows.shape[0], dtype=np.int64)
        hits[: state["hits"].shape[0]] = state["hits"]
        out = np.full(rows.shape[0], math.nan)
        seen = rows > 0
        out[seen] = hits[seen] / rows[seen]
        return out

    def _num_inst(self, state: State) -> int:
        return int(state["rows"].sum())


class VectorTestConfusion(EvalMetric):
    """The (num_classes, num_classes) counts: rows true class, columns predicted class."""

    def __init__(self, num_classes: int = 3, name: str = "test_confusion", **kwargs: Any) -> None:
        self.num_classes = num_classes
        super().__init__(name, num_classes=num_classes, **kwargs)

    def _init_states(self) -> None:
        self._add_state("cells", "counts", size=self.num_classes**2)

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        label, predicted = _predicted(label, pred)
        k = self.num_classes
        if label.size and max(int(label.max()), int(predicted.max())) >= k:
            raise InvalidInputError(f"`labels` must be class indices below {k}")
        return {"cells": At(label * k + predicted, size=k * k)}

    def _compute(self, state: State) -> Any:
        k = self.num_classes
        cells = np.zeros(k * k, dtype=np.int64)
        cells[: state["cells"].shape[0]] = state["cells"]
        return cells.reshape(k, k)

    def _num_inst(self, state: State) -> int:
        return int(state["cells"].sum())


ALIASES = {VectorTestHitRate: "vector_test_hit_rate", VectorTestConfusion: "vector_test_confusion"}


def register_metrics() -> None:
    """Make `streammetric.create` know the two metrics (by class name and alias)."""
    for klass, name in ALIASES.items():
        register(alias(name)(klass))


def unregister_metrics() -> None:
    """Forget them again."""
    for klass, name in ALIASES.items():
        _registry._REGISTRY.pop(klass.__name__.lower(), None)
        _registry._ALIASES.pop(name, None)


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: a worker that preloads this module knows the metrics."""
    register_metrics()
