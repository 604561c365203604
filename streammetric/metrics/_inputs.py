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
from .._tensors import as_numpy, is_array_object
from ..functional._validation import as_sample_weight

__all__ = ["as_pairs", "to_numpy"]


def to_numpy(value: Any, name: str = "input") -> np.ndarray:
    """Convert an array-like (NumPy, lists, pandas, pyarrow, torch / TensorFlow / JAX / CuPy /
    MXNet arrays, anything with ``__dlpack__``, ``__array__`` or ``__cuda_array_interface__``)
    to NumPy, once per batch: `streammetric._tensors.as_numpy`."""
    return as_numpy(value, name)


_is_array_object = is_array_object


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
