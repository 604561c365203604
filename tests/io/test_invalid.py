"""Bad input: one-line errors naming file, column and row; the skip policy counts exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.io import ColumnSpec, group_codes, iter_unit, plan, read_unit, resolve_units
from tests.io.fixtures import list_array, prediction_table, probabilities, write_ipc, write_parquet


def read_everything(paths, spec=None, **options):
    spec = spec or ColumnSpec()
    units = plan(paths, spec)
    columns = resolve_units(units, spec)
    return [batch for unit in units for batch in iter_unit(unit, columns, **options)]


def single_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_ragged_list_names_file_column_and_absolute_row(tmp_path):
    rows = [list(row) for row in probabilities(2000, 10)]
    rows[1041] = rows[1041][:9]
    table = pa.table({"label": np.zeros(2000, dtype=np.int64), "probs": pa.array(rows)})
    path = write_parquet(tmp_path / "preds.parquet", table, row_group_size=500)
    with pytest.raises(InvalidInputError) as error:
        read_everything([path])
    assert single_line(error) == (
        f"{path}: column `probs`, row 1041: list has 9 values, expected 10 (ragged lists)"
    )


@pytest.mark.parametrize(
    ("column", "values", "rule"),
    [
        ("label", pa.array([0, 1, None, 1] * 3), "null value (nulls are not allowed in labels)"),
        ("probs", pa.array([[0.5, 0.5]] * 6 + [None] + [[0.5, 0.5]] * 5), "null value"),
        ("probs", pa.array([[0.5, 0.5]] * 6 + [[0.5, None]] + [[0.5, 0.5]] * 5), "contains a null"),
        ("w", pa.array([1.0] * 6 + [None] + [1.0] * 5), "nulls are not allowed in weights"),
    ],
)
def test_nulls_are_rejected_with_the_row(tmp_path, column, values, rule):
    columns = {"label": pa.array([0, 1] * 6), "probs": pa.array([[0.5, 0.5]] * 12), "w": [1.0] * 12}
    columns[column] = values
    path = write_parquet(tmp_path / "preds.parquet", pa.table(columns), row_group_size=4)
    with pytest.raises(InvalidInputError) as error:
        read_everything([path], ColumnSpec(weights="w"))
    row = 2 if column == "label" else 6
    assert single_line(error).startswith(f"{path}: column `{column}`, row {row}: ")
    assert rule in str(error.value)


def test_skip_drops_and_counts_exactly(tmp_path):
    num_rows = 60
    matrix = probabilities(num_rows, 3)
    rows: list = [list(row) for row in matrix]
    rows[3] = rows[3][:2]  # ragged
    rows[17] = None  # null list
    rows[25] = [0.1, None, 0.9]  # null inside
    labels = pa.array([None if i == 40 else i % 3 for i in range(num_rows)])
    weights = pa.array([None if i == 55 else 1.0 for i in range(num_rows)])
    split = pa.array(["a", "b", "c"] * 20)
    table = pa.table({"label": labels, "probs": pa.array(rows), "w": weights, "split": split})
    path = write_parquet(tmp_path / "preds.parquet", table, row_group_size=20)
    spec = ColumnSpec(weights="w", by=("split",))
    batches = read_everything([path], spec, on_invalid="skip")
    dropped = [3, 17, 25, 40, 55]
    kept = np.setdiff1d(np.arange(num_rows), dropped)
    assert sum(batch.invalid_count for batch in batches) == len(dropped)
    assert sum(batch.num_rows for batch in batches) == num_rows - len(dropped)
    np.testing.assert_array_equal(np.concatenate([b.source_rows() for b in batches]), kept)
    np.testing.assert_array_equal(np.concatenate([b.preds for b in batches]), matrix[kept])
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), kept % 3)
    assert [batch.first_invalid_reason.split(":")[1] for batch in batches] == [
        " column `probs`, row 3",
        " column `probs`, row 25",
        " column `label`, row 40",
    ]
    for batch in batches:
        assert len(batch.groups["split"]) == batch.num_rows == len(batch.weights)
        codes, keys = group_codes(batch.groups)
        assert [keys[code][0] for code in codes] == ["abc"[row % 3] for row in batch.source_rows()]


def test_skip_with_nothing_invalid_reports_none(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", prediction_table(10))
    (batch,) = read_everything([path], on_invalid="skip")
    assert (batch.invalid, batch.invalid_count, batch.first_invalid_reason) == (None, 0, None)


def test_bad_policy_is_a_config_error(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", prediction_table(10))
    with pytest.raises(ConfigError, match="`on_invalid` must be 'raise' or 'skip', got 'drop'"):
        read_unit(plan([path])[0], ColumnSpec(), on_invalid="drop")


def test_missing_paths_and_empty_inputs(tmp_path):
    with pytest.raises(InvalidInputError, match=r"nope\.parquet: no such file or directory"):
        plan([tmp_path / "nope.parquet"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="empty: no Parquet or Arrow IPC files"):
        plan([tmp_path / "empty"])
    with pytest.raises(ConfigError, match="no input paths"):
        plan([])


def test_files_that_are_not_parquet_or_arrow(tmp_path):
    (tmp_path / "preds.csv").write_text("label,probs\n1,0.5\n")
    with pytest.raises(InvalidInputError, match=r"preds\.csv: not a Parquet or Arrow IPC file"):
        plan([tmp_path / "preds.csv"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "zero.parquet").write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"zero\.parquet: .*the file is empty"):
        plan([tmp_path / "data"])


def test_truncated_parquet_fails_at_plan(tmp_path):
    path = write_parquet(tmp_path / "preds.parquet", prediction_table(100))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InvalidInputError) as error:
        plan([path])
    assert single_line(error).startswith(f"{path}: cannot read Parquet footer: ")


def test_corrupt_parquet_page_fails_at_read_with_the_rows(tmp_path):
    path = write_parquet(tmp_path / "preds.parquet", prediction_table(100), row_group_size=50)
    units = plan([path])
    data = bytearray(path.read_bytes())
    data[4:304] = b"\x07" * 300
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError) as error:
        read_unit(units[0], ColumnSpec())
    assert single_line(error).startswith(f"{path}: row group 0 (rows 0-49): ")


def test_corrupt_ipc_file(tmp_path):
    path = write_ipc(tmp_path / "preds.arrow", prediction_table(100))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(InvalidInputError) as error:
        plan([path])
    assert single_line(error).startswith(f"{path}: cannot read Arrow IPC file: ")


def test_unknown_column_at_plan_lists_available_columns(tmp_path):
    path = write_parquet(tmp_path / "preds.parquet", prediction_table(10))
    with pytest.raises(ConfigError) as error:
        plan([path], ColumnSpec(preds="scores"))
    assert single_line(error) == (
        f"{path}: prediction column `scores` not found (available columns: label, probs, w)"
    )


def test_unsupported_label_and_prediction_types_at_plan(tmp_path):
    table = pa.table({"label": ["cat", "dog"], "probs": ["x", "y"], "p": [0.1, 0.2]})
    path = write_parquet(tmp_path / "preds.parquet", table)
    with pytest.raises(InvalidInputError, match=r"preds\.parquet: column `label`: type string"):
        plan([path], ColumnSpec(preds="p"))
    with pytest.raises(InvalidInputError, match=r"preds\.parquet: column `probs`: type string is"):
        plan([path], ColumnSpec(labels="p"))


def test_files_that_resolve_differently_are_rejected(tmp_path):
    write_parquet(tmp_path / "a.parquet", prediction_table(10))
    scalar = pa.table({"label": [0.0, 1.0], "probs": [0.2, 0.9]})
    write_parquet(tmp_path / "b.parquet", scalar)
    with pytest.raises(InvalidInputError) as error:
        plan([tmp_path])
    assert single_line(error) == (
        f"{tmp_path / 'b.parquet'}: columns differ from {tmp_path / 'a.parquet'}: labels are "
        "floats (binary labels) here and integer class indices there (every input must have the "
        "same columns, of the same kinds; integer and float widths may differ)"
    )


def test_list_width_differs_between_units_of_one_file(tmp_path):
    table = pa.table({"label": [0, 1, 0, 1], "probs": list_array(np.full((4, 2), 0.5))})
    path = write_parquet(tmp_path / "a.parquet", table)
    columns = resolve_units(plan([path]))
    columns = dataclasses.replace(columns, pred_width=3)
    with pytest.raises(InvalidInputError, match=r"row 0: list has 2 values, expected 3"):
        read_unit(plan([path])[0], columns)
