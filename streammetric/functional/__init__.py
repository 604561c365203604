"""Pure, vectorised metric math; the metric classes keep state and call these."""

from .calibration import brier_score, calibration_error
from .classification import accuracy, f1_score, matthews_corrcoef, pcc, top_k_accuracy
from .losses import DIAGNOSTIC_KEYS, LossTerms, binary_cross_entropy, cross_entropy, perplexity
from .ranking import binned_auc, binned_auc_bound
from .regression import (
    mean_absolute_error,
    mean_squared_error,
    pearson_correlation,
    root_mean_squared_error,
)

__all__ = [
    "DIAGNOSTIC_KEYS",
    "LossTerms",
    "accuracy",
    "binary_cross_entropy",
    "binned_auc",
    "binned_auc_bound",
    "brier_score",
    "calibration_error",
    "cross_entropy",
    "f1_score",
    "matthews_corrcoef",
    "mean_absolute_error",
    "mean_squared_error",
    "pcc",
    "pearson_correlation",
    "perplexity",
    "root_mean_squared_error",
    "top_k_accuracy",
]
