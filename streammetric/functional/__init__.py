"""Pure, vectorised metric math; the metric classes keep state and call these.

Each name is imported on first use, from its module's row in ``streammetric/functional/_table.py``
(written by ``scripts/gen_metric_table.py`` from the modules' ``__all__``).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from ._table import FUNCTIONS

if TYPE_CHECKING:
    from ._table import *  # noqa: F403  (the functions, for the type checkers)

__getattr__, __dir__ = lazy_attributes(__name__, FUNCTIONS, globals())

__all__ = sorted(FUNCTIONS)
