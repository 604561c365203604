"""Group key values as grouping compares them (no pyarrow: the exporters use it too)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["NAN", "canonical_key", "canonical_value"]

#: the one NaN every NaN group key holds (``nan != nan``, but a dict finds the same object)
NAN = float("nan")


def canonical_value(value: Any) -> Any:
    """A group key value as grouping compares it: every NaN is `NAN`, ``-0.0`` is ``0.0``.

    >>> canonical_value(float("nan")) is NAN, canonical_value(-0.0), canonical_value("x")
    (True, 0.0, 'x')
    """
    if type(value).__module__ == "numpy":  # a NumPy scalar
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return NAN
        if value == 0.0:
            return 0.0
    return value


def canonical_key(key: tuple[Any, ...] | list[Any]) -> tuple[Any, ...]:
    """`canonical_value` of every value: keys read back from JSON or another process merge
    with the keys of this one."""
    return tuple(canonical_value(value) for value in key)
