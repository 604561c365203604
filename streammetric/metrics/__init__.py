"""Metric objects (MXNet ``mx.metric`` style); `create` and `list_metrics` know every built-in.

The cross-entropy family (``streammetric eval``'s default) is imported with this package; the
calibration, classification and regression metrics on first use (an attribute here, or a name
given to `create`), which keeps their modules out of the command's start-up.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .base import EvalMetric
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

if TYPE_CHECKING:
    from .calibration import AUC, ECE, Brier
    from .classification import (
        F1,
        MCC,
        PCC,
        Accuracy,
        ConfusionMatrix,
        FBeta,
        Precision,
        Recall,
        TopKAccuracy,
    )
    from .regression import MAE, MSE, RMSE, Caffe, Loss, PearsonCorrelation, Torch

_LAZY = {
    **dict.fromkeys(("AUC", "ECE", "Brier"), "calibration"),
    **dict.fromkeys(
        (
            "F1",
            "MCC",
            "PCC",
            "Accuracy",
            "ConfusionMatrix",
            "FBeta",
            "Precision",
            "Recall",
            "TopKAccuracy",
        ),
        "classification",
    ),
    **dict.fromkeys(
        ("MAE", "MSE", "RMSE", "Caffe", "Loss", "PearsonCorrelation", "Torch"), "regression"
    ),
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


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
    "Caffe",
    "CompositeEvalMetric",
    "ConfusionMatrix",
    "CrossEntropy",
    "CustomMetric",
    "EvalMetric",
    "FBeta",
    "Loss",
    "NegativeLogLikelihood",
    "PearsonCorrelation",
    "Perplexity",
    "Precision",
    "Recall",
    "TopKAccuracy",
    "Torch",
    "alias",
    "create",
    "list_metrics",
    "np_metric",
    "register",
]
