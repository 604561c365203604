"""The JSON text of a table of results in C (see _text.c for the contract)."""

from collections.abc import Callable
from typing import Any

def table(
    pieces: list[str],
    order: list[int],
    columns: list[Any],
    inner: str,
    newline: str,
    escape: Callable[[str], str],
    /,
) -> str | None: ...
def float_texts(values: Any, /) -> list[str] | None: ...
