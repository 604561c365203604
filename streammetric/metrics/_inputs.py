"""Turning what users pass to ``update`` into NumPy arrays, paired MXNet-style.

``update(labels, preds)`` takes arrays, or lists/tuples of arrays paired element-wise (as MXNet's
``update`` takes lists of NDArrays). A list of numbers, or of lists of numbers, is one array.

>>> [(l.tolist(), p.tolist(), w) for l, p, w in as_pairs([0, 1], [[0.3, 0.7], [0.1, 0.9]])]
[([0, 1], [[0.3, 0.7], [0.1, 0.9]], None)]
>>> len(list(as_pairs([np.zeros(2), np.ones(3)], [np.zeros(2), np.ones(3)])))
2
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from ..functional._validation import as_sample_weight

__all__ = ["as_pairs", "to_numpy"]


def to_numpy(value: Any, name: str = "input") -> np.ndarray:
    """Convert an array-like (numpy, list, pandas, pyarrow, MXNet NDArray, torch tensor) to numpy."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "asnumpy"):  # MXNet NDArray
        return np.asarray(value.asnumpy())
    if hasattr(value, "numpy") and hasattr(value, "detach"):  # torch.Tensor
        return np.asarray(value.detach().cpu().numpy())
    if hasattr(value, "numpy") and not hasattr(value, "to_numpy"):  # tf.Tensor and friends
        return np.asarray(value.numpy())
    module = type(value).__module__
    if module.startswith("pyarrow"):
        return _arrow_to_numpy(value, name)
    if hasattr(value, "to_numpy"):  # pandas Series / DataFrame
        return np.asarray(value.to_numpy())
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(
            f"`{name}` must be a rectangular array, got ragged {type(value).__name__}: {exc}",
            argument=name,
        ) from exc
    if array.dtype == object:
        raise InvalidInputError(
            f"`{name}` must be numeric, got an array of Python objects (ragged or mixed types)",
            argument=name,
        )
    return array


def _arrow_to_numpy(value: Any, name: str) -> np.ndarray:
    import pyarrow as pa

    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return np.column_stack([_arrow_to_numpy(c, name) for c in value.columns])
    if (
        pa.types.is_list(value.type)
        or pa.types.is_large_list(value.type)
        or pa.types.is_fixed_size_list(value.type)
    ):
        rows = value.to_pylist()
        return to_numpy(rows, name)
    if value.null_count:
        raise InvalidInputError(
            f"`{name}` must not contain nulls, got {value.null_count} null(s)", argument=name
        )
    return value.to_numpy(zero_copy_only=False)


def _is_array_object(item: Any) -> bool:
    return isinstance(item, np.ndarray) or (
        not isinstance(item, (list, tuple, int, float, bool, np.generic, str))
        and (hasattr(item, "__array__") or hasattr(item, "asnumpy") or hasattr(item, "numpy"))
    )


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)) and value and all(_is_array_object(v) for v in value):
        return list(value)
    return [value]


def as_pairs(
    labels: Any, preds: Any, sample_weight: Any = None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield ``(label, pred, weight)`` numpy triples, checking the pairing and row counts."""
    label_list, pred_list = _as_list(labels), _as_list(preds)
    if len(label_list) != len(pred_list):
        raise InvalidInputError(
            f"`labels` and `preds` must be lists of the same length, got {len(label_list)} and {len(pred_list)}"
        )
    weight_list: list[Any] = (
        [None] * len(label_list) if sample_weight is None else _as_list(sample_weight)
    )
    if len(weight_list) != len(label_list):
        raise InvalidInputError(
            f"`sample_weight` must pair with `labels`, got {len(weight_list)} arrays for {len(label_list)}",
            argument="sample_weight",
        )
    for label, pred, weight in zip(label_list, pred_list, weight_list, strict=True):
        label_array, pred_array = to_numpy(label, "labels"), to_numpy(pred, "preds")
        weight_array = (
            None
            if weight is None
            else as_sample_weight(
                to_numpy(weight, "sample_weight"), label_array.shape[0] if label_array.ndim else 1
            )
        )
        yield label_array, pred_array, weight_array
