"""``streammetric compare --by`` when the two sides disagree about a paired row's group: the
two files then disagree about what the row is, and a group's numbers would mix the two
groupings (the candidate's value over its own group's rows, the paired rows and p over the
baseline's). Refused like paired rows whose labels differ: one line naming file, column and
row. Groups that agree (also NaN and null keys, and 1 against 1.0) still compare."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .helpers import invoke
from .test_compare import FAST, ROWS, tables
from .test_issue21_cli import one_line_error


def _with_groups(table: pa.Table, groups: list) -> pa.Table:
    return table.append_column("g", pa.array(groups))


@pytest.mark.parametrize("layout", ["same order", "shuffled"])
def test_a_pair_in_other_groups_is_refused_naming_file_column_and_row(tmp_path, layout):
    base, cand = tables()
    groups = [f"g{i % 4}" for i in range(ROWS)]
    moved = list(groups)
    moved[41] = "g0" if groups[41] != "g0" else "g1"
    base = _with_groups(base, groups)
    cand = _with_groups(cand, moved)
    if layout == "shuffled":
        cand = cand.take(pa.array(np.random.default_rng(5).permutation(ROWS)))
    pq.write_table(base, tmp_path / "base.parquet", row_group_size=128)
    pq.write_table(cand, tmp_path / "cand.parquet", row_group_size=100)
    result = invoke(
        "compare", tmp_path / "base.parquet", tmp_path / "cand.parquet", "-m", "acc", "--by", "g",
        *FAST,
    )  # fmt: skip
    line = one_line_error(
        result, 1, f"{tmp_path / 'base.parquet'}: column `g`, row 41: its value 'g1'"
    )
    assert f"candidate's {moved[41]!r}" in line
    assert "same --by group" in line and "(`id`)" in line
    assert result.stdout == ""


def test_a_candidate_group_the_baseline_lacks_is_refused(tmp_path):
    """The QA case: half the candidate's rows relabelled g0, so whole groups of the baseline
    had no candidate value but a p-value from the baseline's pairs."""
    base, cand = tables()
    groups = [f"g{i % 4}" for i in range(ROWS)]
    base = _with_groups(base, groups)
    cand = _with_groups(cand, [g if i % 2 else "gX" for i, g in enumerate(groups)])
    pq.write_table(base, tmp_path / "base.parquet")
    pq.write_table(cand, tmp_path / "cand.parquet")
    result = invoke(
        "compare", tmp_path / "base.parquet", tmp_path / "cand.parquet", "-m", "acc", "--by", "g",
        *FAST,
    )  # fmt: skip
    one_line_error(result, 1, "column `g`, row 0: its value 'g0' is not the candidate's 'gX'")


def test_groups_that_agree_compare_also_nan_and_null(tmp_path):
    base, cand = tables()
    values = [None if i % 5 == 0 else (float("nan") if i % 5 == 1 else i % 3) for i in range(ROWS)]
    base = base.append_column("g", pa.array(values, pa.float64()))
    cand = cand.append_column("g", pa.array(values, pa.float64()))
    cand = cand.take(pa.array(np.random.default_rng(2).permutation(ROWS)))
    pq.write_table(base, tmp_path / "base.parquet")
    pq.write_table(cand, tmp_path / "cand.parquet")
    result = invoke(
        "compare", tmp_path / "base.parquet", tmp_path / "cand.parquet", "-m", "acc", "-m", "ce",
        "--by", "g", "--format", "json", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["groups"]) == 5
    assert sum(group["rows"] for group in data["groups"]) == ROWS
    for group in data["groups"]:
        assert group["metrics"]["accuracy"]["candidate"] is not None


def test_int_and_float_group_columns_of_equal_values_compare(tmp_path):
    base, cand = tables()
    base = base.append_column("g", pa.array([i % 3 for i in range(ROWS)], pa.int64()))
    cand = cand.append_column("g", pa.array([float(i % 3) for i in range(ROWS)], pa.float64()))
    pq.write_table(base, tmp_path / "base.parquet")
    pq.write_table(cand, tmp_path / "cand.parquet")
    result = invoke(
        "compare", tmp_path / "base.parquet", tmp_path / "cand.parquet", "-m", "acc",
        "--by", "g", "--format", "json", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [g["rows"] for g in json.loads(result.stdout)["groups"]] == [200, 200, 200]
