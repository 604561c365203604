"""``json.dumps(value, indent=2, allow_nan=True)``, the same text, in about half the time.

Python's encoder takes its pure-Python path whenever ``indent`` is set (its C encoder only
writes compact JSON), and a result with 100,000 groups then spends more time in JSON than in
evaluating. This writer knows only what results hold (dicts with string keys, lists, strings,
ints, floats, bools, None) and writes each with the C string escaper and ``float.__repr__``, as
the standard encoder does.

A long list of dicts of one shape (a result's groups: the same keys at every level, numbers and
strings as leaves), and a `Table` (such a list given by column), are written by
`streammetric._text.table` (C): the text around the leaves from one template, each leaf's value
formatted from its column (a list, or a NumPy float64, int64 or bool array read in place),
floats with the digits of ``float.__repr__``: a result's 100,000 groups in ~18 ms, against
~160 ms for the column-by-column Python writer this replaced (docs/performance.md). A long
`Table` is written `TABLE_ROWS` items at a time, each piece when `dumps_parts` is asked for it:
a writer holds one piece at a time (1,000,000 groups are 180 MB of text), each written from the
cache it was made in.

>>> value = {"rows": 2, "metrics": {"ce": 0.5, "nan": float("nan")}, "groups": [], "k": [1, "a"]}
>>> dumps_indented(value) == json.dumps(value, indent=2, allow_nan=True)
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from . import _text

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Strings", "Table", "dumps_indented", "dumps_parts"]

_string = json.encoder.encode_basestring_ascii


#: the types `_write` puts on one line in a list (``number_lists="inline"``)
_NUMBERS = {int, float}

#: the standard encoder's C path, made once (``float.__repr__``, NaN, Infinity, ", " between)
_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # None: Python's json without C
_encode = _make_encoder and _make_encoder(None, None, _string, None, ": ", ", ", False, False, True)


def _compact(numbers: list[int | float]) -> str:
    """A list of numbers on one line, as ``json.dumps`` writes it."""
    if _encode:
        return "".join(_encode(numbers, 0))
    items = (int.__repr__(n) if type(n) is int else _float(n) for n in numbers)
    return "[" + ", ".join(items) + "]"


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


#: a `Table` longer than this is written this many items at a time (about 0.8 MB of text for a
#: result's group with two metrics)
TABLE_ROWS = 4096


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2, allow_nan=True)`` of a result (see the module docstring)."""
    return "".join(dumps_parts(value))


def dumps_parts(value: Any, *, number_lists: str = "indented") -> Iterator[str]:
    """`dumps_indented`'s text in pieces, each made when it is asked for, to write one after
    another without joining them: the text between tables in pieces of whole values, and each
    long `Table`'s text in pieces of whole items (so a list of numbers is never cut).
    ``number_lists="inline"``: a non-empty list of numbers only (a matrix's row) on one line,
    ``[1, 2.5, NaN]``, instead of one number a line.

    >>> print("".join(dumps_parts({"m": [[1, 2], [], [0.5, True]]}, number_lists="inline")))
    {
      "m": [
        [1, 2],
        [],
        [
          0.5,
          true
        ]
      ]
    }
    """
    parts: list[str | Iterator[str]] = []
    _write(value, parts, "\n", number_lists == "inline")
    run: list[str] = []
    for part in parts:
        if type(part) is str:
            run.append(part)
            continue
        if run:
            yield "".join(run)
            run = []
        yield from part
    if run:
        yield "".join(run)


def _write(value: Any, parts: list[Any], newline: str, inline: bool = False) -> None:
    """Append ``value``'s text to ``parts``: strs, and for a long `Table` an iterator of its
    pieces (``inline``: lists of numbers on one line, `dumps_parts`)."""
    kind = type(value)
    if kind is str:
        parts.append(_string(value))
    elif kind is float:
        parts.append(_float(value))
    elif kind is int:
        parts.append(int.__repr__(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is dict:
        if not value:
            parts.append("{}")
            return
        inner = newline + "  "
        parts.append("{")
        first = True
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"keys must be str, got {type(key).__name__}")
            parts.append(inner if first else "," + inner)
            first = False
            parts.append(_string(key))
            parts.append(": ")
            _write(item, parts, inner, inline)
        parts.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            parts.append("[]")
            return
        if inline and set(map(type, value)) <= _NUMBERS:
            parts.append(_compact(value))  # "[1, 2.5, NaN]"
            return
        inner = newline + "  "
        if len(value) >= _UNIFORM_MIN and type(value[0]) is dict:
            text = _uniform(value, newline)
            if text is not None:
                parts.append(text)
                return
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(inner if not index else "," + inner)
            _write(item, parts, inner, inline)
        parts.append(newline + "]")
    elif kind is Table:
        if len(value) > TABLE_ROWS:
            parts.append(_table_pieces(value, newline, inline))
            return
        text = _table_text(value.shape, value.columns, newline)
        if text is None:  # a leaf that is not a number or a string: as the dicts it stands for
            _write(value.records(), parts, newline, inline)
        else:
            parts.append(text)
    else:  # anything else (NumPy scalars, subclasses): as the standard encoder writes it
        parts.append(json.dumps(value, indent=2, allow_nan=True).replace("\n", newline))


#: lists at least this long are tried as `_uniform` (below it, the check costs more than it saves)
_UNIFORM_MIN = 64


class Strings:
    """A column of strings as Arrow lays them out, with no Python str each: ``offsets`` (int64,
    one more than the strings) into ``data`` (their UTF-8 bytes). `_text.table` writes strings
    of printable ASCII without quotes or backslashes straight from the bytes (any other: the
    column is written from `tolist`'s strs, escaped).

    >>> import numpy as np
    >>> Strings(np.array([0, 1, 3]), b"abc").tolist()
    ['a', 'bc']
    """

    __slots__ = ("data", "offsets")

    def __init__(self, offsets: np.ndarray, data: bytes) -> None:
        self.offsets, self.data = offsets, data

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def tolist(self) -> list[str]:
        data, ends = self.data, self.offsets.tolist()
        return [data[a:b].decode() for a, b in pairwise(ends)]


class Table:
    """A list of dicts of one shape, given by column: ``shape`` is the first dict with each
    leaf replaced by the index of its column in ``columns`` (each leaf's value in every item: a
    list, a 1-D NumPy array or `Strings`). `dumps_indented` writes it as the list of the dicts it
    stands for without building them; `records` builds them, of plain Python values.

    >>> table = Table({"key": {"model": 0}, "metrics": {"ce": 1}}, [["a", "b"], [0.5, 0.25]])
    >>> table.records()[1]
    {'key': {'model': 'b'}, 'metrics': {'ce': 0.25}}
    >>> dumps_indented([table]) == json.dumps([table.records()], indent=2)
    True
    """

    __slots__ = ("columns", "shape")

    def __init__(self, shape: dict[str, Any], columns: list[Any]) -> None:
        self.shape = shape
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def records(self) -> list[dict[str, Any]]:
        """The dicts, one per item."""
        build = _builder(self.shape)
        columns = [c.tolist() if hasattr(c, "tolist") else c for c in self.columns]  # NumPy: plain
        return [build(row) for row in zip(*columns, strict=True)] if columns else []


def _builder(shape: dict[str, Any]) -> Any:
    """A function of one item's leaf values (a tuple, column order) giving its dict."""
    parts = [(key, _builder(sub) if type(sub) is dict else sub) for key, sub in shape.items()]
    return lambda row: {key: part(row) if callable(part) else row[part] for key, part in parts}


def _uniform(items: list[Any] | tuple[Any, ...], newline: str) -> str | None:
    """The list's text (as `_write` gives it at indent ``newline``) when every item is a dict
    of the first one's shape (the same keys, in the same order, at every level) whose leaves
    are strings, ints, floats, bools or None; else None."""
    columns: list[list[Any]] = []
    shape = _shape(list(items), columns)
    return None if shape is None else _table_text(shape, columns, newline)


def _shape(dicts: list[Any], columns: list[list[Any]]) -> dict[str, Any] | None:
    """These dicts' common shape (leaves: their column's index, the column added to
    ``columns``), or None if they are not all of one shape."""
    if any(type(d) is not dict for d in dicts):
        return None
    keys = tuple(dicts[0])
    if list(map(tuple, dicts)).count(keys) != len(dicts):
        return None
    shape: dict[str, Any] = {}
    for key in keys:
        values = [d[key] for d in dicts]
        if type(values[0]) is dict:
            sub = _shape(values, columns)
            if sub is None:
                return None
            shape[key] = sub
        else:
            shape[key] = len(columns)
            columns.append(values)
    return shape


def _table_text(
    shape: dict[str, Any], columns: list[Any], newline: str, rows: tuple[int, int] | None = None
) -> str | None:
    """The text of the list of the dicts the columns stand for at indent ``newline`` (or, with
    ``rows`` (start, stop), its part from item start to item stop - 1: see `_text.table`), or
    None if a leaf is not a string, number, bool or None (exactly those types) or a column
    neither a list nor a float64, int64 or bool array (or a key not a string)."""
    pieces = [""]  # the text around the leaves: one more piece than leaves
    order: list[int] = []  # the leaves' columns, in text order
    inner = newline + "  "
    if not _template(shape, inner, pieces, order):
        return None
    span = () if rows is None else rows
    raw = [(c.offsets, c.data) if type(c) is Strings else c for c in columns]
    text = _text.table(pieces, order, raw, inner, newline, _string, *span)
    if text is None and any(type(c) is Strings for c in columns):  # strings to escape
        if rows is None:
            raw = [c.tolist() if type(c) is Strings else c for c in columns]
            return _text.table(pieces, order, raw, inner, newline, _string)
        part = [_rows(c, *rows) for c in columns]  # this part's strings only
        raw = [c.tolist() if type(c) is Strings else c for c in part]
        text = _text.table(pieces, order, raw, inner, newline, _string)
        return None if text is None else _reframed(text, rows, len(columns[0]), newline)
    return text


def _table_pieces(table: Table, newline: str, inline: bool) -> Iterator[str]:
    """A long `Table`'s text, `TABLE_ROWS` items a piece, each written when asked for (by C,
    or, for a part with a leaf C does not write, as its dicts)."""
    size = len(table)
    for start in range(0, size, TABLE_ROWS):
        rows = (start, min(size, start + TABLE_ROWS))
        text = _table_text(table.shape, table.columns, newline, rows)
        if text is None:  # as the dicts of its items
            part = Table(table.shape, [_rows(c, *rows) for c in table.columns])
            texts: list[Any] = []
            _write(part.records(), texts, newline, inline)
            text = _reframed("".join(texts), rows, size, newline)
        yield text


def _rows(column: Any, start: int, stop: int) -> Any:
    """Items start .. stop - 1 of a `Table`'s column."""
    if type(column) is Strings:
        return Strings(column.offsets[start : stop + 1], column.data)
    return column[start:stop]


def _reframed(text: str, rows: tuple[int, int], size: int, newline: str) -> str:
    """The whole-list text of items start .. stop - 1 (``rows``) as that part of the text of
    a list of ``size`` items (`_text.table`'s ``start`` and ``stop``)."""
    start, stop = rows
    if start:
        text = "," + text[1:]  # "[" -> "," (the part's first item is not the list's)
    if stop < size:
        text = text[: -len(newline) - 1]  # without newline "]"
    return text


def _template(shape: dict[str, Any], newline: str, pieces: list[str], order: list[int]) -> bool:
    """Add a dict's text around its leaves to ``pieces``, its leaves' columns to ``order``."""
    if not shape:
        pieces[-1] += "{}"
        return True
    inner = newline + "  "
    pieces[-1] += "{"
    for position, (key, sub) in enumerate(shape.items()):
        if type(key) is not str:
            return False
        pieces[-1] += ("," if position else "") + inner + _string(key) + ": "
        if type(sub) is dict:
            if not _template(sub, inner, pieces, order):
                return False
        else:
            order.append(sub)
            pieces.append("")
    pieces[-1] += newline + "}"
    return True
