"""``update(..., sample_ids=ids)``: a row whose id was counted before is not counted again.

The state after updates with repeated ids must be the bits of the distinct rows alone; what the
metric keeps for `streammetric.distributed.sync` must be what its docstring says it costs.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import streammetric as sm
from streammetric import InvalidInputError

METRICS = ["ce", "acc", ["ce", "acc", "confusion_matrix"]]


def _data(rows: int = 12, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    scores = rng.random((rows, classes)) + 0.01
    return rng.integers(0, classes, rows), (scores / scores.sum(1, keepdims=True)).astype(
        np.float32
    )


def _bits(metric: Any) -> str:
    return json.dumps(metric.state_dict(), sort_keys=True) + repr(metric.get_global())


@pytest.mark.parametrize("spec", METRICS, ids=["ce", "acc", "composite"])
def test_repeated_ids_are_counted_once(spec: Any):
    labels, probs = _data()
    # ids 0..11; batches repeat ids within themselves and across batches
    batches = [[0, 1, 1, 2], [2, 3, 4, 5], [0, 6, 7, 8, 9], [10, 11, 11, 3]]
    rows_of = {i: i for i in range(12)}
    metric = sm.create(spec)
    for ids in batches:
        rows = [rows_of[i] for i in ids]
        metric.update(labels[rows], probs[rows], sample_ids=np.array(ids))
    assert _bits(metric) == _bits(sm.create(spec).update(labels, probs))
    counted_twice = sm.create(spec)
    for ids in batches:
        counted_twice.update(labels[ids], probs[ids])
    assert _bits(counted_twice) != _bits(metric)


def test_ids_stay_counted_across_windows_and_reset_forgets_them():
    labels, probs = _data()
    metric = sm.create("ce")
    metric.update(labels[:6], probs[:6], sample_ids=np.arange(6))
    metric.reset_local()
    metric.update(labels[4:], probs[4:], sample_ids=np.arange(4, 12))  # 4, 5 again
    want = sm.create("ce").update(labels[:6], probs[:6])
    want.reset_local()
    want.update(labels[6:], probs[6:])
    assert _bits(metric) == _bits(want)
    metric.reset()
    metric.update(labels[4:6], probs[4:6], sample_ids=[4, 5])
    assert metric.num_inst == 2


def test_string_ids_weights_and_tensors():
    torch = pytest.importorskip("torch")
    labels, probs = _data()
    weights = np.linspace(0.5, 2.0, 12)
    ids = np.array([f"img{i % 9}" for i in range(12)])  # 9 distinct: rows 9..11 repeat 0..2
    metric = sm.create("ce")
    metric.update(labels, probs, weights, sample_ids=ids)
    assert _bits(metric) == _bits(sm.create("ce").update(labels[:9], probs[:9], weights[:9]))
    tensors = sm.create("acc")
    ids_t = torch.tensor([0, 1, 2, 0, 1, 2, 6, 7, 8, 9, 10, 11])
    tensors.update(torch.from_numpy(labels), torch.from_numpy(probs), sample_ids=ids_t)
    keep = [0, 1, 2, 6, 7, 8, 9, 10, 11]
    assert _bits(tensors) == _bits(sm.create("acc").update(labels[keep], probs[keep]))


def test_rows_are_copied_and_cost_what_the_docstring_says():
    labels, probs = _data(rows=10, classes=3)
    metric = sm.create("acc")
    buffer = probs.copy()
    metric.update(labels, buffer, sample_ids=np.arange(10))
    buffer[:] = 0  # the caller reuses its buffer: the metric kept copies
    assert np.array_equal(metric._id_rows.local[0][2], probs)
    # 16 bytes per row (an int64 id in the index, and with the row) + the row's own bytes
    assert metric._id_rows.nbytes() == 10 * (16 + 8 + 3 * 4)


def test_a_rejected_batch_counts_no_id():
    labels, probs = _data()
    metric = sm.create("acc")
    bad = labels.copy()
    bad[3] = 7  # no such class
    with pytest.raises(InvalidInputError):
        metric.update(bad, probs, sample_ids=np.arange(12))
    metric.update(labels, probs, sample_ids=np.arange(12))
    assert metric.num_inst == 12


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m, y, p: m.update(y, p, sample_ids=np.arange(11)), "one id per row"),
        (lambda m, y, p: m.update(y, p, sample_ids=np.linspace(0, 1, 12)), "integers or strings"),
        (lambda m, y, p: m.update([y], [p], sample_ids=np.arange(12)) and None, None),
        (lambda m, y, p: m.update([y, y], [p, p], sample_ids=np.arange(12)), "not lists"),
    ],
    ids=["length", "floats", "one-pair-list", "pairs"],
)
def test_bad_ids_are_one_clear_line(call: Any, words: str | None):
    labels, probs = _data()
    metric = sm.create("acc")
    if words is None:  # a list of one pair is one pair: fine
        call(metric, labels, probs)
        assert metric.num_inst == 12
        return
    with pytest.raises(InvalidInputError, match=words) as info:
        call(metric, labels, probs)
    assert info.value.argument == "sample_ids" and "\n" not in str(info.value)


def test_ids_are_needed_in_every_update_or_none():
    labels, probs = _data()
    with_ids = sm.create("acc").update(labels, probs, sample_ids=np.arange(12))
    with pytest.raises(InvalidInputError, match="every update"):
        with_ids.update(labels, probs)
    with pytest.raises(InvalidInputError, match="one kind"):
        with_ids.update(labels, probs, sample_ids=[str(i) for i in range(12)])
    without = sm.create("acc").update(labels, probs)
    with pytest.raises(InvalidInputError, match="first update after reset"):
        without.update(labels, probs, sample_ids=np.arange(12))


@pytest.mark.parametrize("spec", METRICS, ids=["ce", "acc", "composite"])
def test_a_rank_drops_the_ids_a_lower_rank_counted_exactly(spec: Any):
    """What sync does on a rank whose ids a lower rank counted: its state without those rows,
    both windows, as if they had never come."""
    labels, probs = _data()
    metric = sm.create(spec)
    metric.update(labels[:5], probs[:5], sample_ids=np.arange(5))
    metric.reset_local()
    metric.update(labels[5:], probs[5:], sample_ids=np.arange(5, 12))
    dropped = np.array([1, 7, 11])
    want = sm.create(spec)
    first, second = [0, 2, 3, 4], [5, 6, 8, 9, 10]
    want.update(labels[first], probs[first])
    want.reset_local()
    want.update(labels[second], probs[second])
    assert _bits(metric._recounted(dropped)) == _bits(want)


@pytest.mark.parametrize("spec", METRICS, ids=["ce", "acc", "composite"])
@pytest.mark.parametrize("kind", [int, str])
def test_merged_metrics_count_an_id_once(spec: Any, kind: type):
    """Metrics that counted by id (e.g. per worker, with a sampler's padding) merge once per
    id: the bits of one metric that saw both streams, window by window; the merged metric
    skips those ids in later updates too, and a merge into a fresh metric keeps its ids."""
    labels, probs = _data(rows=40)
    ids = np.array([kind(i) for i in range(40)])

    def counted(*windows: range) -> Any:
        metric = sm.create(spec)
        for index, rows in enumerate(windows):
            if index:
                metric.reset_local()
            picked = list(rows)
            metric.update(labels[picked], probs[picked], sample_ids=ids[picked])
        return metric

    a = counted(range(0, 10), range(10, 25))
    b = counted(range(5, 20), range(20, 40))  # 5 .. 24 counted by `a` too
    # b's past (5 .. 19) is all a's; its local window adds 25 .. 39
    want = sm.create(spec)
    past, local = [*range(0, 10)], [*range(10, 40)]
    want.update(labels[past], probs[past])
    want.reset_local()
    want.update(labels[local], probs[local])
    merged = a.merge(b)
    assert _bits(merged) == _bits(want)
    before = _bits(merged)
    merged.update(labels[:3], probs[:3], sample_ids=ids[:3])  # counted: skipped
    assert _bits(merged) == before
    total = sm.create(spec)
    for part in (counted(range(0, 30)), counted(range(20, 40))):
        total.merge(part)
    assert _bits(total) == _bits(sm.create(spec).update(labels, probs))


def test_rows_without_ids_do_not_merge_with_rows_by_id():
    labels, probs = _data()
    with_ids = sm.create("acc").update(labels, probs, sample_ids=np.arange(12))
    without = sm.create("acc").update(labels, probs)
    for mine, theirs in ((without, with_ids), (with_ids, without)):
        with pytest.raises(sm.StateError, match="without sample_ids, the other by sample_ids"):
            mine.merge(theirs)
    strings = sm.create("acc").update(labels, probs, sample_ids=[str(i) for i in range(12)])
    with pytest.raises(sm.StateError, match="another kind"):
        with_ids.merge(strings)
    assert with_ids.merge(sm.create("acc")).num_inst == 12  # a fresh one: nothing to check


def test_sync_without_a_process_group_is_one_clear_line():
    pytest.importorskip("torch")
    from streammetric.distributed import sync

    with pytest.raises(sm.ConfigError, match="init_process_group"):
        sync(sm.create("acc"))
