"""Metric specs from the command line (``NAME[:key=value,...]``): values and their errors."""

from __future__ import annotations

import math

import pytest

import streammetric as sm
from streammetric import ConfigError
from streammetric.metrics.specs import parse_metric_spec


@pytest.mark.parametrize(
    ("text", "value"),
    [("inf", math.inf), ("+inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf)],
)
def test_infinities_are_floats(text, value):
    assert parse_metric_spec(f"fbeta:beta={text}") == {"metric": "fbeta", "beta": value}


def test_values_parse_as_json_scalars_else_strings():
    spec = parse_metric_spec("f1:average=none,threshold=0.25,num_classes=3,zero_division=nan")
    assert spec == {
        "metric": "f1",
        "average": None,
        "threshold": 0.25,
        "num_classes": 3,
        "zero_division": "nan",
    }


def test_a_key_given_twice_is_refused():
    with pytest.raises(ConfigError, match="'eps' is given twice"):
        parse_metric_spec("ce:eps=1e-7,eps=1e-3")


def test_a_metric_whose_values_share_a_name_is_named_not_called_a_duplicate():
    from streammetric.metrics.specs import distinct_names

    twice = sm.create(["ce", {"metric": "ce", "name": "other"}])
    twice.metrics[1].name = "cross-entropy"  # an instance: names are its own
    with pytest.raises(sm.ConfigError, match="gives two of its values the name 'cross-entropy'"):
        distinct_names([twice])


def test_mccs_of_other_classes_are_named_by_them():
    """Two MCCs, one of fixed classes: each named by its ``num_classes`` (none: those seen)."""
    from streammetric.metrics.specs import distinct_names

    names = [
        spec["name"]
        for spec in distinct_names(
            ["mcc:class_type=multiclass,num_classes=3", "mcc:class_type=multiclass"]
        )
    ]
    assert names == ["mcc[num_classes=3]", "mcc[num_classes=none]"]
