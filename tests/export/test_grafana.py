"""The Grafana dashboard and the example Prometheus config match what the exporter emits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streammetric.export import DEFAULT_PORT, Tracker, make_registry
from tests.cli.helpers import Cli, invoke, wait_for_json, write_preds

from .conftest import REPO, Binaries, PrometheusServer, http_get, wait_until
from .helpers import CI_EVAL, FakeCrossEntropy, fake_accuracy

GRAFANA = REPO / "configs" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streammetric.json"
PROMETHEUS_YML = REPO / "configs" / "prometheus.yml"
NAME = re.compile(r"\bstreammetric_[A-Za-z0-9_]+")
LABELS = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
BY = re.compile(r"\bby\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)$")


def queries(node: Any) -> Iterator[str]:
    """Every PromQL string of the dashboard: panel targets and template variable queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                yield value["query"]
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """(sample names, label names) of real expositions: CE-like and accuracy metrics, groups;
    and an eval with interval bounds and a per-class metric."""
    tracker = Tracker([FakeCrossEntropy(), fake_accuracy()], group_by=["model"])
    tracker.update([1.0, 0.0], [0.75, 0.25], group="resnet")
    tracker.add_rows(invalid_rows=1)
    text = generate_latest(make_registry(tracker, run="r")).decode()
    folder = tmp_path_factory.mktemp("emitted")
    data, prom = write_preds(folder / "preds.parquet", 600, seed=2), folder / "out.prom"
    done = invoke("eval", data, *CI_EVAL, "--textfile", prom)
    assert done.exit_code == 0, done.output
    text += prom.read_text()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return {s.name for s in samples}, {label for s in samples for label in s.labels}


def test_dashboard_queries_only_emitted_metrics_and_labels(
    emitted: tuple[set[str], set[str]],
) -> None:
    names, labels = emitted
    exprs = list(queries(json.loads(DASHBOARD.read_text())))
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used - names == set()
    assert {
        "streammetric_cross_entropy",
        "streammetric_accuracy",
        "streammetric_rows_total",
        "streammetric_invalid_rows_total",
        "streammetric_accuracy_ci_lower",
        "streammetric_accuracy_ci_upper",
        "streammetric_cross_entropy_ci_lower",
        "streammetric_cross_entropy_ci_upper",
    } <= used
    assert "streammetric_confusion_matrix" in names  # what the matrix panel's variable lists
    used_labels = {label for expr in exprs for label in LABELS.findall(expr)} - {"__name__"}
    assert {"class", "true_class", "scope", "run", "model"} <= used_labels
    used_labels |= {
        label.strip() for expr in exprs for group in BY.findall(expr) for label in group.split(",")
    }
    assert used_labels - labels == set()
    assert any("rate(streammetric_rows_total" in expr and "[1m]" in expr for expr in exprs)


def test_dashboard_panels_have_unique_ids_and_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "run", "model", "matrix"}


def test_dashboard_promql_parses(system_binaries: Binaries, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (part of the prometheus package) is not on PATH")
    exprs = list(queries(json.loads(DASHBOARD.read_text())))
    rules = [
        {
            "record": f"streammetric:check_{index}",
            "expr": expr.replace("$run", ".*").replace("$model", ".*"),
        }
        for index, expr in enumerate(exprs)
        if not expr.startswith("label_values(")
    ]
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_files_point_at_prometheus_and_the_dashboards() -> None:
    datasource = (GRAFANA / "provisioning" / "datasources" / "streammetric.yaml").read_text()
    provider = (GRAFANA / "provisioning" / "dashboards" / "streammetric.yaml").read_text()
    assert "apiVersion: 1" in datasource and "type: prometheus" in datasource
    assert "apiVersion: 1" in provider and "type: file" in provider
    assert "path: /var/lib/grafana/dashboards/streammetric" in provider


def test_example_prometheus_config_is_valid_and_scrapes_the_default_port(
    system_binaries: Binaries,
) -> None:
    assert f'"127.0.0.1:{DEFAULT_PORT}"' in PROMETHEUS_YML.read_text()
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (part of the prometheus package) is not on PATH")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


MATRIX = "streammetric_confusion_matrix"


def _substitute(expr: str, run: str, model: str) -> str:
    return expr.replace("$run", run).replace("$model", model).replace("$matrix", MATRIX)


def _label_values(prometheus: PrometheusServer, expr: str) -> list[str]:
    """What Grafana's ``label_values(selector, label)`` gives, through the HTTP API."""
    match = LABEL_VALUES.match(expr)
    assert match, expr
    selector, label = match.groups()
    url = f"{prometheus.api}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
        {"match[]": selector}
    )
    status, body = http_get(url)
    payload = json.loads(body)
    if status != 200 or payload.get("status") != "success":
        raise ValueError(f"{expr!r}: {status} {body[:300]!r}")
    return list(payload["data"])


def test_every_dashboard_query_returns_series_from_eval_serve(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """A real Prometheus scrapes ``eval --serve`` (--ci, a per-class metric, --by model): each
    panel and variable query, with the variables set to the run and to All or one model,
    returns at least one series."""
    data = write_preds(tmp_path / "preds.parquet", 900, seed=7)
    out, run = tmp_path / "result.json", "dashboard"
    serve = f"127.0.0.1:{prometheus.plain_port}"
    process = Cli(
        ["eval", data, *CI_EVAL, "--format", "json", "-o", out, "--run", run,
         "--serve", serve, "--linger", "inf"],
        tmp_path / "cli",
    )  # fmt: skip
    try:
        wait_for_json(out, process, timeout=60.0)
        exprs = list(dict.fromkeys(queries(json.loads(DASHBOARD.read_text()))))
        assert len(exprs) >= 15
        for model in (".*", "a"):  # "All" (the variables' allValue) and one model
            for expr in exprs:
                query = _substitute(expr, run, model)
                if query.startswith("label_values("):
                    got = wait_until(
                        lambda q=query: _label_values(prometheus, q), 30.0, f"values of {query}"
                    )
                    assert run in got or "a" in got or MATRIX in got
                else:
                    # rate()s need two scrapes; every other query the first
                    wait_until(lambda q=query: prometheus.query(q), 30.0, f"series of {query}")
        # the matrix panel of model a holds its confusion matrix, a cell a series
        (panel,) = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] == "table"]
        assert panel["repeat"] == "model"
        (matrix,) = [t for t in panel["transformations"] if t["id"] == "groupingToMatrix"]
        assert matrix["options"] == {
            "rowField": "true_class",
            "columnField": "pred_class",
            "valueField": "Value",
        }
        series = prometheus.query(_substitute(panel["targets"][0]["expr"], run, "a"))
        cells = {(s["metric"]["true_class"], s["metric"]["pred_class"]): s for s in series}
        (group,) = [g for g in json.loads(out.read_text())["groups"] if g["key"] == {"model": "a"}]
        expected = group["metrics"]["confusion_matrix"]
        assert len(series) == len(cells) == len(expected) ** 2
        for t, row in enumerate(expected):
            for p, value in enumerate(row):
                assert float(cells[(str(t), str(p))]["value"][1]) == value
    finally:
        code = process.stop()
    assert code == 0, process.stderr
