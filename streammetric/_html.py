"""Compact HTML tables for notebooks (``_repr_html_`` of results and metric objects).

No dependencies (every layer may use it); every text is escaped with `html.escape`.

>>> print(html_table(["metric", "value"], [["a<b", 0.5]], caption="2 rows"))
<table><caption>2 rows</caption><thead><tr><th style="text-align:left">metric</th><th>value</th></tr></thead><tbody><tr><td style="text-align:left">a&lt;b</td><td>0.5</td></tr></tbody></table>
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_ROWS", "html_table", "value_text"]

#: rows a notebook table shows (then a last row says how many more there are)
MAX_ROWS = 20


def value_text(value: Any, digits: int = 6) -> str:
    """A value in a few characters: ints as they are, floats to ``digits`` significant digits,
    NaN and infinities by name, lists and arrays shortened.

    >>> value_text(0.123456789), value_text(float("nan")), value_text([1, 2.5]), value_text(None)
    ('0.123457', 'NaN', '[1, 2.5]', '')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}g}"
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value_text(value.tolist(), digits)
    if isinstance(value, dict):
        items = [f"{k}: {value_text(v, 4)}" for k, v in list(value.items())[:8]]
        return "{" + ", ".join(items) + (", …" if len(value) > 8 else "") + "}"
    if isinstance(value, list):
        items = [value_text(v, 4) for v in value[:8]]
        return "[" + ", ".join(items) + (", …" if len(value) > 8 else "") + "]"
    return str(value)


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None
) -> str:
    """A table: the first column left-aligned (names), the others as notebooks align them;
    at most `MAX_ROWS` rows."""
    left = ' style="text-align:left"'

    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(
            f"<{tag}{left if i == 0 else ''}>{html.escape(value_text(v))}</{tag}>"
            for i, v in enumerate(values)
        )

    body = [f"<tr>{cells('td', row)}</tr>" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        body.append(
            f'<tr><td colspan="{len(header)}"{left}>… {len(rows) - MAX_ROWS} more rows</td></tr>'
        )
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f"<table>{head}<thead><tr>{cells('th', header)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
