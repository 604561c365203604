"""Metric objects (MXNet ``mx.metric`` style). Importing this package registers them all."""

from .base import EvalMetric
from .registry import (
    CompositeEvalMetric,
    CustomMetric,
    alias,
    create,
    list_metrics,
    np_metric,
    register,
)
from .regression import MAE, MSE, RMSE, Loss, PearsonCorrelation

__all__ = [
    "MAE",
    "MSE",
    "RMSE",
    "CompositeEvalMetric",
    "CustomMetric",
    "EvalMetric",
    "Loss",
    "PearsonCorrelation",
    "alias",
    "create",
    "list_metrics",
    "np_metric",
    "register",
]
