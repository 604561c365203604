"""Grouping: dense integer group ids and key tuples from a batch's group-by columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .columns import as_numpy


def _encode(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (no nulls) and the distinct Python value of each code."""
    import pyarrow.compute as pc  # only needed for grouping; lazy, it costs ~40 ms to import

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array, null_encoding="encode")
        return as_numpy(array.indices).astype(np.int64), array.dictionary
    # A dictionary read from a file may repeat values or leave indices null: normalise both.
    unique = pc.dictionary_encode(array.dictionary, null_encoding="encode")
    remap = np.append(as_numpy(unique.indices), len(unique.dictionary))
    indices = array.indices.fill_null(len(array.dictionary)).to_numpy(zero_copy_only=False)
    return remap[indices], [*unique.dictionary.to_pylist(), None]


def group_codes(
    groups: Mapping[str, pa.Array | pa.ChunkedArray],
) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Dense group ids per row (int64, ``0..g-1``) and the key tuple of each id.

    Keys hold Python values in the order of ``groups``; a null is ``None``.

    >>> import pyarrow as pa
    >>> codes, keys = group_codes({"split": pa.array(["a", "b", "a"]), "k": pa.array([1, 1, 1])})
    >>> codes.tolist(), keys
    ([0, 1, 0], [('a', 1), ('b', 1)])
    """
    columns = [_encode(array) for array in groups.values()]
    if not columns:
        return np.zeros(0, dtype=np.int64), []
    stacked = np.stack([codes for codes, _ in columns], axis=1)
    unique_rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
    values = [
        dictionary.to_pylist() if isinstance(dictionary, pa.Array) else dictionary
        for _, dictionary in columns
    ]
    keys = [tuple(values[col][code] for col, code in enumerate(row)) for row in unique_rows]
    return inverse.reshape(-1).astype(np.int64), keys
