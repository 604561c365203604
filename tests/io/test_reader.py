"""Sources, units of work and reading: Parquet, hive directories, Arrow IPC files and streams."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from streammetric._exceptions import InvalidInputError
from streammetric.io import (
    Batch,
    ColumnSpec,
    ResolvedColumns,
    Unit,
    fingerprint,
    group_codes,
    iter_unit,
    plan,
    read_unit,
    resolve_units,
)
from tests.io.fixtures import (
    ipc_stream_bytes,
    list_array,
    prediction_table,
    write_ipc,
    write_parquet,
)


def read_all(units, columns=None, **options) -> list[Batch]:
    spec = columns or resolve_units(units, ColumnSpec())
    return [batch for unit in units for batch in iter_unit(unit, spec, **options)]


def concat(batches, field):
    return np.concatenate([getattr(batch, field) for batch in batches])


def owns_no_memory(array: np.ndarray) -> bool:
    """True when ``array`` is a view whose memory belongs to an Arrow buffer."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array.base is not None and not array.flags.owndata


@pytest.mark.parametrize("kind", ["list", "large_list", "fixed_size_list"])
def test_parquet_row_groups_become_units(tmp_path, kind):
    table = prediction_table(250, 4, kind=kind)
    path = write_parquet(tmp_path / "preds.parquet", table, row_group_size=100)
    units = plan([path], ColumnSpec())
    assert [(u.index, u.num_rows, u.row_offset) for u in units] == [
        (0, 100, 0),
        (1, 100, 100),
        (2, 50, 200),
    ]
    assert units[1].key == f"{path}#rg1" and units[1].kind == "parquet"
    batches = read_all(units)
    np.testing.assert_array_equal(concat(batches, "labels"), table["label"].to_numpy())
    expected = np.stack(table["probs"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(concat(batches, "preds"), expected)
    assert batches[0].preds.dtype == np.float32 and batches[0].labels.dtype == np.int64
    assert all(owns_no_memory(batch.preds) for batch in batches)
    assert batches[2].row_offset == 200 and batches[2].num_rows == 50


def test_a_row_group_is_read_in_slices_with_their_file_rows(tmp_path, monkeypatch):
    import streammetric.io.reader as reader

    monkeypatch.setattr(reader, "slice_rows", lambda resolved: 64)
    table = prediction_table(300, 3)
    rows = table["probs"].to_pylist()
    rows[200] = None  # row 200: in the second row group's first slice
    table = table.set_column(1, "probs", pa.array(rows, pa.list_(pa.float32())))
    path = write_parquet(tmp_path / "preds.parquet", table, row_group_size=150)
    units = plan([path], ColumnSpec())
    batches = read_all(units, on_invalid="skip")
    assert [(b.row_offset, b.num_rows + b.invalid_count) for b in batches] == [
        (0, 64), (64, 64), (128, 22), (150, 64), (214, 64), (278, 22)
    ]  # fmt: skip
    assert [b.invalid_count for b in batches] == [0, 0, 0, 1, 0, 0]
    kept = np.delete(np.arange(300), 200)
    np.testing.assert_array_equal(concat(batches, "labels"), table["label"].to_numpy()[kept])
    with pytest.raises(InvalidInputError, match=r"column `probs`, row 200: "):
        read_all(units)


def test_slices_hold_about_two_mib_of_predictions():
    from streammetric.io.reader import slice_rows

    widths = [
        slice_rows(ResolvedColumns("y", "sparse", ("p",), "list", pred_width=k))
        for k in (10, 64, 1000)
    ]
    assert widths == [32768, 8192, 4096]


def test_units_are_picklable_and_json_round_trip(tmp_path):
    path = write_parquet(tmp_path / "split=test" / "a.parquet", prediction_table(10))
    (unit,) = plan([tmp_path])
    assert unit.partitions == (("split", "test"),)
    assert Unit.from_dict(json.loads(json.dumps(unit.to_dict()))) == unit
    assert pickle.loads(pickle.dumps(unit)) == unit
    assert unit.key == f"{path}#rg0"


def test_scalar_and_glob_predictions(tmp_path):
    table = pa.table(
        {
            "y": np.array([0.0, 1.0, 1.0]),
            "p_1": pa.array([0.2, 0.7, 0.9], pa.float32()),
            "x": [1, 2, 3],
            "p_0": pa.array([0.8, 0.3, 0.1], pa.float32()),
            "score": [0.1, 0.2, 0.3],
        }
    )
    path = write_parquet(tmp_path / "a.parquet", table)
    spec = ColumnSpec(preds="p_*")
    (batch,) = read_all(plan([path], spec), spec)
    assert batch.preds.dtype == np.float32 and batch.preds.shape == (3, 2)
    np.testing.assert_array_equal(batch.preds[:, 0], table["p_0"].to_numpy())  # class 0: p_0
    spec = ColumnSpec(preds="score")
    (scalar,) = read_all(plan([path], spec), spec)
    assert scalar.preds.shape == (3,) and scalar.labels.dtype == np.float64
    assert owns_no_memory(scalar.preds)


def test_weights_and_string_groups(tmp_path):
    table = prediction_table(6).append_column("split", pa.array(["a", "b", "a", "b", None, "a"]))
    path = write_parquet(tmp_path / "a.parquet", table)
    spec = ColumnSpec(weights="w", by=("split",))
    (batch,) = read_all(plan([path], spec), spec)
    assert batch.weights.dtype == np.float64
    np.testing.assert_array_equal(batch.weights, table["w"].to_numpy())
    codes, keys = group_codes(batch.groups)
    assert [keys[code] for code in codes] == [("a",), ("b",), ("a",), ("b",), (None,), ("a",)]


def test_hive_directory_partitions_skip_hidden_and_sort(tmp_path):
    for split, day, rows in [("train", 1, 30), ("test", 2, 20), ("test", 11, 10)]:
        write_parquet(
            tmp_path / f"split={split}" / f"day={day}" / "part-0.parquet", prediction_table(rows)
        )
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "split=test" / ".part-0.parquet.crc").write_bytes(b"crc")
    (tmp_path / "split=test" / "notes.txt").write_text("not data")
    write_parquet(tmp_path / "split=test" / "day=2" / "part-1.parquet.tmp", prediction_table(5))
    write_parquet(tmp_path / "_temporary" / "part-9.parquet", prediction_table(5))
    spec = ColumnSpec(by=("split", "day"))
    units = plan([tmp_path], spec)
    assert [unit.path for unit in units] == sorted(unit.path for unit in units)
    assert [unit.partitions for unit in units] == [
        (("split", "test"), ("day", 11)),
        (("split", "test"), ("day", 2)),
        (("split", "train"), ("day", 1)),
    ]
    dataset_types = ds.dataset(tmp_path, partitioning="hive", exclude_invalid_files=True).schema
    assert dataset_types.field("day").type == pa.int32()
    rows: dict[tuple, int] = {}
    for batch in read_all(units, spec):
        assert batch.groups["day"].type.value_type == pa.int32()
        codes, keys = group_codes(batch.groups)
        for code in codes:
            rows[keys[code]] = rows.get(keys[code], 0) + 1
    assert rows == {("train", 1): 30, ("test", 2): 20, ("test", 11): 10}


def test_partition_values_that_do_not_all_parse_stay_strings(tmp_path):
    write_parquet(tmp_path / "k=007" / "a.parquet", prediction_table(3))
    write_parquet(tmp_path / "k=x%20y" / "a.parquet", prediction_table(3))
    assert [unit.partitions for unit in plan([tmp_path])] == [(("k", "007"),), (("k", "x y"),)]


def test_ipc_file_record_batches_become_units(tmp_path):
    table = prediction_table(250, 3, kind="fixed_size_list")
    path = write_ipc(tmp_path / "preds.arrow", table, chunk=100)
    units = plan([path])
    assert [(u.kind, u.index, u.num_rows, u.row_offset) for u in units] == [
        ("ipc_file", 0, 100, 0),
        ("ipc_file", 1, 100, 100),
        ("ipc_file", 2, 50, 200),
    ]
    assert units[2].key == f"{path}#batch2"
    batches = read_all(units)
    np.testing.assert_array_equal(concat(batches, "labels"), table["label"].to_numpy())
    assert all(owns_no_memory(batch.preds) for batch in batches)


def test_compressed_feather_file(tmp_path):
    table = prediction_table(120, 3)
    path = tmp_path / "preds.feather"
    feather.write_feather(table, path, compression="zstd", chunksize=50)
    units = plan([path])
    assert [u.num_rows for u in units] == [50, 50, 20]
    np.testing.assert_array_equal(concat(read_all(units), "labels"), table["label"].to_numpy())


def test_ipc_stream_file_is_detected_by_magic_and_read_sequentially(tmp_path):
    table = prediction_table(250, 3)
    path = write_ipc(tmp_path / "preds.arrow", table, stream=True, chunk=100)
    (unit,) = plan([path])
    assert (unit.kind, unit.index, unit.num_rows, unit.sequential) == (
        "ipc_stream",
        None,
        None,
        True,
    )
    batches = read_all([unit])
    assert [b.row_offset for b in batches] == [0, 100, 200]
    np.testing.assert_array_equal(concat(batches, "labels"), table["label"].to_numpy())
    with pytest.raises(ValueError, match="use iter_unit"):
        read_unit(unit, ColumnSpec())


def test_extensionless_file_in_directory_is_sniffed(tmp_path):
    write_ipc(tmp_path / "part-0", prediction_table(10))
    write_parquet(tmp_path / "part-1", prediction_table(20))
    assert [(unit.kind, unit.num_rows) for unit in plan([tmp_path])] == [
        ("ipc_file", 10),
        ("parquet", 20),
    ]


@pytest.mark.parametrize("file_format", [False, True])
def test_stdin_stream(monkeypatch, file_format):
    table = prediction_table(250, 3, pred_name="logits")
    data = ipc_stream_bytes(table, chunk=100)
    if file_format:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=100)
        data = sink.getvalue().to_pybytes()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    units = plan(["-"])
    assert [unit.key for unit in units] == ["-#stream"]
    columns = resolve_units(units)
    assert columns.from_logits and columns.notes
    batches = read_all(units, columns)
    assert [batch.num_rows for batch in batches] == [100, 100, 50]
    np.testing.assert_array_equal(concat(batches, "labels"), table["label"].to_numpy())
    with pytest.raises(ValueError, match="already read"):
        read_all(units, columns)


def test_stdin_through_a_real_pipe():
    script = (
        "from streammetric.io import plan, iter_unit, ColumnSpec;"
        "print(sum(b.num_rows for u in plan(['-']) for b in iter_unit(u, ColumnSpec())))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=ipc_stream_bytes(prediction_table(321)),
        capture_output=True,
        check=True,
    )
    assert result.stdout.strip() == b"321"


def test_fingerprint_changes_with_the_inputs(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", prediction_table(30), row_group_size=10)
    first = fingerprint(plan([path]))
    assert first == fingerprint(plan([str(path)])) and len(first) == 64
    write_parquet(path, prediction_table(30), row_group_size=15)
    os.utime(path, ns=(1, 1))
    assert fingerprint(plan([path])) != first


def test_duplicate_paths_are_read_once(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", prediction_table(10))
    assert len(plan([path, tmp_path, str(path)])) == 1


def test_memory_stays_bounded_by_one_row_group(tmp_path):
    num_groups, group_rows = 40, 4000
    table = prediction_table(num_groups * group_rows, 8).cast(
        pa.schema([("label", pa.int64()), ("probs", pa.list_(pa.float64())), ("w", pa.float64())])
    )
    path = write_parquet(tmp_path / "big.parquet", table, row_group_size=group_rows)
    del table
    units = plan([path])
    columns = resolve_units(units)
    group_bytes = group_rows * (8 * 8 + 8 + 4)
    baseline = pa.total_allocated_bytes()
    peak = 0
    for unit in units:
        batch = read_unit(unit, columns)
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        del batch
    assert len(units) == num_groups
    assert 0 < peak < 4 * group_bytes < num_groups * group_bytes / 5


def test_concurrent_reads_equal_sequential_reads(tmp_path):
    paths = [
        write_parquet(tmp_path / f"{name}.parquet", prediction_table(800, 5), row_group_size=50)
        for name in "ab"
    ]
    write_ipc(tmp_path / "c.arrow", prediction_table(800, 5), chunk=50)
    units = plan([*paths, tmp_path / "c.arrow"])
    columns = resolve_units(units)
    sequential = [read_unit(unit, columns) for unit in units]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            concurrent = list(pool.map(lambda unit: read_unit(unit, columns), units * 2))
            for left, right in zip(sequential * 2, concurrent, strict=True):
                assert left.unit == right.unit
                np.testing.assert_array_equal(left.preds, right.preds)
                np.testing.assert_array_equal(left.labels, right.labels)


def test_spec_can_be_passed_instead_of_resolved_columns(tmp_path):
    table = pa.table({"target": [0, 1], "logits": list_array(np.eye(2, dtype=np.float32))})
    path = write_parquet(tmp_path / "a.parquet", table)
    (batch,) = read_all(plan([path]), ColumnSpec())
    assert batch.labels.tolist() == [0, 1] and batch.preds.shape == (2, 2)


def test_dense_labels_and_only_needed_columns_are_read(tmp_path, monkeypatch):
    targets = np.eye(3, dtype=np.float64)[[0, 2, 1, 1]]
    table = pa.table(
        {
            "target": list_array(targets),
            "unused": list_array(np.ones((4, 50))),
            "probs": list_array(np.full((4, 3), 1 / 3, dtype=np.float32)),
        }
    )
    path = write_parquet(tmp_path / "a.parquet", table)
    requested: list = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, columns=None, **options):
        requested.append(columns)
        return original(self, *args, columns=columns, **options)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    (batch,) = read_all(plan([path]))
    # the needed columns only, each time (the first rows once more: the lists' width)
    assert requested == [["target", "probs"]] * 2
    assert resolve_units(plan([path])).label_kind == "dense"
    np.testing.assert_array_equal(batch.labels, targets)
