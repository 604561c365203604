"""Lists of any length keep the run's first length across slices, row groups, files and
in-memory inputs: a list of another length is a ragged row (raise: one line naming file,
column and row; skip: counted), never a silent change of the number of classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine import Job
from streammetric.engine.watch import Watcher
from streammetric.io import ColumnSpec, plan, resolve_units
from tests.cli.helpers import invoke
from tests.cli.test_issue21_cli import one_line_error


def table(rows: int, classes: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(classes), rows)
    return pa.table({"label": rng.integers(0, classes, rows), "probs": pa.array(probs.tolist())})


def test_a_file_of_other_widths_is_ragged_where_it_starts(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(table(30, 3, 1), folder / "a.parquet")
    pq.write_table(table(20, 2, 2), folder / "b.parquet")
    metrics = ("-m", "ce", "-m", "brier", "-m", "confusion_matrix")
    one_line_error(
        invoke("eval", folder, *metrics),
        1,
        f"{folder / 'b.parquet'}: column `probs`, row 0: list has 2 values, expected 3",
    )
    units = plan([str(folder)], ColumnSpec())
    assert resolve_units(units, ColumnSpec()).pred_width == 3  # the first list's


def test_row_groups_of_other_widths_raise_at_the_first_row_or_are_skipped(tmp_path):
    first, second = table(40, 3, 1), table(25, 2, 2)
    writer_path = tmp_path / "mixed.parquet"
    with pq.ParquetWriter(writer_path, first.schema) as writer:
        writer.write_table(first)
        writer.write_table(second)
    one_line_error(
        invoke("eval", writer_path, "-m", "ce"),
        1,
        "column `probs`, row 40: list has 2 values, expected 3 (ragged lists)",
    )
    skipped = invoke("eval", writer_path, "-m", "ce", "--on-invalid", "skip", "--format", "json")
    assert skipped.exit_code == 0, skipped.output
    alone = tmp_path / "first.parquet"
    pq.write_table(first, alone)
    clean = json.loads(invoke("eval", alone, "-m", "ce", "--format", "json").stdout)
    result = json.loads(skipped.stdout)
    assert result["invalid_rows"] == 25 and result["rows"] == 40
    assert result["metrics"] == clean["metrics"]


def test_the_first_list_may_follow_nulls(tmp_path):
    probs = [None, None, [0.2, 0.8], [0.5, 0.5, 0.0]]
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"label": [0, 1, 1, 0], "probs": probs}), path)
    result = invoke("eval", path, "-m", "ce", "--on-invalid", "skip", "--format", "json")
    assert json.loads(result.stdout)["invalid_rows"] == 3  # two nulls, one of 3 values


def test_in_memory_inputs_and_multilabel_columns(tmp_path):
    with pytest.raises(sm.InvalidInputError, match="list has 2 values, expected 3") as raised:
        sm.evaluate([table(10, 3, 1), table(10, 2, 2)], ["ce"])
    assert raised.value.column == "probs" and raised.value.row == 0
    labels = pa.array([[1, 0, 1], [0, 1, 1], [1, 1], [0, 0]])
    probs = pa.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.6], [0.9, 0.8], [0.1, 0.2]])
    path = tmp_path / "ml.parquet"
    pq.write_table(pa.table({"label": labels, "probs": probs}), path, row_group_size=2)
    one_line_error(
        invoke("eval", path, "-m", "f1:class_type=multilabel,average=none"),
        1,
        "column `label`, row 2: list has 2 values, expected 3",
    )


def test_merging_multilabel_metrics_of_other_label_columns_is_refused():
    three = sm.create("f1", class_type="multilabel", average=None)
    three.update([[1, 0, 1]], [[0.9, 0.1, 0.8]])
    two = sm.create("f1", class_type="multilabel", average=None)
    two.update([[1, 0]], [[0.9, 0.1]])
    with pytest.raises(sm.StateError, match="2 label columns, this metric 3"):
        three.merge(two)
    fresh = sm.create("f1", class_type="multilabel", average=None)
    assert fresh.merge(two).get()[1].tolist() == two.get()[1].tolist()  # an empty one: any


def test_watch_reads_a_file_of_other_widths_as_ragged_and_checkpoints_without_them(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(table(30, 3, 1), folder / "a.parquet")
    job = Job([str(folder)], ["ce"], ColumnSpec(labels="label", preds="probs"))
    logs: list[str] = []
    watcher = Watcher(folder, job, threads=1, log=logs.append)
    assert watcher.poll(once=True) == 1
    assert watcher._columns is not None and watcher._columns["pred_width"] == 3
    pq.write_table(table(20, 2, 2), folder / "b.parquet")
    assert watcher.poll(once=True) == 0 and set(watcher.failed) == {"b.parquet"}
    assert "row 0: list has 2 values, expected 3 (ragged lists)" in logs[-1]  # as in eval
    watcher._columns["pred_width"] = None  # as a checkpoint of an earlier version holds them
    pq.write_table(table(20, 3, 3), folder / "c.parquet")
    assert watcher.poll(once=True) == 1
    assert watcher._columns["pred_width"] == 3 and watcher.result().rows == 50


def test_fixed_size_lists_are_not_read_ahead(tmp_path):
    probs = np.random.default_rng(0).dirichlet(np.ones(3), 10).astype(np.float32)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 3)
    path = Path(tmp_path / "fixed.parquet")
    pq.write_table(pa.table({"label": np.zeros(10, dtype=np.int64), "probs": fixed}), path)
    units = plan([str(path)], ColumnSpec())
    assert resolve_units(units, ColumnSpec()).pred_width == 3
