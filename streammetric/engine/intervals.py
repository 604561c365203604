"""Intervals of an evaluation: its state kept per (group, bucket) cell — the bucket is the last
element of every group key (`Evaluator` adds it) — turned into the `Result` without intervals
(the cells of each group added: the same bits as an evaluation without them) plus each group's
bootstrap interval (`streammetric.metrics.bootstrap`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._exceptions import ConfigError
from ..metrics.bootstrap import Resampling, intervals, replicate_values
from ..metrics.state import GroupedState
from .partial import CellIndex, Partial
from .result import Result, json_value

__all__ = ["collapse", "result_with_intervals"]


def collapse(cells: Partial) -> tuple[Partial, np.ndarray, np.ndarray]:
    """The partial of the groups (each group's cells added, exactly), each cell code's group
    code in it, and each cell code's bucket."""
    index = cells.index
    if isinstance(index, CellIndex):  # the groups have their own index already
        groups = Partial(cells._new, index=index.groups, template=cells.template)
        group_of, buckets = index.cells()
    else:
        groups = Partial(cells._new, template=cells.template)
        keys = cells.keys
        group_of = groups.codes_of([key[:-1] for key in keys])
        buckets = np.array([key[-1] for key in keys], dtype=np.int64)
    groups.merge(cells, mapping=group_of)
    return groups, group_of, buckets


def check_resampled(cells: Partial) -> None:
    """Every metric's state is a sum over rows (else it has no bucket states)."""
    for leaf, state in zip(cells.leaves, cells.states, strict=True):
        if not isinstance(state, GroupedState):
            raise ConfigError(
                f"{leaf.name}: its state is not a sum over rows, so it has no bootstrap intervals"
            )


def result_with_intervals(
    cells: Partial,
    notes: list[str],
    by: tuple[str, ...],
    resampling: Resampling,
    threads: int | None = None,
) -> Result:
    """The result of a run whose group keys end with the row's bucket, with intervals (the
    replicates on ``threads``, default the cores)."""
    check_resampled(cells)
    groups, group_of, buckets = collapse(cells)
    result = groups.result(notes, grouped=bool(by), by=by)
    present = _pad(cells._rows, len(group_of)) > 0
    states: list[GroupedState] = cells.states  # type: ignore[assignment]  # checked above
    overall = _bounds(cells, np.where(present, 0, -1), buckets, states, resampling, threads)
    per_group: dict[int, dict[str, Any]] = {}
    if by:
        per_group = _bounds(
            cells, np.where(present, group_of, -1), buckets, states, resampling, threads
        )
    result.set_intervals(
        resampling.header(),
        overall.get(0, {}),
        [per_group.get(code, {}) for code in groups.sorted_codes()] if by else None,
    )
    return result


def _pad(rows: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=rows.dtype)
    out[: min(size, rows.shape[0])] = rows[:size]
    return out


def _bounds(
    cells: Partial,
    cell_groups: np.ndarray,
    buckets: np.ndarray,
    states: list[GroupedState],
    resampling: Resampling,
    threads: int | None,
) -> dict[int, dict[str, Any]]:
    """Each group code's intervals, ``{name: {"lower": x, "upper": y}}`` in JSON form."""
    out: dict[int, dict[str, Any]] = {}
    for codes, values in replicate_values(
        cells.leaves, states, cell_groups, buckets, resampling, threads
    ):
        bounds = intervals(values, resampling.level)
        for i, code in enumerate(codes.tolist()):
            out[code] = {
                name: {"lower": json_value(lower[i]), "upper": json_value(upper[i])}
                for name, (lower, upper) in bounds.items()
            }
    return out
