"""Labels an export would give twice, and a push to something that is not a Pushgateway:
one line each, never a traceback (and the result still printed where it was computed)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pyarrow.parquet as pq

from tests.cli.helpers import invoke, preds_table
from tests.cli.test_issue21_cli import one_line_error


def _data(tmp_path: Path) -> Path:
    table = preds_table(120, seed=2)
    table = table.append_column("level", table["model"]).append_column("job", table["model"])
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    return path


def test_a_group_column_named_as_an_exported_label_is_refused(tmp_path):
    data = _data(tmp_path)
    textfile = tmp_path / "out.prom"
    args = ("eval", data, "-m", "acc", "--by", "level", "--ci", "0.9", "--bootstrap", "20")
    one_line_error(invoke(*args, "--textfile", textfile), 2, "'level'", "taken or reserved")
    assert not textfile.exists()
    push = ("--push", "http://127.0.0.1:9")  # refused before anything is read or pushed
    one_line_error(invoke("eval", data, "-m", "acc", "--by", "job", *push), 2, "'job'")
    done = invoke("eval", data, "-m", "acc", "--by", "job", "--textfile", textfile)
    assert done.exit_code == 0, done.output  # `job` is the Pushgateway's only


def test_a_push_to_a_server_that_does_not_speak_http_is_one_line(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = invoke("eval", _data(tmp_path), "-m", "acc", "--push", f"http://127.0.0.1:{port}")
    finally:
        listener.close()
    line = one_line_error(result, 1, "--push", "push failed")
    assert "SSH-2.0" in line
    assert "accuracy" in result.stdout  # the result, computed, was printed first
