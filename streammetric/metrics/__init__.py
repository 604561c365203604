"""Metric objects (MXNet ``mx.metric`` style); `create` and `list_metrics` know every built-in.

Each metric class is imported on first use (an attribute here, or a name given to `create`),
from its row in ``streammetric/_metric_table.py`` (written by ``scripts/gen_metric_table.py``):
``streammetric eval -m ce`` imports the cross-entropy module and no other.
"""

from typing import TYPE_CHECKING

from .. import _metric_table
from .._lazy import lazy_attributes
from .base import EvalMetric
from .registry import alias, create, list_metrics, np_metric, register

if TYPE_CHECKING:
    from .._metric_table import *  # noqa: F403  (the metric classes, for the type checkers)

_LAZY = {row.cls: row.module for row in _metric_table.METRICS}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

__all__ = ["EvalMetric", "alias", "create", "list_metrics", "np_metric", "register"]
__all__ += sorted(_LAZY)  # the metric classes
