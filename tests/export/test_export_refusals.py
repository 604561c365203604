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


def test_null_and_empty_group_values_share_their_counters(tmp_path):
    """A group of null values and one of "" both export the empty label value: no gauges (the
    overall's labels), one `rows_total` series of both groups' rows (it refused the run)."""
    import pyarrow as pa

    table = preds_table(40, seed=3)
    table = table.set_column(2, "model", pa.array(["a", "", None, "b"] * 10))
    data = tmp_path / "ne.parquet"
    pq.write_table(table, data)
    prom = tmp_path / "ne.prom"
    done = invoke("eval", data, "-m", "acc", "--by", "model", "--textfile", prom)
    assert done.exit_code == 0, done.output
    rows = [
        line for line in prom.read_text().splitlines() if line.startswith("streammetric_rows_total")
    ]
    assert sorted(rows) == sorted(
        [
            'streammetric_rows_total{model="",run="default"} 20.0',
            'streammetric_rows_total{model="a",run="default"} 10.0',
            'streammetric_rows_total{model="b",run="default"} 10.0',
        ]
    )


def test_empty_export_paths_and_credentials_in_a_push_url_are_usage_errors(tmp_path):
    data = _data(tmp_path)
    for option, said in (
        ("--push=", "is empty"),
        ("--textfile=", "is empty"),
        ("--push=http://user:secret@127.0.0.1:9091", "credentials in the URL"),
    ):
        result = invoke("eval", data, "-m", "acc", option)
        assert result.exit_code == 2, result.output
        assert said in result.stderr and "secret" not in result.stderr
