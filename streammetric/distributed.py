"""Metrics over ``torch.distributed``: `sync` gives every rank the exact state of all ranks.

>>> import streammetric.distributed  # imports nothing of torch until `sync` is called

Each rank updates its own metric with its shard of the rows, then every rank calls
``sync(metric)`` (a collective: all ranks of the group, in the same order as their other
collectives). Afterwards every rank's metric holds the merged state of all ranks: the bits one
process would have after updating with all the rows, whatever the world size, the sharding and
the batching, and the same bits on every rank. A rank that saw no rows takes part as any other.

How: each rank's exact state (`EvalMetric.state_dict`: JSON of exact sums and counts, a few
hundred bytes per metric) travels to every rank with ``torch.distributed.all_gather_object``;
every rank then merges the states in rank order (exact sums: the order changes no bit). Two
collectives in all: the first carries each rank's ids (``update(..., sample_ids=)``, or none)
and whether it can take part (a rank that cannot, e.g. a different metric, makes every rank
raise the same error after it instead of leaving the others waiting), the second the states.

Scope. A metric has two windows, local (since ``reset_local()``) and past: they are merged
window by window, so after ``sync`` ``get()`` is every rank's local window merged and
``get_global()`` all rows of all ranks since ``reset()``. By default (``copy=False``) the
metric itself is changed: it then holds the other ranks' rows too, so it is read, not synced
again: a second ``sync`` of the same metric (before ``reset()``) raises, as it would count the
other ranks' rows twice. ``copy=True`` leaves the metric as it was (its own rows only: keep
updating it and sync again later) and returns a synced copy.

Duplicate ids. With ``update(..., sample_ids=ids)`` (e.g. the dataset indices a
``DistributedSampler`` yields, which pads the last round by repeating indices on other ranks),
an id counted on a lower rank is dropped on the higher ones: such a rank recomputes its state
from the rows it kept (`streammetric.metrics._ids`: each rank keeps its ids and rows, ``16 +
the row's bytes`` per row, until ``reset()`` or ``sync``). The result is the bits of one
process over the distinct ids. ``sync`` releases the ids and rows (with ``copy=False``).

Backends. gloo (CPU) and nccl: with nccl, ``all_gather_object`` sends the pickled objects
through the current CUDA device, so each rank must have called ``torch.cuda.set_device(rank's
GPU)`` first (as every nccl program does); the states themselves are small.

What `sync` takes: any `EvalMetric` (composites included), a `~streammetric.export.Tracker`
(every group of every rank, rows and invalid rows counted; the tracker's intervals stay as they
were), and a `~streammetric.Bootstrap` (its bucket states: value and intervals over all rows).
"""

from __future__ import annotations

import copy as _copy
from typing import Any, TypeVar

import numpy as np

from ._exceptions import ConfigError, StateError, StreamMetricError

__all__ = ["sync"]

T = TypeVar("T")


def sync(metric: T, group: Any = None, *, copy: bool = False) -> T:
    """Merge ``metric`` over every rank of ``group`` (the default process group when None):
    returns the metric (``copy=False``: changed in place) or a synced copy (``copy=True``),
    holding all ranks' rows, the same bits on every rank. A collective: every rank calls it.
    See the module's docstring for windows, duplicate ids and backends."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ConfigError(
            "sync needs an initialised torch.distributed process group "
            "(torch.distributed.init_process_group)"
        )
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    header: dict[str, Any]
    try:
        kind = _kind(metric)
        if getattr(metric, "_synced", False):  # a copy of it would count them twice too
            raise ConfigError(
                f"this {kind} holds every rank's rows since an earlier sync: reset() it first "
                "(sync the metric with copy=True to keep each rank's own rows and sync again)"
            )
        ids = _ids_of(metric) if kind == "metric" else None
        header = {"kind": kind, "ids": ids, "error": None}
    except StreamMetricError as exc:
        header = {"kind": None, "ids": None, "error": f"{type(exc).__name__}: {exc}"}
    headers = _gather(dist, header, world, group)
    _raise_first_error(headers)
    kinds = {h["kind"] for h in headers}
    if len(kinds) != 1:
        raise ConfigError(f"sync needs one kind of object on every rank, got {sorted(kinds)}")
    kind = headers[0]["kind"]
    try:
        payload: dict[str, Any] = {"state": _payload(metric, kind, headers, rank), "error": None}
    except StreamMetricError as exc:
        payload = {"state": None, "error": f"{type(exc).__name__}: {exc}"}
    payloads = _gather(dist, payload, world, group)
    _raise_first_error(payloads)
    states = [p["state"] for p in payloads]
    if kind == "metric":
        return _merge_metrics(metric, states, copy)
    if kind == "tracker":
        return _merge_trackers(metric, states, copy)
    return _merge_bootstraps(metric, states, copy)


def _gather(dist: Any, obj: Any, world: int, group: Any) -> list[Any]:
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj, group=group)
    return out


def _raise_first_error(items: list[dict[str, Any]]) -> None:
    for rank, item in enumerate(items):
        if item["error"] is not None:
            raise StateError(f"sync: rank {rank} cannot take part: {item['error']}")


def _kind(metric: Any) -> str:
    from .export._tracker import Tracker
    from .metrics.base import EvalMetric
    from .metrics.bootstrap import Bootstrap

    if isinstance(metric, EvalMetric):
        return "metric"
    if isinstance(metric, Tracker):
        return "tracker"
    if isinstance(metric, Bootstrap):
        return "bootstrap"
    raise ConfigError(
        f"sync takes an EvalMetric, a Tracker or a Bootstrap, got {type(metric).__name__}"
    )


# -- metrics -------------------------------------------------------------------------------------


def _ids_of(metric: Any) -> np.ndarray | None:
    with metric._lock:
        ledger = metric._id_rows
        return None if ledger is None else ledger.ids()


def _payload(metric: Any, kind: str, headers: list[dict[str, Any]], rank: int) -> Any:
    if kind == "metric":
        with metric._lock:
            dropped = _dropped_here(headers, rank)
            if dropped is None or not dropped.size:
                return metric.state_dict()
            return metric._recounted(dropped).state_dict()
    if kind == "tracker":
        return _tracker_payload(metric)
    return _bootstrap_payload(metric)


def _dropped_here(headers: list[dict[str, Any]], rank: int) -> np.ndarray | None:
    """This rank's ids that a lower rank counted too (the lower rank keeps the row)."""
    mine = headers[rank]["ids"]
    if mine is None or not mine.size:
        return None
    lower = [h["ids"] for h in headers[:rank] if h["ids"] is not None and h["ids"].size]
    if not lower:
        return None
    kinds = {ids.dtype.kind for ids in [mine, *lower]}
    if len(kinds) != 1:
        raise StateError("sample_ids must be of one kind on every rank (integers or strings)")
    return mine[np.isin(mine, np.concatenate(lower))]


def _merge_metrics(metric: Any, states: list[Any], copy: bool) -> Any:
    total = metric._fresh_copy()
    for rank, state in enumerate(states):
        part = metric._fresh_copy()
        try:
            part.load_state_dict(state)
        except StateError as exc:
            raise StateError(
                f"sync: rank {rank}'s metric does not merge with this one: {exc}"
            ) from None
        total.merge(part)
    if copy:
        total._synced = True
        return total
    with metric._lock:
        metric.load_state_dict(total.state_dict())
        metric._id_rows = None  # released: the rows are every rank's now
        metric._synced = True
    return metric


# -- trackers ------------------------------------------------------------------------------------


def _tracker_payload(tracker: Any) -> dict[str, Any]:
    with tracker.lock:
        groups = [
            [list(key), rows, [leaf.state_dict() for leaf in tracker._objects(key)]]
            for key, rows in tracker._rows.items()
        ]
        return {
            "config": [leaf.get_config() for leaf in tracker._templates],
            "group_by": list(tracker.group_by),
            "max_groups": tracker.max_groups,
            "groups": groups,
            "invalid_rows": tracker.invalid_rows_total,
            "last_update": tracker.last_update_timestamp,
        }


def _merge_trackers(tracker: Any, states: list[dict[str, Any]], copy: bool) -> Any:
    from ._keys import canonical_key
    from .export._tracker import Tracker, _fresh_copy

    first = states[0]
    for rank, state in enumerate(states):
        for field in ("config", "group_by", "max_groups"):  # every rank refuses alike
            if state[field] != first[field]:
                raise StateError(
                    f"sync: rank {rank}'s tracker has another `{field}` than rank 0's "
                    f"({state[field]!r} vs {first[field]!r})",
                    field=field,
                )
    keys = list(dict.fromkeys(canonical_key(key) for s in states for key, _, _ in s["groups"]))
    if len(keys) > tracker.max_groups:
        raise ConfigError(
            f"sync: the ranks' trackers have {len(keys)} groups together, more than "
            f"`max_groups` ({tracker.max_groups})"
        )
    out = tracker
    if copy:
        out = Tracker(
            list(tracker._templates),
            group_by=tracker.group_by,
            max_groups=tracker.max_groups,
            clock=tracker._clock,
        )
    with out.lock:
        out.reset()
        for state in states:
            for key, rows, leaf_states in state["groups"]:
                leaves = [_fresh_copy(t) for t in tracker._templates]
                for leaf, leaf_state in zip(leaves, leaf_states, strict=True):
                    leaf.load_state_dict(leaf_state)
                out.merge(leaves, group=tuple(key), rows=rows)
        out.invalid_rows_total = sum(s["invalid_rows"] for s in states)
        stamps = [s["last_update"] for s in states if s["last_update"] is not None]
        out.last_update_timestamp = max(stamps) if stamps else None
        out._synced = True
        if copy and hasattr(tracker, "_intervals"):  # set_intervals' bounds, as in place
            out._level, out._intervals = tracker._level, dict(tracker._intervals)
    return out


# -- bootstraps ----------------------------------------------------------------------------------


def _bootstrap_payload(boot: Any) -> dict[str, Any]:
    return {
        "config": boot.metric._state_config(),
        "resampling": boot.resampling,
        "states": boot.states,
        "num_rows": boot.num_rows,
    }


def _merge_bootstraps(boot: Any, states: list[dict[str, Any]], copy: bool) -> Any:
    mine = _bootstrap_payload(boot)
    for rank, state in enumerate(states):
        if state["config"] != mine["config"] or state["resampling"] != mine["resampling"]:
            raise StateError(
                f"sync: rank {rank}'s Bootstrap has another metric or resampling than this one"
            )
    total = _copy.copy(boot)
    total.reset()  # new bucket states, the metric shared (it is only read)
    for state in states:
        part = _copy.copy(boot)
        part.states, part.num_rows = state["states"], state["num_rows"]
        total.merge(part)
    if copy:
        total._synced = True
        return total
    boot.states, boot.num_rows = total.states, total.num_rows
    boot._synced = True
    return boot
