"""Why values are inf or NaN (or not exact): the metrics' `ValueNote`s as a result's notes.

Each metric object says why its own value is what it is (``EvalMetric.value_notes``); this
module gathers the notes of the overall metric and of every group and condenses them: one line
per cause, however many groups share it, and one line for several metrics with the same cause
and wording (cross-entropy and perplexity, say).

>>> import numpy as np
>>> from streammetric.metrics import create
>>> def metrics(p):
...     return create(["ce", "perplexity"]).update(np.array([0]), np.array([[p, 1 - p]]))
>>> groups = {("a",): metrics(0.0), ("b",): metrics(0.5)}
>>> overall = create(["ce", "perplexity"])
>>> for metric in groups.values():
...     _ = overall.merge(metric)
>>> print(condense(overall, groups, ("model",))[0])  # doctest: +ELLIPSIS
cross-entropy and perplexity are inf in 1 of 2 groups (model=a) and overall: 1 row gives ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..metrics import EvalMetric
from ..metrics.base import ValueNote

__all__ = ["condense"]

#: groups named in a note at most; more are counted only
_NAMED_GROUPS = 3


def condense(
    overall: EvalMetric,
    groups: Mapping[tuple[Any, ...], EvalMetric] | None = None,
    by: Sequence[str] = (),
    num_groups: int | None = None,
) -> list[str]:
    """One line per (cause, wording) over ``overall`` and the ``groups`` (``None``: ungrouped).

    ``groups`` may hold only the groups that have notes, with ``num_groups`` saying how many
    groups there are (default: ``len(groups)``). The counts in a line are the overall
    metric's (every group is in it); a cause that only some groups have counts the sum over
    them.
    """
    total = len(groups or {}) if num_groups is None else num_groups
    found: dict[tuple[str, str], tuple[ValueNote | None, list[tuple[Any, ValueNote]]]] = {}
    for note in overall.value_notes():
        found.setdefault((note.metric, note.cause), (note, []))
    for key, metric in (groups or {}).items():
        for note in metric.value_notes():
            found.setdefault((note.metric, note.cause), (None, []))[1].append((key, note))

    lines: dict[tuple[Any, ...], list[str]] = {}  # wording -> metric names, in first-seen order
    for (name, _), (whole, parts) in found.items():
        note = whole if whole is not None else _summed([n for _, n in parts])
        where = _where(whole is not None, [k for k, _ in parts], total, by, groups)
        wording = (note.cause, note.outcome, where, note.reason, note.hint)
        lines.setdefault(wording, []).append(name)
    out = []
    for (_, outcome, where, reason, hint), names in lines.items():
        said = outcome[0] if len(names) == 1 else outcome[1]
        tail = f"; {hint}" if hint else ""
        out.append(f"{_and(names)} {said}{where}: {reason}{tail}")
    return out


def _summed(notes: list[ValueNote]) -> ValueNote:
    first = notes[0]
    if any(len(n.counts) != len(first.counts) for n in notes):
        return first
    counts = tuple(sum(column) for column in zip(*(n.counts for n in notes), strict=True))
    return dataclasses.replace(first, counts=counts)


def _where(
    overall: bool,
    keys: list[Any],
    total: int,
    by: Sequence[str],
    groups: Mapping[tuple[Any, ...], EvalMetric] | None,
) -> str:
    if groups is None:
        return ""
    if not keys:
        return " overall"
    if len(keys) == total:
        part = f"in all {total} groups" if total > 1 else "in the one group"
    else:
        names = [
            " ".join(f"{col}={value}" for col, value in zip(by, key, strict=True)) for key in keys
        ]
        shown = ", ".join(names[:_NAMED_GROUPS]) + (", ..." if len(names) > _NAMED_GROUPS else "")
        part = f"in {len(keys)} of {total} groups ({shown})"
    return f" {part} and overall" if overall else f" {part}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
