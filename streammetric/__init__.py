"""streammetric: exact, reproducible streaming evaluation metrics.

>>> import streammetric as sm
>>> m = sm.create("mae")
>>> m.update([1.0, 2.0], [1.5, 2.0]).get()
('mae', 0.25)
"""

from . import functional
from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError
from .accumulate import ExactSum
from .metrics import (
    MAE,
    MSE,
    RMSE,
    CompositeEvalMetric,
    CustomMetric,
    EvalMetric,
    Loss,
    PearsonCorrelation,
    alias,
    create,
    list_metrics,
    register,
)
from .metrics import np_metric as np

__version__ = "0.1.0"

__all__ = [
    "MAE",
    "MSE",
    "RMSE",
    "CompositeEvalMetric",
    "ConfigError",
    "CustomMetric",
    "EvalMetric",
    "ExactSum",
    "InvalidInputError",
    "Loss",
    "PearsonCorrelation",
    "StateError",
    "StreamMetricError",
    "__version__",
    "alias",
    "create",
    "functional",
    "list_metrics",
    "np",
    "register",
]
