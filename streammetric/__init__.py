"""streammetric: exact, reproducible streaming evaluation metrics.

>>> import streammetric as sm
>>> m = sm.create("mae")
>>> m.update([1.0, 2.0], [1.5, 2.0]).get()
('mae', 0.25)

Every attribute but the exceptions is imported on first use (PEP 562): ``import streammetric``
loads neither NumPy nor pyarrow and leaves the process as it was (its garbage collector, the
environment). The ``streammetric`` command's own settings for its process are made by its entry
point, `streammetric.__main__`, before NumPy loads. A submodule is an attribute too
(``sm.export``, ``sm.engine``), imported when it is first named.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING

from . import _metric_table
from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError

if TYPE_CHECKING:
    from . import conventions, export, functional
    from . import metrics as metrics
    from ._metric_table import *  # noqa: F403  (the metric classes)
    from .accumulate import ExactSum
    from .conventions import Convention, get_convention, list_conventions, register_convention
    from .engine import Result, evaluate
    from .explain import Explanation, explain
    from .metrics import EvalMetric, alias, create, list_metrics, register
    from .metrics import np_metric as np
    from .metrics.bootstrap import Bootstrap

__version__ = "0.1.0"

#: the submodule of each attribute
_FROM = {
    "accumulate": ("ExactSum",),
    "conventions": ("Convention", "get_convention", "list_conventions", "register_convention"),
    "engine": ("Result", "evaluate"),
    "explain": ("Explanation", "explain"),
    "metrics.bootstrap": ("Bootstrap",),
    "metrics": (
        "EvalMetric",
        "alias",
        "create",
        "list_metrics",
        "register",
        *_metric_table.__all__,
    ),
}
#: attribute -> (submodule, its name there)
_LAZY = {name: (module, name) for module, names in _FROM.items() for name in names}
_LAZY["np"] = ("metrics", "np_metric")  # MXNet's mx.metric.np


def __getattr__(name: str) -> object:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    elif not name.startswith("_"):  # a submodule: sm.export, sm.engine, ...
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """This package's module type: ``streammetric.explain`` stays the function. Python sets a
    package's attribute to each submodule it loads, and the submodule ``streammetric.explain``
    (loaded when first used) has the function's name."""

    def __setattr__(self, name: str, value: object) -> None:
        if not (name == "explain" and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Bootstrap",
    "ConfigError",
    "Convention",
    "EvalMetric",
    "ExactSum",
    "Explanation",
    "InvalidInputError",
    "Result",
    "StateError",
    "StreamMetricError",
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
__all__ += _metric_table.__all__  # the metric classes
