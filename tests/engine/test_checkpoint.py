"""Checkpoints are checked before they are trusted, and never clobber a file that is not one.

A checkpoint holds a digest of its content (accidental corruption), and its state must agree
with its finished units (tampering, or a digest recomputed after an edit): refused with one line
naming the file and the field, never a double count or a negative loss.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import streammetric as sm
from streammetric.cli import main
from streammetric.engine import Job, run_job
from streammetric.engine.checkpoint import content_digest
from streammetric.io import ColumnSpec
from streammetric.metrics.state import column_items

from .conftest import regression_table

JOB = dict(metrics=["mae", "ce"], columns=ColumnSpec(labels="y", preds="pred"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    for part in range(3):
        pq.write_table(
            regression_table(900, seed=part), root / f"p{part}.parquet", row_group_size=300
        )
    return root


def _job(data: Path) -> Job:
    return Job(
        paths=[str(data)], metrics=["mae", "rmse"], columns=ColumnSpec(labels="y", preds="pred")
    )


def _interrupted(data: Path, checkpoint: Path, units: int = 4) -> dict:  # saves: >= 1 unit
    """A checkpoint of a run killed after ``units`` units (failure injection in `progress`)."""
    seen = []

    def crash(rows: int) -> None:
        seen.append(rows)
        if len(seen) == units:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(_job(data), threads=1, checkpoint=checkpoint, progress=crash)
    return json.loads(checkpoint.read_text())


def _write(checkpoint: Path, payload: dict, *, fix_digest: bool) -> None:
    """Save an edited checkpoint; ``fix_digest``: as a tamperer would, with a fresh digest."""
    if fix_digest:
        payload = {k: v for k, v in payload.items() if k != "digest"}
        payload["digest"] = content_digest(payload)
    checkpoint.write_text(json.dumps(payload))


def test_a_checkpoint_holds_a_digest_and_resumes_to_the_same_bits(data, tmp_path):
    checkpoint = tmp_path / "ck.json"
    reference = run_job(_job(data), threads=2).to_dict()
    payload = _interrupted(data, checkpoint)
    assert payload["digest"] == content_digest({k: v for k, v in payload.items() if k != "digest"})
    assert run_job(_job(data), threads=2, checkpoint=checkpoint).to_dict() == reference


@pytest.mark.parametrize("fix_digest", [False, True])
def test_finished_units_removed_are_refused_not_counted_twice(data, tmp_path, fix_digest):
    checkpoint = tmp_path / "ck.json"
    run_job(_job(data), threads=2, checkpoint=checkpoint)  # a finished run: 9 units done
    payload = json.loads(checkpoint.read_text())
    assert len(payload["done"]) == 9
    payload["done"] = payload["done"][:4]  # the state still holds the rows of all 9 units
    _write(checkpoint, payload, fix_digest=fix_digest)
    match = "rows" if fix_digest else "digest"
    with pytest.raises(sm.StateError, match=match) as caught:
        run_job(_job(data), threads=1, checkpoint=checkpoint)
    assert str(checkpoint) in str(caught.value) and caught.value.path == str(checkpoint)


def _set(column: list | dict, value) -> None:
    """The first group's value of a column (an exact sum's: in each of its fields' lists)."""
    if isinstance(column, dict):
        for name, part in value.items():
            column[name][0] = part
    else:
        column[0] = value


def _repeat_first_key(partial: dict) -> None:
    """A second group with the first one's key (each column one value longer)."""
    partial["keys"].append(partial["keys"][0])
    partial["group_rows"].append(0)
    for columns in partial["states"]:
        for column in columns.values():
            for values in column.values() if isinstance(column, dict) else [column]:
                values.append(values[0])


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda p: _set(p["partial"]["states"][0]["num_inst"], -1), "num_inst"),
        (
            lambda p: _set(
                p["partial"]["states"][0]["sum_metric"], {"mantissa": "-7", "shift": 1074}
            ),
            "sum_metric",
        ),
        (
            lambda p: _set(
                p["partial"]["states"][1]["sum_weight"], {"mantissa": "1", "shift": 10**15}
            ),
            "sum_weight.shift",
        ),
        (lambda p: p["partial"]["states"][1].pop("sum_weight"), "sum_weight"),
        (lambda p: p["partial"]["states"][0]["num_inst"].append(0), "num_inst"),
        (lambda p: p["partial"].update(rows=-5), "partial.rows"),
        (lambda p: p["partial"].update(invalid_rows="0"), "partial.invalid_rows"),
        (lambda p: _set(p["partial"]["group_rows"], 10**6), "partial.rows"),
        (lambda p: _repeat_first_key(p["partial"]), "partial.keys[1]"),
        (lambda p: p["partial"].update(keys={}), "partial.keys"),
        (lambda p: p["partial"].update(state_version=0), "partial.state_version"),
        (lambda p: p["partial"]["states"].pop(), "partial.states"),
        (lambda p: p["done"].append(p["done"][0]), "done"),
        (lambda p: p["done"].append("elsewhere.parquet#rg0"), "done"),
        (lambda p: p["done"].append(7), "done"),
        (lambda p: p.update(done="all"), "done"),
        (lambda p: p.pop("partial"), "partial"),
        (lambda p: p.update(version=2), "version"),
    ],
)
def test_inconsistent_fields_are_refused_naming_file_and_field(data, tmp_path, edit, field):
    checkpoint = tmp_path / "ck.json"
    payload = _interrupted(data, checkpoint)
    edit(payload)
    _write(checkpoint, payload, fix_digest=True)
    with pytest.raises(sm.StateError) as caught:
        run_job(_job(data), threads=1, checkpoint=checkpoint)
    message = str(caught.value)
    assert message.startswith(f"{checkpoint}: ") and "\n" not in message
    assert field in (caught.value.field or ""), message
    assert caught.value.field in message


def run_cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "content",
    [
        None,  # a Parquet file: the data itself
        b"\x89PNG\r\n\x1a\n\x00\x00binary",
        b'{"model": "resnet", "lr": 0.1}',  # someone's JSON
        b"",
    ],
)
def test_checkpoint_path_of_another_file_is_refused_and_left_untouched(data, tmp_path, content):
    target = data / "p0.parquet" if content is None else tmp_path / "notes.bin"
    if content is not None:
        target.write_bytes(content)
    before = target.read_bytes()
    result = run_cli(
        "eval", data, "-m", "mae", "--labels", "y", "--preds", "pred", "--checkpoint", target
    )
    assert result.exit_code != 0 and not isinstance(result.exception, ValueError)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streammetric: error: "), result.output
    assert "not a streammetric checkpoint" in lines[0] and str(target) in lines[0]
    assert target.read_bytes() == before


def test_a_corrupt_checkpoint_is_one_line_and_kept(data, tmp_path):
    checkpoint = tmp_path / "ck.json"
    _interrupted(data, checkpoint)
    text = checkpoint.read_text()
    for corrupt in (text[: len(text) // 2], text.replace('"mantissa":["', '"mantissa":["9', 1)):
        assert corrupt != text
        checkpoint.write_text(corrupt)
        result = run_cli(
            "eval", data, "-m", "mae", "-m", "rmse", "--labels", "y", "--preds", "pred",
            "--checkpoint", checkpoint,
        )  # fmt: skip
        lines = result.output.strip().splitlines()
        assert result.exit_code != 0 and len(lines) == 1, result.output
        assert "corrupt" in lines[0] and str(checkpoint) in lines[0]
        assert checkpoint.read_text() == corrupt


def test_a_checkpoint_of_the_first_format_still_resumes(data, tmp_path):
    """Written before checkpoints had a format mark and a digest: checked field by field."""
    checkpoint = tmp_path / "ck.json"
    reference = run_job(_job(data), threads=2).to_dict()
    payload = _interrupted(data, checkpoint)
    old = {key: payload[key] for key in ("version", "identity", "done", "partial")}
    checkpoint.write_text(json.dumps(old))
    assert run_job(_job(data), threads=2, checkpoint=checkpoint).to_dict() == reference
    old["partial"]["rows"] += 1
    checkpoint.write_text(json.dumps(old))
    with pytest.raises(sm.StateError, match=r"partial\.rows"):
        run_job(_job(data), threads=2, checkpoint=checkpoint)


def test_a_checkpoint_with_a_list_of_values_per_column_still_resumes(data, tmp_path):
    """Written before count vectors and exact sums were written whole: each column a list of
    the groups' values."""
    checkpoint = tmp_path / "ck.json"
    reference = run_job(_job(data), threads=2).to_dict()
    payload = _interrupted(data, checkpoint)
    states = payload["partial"]["states"]
    assert any(isinstance(column, dict) for columns in states for column in columns.values())
    payload["partial"]["states"] = [
        {name: column_items(column) for name, column in columns.items()} for columns in states
    ]
    _write(checkpoint, payload, fix_digest=True)
    assert run_job(_job(data), threads=2, checkpoint=checkpoint).to_dict() == reference


def _stream(seed: int) -> bytes:
    import pyarrow as pa

    table = regression_table(2000, seed=seed)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=500)
    return sink.getvalue().to_pybytes()


def _eval_stdin(stdin: bytes, checkpoint: Path, *extra: object):
    import subprocess
    import sys

    command = [sys.executable, "-m", "streammetric.cli", "eval", "-", *map(str, extra)]
    command += ["-m", "mae", "--labels", "y", "--preds", "pred", "--format", "json"]
    command += ["--checkpoint", str(checkpoint)]
    return subprocess.run(command, input=stdin, capture_output=True)


def test_a_stdin_checkpoint_is_refused_for_other_bytes_on_stdin(tmp_path):
    """`cat a.arrows | eval - --checkpoint s.ckpt`, then other bytes on stdin: the old result
    used to be printed. The checkpoint says what stdin held (bytes, SHA-256, rows)."""
    checkpoint = tmp_path / "s.ckpt"
    first, other = _stream(1), _stream(2)
    done = _eval_stdin(first, checkpoint)
    assert done.returncode == 0, done.stderr
    reference = json.loads(done.stdout)
    refused = _eval_stdin(other, checkpoint)
    lines = refused.stderr.decode().strip().splitlines()
    assert refused.returncode != 0 and refused.stdout == b"" and len(lines) == 1, lines
    assert lines[0].startswith(f"streammetric: error: {checkpoint}: ") and "stdin" in lines[0]
    cut = _eval_stdin(first[: len(first) // 2], checkpoint)  # a prefix is other data too
    assert cut.returncode != 0 and b"Traceback" not in cut.stderr
    again = _eval_stdin(first, checkpoint)  # the same bytes: the same result, not read twice
    assert again.returncode == 0 and json.loads(again.stdout) == reference
    recorded = json.loads(checkpoint.read_text())["stdin"]
    assert recorded["bytes"] == len(first) and recorded["rows"] == 2000


def test_stdin_record_and_done_must_agree(tmp_path, data):
    checkpoint = tmp_path / "s.ckpt"
    first = _stream(1)
    assert _eval_stdin(first, checkpoint, data).returncode == 0
    payload = json.loads(checkpoint.read_text())
    for edit in (
        lambda p: p.pop("stdin"),
        lambda p: p["stdin"].update(rows=1999),
        lambda p: p["stdin"].update(sha256="x"),
        lambda p: p.update(done=[key for key in p["done"] if key != "-#stream"]),
    ):
        edited = json.loads(json.dumps(payload))
        edit(edited)
        _write(checkpoint, edited, fix_digest=True)
        refused = _eval_stdin(first, checkpoint, data)
        lines = refused.stderr.decode().strip().splitlines()
        assert refused.returncode != 0 and len(lines) == 1, lines
        assert str(checkpoint) in lines[0] and ("stdin" in lines[0] or "rows" in lines[0])


def test_resuming_a_finished_run_leaves_its_checkpoint_as_it_was(data, tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    _interrupted(data, checkpoint)
    partly = checkpoint.read_bytes()
    first = run_job(_job(data), threads=1, checkpoint=checkpoint)
    finished = checkpoint.stat()
    assert checkpoint.read_bytes() != partly  # resuming an unfinished run saves
    again = run_job(_job(data), threads=1, checkpoint=checkpoint)
    assert again.to_dict() == first.to_dict()
    after = checkpoint.stat()
    assert (after.st_ino, after.st_mtime_ns) == (finished.st_ino, finished.st_mtime_ns)


def test_a_reindented_checkpoint_still_resumes_and_an_edit_to_it_is_still_caught(data, tmp_path):
    checkpoint = tmp_path / "ck.json"
    reference = run_job(_job(data), threads=1).to_dict()
    payload = _interrupted(data, checkpoint)
    checkpoint.write_text(json.dumps(payload, indent=2))  # same content, another layout
    assert run_job(_job(data), threads=1, checkpoint=checkpoint).to_dict() == reference
    checkpoint = tmp_path / "edited.json"
    payload = _interrupted(data, checkpoint)
    payload["partial"]["invalid_rows"] = 1  # an edit the digest does not cover
    checkpoint.write_text(json.dumps(payload, indent=2))
    with pytest.raises(sm.StateError) as caught:
        run_job(_job(data), threads=1, checkpoint=checkpoint)
    assert caught.value.field == "digest"


@pytest.mark.parametrize("threads", [1, 2])
def test_a_failed_run_saves_every_unit_finished_before_the_error(data, tmp_path, threads):
    """The checkpoint is written at most once a second while the run goes; a bad row ends the
    run, and the units finished by then are saved first: a resume evaluates the others only."""
    import pyarrow as pa

    bad = regression_table(900, seed=2)
    pred = bad["pred"].to_numpy().copy()
    pred[850] = float("nan")  # in the last row group of the last file
    pq.write_table(
        bad.set_column(1, "pred", pa.array(pred)), data / "p2.parquet", row_group_size=300
    )
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(sm.InvalidInputError, match=r"p2\.parquet: column `pred`, row 850"):
        run_job(_job(data), threads=threads, checkpoint=checkpoint)
    saved = json.loads(checkpoint.read_text())
    assert len(saved["done"]) == 8 and "p2.parquet#rg2" not in " ".join(saved["done"])
    assert saved["partial"]["rows"] == 8 * 300
    seen: list[int] = []
    with pytest.raises(sm.InvalidInputError, match="row 850"):  # the rest only, then the error
        run_job(_job(data), threads=1, checkpoint=checkpoint, progress=seen.append)
    assert seen[0] == 8 * 300 and len(seen) == 1  # restored rows told, no unit evaluated again


def test_a_fixed_file_without_finished_units_resumes_one_with_them_is_refused(data, tmp_path):
    """The file that failed the run has no finished unit: fixed, the run resumes (its units
    evaluated, the others restored); a file changed after some of its units finished is
    refused by name, as are inputs added or removed."""
    import pyarrow as pa

    good = regression_table(900, seed=2)
    pred = good["pred"].to_numpy().copy()
    pred[5] = float("nan")  # the first row group of the last file: none of its units finish
    pq.write_table(
        good.set_column(1, "pred", pa.array(pred)), data / "p2.parquet", row_group_size=300
    )
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(sm.InvalidInputError, match="row 5"):
        run_job(_job(data), threads=1, checkpoint=checkpoint)
    assert len(json.loads(checkpoint.read_text())["done"]) == 6
    pq.write_table(good, data / "p2.parquet", row_group_size=300)  # fixed
    seen: list[int] = []
    resumed = run_job(_job(data), threads=1, checkpoint=checkpoint, progress=seen.append)
    assert seen == [6 * 300, 300, 300, 300]  # restored, then p2's three units only
    assert resumed.to_dict() == run_job(_job(data), threads=1).to_dict()

    pq.write_table(regression_table(900, seed=7), data / "p0.parquet", row_group_size=300)
    with pytest.raises(sm.StateError, match=r"p0\.parquet changed after some of its units"):
        run_job(_job(data), threads=1, checkpoint=checkpoint)
    pq.write_table(regression_table(900, seed=0), data / "p0.parquet", row_group_size=300)
    pq.write_table(regression_table(30, seed=8), data / "p3.parquet")
    with pytest.raises(sm.StateError, match=r"p3\.parquet is not an input of the checkpoint"):
        run_job(_job(data), threads=1, checkpoint=checkpoint)
