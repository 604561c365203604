"""Shared input checks for the functional core: one line naming argument, rule and value."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from .._tensors import ragged_error

__all__ = [
    "as_class_indices",
    "as_float_rows",
    "as_sample_weight",
    "check_same_rows",
    "class_index_rule",
    "first_bad_row",
    "row_values",
]


def first_bad_row(bad: np.ndarray) -> int:
    """Index of the first row with any True in ``bad`` (rows on axis 0)."""
    rows = bad.reshape(bad.shape[0], -1).any(axis=1) if bad.ndim > 1 else bad
    return int(np.argmax(rows))


def row_values(array: np.ndarray, row: int) -> np.ndarray:
    """The values of ``row`` (rows on axis 0), flattened."""
    return array.reshape(array.shape[0], -1)[row]


def as_float_rows(values: Any, name: str) -> np.ndarray:
    """Finite float64 array of shape (n, d); (n,) becomes (n, 1) as in MXNet."""
    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged nested lists: the first row whose length differs
        raise ragged_error(values, name, exc) from None
    if array.dtype.kind not in "biuf":
        raise InvalidInputError.bad_argument(name, "must be numeric", array.dtype)
    array = array.astype(np.float64, copy=False)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1)
    elif array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    finite = np.isfinite(array)
    if not finite.all():
        row = first_bad_row(~finite)
        raise InvalidInputError.bad_row(name, row, "must be finite", array[row])
    return array


def check_same_rows(label: np.ndarray, pred: np.ndarray) -> None:
    if label.shape[0] != pred.shape[0]:
        raise InvalidInputError(
            f"`labels` and `preds` must have the same number of rows, got {label.shape[0]} and {pred.shape[0]}"
        )


def class_index_rule(num_classes: int | None) -> str:
    """The rule every label (or predicted class) range check words, with K = ``num_classes``:
    ``"must be a class index in [0, K)"`` (half-open, as Python's ``range(K)``), or ``"must be
    a class index >= 0"`` when K is not known.

    >>> class_index_rule(3)
    'must be a class index in [0, 3)'
    """
    if num_classes is None:
        return "must be a class index >= 0"
    return f"must be a class index in [0, {num_classes})"


def as_class_indices(
    values: Any, name: str = "labels", num_classes: int | None = None
) -> np.ndarray:
    """Integer class indices (int64); floats must be integral; range-checked when k is known."""
    array = np.asarray(values)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind == "f":
        finite = np.isfinite(array) & (np.abs(array) < 2.0**63)  # (beyond: not an int64)
        integral = finite & (array == np.floor(np.where(finite, array, 0)))
        if not integral.all():
            row = first_bad_row(~integral)
            raise InvalidInputError.bad_row(
                name, row, "must be integer class indices", row_values(array, row)
            )
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise InvalidInputError.bad_argument(name, "must be integer class indices", array.dtype)
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        row = first_bad_row(array > np.iinfo(np.int64).max)  # named before it would wrap
        rule = class_index_rule(num_classes)
        raise InvalidInputError.bad_row(name, row, rule, row_values(array, row))
    array = array.astype(np.int64, copy=False)
    bad = array < 0 if num_classes is None else (array < 0) | (array >= num_classes)
    if bad.any():
        row = first_bad_row(bad)
        raise InvalidInputError.bad_row(
            name, row, class_index_rule(num_classes), row_values(array, row)
        )
    return array


def as_sample_weight(sample_weight: Any, rows: int) -> np.ndarray | None:
    """Finite, non-negative float64 weights of shape (rows,), one per row (``None`` stays ``None``)."""
    if sample_weight is None:
        return None
    try:
        weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):  # strings, objects
        kind = getattr(np.asarray(sample_weight), "dtype", type(sample_weight))
        raise InvalidInputError.bad_argument("sample_weight", "must be numbers", kind) from None
    if weight.shape[0] != rows:
        raise InvalidInputError(
            f"`sample_weight` must have one value per row of `labels`, got {weight.shape[0]} for {rows} rows",
            argument="sample_weight",
        )
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError.bad_row(
            "sample_weight", row, "must be finite and >= 0", weight[row]
        )
    return weight
