"""configs/prometheus/: the rules pass ``promtool check rules`` and their ``promtool test rules``
unit tests, and configs/prometheus.yml loads them (``promtool check config``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import Cli, wait_for_json, write_preds

from .conftest import REPO, Binaries, Process, PrometheusServer, free_port, http_get, wait_until
from .helpers import CI_EVAL

PROMETHEUS_DIR = REPO / "configs" / "prometheus"
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.rules.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTS = {
    "StreamMetricThresholdCrossed",
    "StreamMetricRegressed",
    "StreamMetricExporterDown",
    "StreamMetricStale",
    "StreamMetricInvalidRows",
}


@pytest.fixture
def promtool(system_binaries: Binaries) -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool (part of the prometheus package) is not on PATH")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_the_rule_files_are_valid(promtool: str) -> None:
    assert RULES
    result = run(promtool, "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass_and_cover_every_alert(promtool: str) -> None:
    assert RULE_TESTS
    text = "".join(path.read_text() for path in RULE_TESTS)
    for alert in ALERTS:
        assert f"alertname: {alert}\n" in text
        assert alert in "".join(path.read_text() for path in RULES)
    assert "exp_alerts: []" in text  # cases where an alert must not fire
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_shipped_config_loads_the_rules(promtool: str) -> None:
    config = REPO / "configs" / "prometheus.yml"
    result = run(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    for path in RULES:
        assert path.name in output  # the glob found it, relative to the config file


def test_the_rules_evaluate_without_errors_on_a_real_eval(
    system_binaries: Binaries, tmp_path: Path
) -> None:
    """A real Prometheus with the shipped rules (evaluated every second) scrapes
    ``eval --serve --ci --by model`` with a per-class metric: every rule evaluates without
    error, the recording rules give the series the alerts join on, and the low accuracy and
    high cross-entropy of random predictions make StreamMetricThresholdCrossed pending (its
    ``for`` is 5 minutes) while nothing else is."""
    target, api_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{json.dumps(str(PROMETHEUS_DIR / 'rules' / '*.rules.yml'))}]\n"
        "scrape_configs:\n"
        f"  - {{job_name: streammetric, static_configs: [{{targets: ['127.0.0.1:{target}']}}]}}\n"
    )
    server = Process(
        [system_binaries.prometheus, f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{api_port}", "--log.level=warn"],
        tmp_path / "prometheus.log",
        f"http://127.0.0.1:{api_port}/-/ready",
    )  # fmt: skip
    prometheus = PrometheusServer(server, f"http://127.0.0.1:{api_port}", target, None)
    data = write_preds(tmp_path / "preds.parquet", 900, seed=8)
    out, run = tmp_path / "result.json", "rules"
    process: Cli | None = None
    try:
        server.wait_ready()
        process = Cli(
            ["eval", data, *CI_EVAL, "--format", "json", "-o", out, "--run", run,
             "--serve", f"127.0.0.1:{target}", "--linger", "inf"],
            tmp_path / "cli",
        )  # fmt: skip
        result = wait_for_json(out, process, timeout=60.0)
        assert result["metrics"]["accuracy"] < 0.9 < 0.5 + result["metrics"]["cross-entropy"]

        def series(expr: str) -> list[dict[str, Any]]:
            return list(wait_until(lambda: prometheus.query(expr), 30.0, expr))

        sel = f'run="{run}"'
        assert len(series(f'streammetric:metric_value{{{sel}, metric="f1", class!=""}}')) == 12
        upper = series(f'streammetric:metric_ci_upper{{{sel}, metric="accuracy", level="0.9"}}')
        assert {r["metric"].get("model", "") for r in upper} == {"", "a", "b"}
        series(f'streammetric:rows:rate5m{{{sel}, model="a"}}')
        series(f"streammetric:invalid_rows:increase5m:run{{{sel}}}")
        pending = series(f'ALERTS{{{sel}, alertstate="pending"}}')
        assert {r["metric"]["alertname"] for r in pending} == {"StreamMetricThresholdCrossed"}
        assert {r["metric"]["metric"] for r in pending} == {"accuracy", "cross_entropy"}
        assert len(pending) == 6  # overall and per model, each metric

        def health() -> list[tuple[str, str, str]]:
            groups = json.loads(http_get(f"{prometheus.api}/api/v1/rules")[1])["data"]["groups"]
            return [
                (r["name"], r["health"], r.get("lastError", "")) for g in groups for r in g["rules"]
            ]

        states = wait_until(health, 30.0, "the rules")
        assert len(states) == 36 and {state[1] for state in states} == {"ok"}, states
    finally:
        code = process.stop() if process is not None else 0
        server.stop()
    assert code == 0, process.stderr if process else ""
