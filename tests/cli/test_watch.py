"""``streammetric watch``: each complete file once, live values, checkpoint restarts, signals."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq

import streammetric as sm
from streammetric.engine.local import Job
from streammetric.engine.watch import Watcher
from streammetric.io import ColumnSpec
from tests.export.conftest import wait_until

from .helpers import (
    METRICS,
    NAMES,
    Cli,
    expected_series,
    gauge_values,
    invoke,
    parquet_bytes,
    preds_table,
    reprs,
    run_cli,
    stored,
    wait_for_stored,
    write_preds,
)

COLUMNS = ("--labels", "label", "--preds", "probs")
BY_JSON = ("--by", "model", "--format", "json")


def evaluate(paths: list[Path]) -> dict:
    """What ``eval`` prints for ``paths`` (the reference every watch must equal)."""
    result = sm.evaluate(paths, ["ce", "acc"], labels="label", preds="probs", by="model")
    return json.loads(json.dumps(result.to_dict()))


def test_watch_serve_evaluates_each_file_once_and_ends_on_sigterm(prometheus, tmp_path):
    folder = tmp_path / "drop"
    write_preds(folder / "a.parquet", 300, seed=1)
    write_preds(folder / ".hidden.parquet", 100, seed=7)  # skipped: hidden, temp, underscore
    write_preds(folder / "_SUCCESS", 100, seed=8)
    (folder / "notes.txt").write_text("not data")
    run = "cli-watch"
    process = Cli(
        ["watch", folder, *METRICS, *COLUMNS, "--by", "model", "--format", "json",
         "--interval", "0.2", "--serve", f"127.0.0.1:{prometheus.plain_port}", "--run", run],
        tmp_path / "p",
    )  # fmt: skip
    try:
        process.wait_for_stderr("a.parquet: 300 rows")
        write_preds(folder / "b.parquet.tmp", 250, seed=2)  # written under a temp name...
        time.sleep(0.5)
        os.replace(folder / "b.parquet.tmp", folder / "b.parquet")  # ...then renamed into place
        data = parquet_bytes(350, seed=3)
        with open(folder / "c.parquet", "wb") as handle:  # half-written for a while
            handle.write(data[: len(data) // 2])
            handle.flush()
            process.wait_for_stderr("b.parquet: 250 rows")
            time.sleep(0.8)  # several polls see the incomplete file
            assert "c.parquet" not in process.stderr
            handle.write(data[len(data) // 2 :])
        process.wait_for_stderr("c.parquet: 350 rows")
        expected = evaluate([folder / name for name in ("a.parquet", "b.parquet", "c.parquet")])
        for name, gauge in NAMES.items():
            expr = f'{gauge}{{job="streammetric",run="{run}",scope="global"}}'
            wait_for_stored(prometheus, expr, expected_series(expected, name))
        rows = stored(prometheus, f'streammetric_rows_total{{run="{run}"}}')
        assert sum(rows.values()) == expected["rows"] == 900
    finally:
        code = process.stop(signal.SIGTERM)
    assert code == 0, process.stderr
    assert json.loads(process.stdout) == expected  # the final result, in --format json
    for name in ("a.parquet", "b.parquet", "c.parquet"):
        assert process.stderr.count(f"watch: {name}:") == 1
    for skipped in (".hidden", "_SUCCESS", "notes.txt", "b.parquet.tmp", "Traceback"):
        assert skipped not in process.stderr


def _checkpointed(checkpoint: Path) -> set[str]:
    try:
        return set(json.loads(checkpoint.read_text())["extra"]["files"])
    except (OSError, ValueError, KeyError):
        return set()


def test_watch_checkpoint_survives_kill_9(tmp_path):
    folder, checkpoint = tmp_path / "drop", tmp_path / "ck.json"
    folder.mkdir()
    args = ["watch", folder, *METRICS, *COLUMNS, "--by", "model", "--format", "json",
            "--checkpoint", checkpoint]  # fmt: skip
    process = Cli([*args, "--interval", "0.1"], tmp_path / "p")
    try:
        for index in range(3):
            write_preds(folder / f"part-{index}.parquet", 200 + index, seed=index)
        wait_until(lambda: len(_checkpointed(checkpoint)) >= 2, 30, "two files checkpointed")
    finally:
        process.kill()  # SIGKILL: no cleanup runs
    done = _checkpointed(checkpoint)
    for index in range(3, 5):  # more files land while it is down
        write_preds(folder / f"part-{index}.parquet", 200 + index, seed=index)
    resumed = run_cli(*args, "--once")
    assert resumed.returncode == 0, resumed.stderr
    evaluated = {line.split(": ")[2] for line in resumed.stderr.splitlines() if " rows (" in line}
    assert evaluated == {f"part-{i}.parquet" for i in range(5)} - done
    reference = run_cli("eval", folder, *METRICS, *COLUMNS, "--by", "model", "--format", "json")
    assert resumed.stdout == reference.stdout  # identical to one uninterrupted eval
    again = run_cli(*args, "--once")  # nothing new: nothing counted twice
    assert again.stdout == reference.stdout and " rows (" not in again.stderr


def test_watcher_rechecks_a_failed_file_when_it_changes(tmp_path):
    folder = tmp_path / "drop"
    good = write_preds(folder / "a.parquet", 120, seed=1)
    bad = folder / "b.parquet"
    pq.write_table(preds_table(80, seed=2).drop(["probs"]), bad)  # no prediction column
    messages: list[str] = []
    job = Job([str(folder)], ["ce"], ColumnSpec(labels="label", preds="probs"))
    watcher = Watcher(folder, job, threads=1, log=messages.append)
    assert watcher.poll(once=True) == 1 and set(watcher.failed) == {"b.parquet"}
    assert len(messages) == 1 and messages[0].startswith("b.parquet: not evaluated: ")
    assert "probs" in messages[0]
    assert watcher.poll(once=True) == 0 and len(messages) == 1  # unchanged: not retried
    write_preds(bad, 80, seed=2)
    assert watcher.poll(once=True) == 1 and not watcher.failed
    expected = sm.evaluate([good, bad], "ce", labels="label", preds="probs")
    assert watcher.result().to_dict() == expected.to_dict()
    write_preds(good, 10, seed=3)  # a finished file changing later: reported, not re-counted
    assert (
        watcher.poll(once=True) == 0 and "a.parquet: changed after it was evaluated" in messages[-1]
    )
    assert watcher.result().rows == 200


def test_watcher_waits_for_a_stable_size_between_polls(tmp_path):
    folder = tmp_path / "drop"
    write_preds(folder / "a.parquet", 50, seed=1)
    job = Job([str(folder)], ["ce"], ColumnSpec(labels="label", preds="probs"))
    watcher = Watcher(folder, job, threads=1)
    assert watcher.poll() == 0 and watcher.incomplete == {"a.parquet"}  # first sight
    assert watcher.poll() == 1 and not watcher.incomplete
    assert watcher.poll() == 0


def test_watch_once_textfile_and_failed_file_exit_1(tmp_path):
    folder = tmp_path / "drop"
    write_preds(folder / "a.parquet", 150, seed=1)
    pq.write_table(preds_table(80, seed=2).drop(["probs"]), folder / "bad.parquet")  # fails
    (folder / "partial.parquet").write_bytes(parquet_bytes(100, seed=2)[:-30])  # incomplete
    prom = tmp_path / "out.prom"
    result = invoke("watch", folder, *METRICS, *COLUMNS, *BY_JSON, "--once", "--textfile", prom)
    assert result.exit_code == 1, result.output
    expected = evaluate([folder / "a.parquet"])
    assert json.loads(result.stdout) == expected
    assert "watch: bad.parquet: not evaluated: " in result.stderr
    assert "watch: partial.parquet: not complete yet; left for a later run" in result.stderr
    assert "1 file(s) could not be evaluated: bad.parquet" in result.stderr
    text = prom.read_text()
    for name, gauge in NAMES.items():
        assert reprs(gauge_values(text, gauge)) == reprs(expected_series(expected, name))


def test_a_watch_checkpoint_of_a_run_without_strict_is_refused_with_strict(tmp_path):
    """--strict changes what is counted: a checkpoint of a run without it (and the reverse) is
    refused, as eval's is (it was resumed, mixing the two rules)."""
    folder = tmp_path / "drop"
    write_preds(folder / "a.parquet", 60, seed=1)
    checkpoint = tmp_path / "w.ckpt"
    args = ("watch", folder, "-m", "ce", "--once", "--checkpoint", checkpoint)
    assert invoke(*args).exit_code == 0
    refused = invoke(*args, "--strict")
    assert refused.exit_code == 1 and "different --strict" in refused.output, refused.output
    assert invoke(*args).exit_code == 0  # the same options resume


def test_lists_of_another_length_in_a_later_file_are_ragged_rows_as_in_eval(tmp_path):
    """Probabilities as lists of any length: a later file of 4 classes where the first had 3
    is a file of ragged rows, as one ``eval`` over both reads it: skipped and counted under
    ``--on-invalid skip`` (the same result as eval's), an error naming the row otherwise."""
    import numpy as np
    import pyarrow as pa

    folder = tmp_path / "drop"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, classes in (("a", 3), ("b", 4)):
        probs = rng.dirichlet(np.ones(classes), 30)
        table = pa.table(
            {
                "label": rng.integers(0, 3, 30),
                "probs": pa.array(probs.tolist(), pa.list_(pa.float64())),
            }
        )
        pq.write_table(table, folder / f"{name}.parquet")
    job = Job([str(folder)], ["ce", "acc"], ColumnSpec(labels="label", preds="probs"))
    for on_invalid in ("skip", "raise"):
        messages: list[str] = []
        checked = dataclasses.replace(job, on_invalid=on_invalid)
        watcher = Watcher(folder, checked, threads=1, log=messages.append)
        watcher.poll(once=True)
        if on_invalid == "skip":
            assert not watcher.failed, messages
            expected = sm.evaluate([folder], ["ce", "acc"], labels="label", preds="probs",
                                   on_invalid="skip")  # fmt: skip
            assert watcher.result().to_dict() == expected.to_dict()
            assert watcher.result().invalid_rows == 30
        else:
            assert set(watcher.failed) == {"b.parquet"}
            assert "row 0: list has 4 values, expected 3" in messages[-1], messages


def test_a_file_truncated_while_the_watcher_reads_it_is_reported_and_the_watch_goes_on(
    tmp_path, monkeypatch
):
    """`watch` reads its files into memory, not through a memory map: a file truncated in place
    while it is read is a file that failed (reported, re-checked when it changes), not SIGBUS
    ending the process (`eval` maps its files: tests/cli/test_changed_file.py)."""
    import streammetric.io.reader as reader

    folder = tmp_path / "drop"
    cut, kept = folder / "a.parquet", write_preds(folder / "b.parquet", 90, seed=2)
    pq.write_table(preds_table(20_000, seed=1), cut, row_group_size=5_000)
    expected = sm.evaluate([kept], "ce", labels="label", preds="probs")
    opened = reader._open_parquet

    def truncating(unit, resolved, in_place=True):  # failure injection: cut after opening
        parquet_file, wanted = opened(unit, resolved, in_place)
        if unit.path == str(cut):
            os.truncate(cut, 1000)
        return parquet_file, wanted

    def mapping(*args):  # not an OSError: the reader would fall back to reading, not fail
        raise AssertionError("watch mapped a file")

    monkeypatch.setattr(reader, "_open_parquet", truncating)
    monkeypatch.setattr(reader, "map_file", mapping)
    messages: list[str] = []
    job = Job([str(folder)], ["ce"], ColumnSpec(labels="label", preds="probs"))
    watcher = Watcher(folder, job, threads=1, log=messages.append)
    assert watcher.poll(once=True) == 1 and set(watcher.failed) == {"a.parquet"}
    assert len(messages) == 1 and messages[0].startswith("a.parquet: not evaluated: ")
    assert watcher.result().to_dict() == expected.to_dict()
