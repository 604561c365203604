"""Input coercion and row rules for the cross-entropy family (internal).

Shape and option errors are raised at once (InvalidInputError / ConfigError). Row rules (labels
out of range, probabilities outside [0, 1]) are returned as boolean masks so that a streaming
caller can skip bad rows; :func:`first_error` is the error of the first one. Errors name the
arguments as the metric API does: ``y_true`` is ``labels`` and ``y_pred`` is ``preds``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric._tensors import as_numpy

from ._validation import class_index_rule

RowRule = tuple[np.ndarray, Callable[[int], InvalidInputError]]  # bad rows, error of a row


def to_numpy(values: Any, name: str) -> np.ndarray:
    """NumPy view of array-likes and tensors (`streammetric._tensors.as_numpy`), numeric."""
    array = values if type(values) is np.ndarray else as_numpy(values, name)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError.bad_argument(name, "must be numeric", array.dtype)
    return array


def row_error(
    argument: str, index: int, batch_shape: Sequence[int], rule: str, value: Any
) -> InvalidInputError:
    """`InvalidInputError.bad_row` of flat row ``index``: row ``3`` for flat batches,
    ``(0, 3)`` when rows have several dimensions."""
    row: int | tuple[int, ...] = index
    if len(batch_shape) > 1:
        row = tuple(int(i) for i in np.unravel_index(index, tuple(batch_shape)))
    return InvalidInputError.bad_row(argument, row, rule, value)


def first_error(
    rules: Sequence[RowRule], num_rows: int
) -> tuple[np.ndarray, InvalidInputError | None]:
    """OR of the rule masks, and the error of the first rule failing on the first bad row."""
    invalid = np.zeros(num_rows, dtype=bool)
    for mask, _ in rules:
        invalid |= mask
    if not invalid.any():
        return invalid, None
    row = int(np.argmax(invalid))
    error = next(make(row) for mask, make in rules if mask[row])
    return invalid, error


def first_bad_value(values: np.ndarray, bad: np.ndarray, row: int) -> Any:
    """The first offending value of ``row``."""
    return values[row][bad[row]][0]


def move_class_axis(array: np.ndarray, axis: int) -> np.ndarray:
    """Move the (validated) class axis last and make the array C-contiguous."""
    return np.ascontiguousarray(np.moveaxis(array, axis, -1))


class CategoricalInputs(NamedTuple):
    """A categorical batch flattened to rows: ``scores`` (N, C) in the compute dtype, and
    either ``labels`` (N,) class indices or ``targets`` (N, C)."""

    scores: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    batch_shape: tuple[int, ...]
    ignored: np.ndarray
    label_rule: RowRule
    source_dtype: np.dtype


def categorical_inputs(
    y_true: Any, y_pred: Any, *, axis: int, ignore_index: int | None, dtype_of: Any
) -> CategoricalInputs:
    """Coerce ``y_true``/``y_pred`` into rows; ``dtype_of(input dtype)`` picks the compute dtype."""
    pred = to_numpy(y_pred, "preds")
    true = to_numpy(y_true, "labels")
    if pred.ndim < 2:
        raise InvalidInputError(
            f"`preds` must have a class axis (at least 2 dimensions), got shape {pred.shape}",
            argument="preds",
        )
    if true.ndim >= 1 and pred.ndim >= 1 and true.shape[0] != pred.shape[0]:
        raise InvalidInputError(
            "`labels` and `preds` must have the same number of rows, got "
            f"{true.shape[0]} and {pred.shape[0]}"
        )
    if not -pred.ndim <= axis < pred.ndim:
        raise ConfigError(
            f"`axis` must be in [{-pred.ndim}, {pred.ndim - 1}] for `preds` of shape "
            f"{pred.shape}, got {axis}"
        )
    num_classes = pred.shape[axis]
    sparse_shape = tuple(np.delete(np.array(pred.shape), axis % pred.ndim).tolist())
    if true.shape == pred.shape:
        sparse = False
    elif true.shape == sparse_shape:
        sparse = True
    elif true.ndim == pred.ndim and true.shape[axis] == 1 and true.size == np.prod(sparse_shape):
        true, sparse = true.reshape(sparse_shape), True
    else:
        raise InvalidInputError(
            f"`labels` must have shape {sparse_shape} (class indices) or {pred.shape} "
            f"(one-hot/soft targets) for `preds` of shape {pred.shape}, got {true.shape}",
            argument="labels",
        )
    compute_dtype = np.dtype(dtype_of(pred.dtype))
    source_dtype = pred.dtype if pred.dtype.kind == "f" else np.dtype(np.float64)
    with np.errstate(invalid="ignore"):  # a signalling NaN is a NaN: refused or skipped, quietly
        scores = move_class_axis(pred, axis).astype(compute_dtype, copy=False)
    if num_classes < 1:
        raise InvalidInputError(
            f"`preds` must have at least one class, got shape {pred.shape}", argument="preds"
        )
    batch_shape = scores.shape[:-1]
    scores = scores.reshape(-1, num_classes)
    if sparse:
        labels, ignored, rule = _class_indices(
            true.reshape(-1), num_classes, ignore_index, batch_shape
        )
        return CategoricalInputs(scores, labels, None, batch_shape, ignored, rule, source_dtype)
    if ignore_index is not None:
        raise ConfigError(
            "`ignore_index` applies to class-index targets only, got one-hot/soft `labels` of "
            f"shape {true.shape}"
        )
    targets = move_class_axis(true, axis).reshape(-1, num_classes)
    targets = targets.astype(compute_dtype, copy=False)
    bad = ~((targets >= 0) & (targets <= 1))
    out_of_range = np.asarray(bad.any(axis=1))
    # a row of soft targets that are all 0 is no distribution (its loss would be 0): invalid
    bad_rows = out_of_range | ~np.asarray(targets.any(axis=1))

    def error(row: int) -> InvalidInputError:
        if out_of_range[row]:
            rule, value = "in [0, 1]", first_bad_value(targets, bad, row)
        else:
            rule, value = "that are not all 0 (a distribution over the classes)", targets[row]
        return row_error(
            "labels", row, batch_shape, f"must hold target probabilities {rule}", value
        )

    ignored = np.zeros(len(scores), dtype=bool)
    return CategoricalInputs(
        scores, None, targets, batch_shape, ignored, (bad_rows, error), source_dtype
    )


def _class_indices(
    raw: np.ndarray, num_classes: int, ignore_index: int | None, batch_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, RowRule]:
    """Integer labels (bad and ignored rows set to 0), the ignored mask and the label rule."""
    if raw.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(raw) & (raw == np.floor(raw))
    else:
        whole = np.ones(raw.shape, dtype=bool)
    ignored = (raw == ignore_index) if ignore_index is not None else np.zeros(raw.shape, bool)
    with np.errstate(invalid="ignore"):
        in_range = whole & (raw >= 0) & (raw < num_classes)
    bad = ~in_range & ~ignored
    labels = np.where(in_range & ~ignored, raw, 0).astype(np.intp)

    def error(row: int) -> InvalidInputError:
        extra = f" or {ignore_index} (ignored)" if ignore_index is not None else ""
        rule = f"{class_index_rule(num_classes)}{extra}"
        return row_error("labels", row, batch_shape, rule, raw[row])

    return labels, ignored, (bad, error)


def binary_inputs(
    y_true: Any, y_pred: Any, *, dtype_of: Any
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], RowRule, np.dtype]:
    """Rows (N, d) of binary targets and scores in the compute dtype, the per-sample shape,
    the target rule and the input dtype. ``(n,)`` is n samples of one output each, ``()`` one
    sample (as the other binary metrics take it)."""
    pred = to_numpy(y_pred, "preds")
    true = to_numpy(y_true, "labels")
    if true.size != pred.size or (true.ndim >= 1 and true.shape[0] != pred.shape[0]):
        raise InvalidInputError(
            f"`labels` and `preds` must have the same shape, got {true.shape} and {pred.shape}",
            argument="preds",  # (its column is the one named)
        )
    compute_dtype = np.dtype(dtype_of(pred.dtype))
    source_dtype = pred.dtype if pred.dtype.kind == "f" else np.dtype(np.float64)
    batch_shape = pred.shape[:-1] if pred.ndim >= 2 else pred.shape
    width = pred.shape[-1] if pred.ndim >= 2 else 1
    scores = np.ascontiguousarray(pred, dtype=compute_dtype).reshape(-1, width)
    targets = np.ascontiguousarray(true, dtype=compute_dtype).reshape(-1, width)
    bad = ~((targets >= 0) & (targets <= 1))

    def error(row: int) -> InvalidInputError:
        value = first_bad_value(targets, bad, row)
        return row_error("labels", row, batch_shape, "must hold binary targets in [0, 1]", value)

    return targets, scores, batch_shape, (np.asarray(bad.any(axis=1)), error), source_dtype


def class_weights(class_weight: Any, num_classes: int, dtype: np.dtype) -> np.ndarray | None:
    """Validated per-class weights in the compute dtype, or None."""
    if class_weight is None:
        return None
    weights = to_numpy(class_weight, "class_weight")
    if weights.shape != (num_classes,):
        raise InvalidInputError(
            f"`class_weight` must have one entry per class ({num_classes}), got shape "
            f"{weights.shape}",
            argument="class_weight",
        )
    good = np.isfinite(weights) & (weights >= 0)
    if not good.all():
        raise InvalidInputError.bad_argument(
            "class_weight", "must be finite and >= 0", weights[~good][0]
        )
    return weights.astype(dtype)


def check_label_smoothing(label_smoothing: float) -> float:
    value = float(label_smoothing)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"`label_smoothing` must be in [0, 1], got {label_smoothing!r}")
    return value


def sample_weights(sample_weight: Any, batch_shape: tuple[int, ...]) -> np.ndarray | None:
    """Flat float64 sample weights matching the per-sample shape (or its first axis)."""
    if sample_weight is None:
        return None
    weights = to_numpy(sample_weight, "sample_weight").astype(np.float64)
    if weights.shape != batch_shape:
        if weights.ndim != 1 or not batch_shape or weights.shape[0] != batch_shape[0]:
            raise InvalidInputError(
                f"`sample_weight` must have shape {batch_shape} or {batch_shape[:1]}, got "
                f"{weights.shape}",
                argument="sample_weight",
            )
        weights = np.broadcast_to(
            weights.reshape((-1,) + (1,) * (len(batch_shape) - 1)), batch_shape
        )
    flat = weights.reshape(-1)
    finite = np.isfinite(flat)
    if not finite.all():
        row = int(np.argmax(~finite))
        raise row_error("sample_weight", row, batch_shape, "must be finite", flat[row])
    return flat
