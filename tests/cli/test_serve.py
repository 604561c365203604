"""``streammetric eval`` with --serve/--push/--textfile against the real Prometheus/Pushgateway."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import numpy as np
import pytest

import streammetric as sm
from tests.export.conftest import (
    AUTH_PASSWORD,
    AUTH_USER,
    Pushgateway,
    TlsFiles,
    _unavailable,
    free_port,
    http_get,
)

from .helpers import (
    METRICS,
    NAMES,
    Cli,
    expected_series,
    gauge_values,
    invoke,
    preds_table,
    reprs,
    run_cli,
    samples,
    stored,
    wait_for_json,
    wait_for_stored,
    write_preds,
)

COLUMNS = ("--labels", "label", "--preds", "probs")
BY_JSON = ("--by", "model", "--format", "json")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    for index in range(3):
        write_preds(folder / f"part-{index}.parquet", 400 + 50 * index, seed=index)
    return folder


def test_eval_serve_keeps_exactly_the_json_values_in_prometheus(prometheus, data, tmp_path):
    out = tmp_path / "result.json"
    run = "cli-eval"
    serve = f"127.0.0.1:{prometheus.plain_port}"
    args = ["eval", data, *METRICS, *COLUMNS, *BY_JSON, "-o", out]
    process = Cli(
        [*args, "--serve", serve, "--linger", "inf", "--run", run, "--threads", "2"], tmp_path / "p"
    )
    try:
        result = wait_for_json(out, process)
        for name, gauge in NAMES.items():  # overall (no model label) and per model, exactly
            expr = f'{gauge}{{job="streammetric",run="{run}",scope="global"}}'
            wait_for_stored(prometheus, expr, expected_series(result, name))
        rows = stored(prometheus, f'streammetric_rows_total{{run="{run}"}}')
        assert rows == {g["key"]["model"]: float(g["rows"]) for g in result["groups"]}
        assert sum(rows.values()) == result["rows"] == 1350
    finally:
        code = process.stop()
    assert code == 0, process.stderr
    assert "serving http://127.0.0.1:" in process.stderr and "Traceback" not in process.stderr
    assert (
        json.loads(out.read_text()) == result == json.loads(run_cli(*args[:-2]).stdout)
    )  # the same numbers as without exporting


def test_eval_serve_tls_and_basic_auth(prometheus, tls_files: TlsFiles, data, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        _unavailable("the curl CLI is needed to check TLS and basic auth")
    assert curl is not None and prometheus.tls_port is not None  # tls_files: openssl is there
    port = prometheus.tls_port  # Prometheus' TLS job scrapes it with the same CA and user
    out = tmp_path / "result.json"
    process = Cli(
        ["eval", data, *METRICS, *COLUMNS, "--format", "json", "-o", out, "--run", "cli-tls",
         "--serve", f"127.0.0.1:{port}", "--linger", "inf", "--tls-cert", tls_files.cert,
         "--tls-key", tls_files.key, "--basic-auth-file", tls_files.auth_file],
        tmp_path / "p",
    )  # fmt: skip
    try:
        result = wait_for_json(out, process)
        url = f"https://127.0.0.1:{port}/metrics"
        base = [curl, "-sS", "--cacert", str(tls_files.cert), "-w", "\n%{http_code}"]
        good = subprocess.run(
            [*base, "-u", f"{AUTH_USER}:{AUTH_PASSWORD}", url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        body, _, status = good.stdout.rpartition("\n")
        assert status == "200", good.stderr
        for name, gauge in NAMES.items():
            assert reprs(gauge_values(body, gauge)) == reprs({"": result["metrics"][name]})
        bad = subprocess.run(
            [*base, "-u", f"{AUTH_USER}:wrong", url], capture_output=True, text=True, timeout=30
        )
        assert bad.stdout.rpartition("\n")[2] == "401"
        insecure = subprocess.run([curl, "-sS", url], capture_output=True, text=True, timeout=30)
        assert insecure.returncode != 0  # the self-signed certificate is not trusted without the CA
        expr = 'streammetric_cross_entropy{job="streammetric_tls",run="cli-tls",scope="global"}'
        wait_for_stored(prometheus, expr, {"": result["metrics"]["cross-entropy"]})
    finally:
        code = process.stop()
    assert code == 0, process.stderr


def test_eval_push_reads_back_from_the_pushgateway(pushgateway: Pushgateway, data):
    push = ("--push", pushgateway.url, "--run", "cli-push")
    done = run_cli("eval", data, *METRICS, *COLUMNS, *BY_JSON, *push)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    status, body = http_get(f"{pushgateway.url}/metrics")
    assert status == 200
    text = "\n".join(
        line
        for line in body.decode().splitlines()
        if 'run="cli-push"' in line or line.startswith("#")
    )
    for name, gauge in NAMES.items():
        assert reprs(gauge_values(text, gauge)) == reprs(expected_series(result, name))
    rows = {k: v for k, v in samples(text).items() if k[0] == "streammetric_rows_total"}
    assert sum(rows.values()) == result["rows"]
    assert all(("job", "streammetric") in labels for _, labels in rows)


def test_eval_push_failure_is_one_line_exit_1(data):
    port = free_port()  # nothing listens there
    done = run_cli("eval", data, *METRICS, *COLUMNS, "--push", f"http://127.0.0.1:{port}")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"streammetric: error: --push http://127.0.0.1:{port}: push failed:")
    )
    assert "Traceback" not in done.stderr


def test_eval_textfile_parses_and_equals_the_json(data, tmp_path):
    path = tmp_path / "metrics.prom"
    result = invoke(
        "eval", data, *METRICS, *COLUMNS, *BY_JSON, "--textfile", path, "--run", "files"
    )
    assert result.exit_code == 0, result.output
    expected = json.loads(result.stdout)
    text = path.read_text()
    for name, gauge in NAMES.items():
        assert reprs(gauge_values(text, gauge)) == reprs(expected_series(expected, name))
    rows = {k[1]: v for k, v in samples(text).items() if k[0] == "streammetric_rows_total"}
    assert rows == {
        (("model", g["key"]["model"]), ("run", "files")): float(g["rows"])
        for g in expected["groups"]
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "metrics.prom"]  # no temp left


def test_resuming_from_a_checkpoint_exports_the_restored_state(data, tmp_path):
    checkpoint, path = tmp_path / "ck.json", tmp_path / "resumed.prom"
    args = ("eval", data, *METRICS, *COLUMNS, *BY_JSON, "--checkpoint", checkpoint)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    resumed = invoke(*args, "--textfile", path)  # every unit is in the checkpoint already
    assert resumed.exit_code == 0 and resumed.stdout == first.stdout
    expected = json.loads(first.stdout)
    for name, gauge in NAMES.items():
        got = gauge_values(path.read_text(), gauge)
        assert reprs(got) == reprs(expected_series(expected, name))


def _local_ce(tmp_path: Path, *extra: str) -> tuple[float, float]:
    path = tmp_path / "window.prom"
    args = ["eval", tmp_path / "data", "-m", "ce", *COLUMNS, "--textfile", path, "--threads", "2"]
    result = invoke(*args, *extra)
    assert result.exit_code == 0, result.output
    text = path.read_text()
    local = gauge_values(text, "streammetric_cross_entropy", scope="local")[""]
    return local, gauge_values(text, "streammetric_cross_entropy")[""]


def _ce(table) -> float:
    labels = table["label"].to_numpy()
    probs = np.stack(table["probs"].to_numpy(zero_copy_only=False))
    return float(sm.create("ce").update(labels, probs).get()[1])


def test_window_rows_sets_the_local_scope_in_whole_units(data, tmp_path):
    tables = [preds_table(400 + 50 * i, seed=i) for i in range(3)]  # the files of `data`
    # default: one window per file, so local = the last file alone
    local, overall = _local_ce(tmp_path)
    assert repr(local) == repr(_ce(tables[2])) and local != overall
    # units of 100 rows (each file's last one shorter), in plan order; a window closes at the
    # first unit boundary at or after 600 rows: file 0 + 2 units of file 1 (600 rows), the rest
    # of file 1 + 4 units of file 2 (650), then the last unit of file 2 (100) is the local window
    local, _ = _local_ce(tmp_path, "--window-rows", "600")
    assert repr(local) == repr(_ce(tables[2].slice(400)))
    local, overall = _local_ce(tmp_path, "--window-rows", "100000")  # one window: local = global
    assert repr(local) == repr(overall)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--linger", "5"], 2, "--linger applies to the --serve endpoint"),
        (["--serve", "127.0.0.1:99999"], 2, "expected [HOST:]PORT"),
        (["--serve", "0", "--tls-cert", "{data}/part-0.parquet"], 2, "--tls-cert and --tls-key go together"),
        (["--push-interval", "3"], 2, "--push-interval needs --push"),
        (["--linger", "soon", "--serve", "0"], 2, "expected seconds >= 0 or 'inf'"),
        (["--by", "model", "--max-groups", "1", "--textfile", "{tmp}/m.prom"], 2, "--max-groups caps the number of groups at 1"),
        (["--by", "run", "--serve", "0"], 2, "would export as label 'run'"),
        (["--textfile", "{tmp}/missing/m.prom"], 2, "Invalid value for --textfile: no directory"),
    ],
)  # fmt: skip
def test_export_usage_errors(data, tmp_path, args, code, message):
    args = [a.format(data=data, tmp=tmp_path) for a in args]
    result = invoke("eval", data, *METRICS, *COLUMNS, *args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_serve_port_in_use_is_a_usage_error(data):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("eval", data, *COLUMNS, "--serve", port)
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_an_auth_file_over_the_iteration_cap_is_one_line_exit_2(data, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# scrapers\n\nbob:pbkdf2_sha256$50000000$AAAA$AAAA\n")
    result = invoke("eval", data, *COLUMNS, "--serve", "0", "--basic-auth-file", users)
    assert result.exit_code == 2, result.output
    assert (
        f"`basic_auth_file` {users}:3: 50000000 iterations exceed the cap 2000000" in result.output
    )
    assert "Traceback" not in result.output


def _web_config(tmp_path: Path, tls_files: TlsFiles) -> Path:
    """exporter-toolkit's web configuration: the test certificate and AUTH_USER with bcrypt."""
    import bcrypt

    folder = tmp_path / "web"
    folder.mkdir()
    shutil.copy(tls_files.cert, folder / "server.crt")
    shutil.copy(tls_files.key, folder / "server.key")
    hashed = bcrypt.hashpw(AUTH_PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    config = folder / "web-config.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  {json.dumps(AUTH_USER)}: {json.dumps(hashed)}\n"
    )
    return config


def test_eval_serve_web_config_scraped_by_prometheus(
    prometheus, tls_files: TlsFiles, data, tmp_path
):
    """The same web config file node_exporter takes: Prometheus' TLS job (CA, basic auth) scrapes it."""
    assert prometheus.tls_port is not None  # tls_files: openssl is there
    config = _web_config(tmp_path, tls_files)
    out = tmp_path / "result.json"
    port = prometheus.tls_port
    process = Cli(
        ["eval", data, *METRICS, *COLUMNS, "--format", "json", "-o", out, "--run", "cli-web",
         "--serve", f"127.0.0.1:{port}", "--linger", "inf", "--web-config", config],
        tmp_path / "p",
    )  # fmt: skip
    try:
        result = wait_for_json(out, process)
        expr = 'streammetric_cross_entropy{job="streammetric_tls",run="cli-web",scope="global"}'
        wait_for_stored(prometheus, expr, {"": result["metrics"]["cross-entropy"]})
        context = ssl.create_default_context(cafile=str(tls_files.cert))
        url = f"https://127.0.0.1:{port}/metrics"
        assert http_get(url, context=context)[0] == 401
    finally:
        code = process.stop()
    assert code == 0, process.stderr
    assert f"serving https://127.0.0.1:{port}/metrics" in process.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--web-config applies to the --serve endpoint; add --serve"),
        (["--serve", "0", "--basic-auth-file", "{auth}"], "--web-config holds the TLS and user settings itself; drop --basic-auth-file"),
    ],
)  # fmt: skip
def test_web_config_usage_errors(data, tmp_path, tls_files: TlsFiles, extra, message):
    config = _web_config(tmp_path, tls_files)
    args = [a.format(auth=tls_files.auth_file) for a in extra]
    result = invoke("eval", data, *COLUMNS, "--web-config", config, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_bad_web_config_is_one_line_exit_2(data, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  alice: plain-text\n")
    result = invoke("eval", data, *COLUMNS, "--serve", "0", "--web-config", config)
    assert result.exit_code == 2, result.output
    assert (
        f"streammetric: error: `--web-config` {config}:2: basic_auth_users.alice:" in result.output
    )
    assert "Traceback" not in result.output
