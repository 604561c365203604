"""``json.dumps(value, indent=2, allow_nan=True)``, the same text, in about half the time.

Python's encoder takes its pure-Python path whenever ``indent`` is set (its C encoder only
writes compact JSON), and a result with 100,000 groups then spends more time in JSON than in
evaluating. This writer knows only what results hold (dicts with string keys, lists, strings,
ints, floats, bools, None) and writes each with the C string escaper and ``float.__repr__``, as
the standard encoder does.

>>> value = {"rows": 2, "metrics": {"ce": 0.5, "nan": float("nan")}, "groups": [], "k": [1, "a"]}
>>> dumps_indented(value) == json.dumps(value, indent=2, allow_nan=True)
True
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps_indented"]

_string = json.encoder.encode_basestring_ascii


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2, allow_nan=True)`` of a result (see the module docstring)."""
    parts: list[str] = []
    _write(value, parts, "\n")
    return "".join(parts)


def _write(value: Any, parts: list[str], newline: str) -> None:
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
            _write(item, parts, inner)
        parts.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            parts.append("[]")
            return
        inner = newline + "  "
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(inner if not index else "," + inner)
            _write(item, parts, inner)
        parts.append(newline + "]")
    else:  # anything else (NumPy scalars, subclasses): as the standard encoder writes it
        parts.append(json.dumps(value, indent=2, allow_nan=True).replace("\n", newline))
