"""`Result`: what an evaluation returns, the JSON contract of ``streammetric eval --format json``.

Its own module so that the engine (`local`, `dask`), the grouped state (`partial`) and the CLI
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .partial import Partial

__all__ = ["Result"]


@dataclass
class Result:
    """What `evaluate` returns: the JSON contract of ``streammetric eval --format json``."""

    rows: int
    invalid_rows: int
    metrics: dict[str, float]
    groups: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    partial: Partial | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "invalid_rows": self.invalid_rows,
            "metrics": self.metrics,
        }
        if self.groups is not None:
            out["groups"] = self.groups
        return out
