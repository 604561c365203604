"""A stdout whose reader is gone (``streammetric eval ... | head``, ``| true``): the files asked
for are still written, and the command ends quietly (no error line) with exit status 1, as
click and Python end on a broken pipe (3 if a threshold was crossed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .test_compare import write_pair


def _run_with_closed_stdout(*args: object) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: EPIPE on the first write
    try:
        return subprocess.run(
            [sys.executable, "-m", "streammetric", *map(str, args)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("pipe"))


def test_eval_writes_its_report_and_textfile_and_ends_quietly(pair, tmp_path):
    report, prom = tmp_path / "r.html", tmp_path / "m.prom"
    done = _run_with_closed_stdout(
        "eval", pair / "base.parquet", "-m", "acc", "--by", "model", "--report", report,
        "--textfile", prom,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "error" not in done.stderr and "Broken pipe" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert report.read_text().startswith("<!DOCTYPE html>") or "<html" in report.read_text()
    assert "accuracy" in prom.read_text()


def test_compare_writes_its_report_and_ends_quietly(pair, tmp_path):
    report = tmp_path / "c.html"
    done = _run_with_closed_stdout(
        "compare", pair / "base.parquet", pair / "cand.parquet", "-m", "acc", "--bootstrap",
        "200", "--report", report,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr == "", done.stderr
    assert "<html" in report.read_text()


def test_a_crossed_threshold_still_exits_3(pair, tmp_path):
    done = _run_with_closed_stdout(
        "eval", pair / "base.parquet", "-m", "acc", "--fail-below", "accuracy=0.99",
        "--checkpoint", tmp_path / "c.ckpt",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "threshold crossed" in done.stderr and "Broken pipe" not in done.stderr
    assert (tmp_path / "c.ckpt").stat().st_size > 0


def test_other_commands_end_quietly_too(pair):
    done = _run_with_closed_stdout("metrics")
    assert done.returncode == 1 and done.stderr == "", done.stderr


def test_sigterm_ends_a_command_as_ctrl_c_does_and_is_restored_after():
    """SIGTERM (timeout, systemd, Kubernetes) raises KeyboardInterrupt in a command, so that a
    run with --checkpoint saves its finished units first (it ended the process at once)."""
    import signal

    from streammetric.cli_common import _terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), _terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    assert signal.getsignal(signal.SIGTERM) is before
