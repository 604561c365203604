"""Tracker: groups, counters, windows, merge, the cardinality cap and snapshots."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

import streammetric as sm
from streammetric.export import MetricReading, Tracker

from .helpers import DIAGNOSTICS, FakeCrossEntropy


def values(tracker: Tracker, group: object = ()) -> list[MetricReading]:
    key = group if isinstance(group, tuple) else (group,)
    snapshot = tracker.snapshot()
    return [v for g in snapshot.groups if g.key == key for v in g.values]


def test_a_tracker_takes_the_given_objects_state_and_keeps_its_own() -> None:
    m = sm.MAE().update([0.0], [2.0])
    tracker = Tracker([m])
    assert values(tracker) == [MetricReading("mae", 2.0, 2.0)]
    assert tracker.snapshot().rows_total == 0  # rows are counted only through the tracker
    m.update([0.0], [4.0])  # the tracker holds its own (grouped) state, not the object
    assert values(tracker) == [MetricReading("mae", 2.0, 2.0)]
    tracker.update([0.0], [4.0])
    assert values(tracker) == [MetricReading("mae", 3.0, 3.0)]
    (copy,) = tracker.metrics_for()
    assert copy is not m and copy.get() == m.get()


def test_a_view_of_objects_reads_them_live() -> None:
    from streammetric.export._tracker import MetricView

    m = sm.MAE()
    view = MetricView([m])
    m.update([0.0], [2.0])
    assert view.metrics_for() == [m]
    assert [v for g in view.snapshot().groups for v in g.values] == [MetricReading("mae", 2.0, 2.0)]


def test_update_counts_rows_and_keeps_groups_apart() -> None:
    ticks = iter(range(100, 200))
    tracker = Tracker(["mae", "rmse"], group_by=["model"], clock=lambda: float(next(ticks)))
    tracker.update(np.zeros(3), np.ones(3), group="a")
    tracker.update([[0.0, 1.0]], [[2.0, 1.0]], group=("b",))  # one row of two elements
    tracker.update([np.zeros(2), np.zeros(1)], [np.ones(2), np.ones(1)], group="b")  # MXNet lists
    snapshot = tracker.snapshot()
    assert [(g.key, g.rows_total) for g in snapshot.groups] == [(("a",), 3), (("b",), 4)]
    assert snapshot.rows_total == 7
    assert snapshot.last_update_timestamp == 102.0
    assert values(tracker, "a") == [MetricReading("mae", 1.0, 1.0), MetricReading("rmse", 1.0, 1.0)]


def test_reset_local_starts_a_window_and_keeps_counters() -> None:
    tracker = Tracker("mae", group_by=["model"])
    tracker.update([0.0, 0.0], [1.0, 3.0], group="a")
    tracker.reset_local()
    assert values(tracker, "a")[0].local_value != values(tracker, "a")[0].local_value  # NaN
    tracker.update([0.0], [5.0], group="a")
    assert values(tracker, "a") == [MetricReading("mae", 5.0, 3.0)]
    assert tracker.snapshot().groups[0].rows_total == 3


def test_reset_forgets_groups_and_counters() -> None:
    tracker = Tracker("mae", group_by=["model"])
    tracker.update([0.0], [1.0], group="a")
    tracker.add_rows(invalid_rows=2)
    tracker.reset()
    snapshot = tracker.snapshot()
    assert (snapshot.groups, snapshot.invalid_rows_total, snapshot.last_update_timestamp) == (
        (),
        0,
        None,
    )


def test_merge_partials_exactly() -> None:
    tracker = Tracker(["mae", "mse"], group_by=["model"])
    partials = [sm.MAE().update([0.0], [0.1]), sm.MSE().update([0.0], [0.1])]
    tracker.merge(partials, group="a", rows=1)
    tracker.merge(partials, group="a", rows=1)
    assert values(tracker, "a")[0].global_value == 0.1
    assert tracker.snapshot().rows_total == 2
    with pytest.raises(sm.InvalidInputError, match="one metric per tracked metric \\(2\\), got 1"):
        tracker.merge(partials[:1], group="a")


def test_engine_style_merge_of_a_grouped_state() -> None:
    from streammetric.engine import Partial
    from streammetric.metrics.specs import build_metrics

    tracker = Tracker("mae", group_by=["model"], max_groups=2)
    part = Partial(lambda: build_metrics(["mae"]))
    part.update(("a",), np.array([0.0, 0.0]), np.array([4.0, 2.0]), None)
    part.update(("b",), np.array([1.0]), np.array([1.0]), None)
    part.invalid_rows = 1
    tracker.merge_partial(part)
    snapshot = tracker.snapshot()
    assert (snapshot.rows_total, snapshot.invalid_rows_total) == (3, 1)
    assert values(tracker, ("a",)) == [MetricReading("mae", 3.0, 3.0)]
    other = Partial(lambda: build_metrics(["mae"]))
    other.update(("c",), np.array([0.0]), np.array([1.0]), None)
    with pytest.raises(sm.ConfigError, match="caps the number of groups at 2"):
        tracker.merge_partial(other)
    assert tracker.snapshot().rows_total == 3  # nothing of the refused state was merged


def test_cardinality_cap_names_the_cap() -> None:
    tracker = Tracker("mae", group_by=["model"], max_groups=2)
    tracker.update([0.0], [1.0], group="a")
    tracker.update([0.0], [1.0], group="b")
    tracker.update([0.0], [1.0], group="a")  # known groups are fine
    message = "`max_groups` caps the number of groups at 2, got a new group ('c',) beyond it"
    with pytest.raises(sm.ConfigError, match=re.escape(message)):
        tracker.update([0.0], [1.0], group="c")
    assert tracker.groups == [("a",), ("b",)]
    with pytest.raises(sm.ConfigError, match="`max_groups` must be an int >= 1, got 0"):
        Tracker("mae", max_groups=0)


def test_keys_with_the_same_labels_are_refused() -> None:
    tracker = Tracker("mae", group_by=["model"])
    tracker.update([0.0], [1.0], group=1)
    with pytest.raises(sm.ConfigError, match=re.escape("group keys (1,) and ('1',) give the same")):
        tracker.update([0.0], [1.0], group="1")
    tracker.update([0.0], [1.0], group="")  # all empty: no gauges, so no series of their own
    tracker.update([0.0], [1.0], group=None)
    assert sorted(g.rows_total for g in tracker.snapshot().groups) == [1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group": ("a", "b")}, "one value per group-by column (model), got ('a', 'b')"),
        ({"group": "a", "rows": -1}, "`rows` must be an int >= 0, got -1"),
        ({"group": "a", "rows": 1.5}, "`rows` must be an int >= 0, got 1.5"),
    ],
)
def test_bad_update_arguments(kwargs: dict[str, Any], message: str) -> None:
    tracker = Tracker("mae", group_by=["model"])
    with pytest.raises(sm.InvalidInputError, match=re.escape(message)):
        tracker.update([0.0], [1.0], **kwargs)
    assert tracker.groups == []


def test_numpy_group_values_are_plain_keys() -> None:
    tracker = Tracker("mae", group_by=["epoch"])
    tracker.update([0.0], [1.0], group=np.int64(3))
    tracker.update([0.0], [1.0], group=3)
    assert tracker.groups == [(3,)]
    assert tracker.snapshot().groups[0].label_values == ("3",)


def test_diagnostics_are_read_from_metrics_and_composites() -> None:
    tracker = Tracker([sm.create(["mae", FakeCrossEntropy()])])
    tracker.update([0.5], [0.5])
    (group,) = tracker.snapshot().groups
    assert group.diagnostics == (("cross-entropy", tuple(DIAGNOSTICS.items())),)
    assert [v.name for v in group.values] == ["mae", "cross-entropy"]
    assert math.isclose(group.values[1].global_value, -math.log(0.5))


def test_empty_metric_list_is_refused() -> None:
    with pytest.raises(sm.ConfigError, match="at least one metric, got an empty list"):
        Tracker([])


SNAPSHOT_METRICS = [
    "ce",
    {"metric": "ce", "convention": "keras"},
    "perplexity",
    "acc",
    {"metric": "f1", "average": "macro", "class_type": "multiclass"},
    {"metric": "precision", "average": None, "num_classes": 4, "class_type": "multiclass"},
    {"metric": "confusion_matrix", "num_classes": 4},
    "loss",  # no row terms: one object per group in the grouped state
]


def _snapshot_by_objects(tracker: Tracker) -> list[Any]:
    """What a snapshot held when it read each group's metric objects (`metrics_for`)."""
    from streammetric.export._tracker import _read_group

    return [
        _read_group(key, tracker._rows[key], tracker.metrics_for(key)) for key in tracker.groups
    ]


def _comparable(groups: Any) -> list[Any]:
    def value(v: Any) -> Any:
        return ("array", repr(np.asarray(v).tolist())) if isinstance(v, np.ndarray) else repr(v)

    return [
        (
            g.key,
            g.label_values,
            g.rows_total,
            [(r.name, value(r.local_value), value(r.global_value)) for r in g.values],
            g.diagnostics,
        )
        for g in groups
    ]


@pytest.mark.parametrize("weighted", [False, True])
def test_a_snapshot_reads_every_group_by_column_as_its_objects_would(weighted: bool) -> None:
    rng = np.random.default_rng(3)
    tracker = Tracker(SNAPSHOT_METRICS, group_by=["g"], max_groups=500)

    def feed(groups: int, rows: int) -> None:
        labels = rng.integers(0, 4, rows)
        probs = rng.dirichlet(np.ones(4), rows)
        probs[::17] = 0.0  # zero rows: inf terms and diagnostics
        weights = rng.random(rows) * 2 if weighted else None
        keys = rng.integers(0, groups, rows)
        for key in np.unique(keys).tolist():
            rows_of = keys == key
            w = None if weights is None else weights[rows_of]
            tracker.update(labels[rows_of], probs[rows_of], w, group=f"k{key:03d}")

    feed(300, 3000)
    tracker.reset_local()
    feed(120, 500)  # a local window holding some of the groups only
    snapshot = tracker.snapshot()
    assert len(snapshot.groups) == 300
    assert any(d for g in snapshot.groups for _, counts in g.diagnostics for _, d in counts)
    assert _comparable(snapshot.groups) == _comparable(_snapshot_by_objects(tracker))


def test_a_snapshot_makes_no_metric_object_per_group(monkeypatch) -> None:
    tracker = Tracker(["ce", "acc", "perplexity"], group_by=["g"], max_groups=1000)
    rng = np.random.default_rng(5)
    for key in range(400):
        tracker.update(rng.integers(0, 3, 4), rng.dirichlet(np.ones(3), 4), group=key)
    copies = 0
    real_copy = sm.EvalMetric.copy

    def counted(self: Any) -> Any:
        nonlocal copies
        copies += 1
        return real_copy(self)

    monkeypatch.setattr(sm.EvalMetric, "copy", counted)
    assert len(tracker.snapshot().groups) == 400
    assert copies < 20  # a fresh composite or two, not one per group


def test_a_metric_with_no_diagnostic_kinds_reads_as_none_per_group() -> None:
    class Quiet(FakeCrossEntropy):
        def diagnostics(self) -> dict[str, int]:
            return {}

    tracker = Tracker([Quiet(), "mae"], group_by=["g"])
    for key in ("a", "b"):
        tracker.update([1.0], [0.5], group=key)
    groups = tracker.snapshot().groups
    assert [g.diagnostics for g in groups] == [(("cross-entropy", ()),)] * 2
