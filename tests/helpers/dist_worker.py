"""One rank of a real gloo process group on 127.0.0.1, for tests/test_distributed.py.

``python -m tests.helpers.dist_worker RANK WORLD PORT OUT``: joins the group, runs every
scenario below on its shard of the rows (`DATA`), syncs, and writes what each scenario's objects
hold afterwards (exact states as JSON, values as ``repr``) to ``OUT/rank{RANK}.json``. The test
compares every rank's file with one process over all the rows (`reference`).
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import numpy as np

import streammetric as sm
from streammetric.export import Tracker

ROWS, CLASSES = 23, 4
COMPOSITE = ["ce", "acc", {"metric": "top_k_accuracy", "top_k": 2}, "confusion_matrix"]


def data(rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    scores = rng.random((rows, CLASSES)) + 0.01
    probs = (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)
    return rng.integers(0, CLASSES, rows), probs


def shard(rank: int, world: int, empty_last: bool = False) -> np.ndarray:
    """Row numbers of ``rank``: every world-th row, or (``empty_last``) contiguous blocks with
    nothing left for the last rank of a group of two or more."""
    if not empty_last or world == 1:
        return np.arange(rank, ROWS, world)
    blocks = np.array_split(np.arange(ROWS), world - 1)
    return blocks[rank] if rank < world - 1 else np.arange(0)


def groups_of(rows: np.ndarray) -> list[str]:
    return ["abc"[i % 3] if i < 20 else "z" for i in rows.tolist()]  # "z": one rank's only


def state(metric: Any) -> dict[str, Any]:
    return {
        "state": json.dumps(metric.state_dict(), sort_keys=True),
        "get": repr(metric.get()),
        "get_global": repr(metric.get_global()),
    }


def tracker_view(tracker: Tracker) -> dict[str, Any]:
    snap = tracker.snapshot()
    groups = sorted(
        (list(g.key), g.rows_total, [repr(tuple(v)) for v in g.values]) for g in snap.groups
    )
    return {"groups": groups, "invalid_rows": snap.invalid_rows_total}


def update_windows(metric: Any, labels: np.ndarray, probs: np.ndarray, rows: np.ndarray) -> None:
    """Rows of the first half of the data in one window, reset_local, the rest in the next;
    batches of 3 rows."""
    for window in (rows[rows < ROWS // 2], rows[rows >= ROWS // 2]):
        for start in range(0, len(window), 3):
            batch = window[start : start + 3]
            metric.update(labels[batch], probs[batch])
        if window is not rows[rows >= ROWS // 2]:
            metric.reset_local()


def _error_of(call: Any) -> str:
    """What ``call()`` raised, as ``Type: message``, or "no error"."""
    try:
        call()
    except sm.StreamMetricError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def scenarios(rank: int, world: int) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    from streammetric.distributed import sync

    labels, probs = data()
    out: dict[str, Any] = {}
    mine = shard(rank, world)

    # a composite, two windows
    composite = sm.create(COMPOSITE)
    update_windows(composite, labels, probs, mine)
    own = state(composite)
    copied = sync(composite, copy=True)
    out["copy_leaves_own"] = state(composite) == own
    out["composite_copy"] = state(copied)
    sync(composite)
    out["composite"] = state(composite)
    try:
        sync(composite)  # again: it holds every rank's rows now
        out["second_sync"] = "no error"
    except sm.StreamMetricError as exc:
        out["second_sync"] = f"{type(exc).__name__}: {exc}"
    out["copy_after_sync"] = _error_of(lambda: sync(composite, copy=True))
    out["copy_of_copy"] = _error_of(lambda: sync(copied, copy=True))  # the copy is synced too
    try:
        composite.update(labels[:2], probs[:2], sample_ids=[0, 1])
        out["ids_after_sync"] = "no error"
    except sm.StreamMetricError as exc:
        out["ids_after_sync"] = f"{type(exc).__name__}: {exc}"

    # one metric, the last rank with no rows
    ce = sm.create("ce")
    for row in shard(rank, world, empty_last=True).tolist():
        ce.update(labels[row : row + 1], probs[row : row + 1])
    out["empty_rank"] = state(sync(ce))

    # a tracker with groups (one group only on the rank that has rows >= 20)
    tracker = Tracker(["ce", "acc"], group_by=["part"])
    for row, part in zip(mine.tolist(), groups_of(mine), strict=True):
        tracker.update(labels[row : row + 1], probs[row : row + 1], group=(part,))
    tracker.add_rows(invalid_rows=rank + 1)
    tracker.set_intervals(0.9, {(part,): {"ce": {"lower": 0.5, "upper": 0.7}} for part in "ab"})
    copied_view = sync(tracker, copy=True).snapshot()
    sync(tracker)
    bounds = [[repr(g.intervals) for g in v.groups] for v in (copied_view, tracker.snapshot())]
    out["tracker_copy_intervals"] = bounds[0] == bounds[1] and "0.7" in "".join(bounds[1])
    out["tracker"] = tracker_view(tracker)
    out["tracker_again"] = _error_of(lambda: sync(tracker, copy=True))
    capped = Tracker(["acc"], group_by=["part"], max_groups=2 + rank)  # other caps per rank
    capped.update(labels[:1], probs[:1], group=("a",))
    out["max_groups_mismatch"] = _error_of(lambda: sync(capped))

    # a bootstrap, rows identified by their number
    boot = sm.Bootstrap(sm.create(["acc", "ce"]), replicates=64, seed=3)
    boot.update(labels[mine], probs[mine], sample_ids=mine)
    sync(boot)
    out["bootstrap"] = repr(boot.get_interval())

    # DistributedSampler's padding: ids counted once, composite and torch tensors in
    padded_rows = 11  # not a multiple of 2 or 3: the sampler repeats ids
    p_labels, p_probs = data(padded_rows)
    dataset = TensorDataset(
        torch.arange(padded_rows), torch.from_numpy(p_labels), torch.from_numpy(p_probs)
    )
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=5)
    deduped, counted_twice = sm.create(["ce", "acc"]), sm.create(["ce", "acc"])
    seen = 0
    for ids, batch_labels, batch_probs in DataLoader(dataset, batch_size=2, sampler=sampler):
        deduped.update(batch_labels, batch_probs, sample_ids=ids)
        counted_twice.update(batch_labels, batch_probs)
        seen += len(ids)
    out["sampler_rows"] = seen
    out["sampler"] = state(sync(deduped))
    out["sampler_without_ids"] = state(sync(counted_twice))

    # a rank whose metric differs: every rank raises the same error, none waits
    odd = sm.create("acc" if rank == 0 else "ce")
    try:
        sync(odd)
        out["mismatch"] = "no error"
    except sm.StreamMetricError as exc:
        out["mismatch"] = type(exc).__name__
    dist.barrier()
    return out


def main() -> None:
    rank, world, port, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    try:
        result = scenarios(rank, world)
    finally:
        dist.destroy_process_group()
    with open(f"{folder}/rank{rank}.json", "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
