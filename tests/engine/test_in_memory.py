"""In-memory inputs: tables, readers, pandas, polars and DuckDB give the file's result, bit for
bit; a reader is read once; bad rows are named in ``<table>``; a table is read in place."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.engine import Job, run_job
from streammetric.engine import local as local_engine
from streammetric.io import ColumnSpec, memory, reader
from streammetric.metrics.bootstrap import Resampling

ROWS = 12_000
CLASSES = 4
#: several metrics, groups, a convention: what each in-memory form must reproduce
SETTINGS: dict[str, Any] = {
    "metrics": ["ce", "acc", "top_k_accuracy:top_k=2", "ece"],
    "by": "split",
    "convention": "keras",
}


def _table(rows: int = ROWS, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, rows)
    logits = rng.normal(size=(rows, CLASSES)).astype(np.float32)
    logits[np.arange(rows), labels] += 1.0
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    offsets = pa.array(np.arange(0, rows * CLASSES + 1, CLASSES, dtype=np.int32))
    columns: dict[str, Any] = {
        "id": np.arange(rows),
        "label": labels,
        "probs": pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1))),
        "split": rng.choice(["train", "test", "val"], rows),
    }
    columns.update({f"p{c}": probs[:, c] for c in range(CLASSES)})
    return pa.table(columns)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, Path]:
    table = _table()
    path = tmp_path_factory.mktemp("in_memory") / "preds.parquet"
    pq.write_table(table, path, row_group_size=2_500)  # 5 row groups
    return table, path


@pytest.fixture(scope="module")
def expected(data: tuple[pa.Table, Path]) -> dict[str, Any]:
    """The file's result, which every in-memory form must give."""
    return sm.evaluate(data[1], **SETTINGS).to_dict()


def test_the_file_itself_is_evaluated_as_before(data, expected):
    table, _ = data
    labels = table["label"].to_numpy()
    probs = np.stack([table[f"p{c}"].to_numpy() for c in range(CLASSES)], axis=1)
    assert expected["rows"] == ROWS and expected["invalid_rows"] == 0
    assert expected["metrics"]["accuracy"] == np.mean(probs.argmax(axis=1) == labels)
    assert [g["key"]["split"] for g in expected["groups"]] == ["test", "train", "val"]


def _reader(table: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1_777))


def _duckdb_relation(path: Path) -> Any:
    import duckdb

    connection = duckdb.connect()
    return connection.sql(f"select * from read_parquet('{path}') order by id")


FORMS = {
    "table": lambda table, path: table,
    "chunked table": lambda table, path: pa.concat_tables(
        [table.slice(0, 1_000), table.slice(1_000, 5_000), table.slice(6_000)]
    ),
    "record batch": lambda table, path: table.combine_chunks().to_batches()[0],
    "reader": lambda table, path: _reader(table),
    "pandas": lambda table, path: table.to_pandas(),
    "polars": lambda table, path: __import__("polars").from_arrow(table),
    "duckdb relation": lambda table, path: _duckdb_relation(path),
    "duckdb result": lambda table, path: _duckdb_relation(path).arrow(),
    "c stream": lambda table, path: _Stream(table),
}


class _Stream:
    """Anything with the Arrow C stream interface and nothing else."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.table.__arrow_c_stream__(requested_schema)


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_gives_the_files_result_bit_for_bit(data, expected, form):
    table, path = data
    result = sm.evaluate(FORMS[form](table, path), **SETTINGS)
    assert result.to_dict() == expected


@pytest.mark.parametrize("form", ["table", "pandas", "polars", "duckdb relation"])
def test_plain_columns_per_class(data, form):
    """``preds=[...]`` stacks one column per class, as it does for a file."""
    table, path = data
    columns = [f"p{c}" for c in range(CLASSES)]
    settings = {**SETTINGS, "preds": columns, "weights": None}
    want = sm.evaluate(path, **settings).to_dict()
    assert sm.evaluate(FORMS[form](table, path), **settings).to_dict() == want
    # the same float32 scores as the list column's: the same metrics
    assert want["metrics"] == sm.evaluate(path, **SETTINGS).to_dict()["metrics"]


def test_a_table_split_into_units_on_threads_gives_the_same_bits(data, expected, monkeypatch):
    table, _ = data
    monkeypatch.setattr(memory, "UNIT_ROWS", 1_000)
    units = memory.memory_units([table])
    assert [u.row_offset for u in units] == list(range(0, ROWS, 1_000))
    assert not any(u.sequential for u in units)
    for threads in (1, 2):
        assert sm.evaluate(table, threads=threads, **SETTINGS).to_dict() == expected


def test_several_tables_are_one_input(data, expected):
    table, _ = data
    parts = [table.slice(0, 4_000), _reader(table.slice(4_000, 3_000)), table.slice(7_000)]
    assert sm.evaluate(parts, **SETTINGS).to_dict() == expected


def test_an_empty_table_gives_an_empty_files_result(data, tmp_path):
    table, _ = data
    empty = tmp_path / "empty.parquet"
    pq.write_table(table.slice(0, 0), empty)
    want = sm.evaluate(empty, **SETTINGS).to_dict()
    assert want["rows"] == 0
    assert sm.evaluate(table.slice(0, 0), **SETTINGS).to_dict() == want


def test_a_reader_is_read_once(data, expected):
    table, _ = data
    reader = _reader(table)
    assert sm.evaluate(reader, **SETTINGS).to_dict() == expected
    with pytest.raises(ConfigError, match=r"^<table>: this RecordBatchReader was already read"):
        sm.evaluate(reader, **SETTINGS)
    # a table, a DataFrame or a relation can be evaluated again
    relation = _duckdb_relation(data[1])
    for again in (table, table.to_pandas(), relation, relation):
        assert sm.evaluate(again, **SETTINGS).to_dict() == expected


def test_a_refused_evaluation_does_not_use_the_reader_up(data, expected):
    table, path = data
    reader = _reader(table)
    with pytest.raises(ConfigError, match=r"^checkpoint: an in-memory input cannot be resumed"):
        sm.evaluate(reader, checkpoint=path.parent / "ck.json", **SETTINGS)
    with pytest.raises(ConfigError, match="label column `nope` not found"):
        sm.evaluate(reader, **{**SETTINGS, "labels": "nope"})
    assert sm.evaluate(reader, **SETTINGS).to_dict() == expected  # read only now
    assert not (path.parent / "ck.json").exists()


def test_paths_and_tables_are_not_mixed(data):
    table, path = data
    with pytest.raises(ConfigError, match="paths or in-memory inputs"):
        sm.evaluate([path, table], **SETTINGS)
    for wrong in (object(), [table, 3], [3]):
        with pytest.raises(ConfigError, match=r"^(a builtins\.(object|int) is not an input|give)"):
            sm.evaluate(wrong, **SETTINGS)
    with pytest.raises(ConfigError, match=r"^a numpy\.ndarray is not an input"):
        sm.evaluate(np.zeros(3), **SETTINGS)
    with pytest.raises(ConfigError, match=r"^<table>: a builtins\.dict is not an input"):
        memory.MemorySource({"label": [1]}, "<table>")


def _error(call: Any) -> InvalidInputError | ConfigError:
    with pytest.raises((InvalidInputError, ConfigError)) as caught:
        call()
    return caught.value


def _with_null_label(table: pa.Table, row: int) -> pa.Table:
    labels = table["label"].to_pylist()
    labels[row] = None
    return table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels))


@pytest.mark.parametrize("form", ["table", "reader", "polars", "duckdb relation", "pandas"])
def test_a_null_label_is_the_files_error_in_table(data, tmp_path, form):
    table, _ = data
    bad = _with_null_label(table, 7_345)
    path = tmp_path / "bad.parquet"
    pq.write_table(bad, path, row_group_size=2_500)
    if form == "pandas":  # an integer column with a missing value: pandas' nullable Int64
        frame = bad.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        assert frame["label"].dtype == pd.Int64Dtype()
        made: Any = frame
    else:
        made = FORMS[form](bad, path)
    from_file = _error(lambda: sm.evaluate(path, **SETTINGS))
    error = _error(lambda: sm.evaluate(made, **SETTINGS))
    assert isinstance(error, InvalidInputError)
    assert str(error) == str(from_file).replace(str(path), "<table>")
    assert str(error) == (
        "<table>: column `label`, row 7345: null value (nulls are not allowed in labels)"
    )
    assert (error.path, error.column, error.row) == ("<table>", "label", 7345)
    assert "\n" not in str(error)


def test_a_metrics_error_names_the_row_of_the_table(data, tmp_path):
    """A NaN probability: found by the metric, located in the input as for a file."""
    table, _ = data
    probs = table["p2"].to_numpy().copy()
    probs[9_001] = np.nan
    bad = table.set_column(table.schema.get_field_index("p2"), "p2", pa.array(probs))
    settings = {**SETTINGS, "preds": [f"p{c}" for c in range(CLASSES)]}
    path = tmp_path / "nan.parquet"
    pq.write_table(bad, path, row_group_size=2_500)
    from_file = _error(lambda: sm.evaluate(path, **settings))
    error = _error(lambda: sm.evaluate(bad, **settings))
    assert str(error) == str(from_file).replace(str(path), "<table>")
    assert str(error).startswith("<table>: column `p0,p1,p2,p3`, row 9001: ")
    assert isinstance(error, InvalidInputError) and error.row == 9001


def test_a_missing_column_is_named(data):
    table, _ = data
    error = _error(lambda: sm.evaluate(table, **{**SETTINGS, "by": "model"}))
    assert isinstance(error, ConfigError)
    assert str(error) == (
        "<table>: group-by column `model` not found (available columns: id, label, probs, "
        "split, p0, p1, p2, p3)"
    )


def test_the_nth_of_several_tables_is_named(data):
    table, _ = data
    bad = _with_null_label(table.slice(5_000), 12)
    error = _error(lambda: sm.evaluate([table.slice(0, 5_000), bad], **SETTINGS))
    assert str(error).startswith("<table 1>: column `label`, row 12: null value")
    other = table.drop_columns(["split"])
    error = _error(lambda: sm.evaluate([table, other], **SETTINGS))
    assert str(error).startswith("<table 1>: group-by column `split` not found")


def test_a_large_table_is_read_in_place(monkeypatch):
    """The metrics read views of the table's buffers: Arrow allocates nothing near the
    table's size while it is evaluated, and every batch's arrays share its memory."""
    rows, classes = 1 << 20, 16
    rng = np.random.default_rng(0)
    probs = rng.random((rows, classes), dtype=np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    flat = pa.array(probs.reshape(-1))
    table = pa.table(
        {
            "label": rng.integers(0, classes, rows),
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
        }
    )
    values = np.frombuffer(flat.buffers()[1], dtype=np.float32)
    labels = np.frombuffer(table["label"].chunk(0).buffers()[1], dtype=np.int64)
    seen: list[tuple[int, bool]] = []
    make_batch = local_engine.make_batch

    def watched(*args: Any, **kwargs: Any) -> Any:
        batch = make_batch(*args, **kwargs)
        shared = np.shares_memory(batch.preds, values) and np.shares_memory(batch.labels, labels)
        seen.append((pa.total_allocated_bytes(), shared))
        return batch

    monkeypatch.setattr(local_engine, "make_batch", watched)
    before = pa.total_allocated_bytes()
    result = sm.evaluate(table, ["acc", "ce"], threads=2)
    assert result.rows == rows
    assert len(seen) >= rows // 32_768  # read in slices
    assert all(shared for _, shared in seen)
    grown = max(allocated for allocated, _ in seen) - before
    assert grown < table.nbytes // 20, (grown, table.nbytes)


def test_pandas_numbers_are_not_copied(monkeypatch):
    frame = pd.DataFrame({"label": np.arange(50_000) % 2, "p0": np.linspace(0, 1, 50_000)}).assign(
        p1=lambda f: 1 - f["p0"]
    )
    seen: list[bool] = []
    make_batch = local_engine.make_batch

    def watched(*args: Any, **kwargs: Any) -> Any:
        batch = make_batch(*args, **kwargs)
        seen.append(np.shares_memory(batch.labels, frame["label"].to_numpy()))
        return batch

    monkeypatch.setattr(local_engine, "make_batch", watched)
    result = sm.evaluate(frame, "acc", preds=["p0", "p1"])
    assert seen and all(seen)
    assert result.metrics["accuracy"] == np.mean((frame["p1"] > frame["p0"]) == frame["label"])


def _interval_job(inputs: Any, ids: str | None = None) -> Job:
    paths, tables = ([inputs], []) if isinstance(inputs, (str, Path)) else ([], [inputs])
    return Job(
        paths=[str(p) for p in paths],
        metrics=["acc", "ce"],
        columns=ColumnSpec(by=("split",), ids=ids),
        resampling=Resampling(0.9, 100, 7),
        tables=tables,
    )


def test_intervals_identify_rows_by_table_and_place(data, monkeypatch):
    """Without ids a row is ``<table>`` and its row: any form, any split, the same intervals;
    with ids, the file's intervals."""
    table, path = data
    want = run_job(_interval_job(table)).to_dict()
    assert "ci" in want and want["groups"][0]["metrics"]["accuracy"] != want["metrics"]["accuracy"]
    monkeypatch.setattr(memory, "UNIT_ROWS", 3_000)
    for form in ("table", "reader", "pandas", "polars", "duckdb relation"):
        job = _interval_job(FORMS[form](table, path))
        assert run_job(job, threads=2).to_dict() == want, form
    file_result = run_job(_interval_job(path)).to_dict()  # rows named preds.parquet:N
    assert file_result != want
    by_id = run_job(_interval_job(path, ids="id")).to_dict()
    assert run_job(_interval_job(table, ids="id")).to_dict() == by_id
    job = _interval_job(table)
    run = local_engine.JobRun(job)
    assert run.evaluator.row_name(run.units[0]) == "<table>"


def test_the_dask_engine_refuses_tables(data):
    pytest.importorskip("distributed")
    from streammetric.engine.dask import run_job_dask

    job = dataclasses.replace(_interval_job(data[0]), resampling=None)
    with pytest.raises(ConfigError, match="Dask engine reads files"):
        run_job_dask(job, workers=1)


@pytest.mark.parametrize("intervals", [False, True])
def test_an_evaluation_keeps_no_reference_to_the_table(data, intervals):
    """The data is the caller's: once the evaluation returns, nothing of streammetric holds it,
    not even the result (which keeps the run's state, whose metric factory is the run's)."""
    import gc
    import weakref

    table = pa.table({name: data[0][name].combine_chunks() for name in data[0].column_names})
    gone = weakref.ref(table)
    job = _interval_job(table)
    result = run_job(job if intervals else dataclasses.replace(job, resampling=None))
    assert result.rows == ROWS
    del table, job
    gc.collect()
    assert gone() is None
    assert result.partial is not None  # the result is alive, with its state


def test_polars_strings_and_categoricals_group_as_strings(data, expected):
    """polars exports strings as ``string_view`` and categoricals as dictionaries of them:
    grouped by, they are the file's string groups."""
    import polars as pl

    table, _ = data
    frame = pl.from_arrow(table)
    assert pa.types.is_string_view(pa.table(frame).schema.field("split").type)
    for kind in (pl.Categorical, pl.Enum(["test", "train", "val"])):
        cast = frame.with_columns(pl.col("split").cast(kind))
        assert pa.types.is_dictionary(pa.table(cast).schema.field("split").type)
        assert sm.evaluate(cast, **SETTINGS).to_dict() == expected


def test_a_query_failing_mid_stream_is_one_line_naming_the_table():
    import duckdb

    relation = duckdb.connect().sql(
        "select (i % 3)::bigint as label, [0.2::double, 0.3, 0.5] as probs, "
        "case when i = 5000 then cast('x' || i as int) else 1 end as z from range(10000) t(i)"
    )
    error = _error(lambda: sm.evaluate(relation, "acc"))
    assert isinstance(error, InvalidInputError)
    assert str(error).startswith("<table>: record batch after row ")
    assert "Could not convert string 'x5000'" in str(error) and "\n" not in str(error)


def test_a_streams_large_batches_are_read_in_slices(data, expected, monkeypatch):
    """A stream's batch of any size is converted slice by slice, as a file's row group is."""
    table, _ = data
    sizes: list[int] = []
    make_batch = local_engine.make_batch

    def watched(arrow: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(arrow.num_rows)
        return make_batch(arrow, *args, **kwargs)

    monkeypatch.setattr(local_engine, "make_batch", watched)
    monkeypatch.setattr(local_engine, "FLUSH_ROWS", 1)  # groups encoded per slice too
    monkeypatch.setattr(reader, "slice_rows", lambda resolved: 1_000)
    one_batch = pa.RecordBatchReader.from_batches(table.schema, table.combine_chunks().to_batches())
    settings = {**SETTINGS, "preds": [f"p{c}" for c in range(CLASSES)]}
    want = sm.evaluate(table, **settings).to_dict()
    sizes.clear()
    assert sm.evaluate(one_batch, **settings).to_dict() == want
    assert sum(sizes) == ROWS and max(sizes) == 1_000
