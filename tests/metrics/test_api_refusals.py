"""The Python API's bad input, each one `InvalidInputError`/`ConfigError` with its fields (not
a NumPy or Python error from inside): weights that are not numbers, weights a metric does not
take, names `update_dict` lacks, a custom metric's odd return, Bootstrap options, a float label
beyond int64, and ids after a `load_state_dict`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import streammetric as sm

LABELS = np.array([0, 1, 2, 1])
PROBS = np.full((4, 3), 1 / 3)


def test_weights_that_are_not_numbers():
    with pytest.raises(sm.InvalidInputError, match="must be numbers") as raised:
        sm.create("acc").update(LABELS, PROBS, sample_weight=["a", "b", "c", "d"])
    assert raised.value.argument == "sample_weight"


def test_pearson_refuses_weights_in_its_error_type():
    with pytest.raises(sm.InvalidInputError, match="not taken by PearsonCorrelation") as raised:
        sm.create("pearsonr").update([1.0, 2.0], [1.5, 2.5], sample_weight=[1.0, 1.0])
    assert raised.value.argument == "sample_weight"


def test_update_dict_names_what_it_lacks():
    metric = sm.create("acc", label_names=["lab"], output_names=["out"])
    with pytest.raises(sm.InvalidInputError, match=r"names \['lab'\]") as raised:
        metric.update_dict({"x": LABELS}, {"out": PROBS})
    assert raised.value.argument == "labels" and raised.value.value == ["x"]
    with pytest.raises(sm.InvalidInputError, match=r"names \['out'\]"):
        metric.update_dict({"lab": LABELS}, {"y": PROBS})
    assert metric.update_dict({"lab": LABELS}, {"out": PROBS}).num_inst == 4


@pytest.mark.parametrize("returned", [None, (1.0,), np.array([1.0, 2.0]), (1.0, True), "x"])
def test_a_custom_metric_returning_no_number(returned):
    metric = sm.CustomMetric(lambda label, pred: returned, name="odd")
    with pytest.raises(sm.InvalidInputError, match="must return a number") as raised:
        metric.update(LABELS, PROBS)
    assert raised.value.rule == "must return a number or (sum, int count >= 0)"
    assert metric.num_inst == 0


@pytest.mark.parametrize(
    "options", [{"level": "0.9"}, {"replicates": 10.5}, {"seed": 1.5}, {"replicates": True}]
)
def test_bootstrap_options_are_checked_when_made(options):
    with pytest.raises(sm.ConfigError, match="must be"):
        sm.Bootstrap(sm.create("acc"), **options)


def test_a_float_label_beyond_int64_is_named_with_its_value():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy warning of a cast on the way
        with pytest.raises(sm.InvalidInputError) as raised:
            sm.create("acc").update(np.array([0.0, 1.0, 1e300, 2.0]), PROBS)
    assert raised.value.row == 2 and raised.value.value == [1e300]


def test_ids_after_load_state_dict_say_why_they_are_refused():
    metric = sm.create("ce")
    metric.update(LABELS, PROBS, sample_ids=np.arange(4))
    loaded = sm.create("ce").load_state_dict(metric.state_dict())
    with pytest.raises(sm.InvalidInputError, match="came from load_state_dict"):
        loaded.update(LABELS, PROBS, sample_ids=np.arange(4, 8))
    loaded.reset()  # then as a fresh metric
    loaded.update(LABELS, PROBS, sample_ids=np.arange(4))


def test_a_metric_merged_into_itself_is_refused():
    metric = sm.create("acc").update(LABELS, PROBS)
    with pytest.raises(sm.StateError, match="count twice"):
        metric.merge(metric)
    assert metric.num_inst == 4


def test_a_tracker_keeps_no_group_of_a_batch_it_refused():
    tracker = sm.export.Tracker(["acc"], group_by=["model"])
    with pytest.raises(sm.InvalidInputError):
        tracker.update([0, 1], PROBS[:1], group="new")  # rows do not pair
    assert tracker.snapshot().groups == ()
    tracker.update(LABELS, PROBS, group="new")
    assert [g.rows_total for g in tracker.snapshot().groups] == [4]


def test_a_config_mismatch_names_the_option_that_differs():
    with pytest.raises(sm.StateError, match=r"`convention` is 'exact', this one's 'keras'") as e:
        sm.create("ce", convention="keras").merge(sm.create("ce"))
    assert e.value.field == "config.convention" and e.value.value == "exact"
    mine = sm.create(["acc", {"metric": "f1", "average": "macro", "class_type": "multiclass"}])
    other = sm.create(["acc", {"metric": "f1", "average": "micro", "class_type": "multiclass"}])
    with pytest.raises(sm.StateError, match=r"`metrics\[1\]\.average` is 'micro'") as e:
        mine.load_state_dict(other.state_dict())
    assert e.value.field == "config.metrics[1].average"


def test_sum_metric_of_a_per_class_metric_is_refused_not_an_array():
    recall = sm.create("recall", average=None, class_type="multiclass").update(LABELS, PROBS)
    for metric in (recall, sm.create(["acc", "confusion_matrix"]).update(LABELS, PROBS)):
        for attr in ("sum_metric", "global_sum_metric"):
            with pytest.raises(sm.ConfigError, match="has a value per class"):
                getattr(metric, attr)
    assert isinstance(sm.create("acc").update(LABELS, PROBS).sum_metric, float)


def _l1(label, pred):
    return float(np.abs(label - pred).mean())


def test_composites_holding_a_custom_metric_have_a_state_and_merge():
    def make():
        return sm.create(["mae", sm.CustomMetric(_l1, name="l1")])

    one = make().update(np.array([1.0]), np.array([0.5]))
    two = make().update(np.array([1.0]), np.array([0.0]))
    clone = make().load_state_dict(one.state_dict())
    assert clone.get() == one.get()
    assert one.merge(two).get() == (["mae", "l1"], [0.75, 0.75])
    with pytest.raises(sm.StateError, match="must be a CompositeEvalMetric, got dict"):
        one.merge({"x": 1})  # type: ignore[arg-type]
    with pytest.raises(sm.StateError, match="the same function"):
        make().merge(sm.create(["mae", sm.CustomMetric(lambda a, b: 0.0, name="l1")]))


def test_a_custom_metric_refuses_weights_it_cannot_apply():
    metric = sm.CustomMetric(_l1, name="l1")
    with pytest.raises(sm.InvalidInputError, match="not taken by a custom metric") as raised:
        metric.update(np.array([0.0, 0.0]), np.array([1.0, 3.0]), sample_weight=[1.0, 0.0])
    assert raised.value.argument == "sample_weight" and metric.num_inst == 0


def test_binary_cross_entropy_takes_a_0d_row_as_the_other_binary_metrics():
    assert (
        sm.create("bce").update(np.array(1), np.array(0.7)).get()
        == sm.create("bce").update(np.array([1]), np.array([0.7])).get()
    )
