"""streammetric: exact, reproducible streaming evaluation metrics.

>>> import streammetric as sm
>>> m = sm.create("mae")
>>> m.update([1.0, 2.0], [1.5, 2.0]).get()
('mae', 0.25)
"""

from . import _process  # first: before NumPy loads; pauses the garbage collector

try:
    from typing import TYPE_CHECKING

    from . import conventions, functional, metrics
    from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError
    from .accumulate import ExactSum
    from .conventions import Convention, get_convention, list_conventions, register_convention
    from .engine import Result, evaluate
    from .explain import Explanation, explain
    from .metrics import (
        BinaryCrossEntropy,
        CompositeEvalMetric,
        CrossEntropy,
        CustomMetric,
        EvalMetric,
        NegativeLogLikelihood,
        Perplexity,
        alias,
        create,
        list_metrics,
        register,
    )
    from .metrics import np_metric as np
finally:
    _process.resume_gc()

if TYPE_CHECKING:
    from .metrics import (
        AUC,
        ECE,
        F1,
        MAE,
        MCC,
        MSE,
        PCC,
        RMSE,
        Accuracy,
        Brier,
        Caffe,
        ConfusionMatrix,
        FBeta,
        Loss,
        PearsonCorrelation,
        Precision,
        Recall,
        TopKAccuracy,
        Torch,
    )

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """What ``streammetric eval`` does not need is imported on first use: ``sm.export``
    (prometheus_client and the HTTP server cost ~0.1 s of start-up) and the metrics outside the
    cross-entropy family (see `streammetric.metrics`)."""
    if name == "export":
        import importlib

        return importlib.import_module(".export", __name__)
    if name in metrics._LAZY:
        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *metrics._LAZY})


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
    "ConfigError",
    "ConfusionMatrix",
    "Convention",
    "CrossEntropy",
    "CustomMetric",
    "EvalMetric",
    "ExactSum",
    "Explanation",
    "FBeta",
    "InvalidInputError",
    "Loss",
    "NegativeLogLikelihood",
    "PearsonCorrelation",
    "Perplexity",
    "Precision",
    "Recall",
    "Result",
    "StateError",
    "StreamMetricError",
    "TopKAccuracy",
    "Torch",
    "__version__",
    "alias",
    "conventions",
    "create",
    "evaluate",
    "explain",
    "export",
    "functional",
    "get_convention",
    "list_conventions",
    "list_metrics",
    "np",
    "register",
    "register_convention",
]
