"""``streammetric eval --ci LEVEL [--bootstrap N] [--seed S] [--id COL]``: the intervals' place in
each output format, the metrics unchanged by them, and the same bits whatever the threads, row
groups, engine, interruptions or (with ``--id``) the files the rows are in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from streammetric.engine import Job, run_job
from streammetric.io import ColumnSpec, plan
from streammetric.metrics import bootstrap
from streammetric.metrics import state as state_module
from streammetric.metrics.bootstrap import Resampling

from .helpers import invoke, preds_table

CI = ("--ci", "0.9", "--bootstrap", "200")
EVAL = ("-m", "ce", "-m", "acc", "--by", "model")


def _eval(*args: Any) -> Any:
    result = invoke("eval", *args)
    assert result.exit_code == 0, result.stderr
    return result


def _json(*args: Any) -> dict[str, Any]:
    return json.loads(_eval(*args, "--format", "json").stdout)


def _with_ids(table: pa.Table, kind: str) -> pa.Table:
    rows = table.num_rows
    ids = (
        pa.array(np.arange(rows) * 3 + 5)
        if kind == "int"
        else pa.array([f"id-{i}" for i in range(rows)])
    )
    return table.append_column("rid", ids)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``one/preds.parquet`` (1500 rows, row groups of 100) and the same rows with row groups of
    37 and of 1500 (``rg37/preds.parquet``, ``rg1500/preds.parquet``: the same name, so the
    same row identities); with int and string ids, in one file and shuffled into three."""
    root = tmp_path_factory.mktemp("intervals")
    table = preds_table(1500, seed=21)
    for folder, size in [("one", 100), ("rg37", 37), ("rg1500", 1500)]:
        (root / folder).mkdir()
        pq.write_table(table, root / folder / "preds.parquet", row_group_size=size)
    order = np.random.default_rng(3).permutation(table.num_rows)
    for kind in ("int", "str"):
        with_ids = _with_ids(table, kind)
        pq.write_table(with_ids, root / f"ids-{kind}.parquet", row_group_size=200)
        split = root / f"split-{kind}"
        split.mkdir()
        for i, part in enumerate(np.array_split(order, [400, 1100])):
            pq.write_table(with_ids.take(part), split / f"part-{i}.parquet", row_group_size=150)
    return root


def test_json_has_the_ci_header_and_intervals_and_the_same_metrics(data):
    path = data / "one" / "preds.parquet"
    plain = _json(path, *EVAL)
    with_ci = _json(path, *EVAL, *CI, "--seed", "7")
    assert with_ci["ci"]["level"] == 0.9 and with_ci["ci"]["replicates"] == 200
    assert with_ci["ci"]["seed"] == 7 and "bootstrap" in with_ci["ci"]["method"]
    assert "ci" not in plain and "intervals" not in plain
    # everything but the intervals is what the run without --ci gives, bit for bit
    stripped = {k: v for k, v in with_ci.items() if k not in ("ci", "intervals")}
    stripped["groups"] = [
        {k: v for k, v in group.items() if k != "intervals"} for group in with_ci["groups"]
    ]
    assert json.dumps(stripped) == json.dumps(plain)
    assert [g["key"] for g in with_ci["groups"]] == [{"model": "a"}, {"model": "b"}]
    for scope in [with_ci, *with_ci["groups"]]:
        assert list(scope["intervals"]) == ["cross-entropy", "accuracy"]
        for name, bounds in scope["intervals"].items():
            assert set(bounds) == {"lower", "upper"}
            assert bounds["lower"] < scope["metrics"][name] < bounds["upper"]
    # a group's interval is wider than the whole's (about half the rows)
    for name in ("cross-entropy", "accuracy"):
        whole = with_ci["intervals"][name]["upper"] - with_ci["intervals"][name]["lower"]
        for group in with_ci["groups"]:
            assert group["intervals"][name]["upper"] - group["intervals"][name]["lower"] > whole


def test_table_and_csv_show_the_intervals(data):
    path = data / "one" / "preds.parquet"
    result = _json(path, *EVAL, *CI)
    table = _eval(path, *EVAL, *CI, "--precision", "0").stdout.splitlines()
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {"(all)", "a", "b"}
    for key, scope in [("(all)", result), *zip("ab", result["groups"], strict=True)]:
        for name in ("cross-entropy", "accuracy"):
            bounds = scope["intervals"][name]
            shown = f"{scope['metrics'][name]!r} [{bounds['lower']!r}, {bounds['upper']!r}]"
            assert shown in rows[key], (shown, rows[key])
    csv = _eval(path, *EVAL, *CI, "--format", "csv").stdout.splitlines()
    header = csv[0].split(",")
    assert header == [
        "model",
        "rows",
        "cross-entropy",
        "cross-entropy_lower",
        "cross-entropy_upper",
        "accuracy",
        "accuracy_lower",
        "accuracy_upper",
    ]
    line = dict(zip(header, csv[1].split(","), strict=True))
    assert line["model"] == "(all)"
    for name in ("cross-entropy", "accuracy"):
        assert float(line[name]) == result["metrics"][name]
        assert float(line[f"{name}_lower"]) == result["intervals"][name]["lower"]
        assert float(line[f"{name}_upper"]) == result["intervals"][name]["upper"]
    plain_csv = _eval(path, *EVAL, "--format", "csv").stdout.splitlines()
    assert plain_csv[0] == "model,rows,cross-entropy,accuracy"


def test_csv_has_the_bounds_of_every_class_and_cell(data):
    """Per-class values and matrix cells get their bounds in CSV as numbers do
    (``NAME_lower[class=C]``), equal to the JSON result's, for the run and every group."""
    import csv as csv_module
    import io

    path = data / "one" / "preds.parquet"
    vector = (
        "-m",
        "recall:average=none,class_type=multiclass",
        "-m",
        "confusion_matrix",
        "--by",
        "model",
    )
    result = _json(path, *vector, *CI)
    text = _eval(path, *vector, *CI, "--format", "csv").stdout
    rows = list(csv_module.DictReader(io.StringIO(text)))
    assert [row["model"] for row in rows] == ["(all)", "a", "b"]
    for row, scope in zip(rows, [result, *result["groups"]], strict=True):
        bounds = scope["intervals"]
        for key, value in scope["metrics"]["recall"].items():
            assert float(row[f"recall[class={key}]"]) == value
            for side in ("lower", "upper"):
                assert float(row[f"recall_{side}[class={key}]"]) == bounds["recall"][side][key]
        matrix = bounds["confusion_matrix"]
        for t, cells in enumerate(matrix["lower"]):
            for p, lower in enumerate(cells):
                cell = f"[true_class={t},pred_class={p}]"
                assert float(row[f"confusion_matrix_lower{cell}"]) == lower
                assert float(row[f"confusion_matrix_upper{cell}"]) == matrix["upper"][t][p]


def test_same_bits_whatever_the_threads_and_row_groups(data):
    reference = _eval(data / "one" / "preds.parquet", *EVAL, *CI, "--format", "json").stdout
    for folder in ("one", "rg37", "rg1500"):
        for threads in ("1", "2"):
            out = _eval(
                data / folder / "preds.parquet",
                *EVAL,
                *CI,
                "--threads",
                threads,
                "--format",
                "json",
            ).stdout
            assert out == reference, (folder, threads)
    # the same file under another name holds other rows: other intervals, the same metrics
    renamed = data / "renamed"
    renamed.mkdir(exist_ok=True)
    os.link(data / "one" / "preds.parquet", renamed / "other.parquet")
    other = json.loads(_eval(renamed / "other.parquet", *EVAL, *CI, "--format", "json").stdout)
    assert other["metrics"] == json.loads(reference)["metrics"]
    assert other["intervals"] != json.loads(reference)["intervals"]


@pytest.mark.parametrize("kind", ["int", "str"])
def test_with_ids_the_file_layout_does_not_matter(data, kind):
    one = _eval(data / f"ids-{kind}.parquet", *EVAL, *CI, "--id", "rid", "--format", "json")
    split = _eval(data / f"split-{kind}", *EVAL, *CI, "--id", "rid", "--format", "json")
    assert split.stdout == one.stdout
    threads = _eval(
        data / f"split-{kind}", *EVAL, *CI, "--id", "rid", "--threads", "1", "--format", "json"
    )
    assert threads.stdout == one.stdout
    # without --id, the rows' identities are their files and rows: other intervals
    by_position = _json(data / f"split-{kind}", *EVAL, *CI)
    assert by_position["metrics"] == json.loads(one.stdout)["metrics"]
    assert by_position["intervals"] != json.loads(one.stdout)["intervals"]


def test_another_seed_changes_the_intervals_not_the_metrics(data):
    path = data / "one" / "preds.parquet"
    first, second = _json(path, *EVAL, *CI), _json(path, *EVAL, *CI, "--seed", "1")
    assert first["ci"]["seed"] == 0 and second["ci"]["seed"] == 1
    assert first["metrics"] == second["metrics"]
    assert [g["metrics"] for g in first["groups"]] == [g["metrics"] for g in second["groups"]]
    assert first["intervals"] != second["intervals"]
    for a, b in zip(first["groups"], second["groups"], strict=True):
        assert a["intervals"] != b["intervals"]
    assert _json(path, *EVAL, *CI, "--seed", "0") == first  # 0 is the default


@pytest.mark.parametrize(
    "given", [("--bootstrap", "10"), ("--seed", "3"), ("--id", "rid"), ("--seed", "3", "--id", "x")]
)
def test_resampling_options_without_ci_are_a_usage_error(data, given):
    result = invoke("eval", data / "ids-int.parquet", "-m", "acc", *given)
    assert result.exit_code == 2
    assert "need" in result.stderr and "--ci LEVEL" in result.stderr
    assert given[0] in result.stderr and result.stdout == ""


@pytest.mark.parametrize("level", ["0", "1", "1.5", "-0.1"])
def test_a_level_outside_0_1_is_a_usage_error(data, level):
    result = invoke("eval", data / "one" / "preds.parquet", "-m", "acc", "--ci", level)
    assert result.exit_code == 2 and "--ci" in result.stderr


@pytest.mark.parametrize("kind", ["int", "str"])
def test_a_null_id_is_one_line_naming_file_column_and_row(tmp_path, kind):
    table = _with_ids(preds_table(700, seed=2), kind)
    ids = table["rid"].to_pylist()
    ids[450] = None  # in the second row group: the row of the file is named, not of the batch
    path = tmp_path / "preds.parquet"
    pq.write_table(table.set_column(3, "rid", pa.array(ids)), path, row_group_size=300)
    result = invoke("eval", path, "-m", "acc", "--ci", "0.95", "--id", "rid")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "preds.parquet" in lines[0] and "`rid`" in lines[0] and "row 450" in lines[0]
    assert "null" in lines[0] and "Traceback" not in result.stderr
    # --on-invalid skip: the row without an id is skipped like any invalid row
    skipped = _json(path, "-m", "acc", "--ci", "0.95", "--id", "rid", "--on-invalid", "skip")
    assert skipped["rows"] == 699 and skipped["invalid_rows"] == 1


def test_a_float_id_column_is_refused_in_one_line(tmp_path):
    table = preds_table(50, seed=2).append_column("rid", pa.array(np.arange(50.0)))
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path)
    result = invoke("eval", path, "-m", "acc", "--ci", "0.95", "--id", "rid")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "preds.parquet" in lines[0] and "`rid`" in lines[0] and "double" in lines[0]
    missing = invoke("eval", path, "-m", "acc", "--ci", "0.95", "--id", "nope")
    assert missing.exit_code != 0 and "`nope`" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


# --- engine-level: checkpoint/resume and the Dask engine -----------------------------------------


def _job(data: Path, ids: str | None = None) -> Job:
    return Job(
        paths=[str(data / "split-int")],
        metrics=["ce", "acc"],
        columns=ColumnSpec(labels="label", preds="probs", by=("model",), ids=ids),
        resampling=Resampling(0.9, 200, 5),
    )


def _bits(result: Any) -> str:
    return json.dumps(result.to_dict())


@pytest.mark.parametrize("ids", [None, "rid"])
def test_a_resumed_run_gives_the_same_bits(data, tmp_path, ids):
    job = _job(data, ids)
    reference = _bits(run_job(job, threads=2))
    assert "intervals" in json.loads(reference)
    checkpoint = tmp_path / "ck.json"
    seen: list[int] = []

    def crash(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(job, threads=1, checkpoint=checkpoint, progress=crash)
    assert checkpoint.exists()
    started: list[Any] = []
    resumed = run_job(job, threads=2, checkpoint=checkpoint, on_start=started.append)
    units = plan(job.paths, job.columns)
    assert 0 < len(started[0].pending) < len(units)  # it did resume: units were not read again
    assert _bits(resumed) == reference
    # the checkpoint is of one seed: resuming with another is refused, not mixed
    other = Job(job.paths, job.metrics, job.columns, resampling=Resampling(0.9, 200, 6))
    with pytest.raises(Exception, match="checkpoint"):
        run_job(other, threads=1, checkpoint=checkpoint)
    # nor with other row identities (ids instead of positions, or the reverse)
    columns = ColumnSpec(labels="label", preds="probs", by=("model",), ids=None if ids else "rid")
    switched = Job(job.paths, job.metrics, columns, resampling=job.resampling)
    with pytest.raises(Exception, match="checkpoint"):
        run_job(switched, threads=1, checkpoint=checkpoint)


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    try:
        from streammetric.engine.dask import local_cluster
    except ImportError:  # pragma: no cover - CI installs the dask extra
        if os.environ.get("CI"):
            pytest.fail("dask[distributed] is not installed: CI must run the dask tests")
        pytest.skip("dask[distributed] is not installed")
    with local_cluster(2, processes=False) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("ids", [None, "rid"])
def test_the_dask_engine_gives_the_same_bits(data, dask_address, ids):
    from streammetric.engine.dask import run_job_dask

    job = _job(data, ids)
    assert _bits(run_job_dask(job, scheduler=dask_address)) == _bits(run_job(job, threads=2))


def test_the_dask_engine_from_the_command_line(data):
    """``--engine dask --workers 2``: a cluster of worker processes (states pickled between
    processes), the same output as the local engine."""
    path = data / "split-str"
    command = [sys.executable, "-m", "streammetric.cli", "eval", str(path), *EVAL, *CI]
    command += ["--id", "rid", "--format", "json"]
    local = subprocess.run([*command, "--engine", "local"], capture_output=True, text=True)
    on_dask = subprocess.run(
        [*command, "--engine", "dask", "--workers", "2"], capture_output=True, text=True
    )
    if "dask[distributed] is not installed" in on_dask.stderr and not os.environ.get("CI"):
        pytest.skip("dask[distributed] is not installed")  # pragma: no cover
    assert local.returncode == 0 and on_dask.returncode == 0, on_dask.stderr
    assert on_dask.stdout == local.stdout
    assert "intervals" in json.loads(local.stdout)


def test_skipped_rows_are_not_resampled(tmp_path):
    """``--on-invalid skip`` with ``--id``: rows skipped by the reader (NaN probabilities) or by
    a metric (a label beyond the classes) are left out, and the others keep their ids'
    weights: the same intervals as the file without those rows."""
    table = _with_ids(preds_table(1000, seed=5), "int")
    probs = table["probs"].combine_chunks().flatten().to_numpy().reshape(1000, 4).copy()
    labels = table["label"].to_numpy().copy()
    bad = np.zeros(1000, dtype=bool)
    bad[[3, 400, 401, 999]] = True
    probs[[3, 400]] = np.nan
    labels[[401, 999]] = 9
    flat = pa.array(probs.reshape(-1).astype(np.float32))
    dirty = table.set_column(0, "label", pa.array(labels)).set_column(
        1, "probs", pa.FixedSizeListArray.from_arrays(flat, 4)
    )
    pq.write_table(dirty, tmp_path / "dirty.parquet", row_group_size=300)
    pq.write_table(table.filter(pa.array(~bad)), tmp_path / "clean.parquet", row_group_size=300)
    options = (*EVAL, *CI, "--id", "rid", "--on-invalid", "skip")
    dirty_result = _json(tmp_path / "dirty.parquet", *options)
    clean_result = _json(tmp_path / "clean.parquet", *options)
    assert dirty_result["invalid_rows"] == 4 and clean_result["invalid_rows"] == 0
    dirty_result["invalid_rows"] = 0
    assert json.dumps(dirty_result) == json.dumps(clean_result)


def test_many_groups_computed_a_few_at_a_time_give_the_same_bits(tmp_path, monkeypatch):
    """Replicate values are computed a few groups at a time (bounded memory): the chunking
    does not change any group's interval, and each group's interval is that of its rows alone
    (with ids: the same rows in a file of their own)."""
    rng = np.random.default_rng(8)
    table = _with_ids(preds_table(3000, seed=8), "int")
    models = pa.array([f"m{g:02d}" for g in rng.integers(0, 40, 3000)])
    table = table.set_column(2, "model", models)
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path, row_group_size=500)

    def job(source: Path) -> Job:
        return Job(
            paths=[str(source)],
            metrics=["ce", "acc"],
            columns=ColumnSpec(labels="label", preds="probs", by=("model",), ids="rid"),
            resampling=Resampling(0.95, 100, 2),
        )

    def no_pool(*args, **kwargs):
        raise AssertionError("threads=1 starts no replicates' threads")

    with monkeypatch.context() as patch:  # threads=1: one chunk, in this thread, whatever cores
        patch.setattr(bootstrap.os, "cpu_count", lambda: 4)
        patch.setattr(bootstrap, "ThreadPoolExecutor", no_pool)
        reference = run_job(job(path), threads=1).to_dict()
    assert len(reference["groups"]) == 40
    for threads in (2, 4):  # a chunk per thread, on as many threads
        assert json.dumps(run_job(job(path), threads=threads).to_dict()) == json.dumps(reference)
    for share in (0.0, 2.0):  # every chunk's cells as a matrix product, or cell by cell
        monkeypatch.setattr(state_module, "_DENSE_SHARE", share)
        assert json.dumps(run_job(job(path), threads=2).to_dict()) == json.dumps(reference)
    monkeypatch.undo()
    monkeypatch.setattr(bootstrap, "_CHUNK", 300)  # 3 groups a chunk, 14 chunks
    assert json.dumps(run_job(job(path), threads=2).to_dict()) == json.dumps(reference)
    for group in (reference["groups"][0], reference["groups"][17]):
        key = group["key"]["model"]
        alone = tmp_path / f"{key}.parquet"
        pq.write_table(table.filter(pc.equal(table["model"], key)), alone)
        result = run_job(job(alone), threads=1).to_dict()
        assert result["intervals"] == group["intervals"] == result["groups"][0]["intervals"]


@pytest.mark.parametrize("by", [(), ("--by", "model")])
def test_no_rows_give_the_metrics_and_no_intervals(tmp_path, by):
    path = tmp_path / "empty.parquet"
    pq.write_table(preds_table(10, seed=1).slice(0, 0), path)
    plain = _json(path, "-m", "acc", *by)
    result = invoke("eval", path, "-m", "acc", *by, *CI, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    with_ci = json.loads(result.stdout)
    assert with_ci["rows"] == 0 and with_ci["intervals"] == {}
    assert json.dumps(with_ci["metrics"]) == json.dumps(plain["metrics"])


def test_a_group_of_one_row_has_its_value_as_both_bounds(tmp_path):
    """Replicates that drew no row of a group have no value for it and are left out: a group
    of one row has the interval [value, value], not NaN."""
    table = preds_table(300, seed=5)
    models = table["model"].to_pylist()
    models[17] = "solo"
    path = tmp_path / "preds.parquet"
    pq.write_table(table.set_column(2, "model", pa.array(models)), path)
    result = _json(path, *EVAL, *CI)
    solo = next(group for group in result["groups"] if group["key"]["model"] == "solo")
    assert solo["rows"] == 1
    for name, value in solo["metrics"].items():
        assert solo["intervals"][name] == {"lower": value, "upper": value}


def test_per_class_values_have_per_class_intervals_in_json(data):
    f1 = "f1:average=None,class_type=multiclass,num_classes=4"
    path = data / "one" / "preds.parquet"
    options = ("-m", f1, "--by", "model", "--class-names", "cat,dog,eel,fox")
    result = _json(path, *options, *CI)
    assert json.dumps(result["metrics"]) == json.dumps(_json(path, *options)["metrics"])
    for scope in [result, *result["groups"]]:
        values, bounds = scope["metrics"]["f1"], scope["intervals"]["f1"]
        assert (
            list(values)
            == list(bounds["lower"])
            == list(bounds["upper"])
            == [
                "cat",
                "dog",
                "eel",
                "fox",
            ]
        )
        for name, value in values.items():
            assert bounds["lower"][name] < value < bounds["upper"][name]
