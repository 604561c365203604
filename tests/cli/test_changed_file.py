"""A local input file truncated (or rewritten in place) while `eval` reads it: its pages are
mapped in memory, and the read past its new end raises SIGBUS inside pyarrow or a kernel. The
command names the file in one line and exits 1 (`streammetric._guard`), instead of the shell's
"Bus error"; a SIGBUS elsewhere keeps its default action; a file that cannot be mapped is read
into memory instead."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from streammetric.engine.local import evaluate
from tests.io.fixtures import prediction_table, write_ipc, write_parquet

RULE = (
    "the file changed while it was read (truncated or rewritten in place); write a new file "
    "and rename it into place"
)

# failure injection: the file is cut to its first 1,000 bytes right after its map is made
TRUNCATING = textwrap.dedent(
    """
    import os, sys
    import streammetric.io.reader as reader
    import streammetric.io.sources as sources
    real = sources.map_file
    def truncating(path, name=None):
        mapped = real(path, name)
        os.truncate(path, 1000)
        return mapped
    reader.map_file = sources.map_file = truncating
    sys.argv = ["streammetric", *sys.argv[1:]]
    from streammetric.cli import run
    run()
    """
)


def _eval_truncating(cwd, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TRUNCATING, "eval", name, "-m", "ce", "--threads", "1"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_a_file_truncated_while_mapped_is_named_in_one_line(tmp_path, kind):
    table = prediction_table(200_000)
    if kind == "parquet":
        write_parquet(tmp_path / "preds.parquet", table, row_group_size=50_000)
    else:
        write_ipc(tmp_path / "preds.arrow", table, chunk=50_000)
    name = f"preds.{kind}"
    done = _eval_truncating(tmp_path, name)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"streammetric: error: {name}: {RULE}\n"
    assert done.stdout == ""


def test_another_sigbus_keeps_its_default_action():
    code = (
        "import os, signal\n"
        "from streammetric import _guard\n"
        "_guard.install(1, 'streammetric: error: ')\n"
        "os.kill(os.getpid(), signal.SIGBUS)\n"  # no mapped file's address: not ours
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGBUS
    assert b"changed while it was read" not in done.stderr


def test_a_file_that_cannot_be_mapped_is_read_into_memory(tmp_path, monkeypatch):
    import streammetric.io.reader as reader

    table = prediction_table(5_000)
    path = write_parquet(tmp_path / "preds.parquet", table, row_group_size=1_000)
    mapped = evaluate(str(path), ["ce", "acc"]).to_dict()

    def unmappable(path, name=None):  # failure injection: as a FUSE mount without mmap says
        raise OSError(19, "Memory mapping file failed: No such device")

    monkeypatch.setattr(reader, "map_file", unmappable)
    read = evaluate(str(path), ["ce", "acc"]).to_dict()
    assert read == mapped
    assert all(np.isfinite(value) for value in read["metrics"].values())


def test_mapped_reads_keep_arrow_ipc_and_parquet_results_identical(tmp_path):
    table = prediction_table(30_000)
    parquet = write_parquet(tmp_path / "p.parquet", table, row_group_size=4_096)
    ipc = write_ipc(tmp_path / "p.arrow", table, chunk=4_096)
    in_memory = evaluate(table, ["ce", "acc"]).to_dict()["metrics"]
    assert evaluate(str(parquet), ["ce", "acc"]).to_dict()["metrics"] == in_memory
    assert evaluate(str(ipc), ["ce", "acc"]).to_dict()["metrics"] == in_memory
