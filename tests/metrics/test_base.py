"""The EvalMetric contract: MXNet-style API, inputs, windows, config/state, registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import streammetric as sm


class FakeNDArray:  # an MXNet NDArray look-alike
    def __init__(self, data):
        self._data = np.asarray(data)

    def asnumpy(self):
        return self._data


class FakeTensor:  # a torch.Tensor look-alike
    def __init__(self, data):
        self._data = np.asarray(data)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self._data


class ArrayLike:
    def __init__(self, data):
        self._data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self._data


LABELS = [2.5, 0.0, 2.0, 8.0]
PREDS = [3.0, -0.5, 2.0, 7.0]


@pytest.mark.parametrize(
    "wrap",
    [
        list,
        np.array,
        pd.Series,
        pa.array,
        lambda v: pa.chunked_array([v[:2], v[2:]]),
        FakeNDArray,
        FakeTensor,
        ArrayLike,
    ],
)
def test_every_input_kind_gives_the_same_value(wrap):
    assert sm.MAE().update(wrap(LABELS), wrap(PREDS)).get() == ("mae", 0.5)


def test_lists_of_arrays_are_paired():
    m = sm.MAE().update(
        [np.array(LABELS[:2]), np.array(LABELS[2:])], [np.array(PREDS[:2]), np.array(PREDS[2:])]
    )
    assert m.get() == ("mae", 0.5) and m.num_inst == 4


def test_unpaired_lists_are_an_error():
    with pytest.raises(
        sm.InvalidInputError,
        match="`labels` and `preds` must be lists of the same length, got 2 and 1",
    ):
        sm.MAE().update([np.zeros(1), np.zeros(1)], [np.zeros(1)])


def test_empty_metric_is_nan_and_windows_behave():
    m = sm.MAE()
    assert math.isnan(m.get()[1]) and math.isnan(m.get_global()[1]) and m.num_inst == 0
    m.update([1.0], [2.0])
    m.reset_local()
    assert math.isnan(m.get()[1]) and m.get_global() == ("mae", 1.0)
    m.update([1.0], [4.0])
    assert m.get() == ("mae", 3.0) and m.get_global() == ("mae", 2.0)
    assert (m.num_inst, m.global_num_inst, m.sum_metric, m.global_sum_metric) == (1, 2, 3.0, 4.0)
    assert m.get_name_value() == [("mae", 3.0)] and m.get_global_name_value() == [("mae", 2.0)]
    m.reset()
    assert math.isnan(m.get_global()[1]) and m.global_num_inst == 0


def test_update_dict_selects_by_name():
    m = sm.MAE(output_names=["out"], label_names=["y"])
    m.update_dict(
        {"y": np.array([1.0]), "other": np.array([9.0])},
        {"out": np.array([3.0]), "x": np.array([0.0])},
    )
    assert m.get() == ("mae", 2.0)


def test_config_and_state_round_trip_through_json():
    m = sm.create("mae", name="my_mae").update(LABELS, PREDS)
    clone = sm.create(json.dumps(m.get_config()))
    assert clone.name == "my_mae" and clone.get_config() == m.get_config()
    clone.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert clone.get() == m.get()


def test_merge_and_state_refuse_other_metrics():
    with pytest.raises(sm.StateError, match="belongs to another metric than this"):
        sm.MAE().merge(sm.MSE())
    with pytest.raises(sm.StateError, match="belongs to another metric than this"):
        sm.MAE().load_state_dict(sm.MSE().state_dict())
    with pytest.raises(sm.StateError, match="must be a state_dict of version 1"):
        sm.MAE().load_state_dict({"nope": 1})


def test_create_accepts_every_form():
    assert sm.create(sm.MAE()).name == "mae"
    assert sm.create({"metric": "rmse"}).name == "rmse"
    assert sm.create('{"metric": "mse", "name": "m"}').name == "m"
    composite = sm.create(["mae", {"metric": "mse"}])
    assert isinstance(composite, sm.CompositeEvalMetric)
    composite.update(LABELS, PREDS)
    assert composite.get() == (["mae", "mse"], [0.5, 0.375])
    assert sm.create(composite.get_config()).get_config() == composite.get_config()
    custom = sm.create(lambda label, pred: float(np.abs(label - pred).sum()))
    assert isinstance(custom, sm.CustomMetric)


def test_create_errors_are_clear():
    with pytest.raises(sm.ConfigError, match="unknown metric 'nope'; known metrics: "):
        sm.create("nope")
    with pytest.raises(sm.ConfigError, match="a metric config needs a 'metric' key"):
        sm.create({"name": "x"})
    with pytest.raises(sm.ConfigError, match="bad arguments for metric MAE"):
        sm.create("mae", bogus=1)
    with pytest.raises(sm.ConfigError, match="`metric` JSON does not parse"):
        sm.create("{not json")


def test_register_and_alias_a_new_metric(monkeypatch):
    from streammetric.metrics import registry

    sm.list_metrics()  # the built-ins that load on first use are in the copies below
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # leave no trace
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))

    @sm.register
    @sm.alias("twice_mae")
    class TwiceMAE(sm.MAE):
        def __init__(self, name="twice-mae", output_names=None, label_names=None):
            super().__init__(name, output_names, label_names)

        def _compute(self, state):
            return 2 * super()._compute(state)

    assert sm.create("twice_mae").update(LABELS, PREDS).get() == ("twice-mae", 1.0)
    assert "twice_mae" in sm.list_metrics()["twicemae"]


def test_custom_metric_and_np_wrapper():
    def mean_abs(label, pred):
        return np.abs(label - pred).mean()

    m = sm.np(mean_abs)
    m.update([np.array([1.0])], [np.array([3.0])]).update([np.array([1.0])], [np.array([2.0])])
    assert m.get() == ("mean_abs", 1.5) and m.num_inst == 2
    pair = sm.CustomMetric(
        lambda label, pred: (float(np.abs(label - pred).sum()), label.size), name="l1"
    )
    assert pair.update([np.array([1.0, 1.0])], [np.array([2.0, 4.0])]).get() == ("l1", 2.0)
    with pytest.raises(sm.ConfigError, match="has no JSON config"):
        m.get_config()
    assert m.state_dict()["local"]["num_inst"] == 2


def test_public_api_is_complete():
    # the order of __all__ is enforced by ruff (RUF022, isort-style) in scripts/test
    assert len(set(sm.__all__)) == len(sm.__all__)
    for name in sm.__all__:
        assert hasattr(sm, name), name


def _tampered(state, path, value):
    """``state`` (JSON data) with the entry at ``path`` (keys and indices) set to ``value``."""
    state = json.loads(json.dumps(state))
    node = state
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return state


@pytest.mark.parametrize(
    ("metric", "path", "value", "field"),
    [
        ("ce", ("local", "num_inst"), -3, "local.num_inst"),
        ("ce", ("past", "num_inst"), True, "past.num_inst"),
        ("ce", ("local", "num_inst"), 2.0, "local.num_inst"),
        ("ce", ("local", "sum_weight"), {"mantissa": "-1", "shift": 1074}, "local.sum_weight"),
        ("ce", ("local", "sum_metric"), {"mantissa": "-5", "shift": 1074}, "local.sum_metric"),
        (
            "mae",
            ("local", "sum_metric"),
            {"mantissa": "1", "shift": 10**9},
            "local.sum_metric.shift",
        ),
        ("ce", ("local", "diagnostics"), {"shape": [9], "values": [-1] * 9}, "local.diagnostics"),
        ("ce", ("local", "diagnostics"), {"shape": [2], "values": [1, 2]}, "local.diagnostics"),
        (
            "pcc",
            ("local", "true_positives"),
            {"shape": [2], "values": [1.5, 2]},
            "local.true_positives",
        ),
        (
            "pcc",
            ("local", "true_positives"),
            {"shape": [3], "values": [1, 2]},
            "local.true_positives",
        ),
        (
            "pcc",
            ("local", "true_positives"),
            {"shape": [1], "values": [2**70]},
            "local.true_positives",
        ),
        (
            "pcc",
            ("local", "true_positives"),
            {"shape": [1, 1], "values": [1]},
            "local.true_positives",
        ),
        (
            "pcc",
            ("local", "true_positives"),
            {"shape": [2], "values": [1, 1]},
            "local",
        ),  # fp, fn: 3
        (
            "auc",
            ("local", "num_positive"),
            {"shape": [3], "values": [1, 1, 1]},
            "local.num_positive",
        ),
        ("mae", ("local", "bogus"), 1, "local.bogus"),
        ("mae", ("local",), [], "local"),
        ("mae", ("version",), "1", "version"),
    ],
)
def test_load_state_dict_refuses_bad_fields_and_keeps_the_old_state(metric, path, value, field):
    labels, preds = np.array([0, 1, 2, 1]), np.eye(3)[[0, 1, 1, 1]] * 0.9 + 0.1 / 3
    m = sm.create(metric)
    data = (labels, preds) if metric in ("ce", "pcc") else (labels % 2, preds[:, 1])
    m.update(*data)
    before = m.state_dict()
    with pytest.raises(sm.StateError) as caught:
        m.load_state_dict(_tampered(before, path, value))
    assert caught.value.field == field, str(caught.value)
    assert field in str(caught.value) and "\n" not in str(caught.value)
    assert m.state_dict() == before  # all or nothing: a refused state changes nothing


def test_composite_state_is_checked_whole_before_anything_loads():
    m = sm.create(["mae", "mse"]).update(LABELS, PREDS)
    before = m.state_dict()
    for path, value, field in [
        (("metrics",), [], "metrics"),
        (("metrics",), "x", "metrics"),
        (("metrics", 1, "local", "num_inst"), -1, "metrics[1].local.num_inst"),
    ]:
        with pytest.raises(sm.StateError) as caught:
            m.load_state_dict(_tampered(before, path, value))
        assert caught.value.field == field, str(caught.value)
        assert m.state_dict() == before
    without = dict(before)
    del without["metrics"]
    with pytest.raises(sm.StateError, match="metrics"):
        m.load_state_dict(without)
