"""Pure, vectorised metric math; the metric classes keep state and call these.

The losses are imported with this package; the calibration, classification, ranking and
regression functions on first use (the cross-entropy metrics, ``streammetric eval``'s default,
need none of them).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .losses import DIAGNOSTIC_KEYS, LossTerms, binary_cross_entropy, cross_entropy, perplexity

if TYPE_CHECKING:
    from .calibration import brier_score, calibration_error
    from .classification import (
        accuracy,
        confusion_matrix,
        f1_score,
        fbeta_score,
        matthews_corrcoef,
        pcc,
        precision_score,
        recall_score,
        top_k_accuracy,
    )
    from .ranking import binned_auc, binned_auc_bound
    from .regression import (
        mean_absolute_error,
        mean_squared_error,
        pearson_correlation,
        root_mean_squared_error,
    )

_LAZY = {
    **dict.fromkeys(("brier_score", "calibration_error"), "calibration"),
    **dict.fromkeys(
        (
            "accuracy",
            "confusion_matrix",
            "f1_score",
            "fbeta_score",
            "matthews_corrcoef",
            "pcc",
            "precision_score",
            "recall_score",
            "top_k_accuracy",
        ),
        "classification",
    ),
    **dict.fromkeys(("binned_auc", "binned_auc_bound"), "ranking"),
    **dict.fromkeys(
        (
            "mean_absolute_error",
            "mean_squared_error",
            "pearson_correlation",
            "root_mean_squared_error",
        ),
        "regression",
    ),
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "DIAGNOSTIC_KEYS",
    "LossTerms",
    "accuracy",
    "binary_cross_entropy",
    "binned_auc",
    "binned_auc_bound",
    "brier_score",
    "calibration_error",
    "confusion_matrix",
    "cross_entropy",
    "f1_score",
    "fbeta_score",
    "matthews_corrcoef",
    "mean_absolute_error",
    "mean_squared_error",
    "pcc",
    "pearson_correlation",
    "perplexity",
    "precision_score",
    "recall_score",
    "root_mean_squared_error",
    "top_k_accuracy",
]
