"""Fused hot loops in C (see _kernels.c for the contracts)."""

from typing import Any

def exact_sum(values: Any, /) -> tuple[int, int, int, int] | None: ...
def sparse_scan(
    pred: Any,
    labels: Any,
    picked: Any,
    ignore_index: int | None,
    tol_a: float,
    tol_b: float,
    margin: float,
    ranks: Any = None,
    /,
) -> tuple[int, int, int, int, list[int]] | None: ...
def class_ranks(pred: Any, labels: Any, ranks: Any, /) -> bool: ...
def isa() -> str: ...
def isas() -> list[str]: ...
def use_isa(name: str, /) -> None: ...
