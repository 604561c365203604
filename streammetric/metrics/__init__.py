"""Metric objects (MXNet ``mx.metric`` style). Importing this package registers them all."""

from .base import EvalMetric
from .calibration import AUC, ECE, Brier
from .classification import F1, MCC, PCC, Accuracy, TopKAccuracy
from .cross_entropy import BinaryCrossEntropy, CrossEntropy, NegativeLogLikelihood, Perplexity
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
    "AUC",
    "ECE",
    "F1",
    "MAE",
    "MCC",
    "MSE",
    "PCC",
    "RMSE",
    "Accuracy",
    "BinaryCrossEntropy",
    "Brier",
    "CompositeEvalMetric",
    "CrossEntropy",
    "CustomMetric",
    "EvalMetric",
    "Loss",
    "NegativeLogLikelihood",
    "PearsonCorrelation",
    "Perplexity",
    "TopKAccuracy",
    "alias",
    "create",
    "list_metrics",
    "np_metric",
    "register",
]
