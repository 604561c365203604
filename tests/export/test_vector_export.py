"""Per-class values and matrices in the tracker and the exposition: one gauge family per metric,
a ``class`` label (``true_class``/``pred_class`` for a matrix), never a family per class."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import streammetric as sm
from streammetric.export import Tracker, make_registry
from tests.helpers.vector_metrics import VectorTestHitRate

pytestmark = pytest.mark.usefixtures("vector_metrics")

LABELS = np.array([0, 1, 1, 2, 2, 2])
PROBS = np.eye(3)[[0, 1, 0, 2, 2, 1]]  # argmax 0 1 0 2 2 1: class 0 1/1, 1 1/2, 2 2/3


def tracker(**options: Any) -> Tracker:
    metrics = ["acc", "vector_test_hit_rate", {"metric": "vector_test_confusion", "num_classes": 3}]
    return Tracker(metrics, **options)


def exposition(source: Any, **options: Any) -> str:
    return generate_latest(make_registry(source, run="r", **options)).decode()


def series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """``{sorted labels without run: value}`` of family ``name``."""
    return {
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "run")): s.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for s in family.samples
    }


def test_snapshot_readings_are_copies_of_the_arrays() -> None:
    t = Tracker(["vector_test_hit_rate", "acc"])
    assert t.array_names == {"class_hit_rate"}
    t.update(LABELS, PROBS)
    reading = t.snapshot().groups[0].values[0]
    assert reading.name == "class_hit_rate"
    np.testing.assert_array_equal(reading.global_value, [1.0, 0.5, 2 / 3])
    reading.global_value[0] = 7.0  # the snapshot's own copy
    assert t.snapshot().groups[0].values[0].global_value[0] == 1.0
    assert Tracker("mae").array_names == frozenset()


def test_one_family_with_a_class_label_and_one_with_true_and_pred_class() -> None:
    t = tracker()
    t.update(LABELS, PROBS)
    text = exposition(t)
    families = [f.name for f in text_string_to_metric_families(text)]
    assert families.count("streammetric_class_hit_rate") == 1
    assert families.count("streammetric_test_confusion") == 1
    rates = series(text, "streammetric_class_hit_rate")
    assert rates == {
        (("class", str(c)), ("scope", scope)): value
        for scope in ("global", "local")
        for c, value in enumerate([1.0, 0.5, 2 / 3])
    }
    cells = series(text, "streammetric_test_confusion")
    expected = np.zeros((3, 3))
    np.add.at(expected, (LABELS, PROBS.argmax(axis=1)), 1)
    assert len(cells) == 18
    for key, value in cells.items():
        labels = dict(key)
        assert set(labels) == {"true_class", "pred_class", "scope"}
        assert value == expected[int(labels["true_class"]), int(labels["pred_class"])]
    assert series(text, "streammetric_accuracy")  # numbers as before
    assert 'streammetric_class_hit_rate{class="0",run="r",scope="global"} 1.0' in text


def test_class_names_label_the_classes_and_nan_is_exported_as_nan() -> None:
    t = tracker(group_by=["model"])
    t.update(LABELS, PROBS, group="a")
    t.update(np.array([2]), np.eye(3)[[2]], group="b")  # classes 0 and 1 without rows: NaN
    text = exposition(t, class_names=["ant", "bee", "cat"])
    rates = series(text, "streammetric_class_hit_rate")
    b = {k: v for k, v in rates.items() if ("model", "b") in k and ("scope", "global") in k}
    assert {dict(k)["class"]: repr(v) for k, v in b.items()} == {
        "ant": "nan",
        "bee": "nan",
        "cat": "1.0",
    }
    assert 'class="ant",model="b",run="r",scope="global"} NaN' in text
    cells = series(text, "streammetric_test_confusion")
    key = (("model", "a"), ("pred_class", "ant"), ("scope", "global"), ("true_class", "bee"))
    assert cells[key] == 1.0  # one bee row predicted as ant
    key = (("model", "a"), ("pred_class", "cat"), ("scope", "global"), ("true_class", "cat"))
    assert cells[key] == 2.0


def test_local_and_global_values_per_class() -> None:
    t = Tracker("vector_test_hit_rate")
    t.update(LABELS, PROBS)
    t.reset_local()
    t.update(np.array([1]), np.eye(3)[[0]])  # one miss of class 1: local has classes 0..1
    rates = series(exposition(t), "streammetric_class_hit_rate")
    local = {dict(k)["class"]: v for k, v in rates.items() if ("scope", "local") in k}
    glob = {dict(k)["class"]: v for k, v in rates.items() if ("scope", "global") in k}
    assert glob == {"0": 1.0, "1": 1 / 3, "2": 2 / 3}
    assert math.isnan(local.pop("0")) and local == {"1": 0.0}


def test_a_group_column_cannot_take_the_class_labels() -> None:
    with pytest.raises(sm.ConfigError, match=r"group-by column 'class' would export as label"):
        make_registry(tracker(group_by=["class"]))
    with pytest.raises(sm.ConfigError, match=r"group-by column 'pred_class' would export"):
        make_registry(tracker(group_by=["pred_class"]))
    exposition(Tracker("mae", group_by=["class"]))  # numbers only: the label is free


class LateVector(VectorTestHitRate):
    """A number while empty, an array once it has rows."""

    def _compute(self, state: Any) -> Any:
        return super()._compute(state) if state["rows"].size else math.nan


def test_a_metric_that_becomes_an_array_later_is_checked_at_collection() -> None:
    t = Tracker([LateVector()], group_by=["class"])
    registry = make_registry(t)  # its fresh value is a number: the labels look free
    t.update(LABELS, PROBS, group="x")
    with pytest.raises(sm.ConfigError, match=r"exports label 'class', which a group column"):
        generate_latest(registry)


def test_a_window_where_the_metric_gives_a_number_has_no_series() -> None:
    t = Tracker([LateVector()], group_by=["model"])
    t.update(LABELS, PROBS, group="a")
    t.reset_local()  # the local window is empty: the metric gives NaN, not an array
    rates = series(exposition(t), "streammetric_class_hit_rate")
    assert {dict(k)["scope"] for k in rates} == {"global"}
    assert {dict(k)["class"]: v for k, v in rates.items()} == {"0": 1.0, "1": 0.5, "2": 2 / 3}
