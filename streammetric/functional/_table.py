"""The public names of the functional modules.

Written by ``scripts/gen_metric_table.py`` from the modules themselves: do not edit
(``tests/test_metric_table.py`` fails when this file is stale). Read by
`streammetric.functional` for its lazy attributes and ``__all__``; ``__all__`` is for the type
checkers' ``from ._table import *``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .calibration import brier_score, calibration_error, uniform_bins
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
    from .losses import (
        DIAGNOSTIC_KEYS,
        REDUCTIONS,
        LossTerms,
        binary_cross_entropy,
        cross_entropy,
        perplexity,
    )
    from .ranking import binned_auc, binned_auc_bound
    from .regression import (
        mean_absolute_error,
        mean_squared_error,
        mean_squared_log_error,
        pearson_correlation,
        root_mean_squared_error,
    )
    from .resample import (
        BUCKETS,
        DEFAULT_REPLICATES,
        buckets_of,
        check_replicates,
        hash_ids,
        hash_positions,
        min_replicates,
        percentile_interval,
        poisson_weights,
    )

#: every public name of `streammetric.functional`: name -> module
FUNCTIONS = {
    "BUCKETS": "resample",
    "DEFAULT_REPLICATES": "resample",
    "DIAGNOSTIC_KEYS": "losses",
    "REDUCTIONS": "losses",
    "LossTerms": "losses",
    "accuracy": "classification",
    "binary_cross_entropy": "losses",
    "binned_auc": "ranking",
    "binned_auc_bound": "ranking",
    "brier_score": "calibration",
    "buckets_of": "resample",
    "calibration_error": "calibration",
    "check_replicates": "resample",
    "confusion_matrix": "classification",
    "cross_entropy": "losses",
    "f1_score": "classification",
    "fbeta_score": "classification",
    "hash_ids": "resample",
    "hash_positions": "resample",
    "matthews_corrcoef": "classification",
    "mean_absolute_error": "regression",
    "mean_squared_error": "regression",
    "mean_squared_log_error": "regression",
    "min_replicates": "resample",
    "pcc": "classification",
    "pearson_correlation": "regression",
    "percentile_interval": "resample",
    "perplexity": "losses",
    "poisson_weights": "resample",
    "precision_score": "classification",
    "recall_score": "classification",
    "root_mean_squared_error": "regression",
    "top_k_accuracy": "classification",
    "uniform_bins": "calibration",
}

__all__ = [
    "BUCKETS",
    "DEFAULT_REPLICATES",
    "DIAGNOSTIC_KEYS",
    "REDUCTIONS",
    "LossTerms",
    "accuracy",
    "binary_cross_entropy",
    "binned_auc",
    "binned_auc_bound",
    "brier_score",
    "buckets_of",
    "calibration_error",
    "check_replicates",
    "confusion_matrix",
    "cross_entropy",
    "f1_score",
    "fbeta_score",
    "hash_ids",
    "hash_positions",
    "matthews_corrcoef",
    "mean_absolute_error",
    "mean_squared_error",
    "mean_squared_log_error",
    "min_replicates",
    "pcc",
    "pearson_correlation",
    "percentile_interval",
    "perplexity",
    "poisson_weights",
    "precision_score",
    "recall_score",
    "root_mean_squared_error",
    "top_k_accuracy",
    "uniform_bins",
]
