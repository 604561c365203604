"""The Grafana dashboard and the example Prometheus config match what the exporter emits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streammetric.export import DEFAULT_PORT, Tracker, make_registry

from .conftest import REPO, Binaries
from .helpers import FakeCrossEntropy, fake_accuracy

GRAFANA = REPO / "configs" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streammetric.json"
PROMETHEUS_YML = REPO / "configs" / "prometheus.yml"
NAME = re.compile(r"\bstreammetric_[A-Za-z0-9_]+")
LABELS = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
BY = re.compile(r"\bby\s*\(([^)]*)\)")


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
def emitted() -> tuple[set[str], set[str]]:
    """(sample names, label names) of a real exposition: CE-like and accuracy metrics, groups."""
    tracker = Tracker([FakeCrossEntropy(), fake_accuracy()], group_by=["model"])
    tracker.update([1.0, 0.0], [0.75, 0.25], group="resnet")
    tracker.add_rows(invalid_rows=1)
    text = generate_latest(make_registry(tracker, run="r")).decode()
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
    } <= used
    used_labels = {label for expr in exprs for label in LABELS.findall(expr)}
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
    assert variables == {"datasource", "run", "model"}


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
