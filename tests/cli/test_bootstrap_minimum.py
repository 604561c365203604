"""Too few bootstrap replicates for a percentile interval at the level asked for are refused
(a usage error naming --bootstrap): with ``R`` replicates the ``alpha = (1 - level) / 2``
quantile is inside them only when ``(R + 1) alpha >= 1`` (39 at 0.95); below, the interval is
the replicates' extremes (one replicate: an "interval" that need not hold the value)."""

from __future__ import annotations

import json

import pytest

from streammetric._exceptions import ConfigError
from streammetric.engine.compare import compare
from streammetric.engine.local import Job
from streammetric.functional.resample import check_replicates, min_replicates
from streammetric.io import ColumnSpec
from streammetric.metrics.bootstrap import Resampling

from .helpers import invoke
from .test_compare import write_pair
from .test_issue21_cli import one_line_error


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("boot"))


def test_the_minimum_puts_the_tail_quantiles_among_the_replicates():
    for level, need in [(0.95, 39), (0.9, 19), (0.99, 199), (0.8, 9), (0.5, 3), (0.9999, 19999)]:
        assert min_replicates(level) == need
        alpha = (1 - level) / 2
        assert (need + 1) * alpha >= 1 - 1e-9 and need * alpha < 1
    check_replicates(0.95, 39)
    with pytest.raises(
        ConfigError, match=r"replicates 38: a 0\.95 percentile interval needs at least 39"
    ):
        check_replicates(0.95, 38)


@pytest.mark.parametrize("count, level", [("1", "0.95"), ("38", "0.95"), ("18", "0.9")])
def test_eval_refuses_too_few(pair, count, level):
    result = invoke("eval", pair / "base.parquet", "-m", "acc", "--ci", level, "--bootstrap", count)
    one_line_error(result, 2, f"--bootstrap {count}: a {level} percentile interval needs at least")


def test_eval_accepts_the_minimum_and_names_the_default_when_it_is_too_few(pair):
    result = invoke(
        "eval",
        pair / "base.parquet",
        "-m",
        "acc",
        "--ci",
        "0.95",
        "--bootstrap",
        "39",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    bounds = json.loads(result.stdout)["intervals"]["accuracy"]
    assert bounds["lower"] < bounds["upper"]
    result = invoke("eval", pair / "base.parquet", "-m", "acc", "--ci", "0.999")
    one_line_error(result, 2, "the default --bootstrap 1000", "at least 1999")


def test_compare_refuses_too_few(pair):
    result = invoke(
        "compare", pair / "base.parquet", pair / "cand.parquet", "-m", "acc", "--bootstrap", "1"
    )
    one_line_error(result, 2, "--bootstrap 1: a 0.95 percentile interval needs at least 39")
    result = invoke(
        "compare",
        pair / "base.parquet",
        pair / "cand.parquet",
        "-m",
        "acc",
        "--ci",
        "0.8",
        "--bootstrap",
        "9",
    )
    assert result.exit_code == 0, result.output


def test_python_compare_refuses_too_few_before_reading(pair):
    def job(path, replicates):
        return Job(
            [str(path)], ["acc"], ColumnSpec(ids="id"), resampling=Resampling(0.95, replicates, 0)
        )

    with pytest.raises(ConfigError, match="replicates 5"):
        compare(job(pair / "base.parquet", 5), job(pair / "nothing.parquet", 5), column="id")


def test_report_refuses_too_few_for_a_checkpoint(pair, tmp_path):
    ckpt = tmp_path / "c.ckpt"
    result = invoke(
        "eval",
        pair / "base.parquet",
        "-m",
        "acc",
        "--ci",
        "0.9",
        "--bootstrap",
        "50",
        "--checkpoint",
        ckpt,
    )
    assert result.exit_code == 0, result.output
    result = invoke("report", ckpt, "-o", tmp_path / "r.html", "--bootstrap", "10")
    one_line_error(result, 2, "--bootstrap 10")
    result = invoke("report", ckpt, "-o", tmp_path / "r.html", "--ci", "0.9", "--bootstrap", "19")
    assert result.exit_code == 0, result.output
