"""Issue 21 (io): no silently wrong number, no traceback, no hang on odd inputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric._exceptions import ConfigError, InvalidInputError

CLASSES = 12


def _stacked_table(rows: int = 240, seed: int = 0) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, rows)
    probs = rng.dirichlet(np.ones(CLASSES), rows)
    probs[np.arange(rows), labels] += 2.0
    probs /= probs.sum(axis=1, keepdims=True)
    # the order pandas' sort_index(axis=1) gives: p_0, p_1, p_10, p_11, p_2, ...
    names = sorted(f"p_{k}" for k in range(CLASSES))
    columns = {"label": pa.array(labels)}
    columns.update({name: pa.array(probs[:, int(name[2:])]) for name in names})
    return pa.table(columns), labels, probs


def test_a_prediction_glob_stacks_columns_by_the_number_in_their_names(tmp_path):
    table, labels, probs = _stacked_table()
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path)
    expected = float(-np.log(probs[np.arange(len(labels)), labels]).mean())
    result = sm.evaluate(path, ["ce", "acc"], preds="p_*")
    assert result.metrics["cross-entropy"] == pytest.approx(expected, rel=1e-12)
    assert result.metrics["accuracy"] == 1.0
    explicit = ",".join(f"p_{k}" for k in range(CLASSES)).split(",")
    assert (
        sm.evaluate(path, ["ce"], preds=explicit).metrics
        == sm.evaluate(path, ["ce"], preds="p_*").metrics
    )
    # an explicit list keeps the user's order (here: reversed, so accuracy drops)
    reversed_ = sm.evaluate(path, ["acc"], preds=explicit[::-1])
    assert reversed_.metrics["accuracy"] < 0.5


@pytest.mark.parametrize(
    ("names", "rule"),
    [
        (["p_1", "p_01", "p_2"], "same number 1"),
        (["p_0", "p_1", "p_3"], "no column has number 2"),
        (["p_0", "p_1", "p_x"], "`p_x` is not a number"),
    ],
)
def test_an_ambiguous_glob_order_is_refused(tmp_path, names, rule):
    columns = {"label": pa.array([0, 1])} | {name: pa.array([0.5, 0.25]) for name in names}
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(ConfigError, match=rule) as caught:
        sm.evaluate(path, ["ce"], preds="p_*")
    assert str(caught.value).startswith(f"{path}: prediction glob `p_*`")


def _corrupt_a_page(path, row_group: int, column: str) -> None:
    """Flip a byte in the middle of a column chunk's data page (plain encoded, uncompressed)."""
    metadata = pq.read_metadata(path)
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    chunk = metadata.row_group(row_group).column(names.index(column))
    position = chunk.data_page_offset + chunk.total_compressed_size // 2
    with open(path, "r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ 0x40]))


def test_a_corrupted_page_with_a_checksum_is_one_line_not_a_wrong_number(tmp_path):
    from tests.cli.helpers import preds_table

    path = tmp_path / "corrupt.parquet"
    table = preds_table(300, seed=3)
    options = {"row_group_size": 100, "use_dictionary": False, "compression": "none"}
    pq.write_table(table, path, write_page_checksum=True, **options)
    clean = sm.evaluate(path, ["ce"]).metrics
    _corrupt_a_page(path, 1, "probs.list.element")
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(path, ["ce"])
    message = str(caught.value)
    assert message.startswith(f"{path}: row group 1 (rows 100-199): ") and "\n" not in message
    assert "checksum" in message.lower()
    # the same file written without checksums cannot be checked: it reads (no checksum to verify)
    unchecked = tmp_path / "plain.parquet"
    pq.write_table(table, unchecked, **options)
    assert sm.evaluate(unchecked, ["ce"]).metrics == clean


# --------------------------------------------------------------------------- special files


def _cli(*args: object, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streammetric.cli", *map(str, args)]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"streammetric {' '.join(map(str, args))} hung")


def test_a_fifo_given_as_the_path_is_refused_in_one_line(tmp_path):
    fifo = tmp_path / "preds.parquet"
    os.mkfifo(fifo)
    done = _cli("eval", fifo, "-m", "ce")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"streammetric: error: {fifo}: a FIFO (named pipe), not a regular file (reading it "
        "could wait forever); give a Parquet or Arrow IPC file, or pipe an Arrow IPC stream to -\n"
    )


def test_special_files_in_a_directory_are_skipped_with_a_note(tmp_path):
    from tests.cli.helpers import write_preds

    folder = tmp_path / "drop"
    write_preds(folder / "a.parquet", 200, seed=1)
    os.mkfifo(folder / "b.parquet")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(folder / "c.sock"))
        done = _cli("eval", folder, "-m", "ce", "--format", "json")
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 200
    assert done.stderr.splitlines() == [
        f"streammetric: note: {folder / 'b.parquet'}: skipped: a FIFO (named pipe) is not a data file",
        f"streammetric: note: {folder / 'c.sock'}: skipped: a socket is not a data file",
    ]


def test_a_device_given_as_the_path_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match=r"^/dev/zero: a device, not a regular file"):
        sm.evaluate("/dev/zero", "ce")


# --------------------------------------------------------------------------- IPC streams


def _stream_bytes(table: pa.Table, batch_rows: int, *, eos: bool = True) -> tuple[bytes, int]:
    """The stream of ``table`` in batches of ``batch_rows``, and where the first batch ends."""
    sink = pa.BufferOutputStream()
    writer = ipc.new_stream(sink, table.schema)
    writer.write_batch(table.slice(0, batch_rows).to_batches()[0])
    first_end = sink.tell()
    for batch in table.slice(batch_rows).to_batches(max_chunksize=batch_rows):
        writer.write_batch(batch)
    if eos:
        writer.close()
    return sink.getvalue().to_pybytes(), first_end


def _eos_look_alike(rows: int = 200, first: int = 101) -> pa.Table:
    """A table whose first ``first`` rows, as a record batch, end with the bytes of the
    end-of-stream marker: the last column's last value is 0x00000000FFFFFFFF."""
    from tests.cli.helpers import preds_table

    table = preds_table(rows, seed=5).drop_columns(["model"])
    ids = np.arange(rows, dtype=np.int64)
    ids[first - 1] = 0xFFFFFFFF
    return table.append_column("id", pa.array(ids))


def test_watch_waits_for_a_stream_whose_batch_ends_like_the_end_marker(tmp_path):
    from streammetric.engine.local import Job
    from streammetric.engine.watch import Watcher
    from streammetric.io import ColumnSpec

    data, first_end = _stream_bytes(_eos_look_alike(), 101)
    assert data[first_end - 8 : first_end] == b"\xff\xff\xff\xff\x00\x00\x00\x00"
    folder = tmp_path / "drop"
    folder.mkdir()
    path = folder / "s.arrows"
    path.write_bytes(data[:first_end])  # half written: the writer is still at it
    watcher = Watcher(folder, Job([], ["ce"], ColumnSpec(labels="label", preds="probs")))
    assert watcher.poll(once=True) == 0 and watcher.incomplete == {"s.arrows"}
    path.write_bytes(data)
    assert watcher.poll(once=True) == 1
    assert watcher.result().rows == 200


def test_eval_of_a_stream_without_its_end_marker_says_so(tmp_path):
    data, _ = _stream_bytes(_eos_look_alike(), 50, eos=False)
    path = tmp_path / "died.arrows"
    path.write_bytes(data)
    result = sm.evaluate(path, "ce")
    assert result.rows == 200
    assert result.notes == [
        f"{path}: the Arrow IPC stream ends after 4 record batches without its end-of-stream "
        "marker (its writer may have died or still be writing): only those batches are evaluated"
    ]
    complete, _ = _stream_bytes(_eos_look_alike(), 50)
    path.write_bytes(complete)
    assert sm.evaluate(path, "ce").notes == []
    path.write_bytes(complete + complete)  # a second stream after the marker: not dropped
    with pytest.raises(InvalidInputError, match=r"bytes follow the end-of-stream marker"):
        sm.evaluate(path, "ce")


# --------------------------------------------------------------------------- messages


def _probs_table(labels: list, kind: pa.DataType | None = None, width: int | None = 2) -> pa.Table:
    rows = len(labels)
    flat = pa.array(np.full(rows * 2, 0.5), kind or pa.float32())
    probs = (
        pa.FixedSizeListArray.from_arrays(flat, 2)
        if width
        else pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * rows + 1, 2), pa.int32()), flat)
    )
    return pa.table({"label": pa.array(labels, pa.int64()), "probs": probs})


def test_a_uint64_label_is_reported_with_its_real_value(tmp_path):
    path = tmp_path / "u64.parquet"
    pq.write_table(
        pa.table(
            {
                "label": pa.array([0, 1, 2**64 - 1], pa.uint64()),
                "probs": _probs_table([0, 1, 1])["probs"],
            }
        ),
        path,
    )
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(path, "ce")
    assert str(caught.value) == (
        f"{path}: column `label`, row 2: value 18446744073709551615 is too large "
        "(at most 9223372036854775807 in labels)"
    )
    skipped = sm.evaluate(path, "ce", on_invalid="skip")
    assert (skipped.rows, skipped.invalid_rows) == (2, 1)


def test_an_empty_file_contributes_no_rows_and_never_conflicts(tmp_path):
    full = tmp_path / "full.parquet"
    pq.write_table(_probs_table([0, 1, 1]), full)
    empty = _probs_table([], width=None)  # a list of any length: pandas writes this
    one_group, no_group = tmp_path / "empty1.parquet", tmp_path / "empty0.parquet"
    pq.write_table(empty, one_group)
    pq.ParquetWriter(no_group, empty.schema).close()
    assert pq.read_metadata(one_group).num_row_groups == 1
    assert pq.read_metadata(no_group).num_row_groups == 0
    expected = sm.evaluate(full, "ce").to_dict()
    for other in (one_group, no_group):
        assert sm.evaluate([full, other], "ce").to_dict() == expected
    alone = [sm.evaluate(path, "ce") for path in (one_group, no_group)]
    assert alone[0].to_dict()["rows"] == alone[1].to_dict()["rows"] == 0
    assert alone[0].notes == alone[1].notes == ["cross-entropy is nan: no rows were counted"]


def test_different_list_kinds_are_described_in_user_terms(tmp_path):
    pq.write_table(_probs_table([0, 1]), tmp_path / "a.parquet")
    pq.write_table(_probs_table([0, 1], width=None), tmp_path / "b.parquet")
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(tmp_path, "ce")
    assert str(caught.value) == (
        f"{tmp_path / 'b.parquet'}: columns differ from {tmp_path / 'a.parquet'}: predictions are "
        "lists of any length here and lists of 2 values there (every input must have the same "
        "columns, of the same kinds; integer and float widths may differ)"
    )


def test_float32_and_float64_files_mix_exactly(tmp_path):
    pq.write_table(_probs_table([0, 1, 1], pa.float32()), tmp_path / "a.parquet")
    pq.write_table(_probs_table([1, 0], pa.float64()), tmp_path / "b.parquet")
    mixed = sm.evaluate(tmp_path, ["ce", "acc"])
    assert mixed.rows == 5 and mixed.metrics["cross-entropy"] == pytest.approx(np.log(2))


def test_a_partition_column_that_is_also_a_file_column_is_refused(tmp_path):
    folder = tmp_path / "model=b"
    folder.mkdir()
    table = _probs_table([0, 1]).append_column("model", pa.array(["a", "a"]))
    pq.write_table(table, folder / "part.parquet")
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(tmp_path, "ce", by="model")
    assert str(caught.value) == (
        f"{folder / 'part.parquet'}: column `model` is in the file and in the hive partition "
        "directory `model=b` above it, so its value is ambiguous (rename one of them)"
    )
    assert sm.evaluate(tmp_path, "ce").rows == 2  # a column not read: nothing is ambiguous


def test_watch_counts_an_empty_file_without_taking_its_columns(tmp_path):
    from streammetric.engine.local import Job
    from streammetric.engine.watch import Watcher

    folder = tmp_path / "drop"
    folder.mkdir()
    pq.write_table(_probs_table([], width=None), folder / "a.parquet")  # first, and empty
    pq.write_table(_probs_table([0, 1, 1]), folder / "b.parquet")
    messages: list[str] = []
    watcher = Watcher(folder, Job([], ["ce"]), log=messages.append)
    assert watcher.poll(once=True) == 2 and messages == []
    assert watcher.result().rows == 3


def test_watch_skips_a_fifo_in_its_folder_and_says_so_once(tmp_path):
    from streammetric.engine.local import Job
    from streammetric.engine.watch import Watcher

    folder = tmp_path / "drop"
    folder.mkdir()
    os.mkfifo(folder / "a.parquet")
    pq.write_table(_probs_table([0, 1, 1]), folder / "b.parquet")
    messages: list[str] = []
    watcher = Watcher(folder, Job([], ["ce"]), log=messages.append)
    assert watcher.poll(once=True) == 1 and watcher.poll(once=True) == 0
    assert messages == ["a.parquet: skipped: a FIFO (named pipe) is not a data file"]


def test_eval_of_stdin_without_the_end_marker_says_so():
    data, _ = _stream_bytes(_eos_look_alike(), 50, eos=False)
    command = [
        sys.executable,
        "-m",
        "streammetric.cli",
        "eval",
        "-",
        "-m",
        "ce",
        "--format",
        "json",
    ]
    cut = subprocess.run(command, input=data, capture_output=True, timeout=60)
    assert cut.returncode == 0 and json.loads(cut.stdout)["rows"] == 200
    assert cut.stderr.decode().splitlines() == [
        "streammetric: note: <stdin>: the Arrow IPC stream ended without its end-of-stream marker "
        "(its writer may have died): only the record batches read whole are evaluated"
    ]
    whole, _ = _stream_bytes(_eos_look_alike(), 50)
    done = subprocess.run(command, input=whole, capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stderr == b""


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (
            "--checkpoint",
            "a FIFO (named pipe), not a checkpoint file; refusing to read or replace it",
        ),
        ("--config", "a FIFO (named pipe), not a config file"),
        ("--basic-auth-file", "a FIFO (named pipe), not a file"),
        ("--web-config", "a FIFO (named pipe), not a file"),
    ],
)
def test_a_fifo_given_for_another_file_is_refused_in_one_line(tmp_path, flag, expected):
    """The siblings of a FIFO given as the data: every other file the command reads."""
    from tests.cli.helpers import write_preds

    data = tmp_path / "preds.parquet"
    write_preds(data, 50, seed=2)
    fifo = tmp_path / "other"
    os.mkfifo(fifo)
    serve = ["--serve", "127.0.0.1:0"] if flag in ("--basic-auth-file", "--web-config") else []
    done = _cli("eval", data, "-m", "ce", flag, fifo, *serve)
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    # one line: ours, or click's usage error for --config (as for any bad --config)
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(("streammetric: error:", "Error: Invalid value for --config:")), line
    assert f"{fifo}: {expected}" in line
    assert fifo.is_fifo()  # never replaced
