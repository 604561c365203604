"""Per-row terms of a cross-entropy batch, the common result of every update (internal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .._exceptions import InvalidInputError

__all__ = ["LossTerms"]


class LossTerms(NamedTuple):
    """Per-row pieces of a loss, for exact streaming sums.

    ``mean = sum(w * numerator) / sum(w * denominator)`` for sample weights ``w``.

    Attributes:
        numerator: float64 (N,), per-row loss already multiplied by its class weight; 0 for
            ignored and invalid rows.
        denominator: float64 (N,), 1 or ``class_weight[target]``; 0 for ignored/invalid rows.
        invalid: bool (N,), rows that break a rule of the convention.
        invalid_reason: the error of the first invalid row (its fields: argument, row, rule,
            value), or None.
        diagnostics: counts for this batch, keys :data:`DIAGNOSTIC_KEYS` in that order.
        batch_shape: shape of the per-sample output (N is its product).
        ranks: int64 (N, 2), the true classes' two ranks among the scores (``_class_ranks``), when
            asked for and computed on the way; else None.
        row_diagnostics: the diagnostics row by row, int64 (N, len(DIAGNOSTIC_KEYS)), made on
            demand (a grouped state asks for them when ``diagnostics`` are not all 0).
    """

    numerator: np.ndarray
    denominator: np.ndarray
    invalid: np.ndarray
    invalid_reason: InvalidInputError | None
    diagnostics: dict[str, int]
    batch_shape: tuple[int, ...] = ()
    ranks: np.ndarray | None = None
    row_diagnostics: Callable[[], np.ndarray] | None = None
