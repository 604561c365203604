"""The local engine: right values, same bits for any thread count, groups, skip, checkpoints."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine import Job, evaluate, run_job
from streammetric.engine.local import JobRun
from streammetric.io import ColumnSpec

from .conftest import regression_table


def _fsum_mean(values: np.ndarray) -> float:
    """The correctly rounded mean of float64 values (exact rational arithmetic)."""
    from fractions import Fraction

    return float(sum(map(Fraction, values.tolist())) / len(values))


def test_values_match_numpy_on_a_hive_dataset(regression_dir, regression_concat):
    y = regression_concat["y"].to_numpy()
    p = regression_concat["pred"].to_numpy()
    result = evaluate(regression_dir, ["mae", "mse"], labels="y", preds="pred", by="model")
    assert result.rows == len(y) and result.invalid_rows == 0
    assert result.metrics["mae"] == _fsum_mean(np.abs(y - p))
    assert result.metrics["mse"] == _fsum_mean((y - p) ** 2)
    models = regression_concat["model"].to_numpy(zero_copy_only=False)
    for group in result.groups:
        mask = models == group["key"]["model"]
        assert group["rows"] == int(mask.sum())
        assert group["metrics"]["mae"] == _fsum_mean(np.abs(y[mask] - p[mask]))


def test_weights_column(regression_dir, regression_concat):
    y, p, w = (regression_concat[c].to_numpy() for c in ("y", "pred", "w"))
    result = evaluate(regression_dir, "mae", labels="y", preds="pred", weights="w")
    from fractions import Fraction

    expected = float(
        sum(map(Fraction, (np.abs(y - p) * w).tolist())) / sum(map(Fraction, w.tolist()))
    )
    assert result.metrics["mae"] == expected


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_same_bits_whatever_the_thread_count(regression_dir, threads):
    reference = evaluate(
        regression_dir,
        ["mae", "rmse", "pearsonr"],
        labels="y",
        preds="pred",
        by=["split", "model"],
        threads=1,
    )
    result = evaluate(
        regression_dir,
        ["mae", "rmse", "pearsonr"],
        labels="y",
        preds="pred",
        by=["split", "model"],
        threads=threads,
    )
    assert json.dumps(result.to_dict()) == json.dumps(reference.to_dict())


def test_ipc_file_and_group_of_string_column(ipc_file):
    table = pa.ipc.open_file(ipc_file).read_all()
    y, p, split = (
        table["y"].to_numpy(),
        table["pred"].to_numpy(),
        table["split"].to_numpy(zero_copy_only=False),
    )
    result = evaluate(ipc_file, "mae", labels="y", preds="pred", by="split")
    assert [g["key"]["split"] for g in result.groups] == sorted(set(split))
    for group in result.groups:
        mask = split == group["key"]["split"]
        assert group["metrics"]["mae"] == _fsum_mean(np.abs(y[mask] - p[mask]))


def test_skip_drops_bad_rows_and_equals_clean_rows(tmp_path):
    table = regression_table(1000, seed=3)
    pred = table["pred"].to_numpy().copy()
    bad = np.array([3, 500, 999])
    pred[bad] = np.nan
    dirty = tmp_path / "dirty.parquet"
    pq.write_table(table.set_column(1, "pred", pa.array(pred)), dirty, row_group_size=300)
    clean = tmp_path / "clean.parquet"
    keep = np.ones(1000, bool)
    keep[bad] = False
    pq.write_table(table.filter(pa.array(keep)), clean, row_group_size=300)
    with pytest.raises(
        sm.InvalidInputError,
        match=r"dirty.parquet: column `pred`, row 3: must be finite, got \[nan\]",
    ):
        evaluate(dirty, "mae", labels="y", preds="pred")
    skipped = evaluate(dirty, "mae", labels="y", preds="pred", on_invalid="skip")
    reference = evaluate(clean, "mae", labels="y", preds="pred")
    assert skipped.invalid_rows == 3 and skipped.rows == 997
    assert skipped.metrics == reference.metrics


@pytest.mark.parametrize("threads", [1, 3])
def test_progress_counts_each_units_rows_once(regression_dir, threads):
    """The progress hook hears of every unit once, with the rows it held (valid or not),
    whether units share a thread's partial (no checkpoint) or not."""
    job = Job(
        paths=[str(regression_dir)],
        metrics=["mae"],
        columns=ColumnSpec(labels="y", preds="pred", by=("model",)),
    )
    heard: list[int] = []
    result = run_job(job, threads=threads, progress=heard.append)
    units = len(JobRun(job).units)
    assert len(heard) == units > threads and all(rows > 0 for rows in heard)
    assert sum(heard) == result.rows + result.invalid_rows


def test_checkpoint_resume_after_a_crash_is_identical(regression_dir, tmp_path):
    job = Job(
        paths=[str(regression_dir)],
        metrics=["mae", "rmse"],
        columns=ColumnSpec(labels="y", preds="pred", by=("model",)),
    )
    reference = run_job(job, threads=2).to_dict()
    checkpoint = tmp_path / "ck.json"
    seen = []

    def crash_after_some_units(rows: int) -> None:  # failure injection: die mid-run
        seen.append(rows)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(job, threads=1, checkpoint=checkpoint, progress=crash_after_some_units)
    state = json.loads(checkpoint.read_text())
    assert 0 < len(state["done"]) < 24
    resumed = run_job(job, threads=2, checkpoint=checkpoint).to_dict()
    assert json.dumps(resumed) == json.dumps(reference)


def test_checkpoint_of_other_options_is_refused(regression_dir, tmp_path):
    checkpoint = tmp_path / "ck.json"
    evaluate(regression_dir, "mae", labels="y", preds="pred", checkpoint=checkpoint)
    with pytest.raises(sm.StateError, match=r"checkpoint belongs to a run with different metrics"):
        evaluate(regression_dir, "mse", labels="y", preds="pred", checkpoint=checkpoint)
    text = checkpoint.read_text()
    checkpoint.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(sm.StateError, match="checkpoint is corrupt"):
        evaluate(regression_dir, "mae", labels="y", preds="pred", checkpoint=checkpoint)
    checkpoint.write_text("{broken")  # no longer recognisable: maybe not ours, so not touched
    with pytest.raises(sm.StateError, match="not a streammetric checkpoint"):
        evaluate(regression_dir, "mae", labels="y", preds="pred", checkpoint=checkpoint)


def test_kill_9_and_resume_gives_the_identical_result(tmp_path):
    data = tmp_path / "big"
    data.mkdir()
    for part in range(4):
        pq.write_table(
            regression_table(150_000, seed=part), data / f"p{part}.parquet", row_group_size=2_000
        )
    command = [
        sys.executable,
        "-m",
        "streammetric.cli",
        "eval",
        str(data),
        "-m",
        "mae",
        "-m",
        "rmse",
        "--labels",
        "y",
        "--preds",
        "pred",
        "--format",
        "json",
        "--threads",
        "1",
    ]
    reference = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    checkpoint = tmp_path / "ck.json"
    process = subprocess.Popen(
        [*command, "--checkpoint", str(checkpoint)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time

    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    process.kill()  # SIGKILL: no cleanup runs
    process.wait()
    done = len(json.loads(checkpoint.read_text())["done"])
    assert 0 < done < 300, f"the kill did not land mid-run ({done} of 300 units done)"
    resumed = subprocess.run(
        [*command, "--checkpoint", str(checkpoint)], capture_output=True, text=True, check=True
    ).stdout
    assert resumed == reference


def test_stdin_ipc_stream(tmp_path):
    table = regression_table(3000, seed=9)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=700)
    command = [
        sys.executable,
        "-m",
        "streammetric.cli",
        "eval",
        "-",
        "-m",
        "mae",
        "--labels",
        "y",
        "--preds",
        "pred",
        "--format",
        "json",
    ]
    out = subprocess.run(
        command, input=sink.getvalue().to_pybytes(), capture_output=True, check=True
    ).stdout
    y, p = table["y"].to_numpy(), table["pred"].to_numpy()
    assert json.loads(out) == {
        "rows": 3000,
        "invalid_rows": 0,
        "metrics": {"mae": _fsum_mean(np.abs(y - p))},
    }


def test_empty_result_is_nan_not_an_error(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(regression_table(0, seed=1), path)
    result = evaluate(path, "mae", labels="y", preds="pred")
    assert result.rows == 0 and math.isnan(result.metrics["mae"])
