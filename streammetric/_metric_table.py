"""The built-in metrics, one row each.

Written by ``scripts/gen_metric_table.py`` from the modules themselves: do not edit
(``tests/test_metric_table.py`` fails when this file is stale). Read without importing
the metric modules: `streammetric` and `streammetric.metrics` make their lazy attributes and
``__all__`` from it, `create` imports the one module that has a name, ``streammetric metrics``
lists it. ``__all__`` (the class names) is for the type checkers' ``from ._metric_table import *``.
"""

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .metrics.calibration import AUC, ECE, Brier
    from .metrics.classification import (
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
    from .metrics.cross_entropy import (
        BinaryCrossEntropy,
        CrossEntropy,
        NegativeLogLikelihood,
        Perplexity,
    )
    from .metrics.registry import CompositeEvalMetric, CustomMetric
    from .metrics.regression import MAE, MSE, MSLE, RMSE, Caffe, Loss, PearsonCorrelation, Torch


class Row(NamedTuple):
    """A built-in metric: its class, the module of `streammetric.metrics` that defines it, the
    name `create` knows it by (``@register``) and its other names (``@alias``)."""

    cls: str
    module: str
    name: str
    aliases: tuple[str, ...]


#: every built-in metric, by registered name
METRICS: tuple[Row, ...] = (
    Row("Accuracy", "classification", "accuracy", ("acc",)),
    Row("AUC", "calibration", "auc", ()),
    Row(
        "BinaryCrossEntropy",
        "cross_entropy",
        "binarycrossentropy",
        ("bce", "binary-cross-entropy", "binary_cross_entropy"),
    ),
    Row("Brier", "calibration", "brier", ("brier_score",)),
    Row("Caffe", "regression", "caffe", ()),
    Row("CompositeEvalMetric", "registry", "compositeevalmetric", ("composite",)),
    Row("ConfusionMatrix", "classification", "confusionmatrix", ("confusion_matrix",)),
    Row("CrossEntropy", "cross_entropy", "crossentropy", ("ce", "cross-entropy")),
    Row("CustomMetric", "registry", "custommetric", ("custom",)),
    Row("ECE", "calibration", "ece", ("calibration_error",)),
    Row("F1", "classification", "f1", ()),
    Row("FBeta", "classification", "fbeta", ()),
    Row("Loss", "regression", "loss", ()),
    Row("MAE", "regression", "mae", ()),
    Row("MCC", "classification", "mcc", ()),
    Row("MSE", "regression", "mse", ()),
    Row("MSLE", "regression", "msle", ()),
    Row(
        "NegativeLogLikelihood", "cross_entropy", "negativeloglikelihood", ("nll-loss", "nll_loss")
    ),
    Row("PCC", "classification", "pcc", ()),
    Row("PearsonCorrelation", "regression", "pearsoncorrelation", ("pearsonr",)),
    Row("Perplexity", "cross_entropy", "perplexity", ()),
    Row("Precision", "classification", "precision", ()),
    Row("Recall", "classification", "recall", ()),
    Row("RMSE", "regression", "rmse", ()),
    Row("TopKAccuracy", "classification", "topkaccuracy", ("top_k_acc", "top_k_accuracy")),
    Row("Torch", "regression", "torch", ()),
)

__all__ = [
    "AUC",
    "ECE",
    "F1",
    "MAE",
    "MCC",
    "MSE",
    "MSLE",
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
    "FBeta",
    "Loss",
    "NegativeLogLikelihood",
    "PearsonCorrelation",
    "Perplexity",
    "Precision",
    "Recall",
    "TopKAccuracy",
    "Torch",
]
