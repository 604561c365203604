"""Refusals found by a QA pass, each one line naming what was wrong: `evaluate`'s ``threads``
below 1 and an empty metric list; a ``--checkpoint`` below a file; shape errors of regression
metrics and binary cross-entropy that named the file but not the column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric import ConfigError, InvalidInputError
from streammetric.metrics.cross_entropy import BinaryCrossEntropy
from streammetric.metrics.regression import MAE, PearsonCorrelation
from tests.cli.helpers import invoke
from tests.cli.test_issue21_cli import one_line_error


def three_class_file(path: Path) -> Path:
    """``label`` (int) and ``probs`` (list<float32> of 3 probabilities per row)."""
    probs = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]]
    table = pa.table(
        {
            "label": pa.array([0, 1, 2, 1], pa.int64()),
            "probs": pa.array(probs, pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, path)
    return path


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


# --- item 1: evaluate's threads and metrics ------------------------------------------------------


@pytest.mark.parametrize("threads", [0, -3, 1.5, True, "2"])
def test_evaluate_refuses_threads_that_are_not_an_int_of_at_least_one(tmp_path, threads):
    data = three_class_file(tmp_path / "p.parquet")
    with pytest.raises(ConfigError) as caught:
        sm.evaluate(data, ["ce"], threads=threads)
    message = one_line(caught.value)
    assert message == f"`threads` must be an int >= 1 (None: the cores), got {threads!r}"


def test_evaluate_threads_none_one_and_numpy_ints_still_run(tmp_path):
    data = three_class_file(tmp_path / "p.parquet")
    values = {
        sm.evaluate(data, ["ce"], threads=threads).to_dict()["metrics"]["cross-entropy"]
        for threads in (None, 1, np.int64(2))
    }
    assert len(values) == 1
    with pytest.raises(ConfigError, match="`threads`"):  # what the CLI's --threads refuses
        sm.evaluate(data, ["ce"], threads=0)


@pytest.mark.parametrize("metrics", [[], ()])
def test_evaluate_refuses_an_empty_metric_list(tmp_path, metrics):
    data = three_class_file(tmp_path / "p.parquet")
    with pytest.raises(ConfigError) as caught:
        sm.evaluate(data, metrics)
    assert one_line(caught.value) == f"`metrics` must name at least one metric, got {metrics!r}"
    # the CLI without -m computes ce, as evaluate's default does
    result = invoke("eval", data, "--format", "json")
    assert result.exit_code == 0, result.output
    default = sm.evaluate(data).to_dict()["metrics"]
    assert list(default) == ["cross-entropy"]
    assert json.loads(result.stdout)["metrics"] == default


# --- item 2: a checkpoint below a file ------------------------------------------------------------


@pytest.mark.parametrize("below", ["x.ckpt", "a/b/x.ckpt"])
def test_checkpoint_below_a_file_is_a_usage_error_naming_the_option(tmp_path, below):
    data = three_class_file(tmp_path / "good.parquet")
    checkpoint = f"{data}/{below}"
    result = invoke("eval", data, "--checkpoint", checkpoint)
    line = one_line_error(result, 2, "--checkpoint")
    assert line == (
        f"streammetric: error: --checkpoint {checkpoint}: {data} is a file, not a directory"
    )
    with pytest.raises(ConfigError) as caught:
        sm.evaluate(data, ["ce"], checkpoint=checkpoint)
    assert one_line(caught.value) == f"--checkpoint {checkpoint}: {data} is a file, not a directory"


def test_checkpoint_that_is_a_directory_is_a_usage_error(tmp_path):
    data = three_class_file(tmp_path / "good.parquet")
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ConfigError) as caught:  # was a StateError, "cannot read checkpoint"
        sm.evaluate(data, ["ce"], checkpoint=folder)
    assert one_line(caught.value) == f"--checkpoint {folder}: it is a directory, not a file"


def test_checkpoint_in_new_folders_and_an_existing_one_still_work(tmp_path):
    data = three_class_file(tmp_path / "good.parquet")
    fresh = tmp_path / "new" / "deeper" / "x.ckpt"  # folders made as mkdir -p
    first = invoke("eval", data, "--checkpoint", fresh, "--format", "json")
    assert first.exit_code == 0, first.output
    assert fresh.is_file()
    again = invoke("eval", data, "--checkpoint", fresh, "--format", "json")  # resumed
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["metrics"] == json.loads(first.stdout)["metrics"]
    # and a file below a file is still refused after those ran
    below = invoke("eval", data, "--checkpoint", data / "x.ckpt")
    one_line_error(below, 2, "--checkpoint", "is a file, not a directory")


# --- item 3: shape errors name the column -------------------------------------------------------


PER_ROW = "`labels` and `preds` must have the same shape per row, got (4, 1) and (4, 3)"
SAME = "`labels` and `preds` must have the same shape, got (4,) and (4, 3)"


@pytest.mark.parametrize(
    ("metric", "rule"), [("pearsonr", PER_ROW), ("mae", PER_ROW), ("bce", SAME)]
)
def test_shape_errors_name_the_prediction_column(tmp_path, metric, rule):
    data = three_class_file(tmp_path / "good.parquet")
    for skip in ((), ("--on-invalid", "skip")):  # a shape is not a row to skip
        result = invoke("eval", data, "-m", metric, *skip)
        line = one_line_error(result, 1, "column `probs`")
        assert line == f"streammetric: error: {data}: column `probs`: {rule}"
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(data, [metric])
    error = caught.value
    assert (error.path, error.column, error.argument) == (str(data), "probs", "preds")


@pytest.mark.parametrize("metric", [PearsonCorrelation, MAE, BinaryCrossEntropy])
def test_metric_shape_errors_name_preds(metric):
    labels, preds = np.array([0, 1]), np.full((2, 3), 1 / 3)
    with pytest.raises(InvalidInputError, match="must have the same shape") as caught:
        metric().update(labels, preds)
    assert caught.value.argument == "preds"
