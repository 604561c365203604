"""Small prediction files written into ``tmp_path`` for the io tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def probabilities(num_rows: int, num_classes: int, *, seed: int = 0) -> np.ndarray:
    """Row-normalised random float32 probabilities of shape (num_rows, num_classes)."""
    values = np.random.default_rng(seed).random((num_rows, num_classes), dtype=np.float32)
    return values / values.sum(axis=1, keepdims=True)


def list_array(matrix: np.ndarray, kind: str = "list") -> pa.Array:
    """A 2-D array as a ``list``, ``large_list`` or ``fixed_size_list`` Arrow column."""
    num_rows, width = matrix.shape
    values = pa.array(matrix.reshape(-1))
    if kind == "fixed_size_list":
        return pa.FixedSizeListArray.from_arrays(values, width)
    offset_type = np.int64 if kind == "large_list" else np.int32
    offsets = pa.array(np.arange(num_rows + 1, dtype=offset_type) * width)
    array_type = pa.LargeListArray if kind == "large_list" else pa.ListArray
    return array_type.from_arrays(offsets, values)


def prediction_table(
    num_rows: int = 100, num_classes: int = 4, *, kind: str = "list", pred_name: str = "probs"
) -> pa.Table:
    """Labels ``label`` (int64), predictions ``pred_name`` and weights ``w``."""
    return pa.table(
        {
            "label": np.arange(num_rows) % num_classes,
            pred_name: list_array(probabilities(num_rows, num_classes), kind),
            "w": np.linspace(0.5, 1.5, num_rows),
        }
    )


def write_parquet(path: Path, table: pa.Table, *, row_group_size: int = 1000) -> Path:
    """Write ``table`` as Parquet with row groups of ``row_group_size`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_ipc(path: Path, table: pa.Table, *, stream: bool = False, chunk: int = 1000) -> Path:
    """Write ``table`` as an Arrow IPC file (or stream) with batches of ``chunk`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = ipc.new_stream if stream else ipc.new_file
    with opener(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return path


def ipc_stream_bytes(table: pa.Table, *, chunk: int = 1000) -> bytes:
    """``table`` serialised as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()
