"""An update is all or nothing: a batch that one metric of a composite (or one pair of a list
of arrays) refuses adds nothing anywhere, so an eval loop that catches the error and goes on
keeps the numbers of the batches it did count."""

from __future__ import annotations

import numpy as np
import pytest

import streammetric as sm


def batch(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, rows), rng.dirichlet(np.ones(3), rows)


def same(a: sm.EvalMetric, b: sm.EvalMetric) -> bool:
    return repr(a.get_global()) == repr(b.get_global()) and repr(a.state_dict()) == repr(
        b.state_dict()
    )


def bad_copy(preds: np.ndarray, row: int) -> np.ndarray:
    out = preds.copy()
    out[row, 0] = 1.5  # accuracy takes any scores; cross-entropy refuses it
    return out


def failing_metric(label: np.ndarray, pred: np.ndarray) -> float:
    if (np.asarray(pred) > 1).any():
        raise sm.InvalidInputError("`preds` must be at most 1 (test metric)", argument="preds")
    return float(np.asarray(label).size)


def f1() -> sm.EvalMetric:
    return sm.create("f1", class_type="multiclass")  # a fold of its own: undone


@pytest.mark.parametrize(
    "make",
    [
        lambda: sm.create(["acc", "ce"]),  # ce refuses after acc's terms: nothing folded
        lambda: sm.create(["ce", "acc"]),
        lambda: sm.create([sm.create("acc"), f1(), sm.create("ce")]),
        lambda: sm.create(["acc", sm.create(["top_k_acc", "ce"])]),  # a composite inside
    ],
    ids=["acc-ce", "ce-acc", "acc-f1-ce", "nested"],
)
def test_a_composite_adds_nothing_of_a_batch_one_metric_refuses(make):
    labels, preds = batch(100, 1)
    metric, reference = make(), make()
    metric.update(labels[:50], preds[:50])
    reference.update(labels[:50], preds[:50])
    with pytest.raises(sm.InvalidInputError):
        metric.update(labels[50:], bad_copy(preds[50:], 7))
    assert same(metric, reference)
    metric.update(labels[50:], preds[50:])  # the corrected batch
    reference.update(labels[50:], preds[50:])
    assert same(metric, reference)


def test_a_custom_metric_that_raises_takes_the_others_back():
    labels, preds = batch(40, 2)
    custom = sm.CustomMetric(failing_metric, name="n")
    metric = sm.create([sm.create("acc"), f1(), custom])
    with pytest.raises(sm.InvalidInputError, match="test metric"):
        metric.update(labels, bad_copy(preds, 3))
    assert all(child.num_inst == 0 for child in metric.metrics)


@pytest.mark.parametrize("name", ["ce", "acc", "f1"])
def test_a_list_of_pairs_is_all_or_nothing(name):
    labels, preds = batch(60, 3)
    options = {"class_type": "multiclass"} if name == "f1" else {}
    metric = sm.create(name, **options)
    pairs = ([labels[:30], labels[30:]], [preds[:30], bad_copy(preds[30:], 0)])
    if name != "ce":  # accuracy and F1 take any scores: a bad label instead
        bad_labels = labels[30:].copy()
        bad_labels[0] = -1
        pairs = ([labels[:30], bad_labels], [preds[:30], preds[30:]])
    with pytest.raises(sm.InvalidInputError):
        metric.update(*pairs)
    assert metric.num_inst == 0
    metric.update([labels[:30], labels[30:]], [preds[:30], preds[30:]])
    assert same(metric, sm.create(name, **options).update(labels, preds))


def test_a_refused_batch_with_ids_can_be_sent_again():
    labels, preds = batch(100, 4)
    metric = sm.create(["acc", "ce"])
    with pytest.raises(sm.InvalidInputError):
        metric.update(labels, bad_copy(preds, 57), sample_ids=np.arange(100))
    metric.update(labels, preds, sample_ids=np.arange(100))
    assert same(metric, sm.create(["acc", "ce"]).update(labels, preds, sample_ids=np.arange(100)))


def test_bootstraps_of_other_metrics_do_not_merge():
    labels, preds = batch(60, 5)
    one = sm.Bootstrap(sm.create("acc"), replicates=20)
    one.update(labels, preds)
    other = sm.Bootstrap(sm.create("top_k_acc", top_k=2), replicates=20)
    other.update(labels, preds)
    with pytest.raises(sm.StateError, match="belongs to another metric than this"):
        one.merge(other)
    with pytest.raises(sm.StateError, match="must be a Bootstrap"):
        one.merge(sm.create("acc"))  # type: ignore[arg-type]
    assert repr(one.get()) == repr(sm.create("acc").update(labels, preds).get())
