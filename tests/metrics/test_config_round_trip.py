"""Every registered metric, found by introspection: ``create(m.get_config())`` rebuilds it.

Each metric is built with a non-default value for every constructor option (from the
signature and ``OPTION_VALUES`` below), all at once and one at a time. Its config must hold
exactly the constructor's arguments, survive JSON, rebuild a metric with the same config that
computes the same bits from the same data, and its ``state_dict`` must load into the rebuilt
metric. A new option without a value in ``OPTION_VALUES`` fails ``test_every_option_has_a_value``.

``CustomMetric`` is exempt: it wraps a Python function, so it has no JSON config
(``get_config`` raises ConfigError; tested in test_base.py).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import numpy as np
import pytest

import streammetric as sm
from streammetric.metrics.registry import _lookup, list_metrics
from tests.helpers.harness import flat_values, same_bits

EXEMPT = {"custommetric": "wraps a Python function: no JSON config"}

# Valid values per option name; a metric gets the first that differs from its default.
OPTION_VALUES: dict[str, list[Any]] = {
    "name": ["renamed"],
    "output_names": [["out"]],
    "label_names": [["label"]],
    "metrics": [["acc", {"metric": "ce", "eps": 1e-3}]],  # CompositeEvalMetric
    "axis": [-1, 1],  # Accuracy's default is 1, the cross-entropy family's -1
    "top_k": [2],
    "average": ["macro", "micro"],
    "class_type": ["multiclass", "binary"],
    "threshold": [0.25],
    "has_global_stats": [False, True],
    "eps": [1e-3],
    "convention": ["mxnet", "exact"],
    "from_logits": [True, False],
    "label_smoothing": [0.1],
    "class_weight": [[1.0, 2.0, 0.5]],
    "ignore_index": [2],
    "ignore_label": [2],
    "on_invalid": ["skip", "raise"],
    "explain": ["all", ["keras", "torch"]],
    "pos_weight": [2.0],
    "n_bins": [5],
    "norm": ["l2"],
    "scale_by_half": [True],
    "num_thresholds": [50],
    "curve": ["PR"],
    "num_classes": [3],  # 2 where the class type is binary (see _kwargs)
    "zero_division": [1.0, "nan"],
    "beta": [2.0],
    "normalize": ["true"],
}

rng = np.random.default_rng(11)
N, K = 40, 3
CLASS = (rng.integers(0, K, N), rng.dirichlet(np.ones(K), N))
BINARY_LABELS = rng.integers(0, 2, N).astype(np.float64)
BINARY = (BINARY_LABELS, rng.random(N))
BINARY_SCORES = (BINARY_LABELS, np.stack([1 - BINARY[1], BINARY[1]], axis=1))
TARGETS = rng.normal(size=N)
REGRESSION = (TARGETS, TARGETS + rng.normal(size=N))
# Data per metric (probabilities are valid logits too, so from_logits=True takes the same data)
DATA = {
    **dict.fromkeys(
        [
            "accuracy",
            "topkaccuracy",
            "pcc",
            "crossentropy",
            "negativeloglikelihood",
            "perplexity",
            "ece",
            "compositeevalmetric",
        ],
        CLASS,
    ),
    **dict.fromkeys(["f1", "mcc", "precision", "recall", "fbeta"], BINARY_SCORES),
    "confusionmatrix": CLASS,
    **dict.fromkeys(["binarycrossentropy", "brier", "auc", "msle"], BINARY),  # msle: > -1
    **dict.fromkeys(
        ["mae", "mse", "rmse", "pearsoncorrelation", "loss", "torch", "caffe"], REGRESSION
    ),
}
METRICS = sorted(name for name in list_metrics() if name not in EXEMPT)


def _options(klass: type) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(klass).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _non_default(name: str, parameter: inspect.Parameter) -> Any:
    for value in OPTION_VALUES[name]:
        if parameter.default is inspect.Parameter.empty or value != parameter.default:
            return value
    raise AssertionError(f"OPTION_VALUES[{name!r}] has no value other than the default")


def _data(metric_name: str, kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if kwargs.get("class_type") == "multiclass":
        return CLASS
    if kwargs.get("class_type") == "binary":
        return BINARY_SCORES
    return DATA[metric_name]


def _kwargs(klass: type, chosen: dict[str, inspect.Parameter]) -> dict[str, Any]:
    """Non-default values of the chosen options; ``num_classes`` fits the class type (2 for
    binary, the data's K otherwise)."""
    kwargs = {key: _non_default(key, parameter) for key, parameter in chosen.items()}
    if "num_classes" in kwargs:
        class_type = kwargs.get("class_type", _options(klass)["class_type"].default)
        kwargs["num_classes"] = 2 if class_type == "binary" else K
    return kwargs


def _values(metric: sm.EvalMetric) -> list[float]:
    out = []
    for get in (metric.get, metric.get_global):
        value = get()[1]
        out.extend(flat_values(value))
    return out


def _cases() -> list[tuple[str, str | None]]:
    """(metric, None): every option non-default at once; (metric, option): that one alone."""
    cases: list[tuple[str, str | None]] = []
    for name in METRICS:
        cases.append((name, None))
        cases.extend((name, option) for option in _options(_lookup(name)))
    return cases


def test_every_registered_metric_has_data_and_every_option_a_value():
    assert set(METRICS) <= set(DATA), set(METRICS) - set(DATA)
    missing = {
        f"{name}.{option}"
        for name in METRICS
        for option in _options(_lookup(name))
        if option not in OPTION_VALUES
    }
    assert not missing, f"add valid non-default values to OPTION_VALUES for {sorted(missing)}"


def test_custom_metric_is_exempt_because_it_has_no_json_config():
    assert set(EXEMPT) == {"custommetric"}
    with pytest.raises(sm.ConfigError, match="has no JSON config"):
        sm.CustomMetric(lambda label, pred: 0.0).get_config()


@pytest.mark.parametrize(("name", "option"), _cases(), ids=lambda v: str(v))
def test_config_round_trip(name, option):
    klass = _lookup(name)
    options = _options(klass)
    chosen = options if option is None else {option: options[option]}
    kwargs = _kwargs(klass, chosen)
    metric = klass(**kwargs)

    config = metric.get_config()
    # exactly the constructor's arguments (and the registered name), as given
    assert set(config) == {"metric", *options}
    assert config["metric"] == name
    for key, value in kwargs.items():
        if key != "metrics":  # a composite's config holds its children's configs
            assert config[key] == value, key
    assert json.loads(json.dumps(config)) == config

    clone = sm.create(json.loads(json.dumps(config)))
    assert type(clone) is klass
    assert clone.get_config() == config
    assert sm.create(json.dumps(config)).get_config() == config

    labels, preds = _data(name, kwargs)
    half = N // 2
    for m in (metric, clone):
        m.update(labels[:half], preds[:half])
        m.reset_local()
        m.update(labels[half:], preds[half:])
    assert same_bits(_values(clone), _values(metric))

    rebuilt = sm.create(config)
    rebuilt.load_state_dict(json.loads(json.dumps(metric.state_dict())))
    assert same_bits(_values(rebuilt), _values(metric))
    assert same_bits(_values(rebuilt.merge(sm.create(config))), _values(metric))


@pytest.mark.parametrize(
    ("name", "old_config"),
    [
        # NegativeLogLikelihood's config held CrossEntropy's label_smoothing (always 0.0)
        ("nll_loss", {"label_smoothing": 0.0, "convention": "mxnet"}),
        # written before PearsonCorrelation took `average` and PCC `has_global_stats`
        ("pearsonr", {}),
        ("pcc", {}),
        # written before MCC took `num_classes`
        ("mcc", {"class_type": "multiclass"}),
    ],
)
def test_configs_and_states_of_earlier_versions_still_fit(name, old_config):
    metric = sm.create(name, **{k: v for k, v in old_config.items() if k != "label_smoothing"})
    labels, preds = CLASS if name != "pearsonr" else REGRESSION
    metric.update(labels, preds)
    state = metric.state_dict()
    old = {**state["config"], **old_config}
    for key in ("average", "has_global_stats", "num_classes"):
        old.pop(key, None)
    state["config"] = old
    assert sm.create(old).get_config() == metric.get_config()
    clone = sm.create(name, **{k: v for k, v in old_config.items() if k != "label_smoothing"})
    assert clone.load_state_dict(state).get() == metric.get()
    with pytest.raises(sm.StateError, match="belongs to another metric than this"):
        clone.load_state_dict({**state, "config": {**old, "label_smoothing": 0.1}})


def test_a_composite_state_of_an_earlier_version_still_fits():
    metric = sm.create(["acc", {"metric": "nll_loss", "convention": "mxnet"}, "pcc"])
    metric.update(*CLASS)
    state = json.loads(json.dumps(metric.state_dict()))
    for config in (state["config"]["metrics"][1], state["metrics"][1]["config"]):
        config["label_smoothing"] = 0.0  # as an earlier version wrote it
    for config in (state["config"]["metrics"][2], state["metrics"][2]["config"]):
        del config["has_global_stats"]
    clone = sm.create(state["config"])
    assert clone.get_config() == metric.get_config()
    assert clone.load_state_dict(state).get() == metric.get()
