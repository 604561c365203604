"""Per-sample regression errors and Pearson sums (the math behind MAE, MSE, RMSE, pearsonr).

Labels and predictions of shape (n,) are read as (n, 1), as MXNet does; the per-sample error is
the mean over the remaining elements of a row.

>>> mean_absolute_error([2.5, 0.0, 2, 8], [3, -0.5, 2, 7])
0.5
>>> mean_squared_error([2.5, 0.0, 2, 8], [3, -0.5, 2, 7])
0.375
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from ._ce_core import log1p
from ._validation import as_float_rows, check_same_rows, first_bad_row

__all__ = [
    "mean_absolute_error",
    "mean_squared_error",
    "mean_squared_log_error",
    "pearson_correlation",
    "root_mean_squared_error",
]


def _regression_rows(labels: Any, preds: Any) -> tuple[np.ndarray, np.ndarray]:
    label = as_float_rows(labels, "labels")
    pred = as_float_rows(preds, "preds")
    check_same_rows(label, pred)
    if label.shape != pred.shape:
        raise InvalidInputError(
            f"`labels` and `preds` must have the same shape per row, got {label.shape} and {pred.shape}",
            argument="preds",  # (its column is the one named)
        )
    return label, pred


def _absolute_error_update(labels: Any, preds: Any) -> np.ndarray:
    """Per-sample mean absolute error, float64 (n,)."""
    label, pred = _regression_rows(labels, preds)
    return np.abs(label - pred).mean(axis=1)


def _squared_error_update(labels: Any, preds: Any) -> np.ndarray:
    """Per-sample mean squared error, float64 (n,)."""
    label, pred = _regression_rows(labels, preds)
    diff = label - pred
    return (diff * diff).mean(axis=1)


def _squared_log_error_update(labels: Any, preds: Any) -> np.ndarray:
    """Per-sample mean squared logarithmic error, float64 (n,); values must be > -1."""
    label, pred = _regression_rows(labels, preds)
    for values, name in ((label, "labels"), (pred, "preds")):
        below = values <= -1
        if below.any():
            row = first_bad_row(below)
            raise InvalidInputError.bad_row(name, row, "must be > -1", values[row])
    diff = log1p(label) - log1p(pred)  # log1p: the same bits on every CPU
    return (diff * diff).mean(axis=1)


def _squared_log_error_invalid(labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
    """The rows `_squared_log_error_update` refuses (a value not finite or <= -1), as a bool
    mask; None: none."""
    bad = np.zeros(len(labels), dtype=bool)
    for values in (labels, preds):
        array = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        bad |= ~(np.isfinite(array) & (array > -1)).all(axis=1)
    return bad if bad.any() else None


def _pearson_update(labels: Any, preds: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flattened (x, y) pairs for Pearson's r (every element is one observation, as MXNet)."""
    label, pred = _regression_rows(labels, preds)
    return label.ravel(), pred.ravel()


def _mean(values: np.ndarray, sample_weight: Any) -> float:
    from ..accumulate import ExactSum

    if sample_weight is None:
        return ExactSum.from_values(values).ratio(len(values))
    weight = np.asarray(sample_weight, dtype=np.float64)
    return ExactSum.from_values(values * weight).ratio(ExactSum.from_values(weight))


def mean_absolute_error(labels: Any, preds: Any, *, sample_weight: Any = None) -> float:
    """``sum_i w_i |y_i - p_i| / sum_i w_i`` (row means for multi-output rows)."""
    return _mean(_absolute_error_update(labels, preds), sample_weight)


def mean_squared_error(labels: Any, preds: Any, *, sample_weight: Any = None) -> float:
    """``sum_i w_i (y_i - p_i)^2 / sum_i w_i``."""
    return _mean(_squared_error_update(labels, preds), sample_weight)


def mean_squared_log_error(labels: Any, preds: Any, *, sample_weight: Any = None) -> float:
    """``sum_i w_i (log1p(y_i) - log1p(p_i))^2 / sum_i w_i``, as scikit-learn's.

    >>> mean_squared_log_error([3, 5, 2.5, 7], [2.5, 5, 4, 8])
    0.03973012298459379
    """
    return _mean(_squared_log_error_update(labels, preds), sample_weight)


def root_mean_squared_error(labels: Any, preds: Any, *, sample_weight: Any = None) -> float:
    """``sqrt(MSE)`` over all rows (not a mean of per-batch roots)."""
    return float(np.sqrt(mean_squared_error(labels, preds, sample_weight=sample_weight)))


_SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's constant for float64


def exact_products(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Four arrays whose element-wise sum is exactly ``x * y`` (Dekker's product, no FMA).

    Each value is split into a high and a low half of at most 26 significant bits, so every
    partial product is exact in float64. Summing them with an exact sum gives the exact
    ``sum(x * y)``: raw moments then lose nothing to per-sample rounding.

    >>> a = np.array([1e8 + 1e-3]); parts = exact_products(a, a)
    >>> from fractions import Fraction
    >>> sum(Fraction(float(p[0])) for p in parts) == Fraction(float(a[0])) ** 2
    True
    """
    x_hi, x_lo = _split(x)
    y_hi, y_lo = (x_hi, x_lo) if y is x else _split(y)
    return x_hi * y_hi, x_hi * y_lo, x_lo * y_hi, x_lo * y_lo


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaled = _SPLITTER * x
    hi = scaled - (scaled - x)
    return hi, x - hi


def pearson_from_sums(n: int, sx: int, sy: int, sxx: int, syy: int, sxy: int) -> float:
    """Pearson's r from exact integer sums (all in the same fixed-point unit), computed exactly.

    ``r = (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2))``: the three differences are exact
    integers, so there is no cancellation; r is within a few ulp of the true value.
    """
    cov = n * sxy - sx * sy
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    if n < 2 or var_x <= 0 or var_y <= 0:
        return float("nan")
    from fractions import Fraction

    r_squared = float(Fraction(cov * cov, var_x * var_y))
    return math.copysign(math.sqrt(min(r_squared, 1.0)), 1 if cov >= 0 else -1)


def pearson_correlation(labels: Any, preds: Any) -> float:
    """Pearson's correlation coefficient of all label/prediction elements.

    >>> round(pearson_correlation([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 2.0, 5.0]), 12)
    0.894427191
    """
    from ..accumulate import exact_sum_units

    x, y = _pearson_update(labels, preds)

    def moment(a: np.ndarray, b: np.ndarray) -> int:  # in units of 2**-2148
        return sum(exact_sum_units(part) for part in exact_products(a, b)) << 1074

    return pearson_from_sums(
        len(x), exact_sum_units(x), exact_sum_units(y), moment(x, x), moment(y, y), moment(x, y)
    )
