"""Grouping: dense integer group ids and key tuples from a batch's group-by columns.

A group key holds plain JSON values only, so that ``--format json`` prints it and a checkpoint
stores it and reads it back exactly (a resumed run then groups identically):

* integers, booleans and strings as they are; a null is ``None`` (its own group);
* floats as they are, except that every NaN is one group (the one `NAN` object, whatever the
  batch or payload bits) and ``-0.0`` is the group of ``0.0`` (they compare equal);
* dates, timestamps and times as ISO 8601 text with every digit the unit has
  (``2024-05-01``, ``2024-05-01T12:00:00.000000001``, ``2024-05-01T14:00:00+02:00`` with a time
  zone, ``12:30:00.250``);
* durations as ISO 8601 seconds (``PT90S``, ``-PT0.001S``), decimals as their exact text
  (``12.50``), binary values as base64 (``aGk=``).

Any other type (nested, intervals, ...) is refused up front by `check_group_type`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .._exceptions import InvalidInputError
from .._keys import NAN, canonical_key, canonical_value
from .columns import as_numpy

__all__ = [
    "NAN",
    "canonical_key",
    "canonical_value",
    "check_group_type",
    "group_codes",
]


def _groupable(arrow_type: pa.DataType) -> bool:
    types = pa.types
    if types.is_dictionary(arrow_type):
        return _groupable(arrow_type.value_type)
    return bool(
        types.is_integer(arrow_type)
        or types.is_floating(arrow_type)
        or types.is_boolean(arrow_type)
        or types.is_null(arrow_type)
        or types.is_string(arrow_type)
        or types.is_large_string(arrow_type)
        or types.is_binary(arrow_type)
        or types.is_large_binary(arrow_type)
        or types.is_fixed_size_binary(arrow_type)
        or types.is_date(arrow_type)
        or types.is_timestamp(arrow_type)
        or types.is_time(arrow_type)
        or types.is_duration(arrow_type)
        or types.is_decimal(arrow_type)
    )


def check_group_type(arrow_type: pa.DataType, name: str, path: str) -> None:
    """Raise `InvalidInputError` (one line) when a column of this type cannot be a group key."""
    if not _groupable(arrow_type):
        raise InvalidInputError(
            f"{path}: column `{name}`: type {arrow_type} cannot be grouped by (group-by columns "
            "must be integers, floats, booleans, strings, binary, dates, timestamps, times, "
            "durations or decimals)"
        )


_UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def _seconds_text(count: int, unit: str) -> str:
    """``count`` units as seconds with every digit of the unit, e.g. 1500 ms -> ``1.500``."""
    digits = _UNIT_DIGITS[unit]
    whole, fraction = divmod(abs(count), 10**digits)
    text = str(whole) if not digits else f"{whole}.{fraction:0{digits}d}"
    return ("-" if count < 0 else "") + text


def _time_text(count: int, unit: str) -> str:
    digits = _UNIT_DIGITS[unit]
    seconds, fraction = divmod(count, 10**digits)
    hours, rest = divmod(seconds, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return text if not digits else f"{text}.{fraction:0{digits}d}"


def _duration_text(count: int, unit: str) -> str:
    text = _seconds_text(count, unit)
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    return f"{sign}PT{text}S"


def _key_values(dictionary: pa.Array) -> list[Any]:
    """The group key value of each entry of a dictionary (distinct values) as plain JSON."""
    kind = dictionary.type
    types = pa.types
    if _plain(kind):  # their own canonical values, None for a null (no compute kernel needed)
        return dictionary.to_pylist()
    import pyarrow.compute as pc

    nulls = dictionary.is_null().to_pylist()
    values: list[Any]
    if types.is_timestamp(kind):
        if kind.tz is None:
            values = pc.strftime(dictionary, format="%Y-%m-%dT%H:%M:%S").to_pylist()
        else:
            texts = pc.strftime(dictionary, format="%Y-%m-%dT%H:%M:%S%z").to_pylist()
            values = [text and f"{text[:-2]}:{text[-2:]}" for text in texts]
    elif types.is_date(kind):
        values = [value and value.isoformat() for value in dictionary.to_pylist()]
    elif types.is_time(kind) or types.is_duration(kind):
        counts = dictionary.cast(pa.int64()).to_pylist()
        text = _time_text if types.is_time(kind) else _duration_text
        values = [None if count is None else text(count, kind.unit) for count in counts]
    elif types.is_decimal(kind):
        values = [value if value is None else str(value) for value in dictionary.to_pylist()]
    elif types.is_binary(kind) or types.is_large_binary(kind) or types.is_fixed_size_binary(kind):
        raw = dictionary.to_pylist()
        values = [value if value is None else base64.b64encode(value).decode() for value in raw]
    else:
        values = [canonical_value(value) for value in dictionary.to_pylist()]
    return [None if null else value for value, null in zip(values, nulls, strict=True)]


def _plain(kind: pa.DataType) -> bool:
    """Strings and integers: values that are their own group key (no NaN, no -0.0)."""
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
    )


def _encode(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (no nulls) and the distinct group key value of each code."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        # lazy: pyarrow.compute costs ~0.15 s to import and set up; strings read from Parquet
        # come dictionary-encoded and do without it
        import pyarrow.compute as pc

        array = pc.dictionary_encode(array, null_encoding="encode")
        codes = as_numpy(array.indices).astype(np.int64)
        values = _key_values(array.dictionary)
    else:
        # A dictionary read from a file may repeat values or leave indices null: a null index
        # is the last code.
        indices = array.indices
        if indices.null_count:
            valid = np.asarray(indices.is_valid())
            raw = indices.to_numpy(zero_copy_only=False)
            codes = np.where(valid, np.nan_to_num(raw), len(array.dictionary)).astype(np.int64)
        else:
            codes = as_numpy(indices)
        values = [*_key_values(array.dictionary), None]
    # Entries that are one group key (NaNs of other payloads, -0.0 and 0.0, repeated values):
    # one code each. Distinct strings or ints (the usual case) are distinct keys as they are.
    if _plain(array.dictionary.type) and len(set(values)) == len(values):
        return codes.astype(np.int64, copy=False), values
    first: dict[Any, int] = {}
    remap = np.array([first.setdefault(value, len(first)) for value in values], dtype=np.int64)
    return remap[codes] if len(first) < len(values) else codes.astype(np.int64), list(first)


def group_codes(
    groups: Mapping[str, pa.Array | pa.ChunkedArray],
) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Dense group ids per row (int64, ``0..g-1``) and the key tuple of each id.

    Keys hold plain JSON values (see the module docstring) in the order of ``groups``; a null
    is ``None``.

    >>> import pyarrow as pa
    >>> codes, keys = group_codes({"split": pa.array(["a", "b", "a"]), "k": pa.array([1, 1, 1])})
    >>> codes.tolist(), keys
    ([0, 1, 0], [('a', 1), ('b', 1)])
    """
    columns = [_encode(array) for array in groups.values()]
    if not columns:
        return np.zeros(0, dtype=np.int64), []
    if len(columns) == 1:  # the column's codes are the groups'
        codes, values = columns[0]
        return codes, [(value,) for value in values]
    sizes = [max(len(values), 1) for _, values in columns]
    if float(np.prod(sizes, dtype=np.float64)) >= 2**62:  # the codes' product overflows int64
        stacked = np.stack([codes for codes, _ in columns], axis=1)
        unique_rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
        keys = [tuple(columns[c][1][code] for c, code in enumerate(row)) for row in unique_rows]
        return inverse.reshape(-1).astype(np.int64), keys
    combined = columns[0][0].copy()
    for (codes, _), size in zip(columns[1:], sizes[1:], strict=True):
        combined *= size
        combined += codes
    space = int(np.prod(sizes, dtype=np.int64))
    if space <= max(1 << 22, 4 * len(combined)):  # a table over every combination: O(rows)
        seen = np.zeros(space, dtype=bool)
        seen[combined] = True
        present = np.flatnonzero(seen)
        table = np.empty(space, dtype=np.int64)
        table[present] = np.arange(len(present))
        inverse = table[combined]
    else:
        present, inverse = np.unique(combined, return_inverse=True)
    parts = []
    rest = present
    for size in reversed(sizes):
        rest, part = np.divmod(rest, size)
        parts.append(part)
    parts.reverse()
    keys = [
        tuple(columns[c][1][code] for c, code in enumerate(row))
        for row in zip(*(part.tolist() for part in parts), strict=True)
    ]
    return inverse.astype(np.int64), keys
