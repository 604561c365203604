"""Group key values as grouping compares them (no pyarrow: the exporters use it too)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["NAN", "NULL_TEXT", "canonical_key", "canonical_value", "key_text"]

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


#: how tables, the report and notebooks show a null group key (JSON has null)
NULL_TEXT = "(null)"


def key_text(value: Any) -> str:
    r"""A group key value (as a JSON result holds it) as text and tables show it: every digit,
    a null as `NULL_TEXT`, so neither the string ``"None"`` nor ``""`` reads as a null; a
    character that is not printable (a line break, a tab, a right-to-left override) escaped as
    Python writes it, so that it neither breaks a table's row nor reorders what follows.

    >>> key_text(None), key_text("None"), key_text(""), key_text(0.1), key_text(3)
    ('(null)', 'None', '', '0.1', '3')
    >>> print(key_text("a\nb"), key_text("\u202eevil"), key_text("東京"))
    a\nb \u202eevil 東京
    """
    if value is None:
        return NULL_TEXT
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
