"""``explain`` refuses sample weights that are negative or NaN, as ``eval`` does: the Python API
with an `InvalidInputError` of ``sample_weight`` and its row, the command with one line naming
the file, the weight column and the row in the file (not in the batch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric._exceptions import InvalidInputError
from streammetric.cli_common import EXIT_DATA
from streammetric.engine.partial import batch_weights
from streammetric.io import ColumnSpec, iter_unit, plan, resolve_units
from tests.cli.helpers import invoke

RULE = "must be finite and >= 0"
ROWS, ROW_GROUP = 8, 4  # two row groups: rows 0-3 and 4-7


def weights_file(path: Path, bad_row: int | None = None, bad: float = -1.0) -> Path:
    """``label`` (3 classes), ``probs`` (list<float32> of 3 probabilities), ``w`` (float64,
    ``bad`` at ``bad_row``), in row groups of `ROW_GROUP` rows."""
    rng = np.random.default_rng(7)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=ROWS).astype(np.float32)
    weights = np.linspace(0.25, 2.0, ROWS)
    if bad_row is not None:
        weights[bad_row] = bad
    table = pa.table(
        {
            "label": pa.array(np.arange(ROWS) % 3, pa.int64()),
            "probs": pa.array(list(probs), pa.list_(pa.float32())),
            "w": pa.array(weights, pa.float64()),
        }
    )
    pq.write_table(table, path, row_group_size=ROW_GROUP)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    return path


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("streammetric: error")]


BAD = pytest.mark.parametrize(
    ("bad", "shown"), [(-1.0, "-1.0"), (math.nan, "nan")], ids=["negative", "nan"]
)
ROW = pytest.mark.parametrize("row", [1, 6], ids=["first-row-group", "second-row-group"])


# --- the command --------------------------------------------------------------------------------


@BAD
@ROW
def test_explain_refuses_a_bad_weight_as_eval_does(tmp_path, bad, shown, row):
    path = weights_file(tmp_path / "w.parquet", row, bad)
    result = invoke("explain", path, "--weights", "w")
    evaluated = invoke("eval", path, "-m", "ce", "--weights", "w")
    assert result.exit_code == evaluated.exit_code == EXIT_DATA, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # click's exit: nothing raised past it
    assert result.stdout == ""  # no table
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert f"row {row}" in lines[0] and f"{RULE}, got {shown}" in lines[0], lines[0]


@BAD
@ROW
def test_explain_names_the_file_the_column_and_the_files_row(tmp_path, bad, shown, row):
    path = weights_file(tmp_path / "w.parquet", row, bad)
    result = invoke("explain", path, "--weights", "w")
    lines = error_lines(result)
    assert lines == [f"streammetric: error: {path}: column `w`, row {row}: {RULE}, got {shown}"]
    assert lines == error_lines(invoke("eval", path, "-m", "ce", "--weights", "w"))


def test_valid_weights_give_the_same_weighted_mean_as_eval(tmp_path):
    path = weights_file(tmp_path / "w.parquet")
    explained = invoke("explain", path, "--weights", "w", "--format", "json")
    evaluated = invoke("eval", path, "-m", "ce", "--weights", "w", "--format", "json")
    assert explained.exit_code == evaluated.exit_code == 0, explained.output + evaluated.output
    exact = json.loads(explained.stdout)["conventions"]["exact"]["value"]
    assert exact == json.loads(evaluated.stdout)["metrics"]["cross-entropy"]
    unweighted = invoke("explain", path, "--format", "json")
    assert json.loads(unweighted.stdout)["conventions"]["exact"]["value"] != exact


# --- the weights of a file's batches (what the command checks with) ------------------------------


def read_weights(*paths: Path) -> list[np.ndarray | None]:
    spec = ColumnSpec(weights="w")
    units = plan([str(path) for path in paths], spec)
    resolved = resolve_units(units, spec)
    assert resolved is not None
    return [batch_weights(batch, resolved) for unit in units for batch in iter_unit(unit, resolved)]


@BAD
@ROW
def test_batch_weights_locate_a_bad_weight_in_its_file(tmp_path, bad, shown, row):
    good = weights_file(tmp_path / "good.parquet")
    path = weights_file(tmp_path / "bad.parquet", row, bad)
    with pytest.raises(InvalidInputError) as caught:
        read_weights(good, path)  # the bad file second: its row, not the run's
    error = caught.value
    assert str(error) == f"{path}: column `w`, row {row}: {RULE}, got {shown}"
    assert (error.path, error.column, error.row, error.rule) == (str(path), "w", row, RULE)
    assert error.argument == "sample_weight"
    assert error.value == bad or (math.isnan(bad) and math.isnan(error.value))


def test_batch_weights_keep_valid_weights(tmp_path):
    parts = read_weights(weights_file(tmp_path / "w.parquet"))
    assert len(parts) == 2  # a batch a row group
    np.testing.assert_array_equal(np.concatenate(parts), np.linspace(0.25, 2.0, ROWS))


# --- the Python API --------------------------------------------------------------------------------


def batch(rows: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return np.arange(rows) % 3, rng.dirichlet([1.0, 1.0, 1.0], size=rows)


@BAD
@pytest.mark.parametrize("as_type", [np.asarray, list], ids=["array", "list"])
def test_api_refuses_a_bad_weight_with_its_row(bad, shown, as_type):
    labels, probs = batch()
    weights = np.ones(4)
    weights[2] = bad
    with pytest.raises(InvalidInputError) as caught:
        sm.explain(labels, probs, sample_weight=as_type(weights))
    error = caught.value
    assert str(error) == f"`sample_weight` row 2 {RULE}, got {shown}"
    assert (error.argument, error.row, error.rule) == ("sample_weight", 2, RULE)
    assert error.value == bad or (math.isnan(bad) and math.isnan(error.value))
    assert (error.path, error.column) == (None, None)


def test_api_refuses_a_bad_weight_of_rows_with_several_dimensions():
    labels = np.zeros((3, 2), dtype=np.int64)
    probs = np.full((3, 2, 3), 1 / 3)
    weights = np.ones((3, 2))
    weights[1, 1] = -2.0
    with pytest.raises(InvalidInputError) as caught:
        sm.explain(labels, probs, sample_weight=weights)
    assert (caught.value.argument, caught.value.row) == ("sample_weight", (1, 1))
    assert str(caught.value) == f"`sample_weight` row (1, 1) {RULE}, got -2.0"


def test_api_binary_refuses_a_negative_weight():
    with pytest.raises(InvalidInputError, match=r"`sample_weight` row 0 must be finite and >= 0"):
        sm.explain([0, 1], [0.2, 0.9], sample_weight=[-0.5, 1.0])


def test_api_valid_weights_keep_their_values():
    labels, probs = batch(6)
    weights = np.array([0.0, 1.0, 2.5, 0.0, 1.0, 3.0])  # 0 is a valid weight
    report = sm.explain(labels, probs, sample_weight=weights)
    for result in report.results:
        assert result.value == sm.functional.cross_entropy(
            labels, probs, convention=result.name, sample_weight=weights
        )
    rows = np.log(probs[np.arange(6), labels])
    assert report.value("exact") == pytest.approx(-(weights @ rows) / weights.sum(), rel=1e-12)


def test_api_weights_of_the_wrong_shape_are_still_refused_by_shape():
    labels, probs = batch()
    with pytest.raises(InvalidInputError, match=r"`sample_weight` must have shape \(4,\)"):
        sm.explain(labels, probs, sample_weight=[1.0, -1.0, 1.0])
