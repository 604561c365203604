"""The collector's exact exposition text on private registries (client_python style)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

import streammetric as sm
from streammetric.export import Tracker, make_registry, metric_name

from .helpers import FakeCrossEntropy

VERSION = sm.__version__


def text(source: object, run: str | None = None, labels: dict[str, str] | None = None) -> str:
    return generate_latest(make_registry(source, run=run, labels=labels)).decode("utf-8")


def test_exposition_of_grouped_tracker_is_exact() -> None:
    tracker = Tracker(
        [sm.create("mae"), FakeCrossEntropy()], group_by=["model"], clock=lambda: 1700000000.5
    )
    tracker.update([1.0, 2.0], [1.5, 2.0], group="a")
    tracker.reset_local()
    tracker.update([0.0], [0.25], group="a")
    tracker.add_rows(invalid_rows=3)
    expected = f"""\
# HELP streammetric_mae Metric 'mae': scope=global since reset, local since reset_local.
# TYPE streammetric_mae gauge
streammetric_mae{{model="a",run="r1",scope="global"}} 0.25
streammetric_mae{{model="a",run="r1",scope="local"}} 0.25
# HELP streammetric_cross_entropy Metric 'cross-entropy': scope=global since reset, local since reset_local.
# TYPE streammetric_cross_entropy gauge
streammetric_cross_entropy{{model="a",run="r1",scope="global"}} 0.09589402415059367
streammetric_cross_entropy{{model="a",run="r1",scope="local"}} 1.3862943611198906
# HELP streammetric_rows_total Rows evaluated (folded into the metrics).
# TYPE streammetric_rows_total counter
streammetric_rows_total{{model="a",run="r1"}} 3.0
# HELP streammetric_invalid_rows_total Rows skipped as invalid.
# TYPE streammetric_invalid_rows_total counter
streammetric_invalid_rows_total{{run="r1"}} 3.0
# HELP streammetric_ce_diagnostic_total Cross-entropy diagnostic counts of a metric since its last reset.
# TYPE streammetric_ce_diagnostic_total counter
streammetric_ce_diagnostic_total{{kind="true_prob_zero",metric="cross-entropy",model="a",run="r1"}} 1.0
streammetric_ce_diagnostic_total{{kind="guarded",metric="cross-entropy",model="a",run="r1"}} 3.0
# HELP streammetric_last_update_timestamp_seconds Unix time of the last update.
# TYPE streammetric_last_update_timestamp_seconds gauge
streammetric_last_update_timestamp_seconds{{run="r1"}} 1.7000000005e+09
# HELP streammetric_build_info streammetric version.
# TYPE streammetric_build_info gauge
streammetric_build_info{{run="r1",version="{VERSION}"}} 1.0
"""
    assert text(tracker, run="r1") == expected
    assert tracker.metrics_for("a")[1].get_global()[1] == 0.09589402415059367


def test_plain_metric_objects_empty_values_are_nan_and_extra_labels_apply() -> None:
    m = sm.create(["mae", "rmse"])
    assert (
        text(m, labels={"run": "x", "env": "ci"})
        == f"""\
# HELP streammetric_mae Metric 'mae': scope=global since reset, local since reset_local.
# TYPE streammetric_mae gauge
streammetric_mae{{env="ci",run="x",scope="global"}} NaN
streammetric_mae{{env="ci",run="x",scope="local"}} NaN
# HELP streammetric_rmse Metric 'rmse': scope=global since reset, local since reset_local.
# TYPE streammetric_rmse gauge
streammetric_rmse{{env="ci",run="x",scope="global"}} NaN
streammetric_rmse{{env="ci",run="x",scope="local"}} NaN
# HELP streammetric_rows_total Rows evaluated (folded into the metrics).
# TYPE streammetric_rows_total counter
streammetric_rows_total{{env="ci",run="x"}} 0.0
# HELP streammetric_invalid_rows_total Rows skipped as invalid.
# TYPE streammetric_invalid_rows_total counter
streammetric_invalid_rows_total{{env="ci",run="x"}} 0.0
# HELP streammetric_build_info streammetric version.
# TYPE streammetric_build_info gauge
streammetric_build_info{{env="ci",run="x",version="{VERSION}"}} 1.0
"""
    )


def test_values_are_read_live_at_each_collect() -> None:
    m = sm.MAE()
    registry = make_registry(m)
    m.update([0.0], [0.1])
    assert (
        'streammetric_mae{run="default",scope="global"} 0.1\n' in generate_latest(registry).decode()
    )
    m.update([0.0], [0.2])
    assert 'scope="global"} 0.15000000000000002\n' in generate_latest(registry).decode()


@pytest.mark.parametrize(
    ("name", "exported"),
    [
        ("cross-entropy", "streammetric_cross_entropy"),
        ("top_k_accuracy_5", "streammetric_top_k_accuracy_5"),
        ("nll-loss", "streammetric_nll_loss"),
        ("custom(<lambda>)", "streammetric_custom__lambda__"),
        ("précision", "streammetric_pr_cision"),
    ],
)
def test_metric_names_are_sanitised(name: str, exported: str) -> None:
    assert metric_name(name) == exported
    assert f"\n{exported}{{" in text(sm.MAE(name=name))


ODD_VALUES = ['say "hi"', "back\\slash", "two\nlines", "ünïcødé ✓", "", 3, 2.5, True]


def test_odd_group_values_are_escaped_and_parse_back() -> None:
    tracker = Tracker("mae", group_by=["model"])
    for index, value in enumerate(ODD_VALUES):
        tracker.update([0.0], [float(index)], group=value)
    exposition = text(tracker)
    assert 'model="say \\"hi\\""' in exposition
    assert 'model="back\\\\slash"' in exposition
    assert 'model="two\\nlines"' in exposition
    assert 'model="ünïcødé ✓"' in exposition
    parsed = {
        sample.labels["model"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "streammetric_mae"
        for sample in family.samples
        if sample.labels["scope"] == "global"
    }
    rendered = ['say "hi"', "back\\slash", "two\nlines", "ünïcødé ✓", "", "3", "2.5", "true"]
    assert parsed == {label: float(i) for i, label in enumerate(rendered)}


def test_group_column_names_become_label_names() -> None:
    tracker = Tracker("mae", group_by=["model name", "2nd"])
    tracker.update([0.0], [1.0], group=("m", 2))
    assert 'streammetric_rows_total{_2nd="2",model_name="m",run="default"} 1.0' in text(tracker)


def test_openmetrics_exposition_names_counter_and_info_families() -> None:
    tracker = Tracker(FakeCrossEntropy(), group_by=["model"])
    tracker.update([0], [0.5], group="m")
    exposition = generate_openmetrics(make_registry(tracker)).decode()
    assert "# TYPE streammetric_rows counter\nstreammetric_rows_total{" in exposition
    assert "# TYPE streammetric_build info\nstreammetric_build_info{" in exposition
    assert exposition.endswith("# EOF\n")


@pytest.mark.parametrize(
    ("metrics", "group_by", "labels", "message"),
    [
        (["mae", sm.MAE(name="mae")], (), None, "metrics 'mae' and 'mae' would both export"),
        ([sm.MAE(name="a-b"), sm.MAE(name="a_b")], (), None, "as streammetric_a_b"),
        (sm.MAE(name="rows_total"), (), None, "would both export as streammetric_rows_total"),
        ("mae", ["scope"], None, "column 'scope' would export as label 'scope'"),
        ("mae", ["env"], {"env": "x"}, "column 'env' would export as label 'env'"),
        ("mae", ["a b", "a_b"], None, "column 'a_b' would export as label 'a_b'"),
        ("mae", (), {"bad-name": "x"}, "got 'bad-name'"),
        ("mae", (), {"__x": "x"}, "got '__x'"),
    ],
)
def test_clashing_names_are_refused(
    metrics: object, group_by: tuple[str, ...], labels: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(sm.ConfigError, match=re.escape(message)):
        make_registry(Tracker(metrics, group_by=group_by), labels=labels)


def test_run_and_labels_run_must_agree() -> None:
    with pytest.raises(sm.ConfigError, match="disagree, got 'a' and 'b'"):
        make_registry(sm.MAE(), run="a", labels={"run": "b"})
    assert 'run="a"' in text(sm.MAE(), run="a", labels={"run": "a"})
