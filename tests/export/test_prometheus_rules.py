"""configs/prometheus/: the rules pass ``promtool check rules`` and their ``promtool test rules``
unit tests, and configs/prometheus.yml loads them (``promtool check config``)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import REPO, Binaries

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
