"""serve(): the HTTP endpoint, content negotiation, TLS, basic auth, and consistency under load."""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import streammetric as sm
from streammetric.export import Tracker, basic_auth_line, serve

from .conftest import AUTH_PASSWORD, AUTH_USER, TlsFiles, free_port, http_get


def test_serve_binds_loopback_on_a_free_port_and_stops() -> None:
    m = sm.MAE().update([0.0], [0.5])
    with serve([m], port=0, labels={"run": "x"}) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        assert server.tracker.metrics_for() == [m]
        status, body = http_get(server.url)
        assert status == 200
        assert b'streammetric_mae{run="x",scope="global"} 0.5\n' in body
        assert http_get(server.url.replace("/metrics", "/"))[0] == 200
        assert http_get(server.url.replace("/metrics", "/nope"))[0] == 404
    server.stop()  # idempotent
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_serve_negotiates_openmetrics_and_gzip() -> None:
    with serve(sm.MAE(), port=0) as server:
        request = urllib.request.Request(
            server.url,
            headers={
                "Accept": "application/openmetrics-text;version=1.0.0",
                "Accept-Encoding": "gzip",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()).endswith(b"# EOF\n")


class BrokenMAE(sm.MAE):
    """An MAE whose value computation fails once ``broken`` is set."""

    broken = False

    def get(self) -> tuple[Any, Any]:
        if self.broken:
            raise RuntimeError("boom")
        return super().get()


def test_serve_reports_a_failing_metric_as_500() -> None:
    metric = BrokenMAE()
    with serve(metric, port=0) as server:
        assert http_get(server.url)[0] == 200
        metric.broken = True
        status, body = http_get(server.url)
        assert status == 500 and b"RuntimeError: boom" in body
        metric.broken = False
        assert http_get(server.url)[0] == 200  # still serving


def test_serve_refuses_a_busy_port_and_half_tls() -> None:
    with serve(sm.MAE(), port=0) as server:
        with pytest.raises(sm.ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            serve(sm.MAE(), port=server.port)
    with pytest.raises(sm.ConfigError, match="`tls_cert` and `tls_key` go together"):
        serve(sm.MAE(), port=0, tls_cert="cert.pem")


def _tls_context(files: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(files.cert))


def test_tls_serves_https_verified_by_the_ca(tls_files: TlsFiles) -> None:
    m = sm.MAE().update([0.0], [0.25])
    with serve(m, port=0, tls_cert=tls_files.cert, tls_key=tls_files.key) as server:
        assert server.url.startswith("https://127.0.0.1:")
        status, body = http_get(server.url, context=_tls_context(tls_files))
        assert status == 200 and b'scope="global"} 0.25' in body
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(server.url, timeout=5)  # not trusted without the CA
        if shutil.which("curl"):
            result = subprocess.run(
                ["curl", "-sS", "--cacert", str(tls_files.cert), server.url],
                capture_output=True, timeout=30, check=True,
            )  # fmt: skip
            assert b'scope="global"} 0.25' in result.stdout


def test_tls_with_a_bad_key_file_is_a_config_error(tmp_path: Path, tls_files: TlsFiles) -> None:
    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    with pytest.raises(sm.ConfigError, match="must be a PEM certificate and its key"):
        serve(sm.MAE(), port=0, tls_cert=tls_files.cert, tls_key=bad)


def _with_auth(url: str, user: str, password: str) -> urllib.request.Request:
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})


def test_basic_auth_401_without_or_with_wrong_credentials(tls_files: TlsFiles) -> None:
    with serve(sm.MAE(), port=0, basic_auth_file=tls_files.auth_file) as server:
        try:
            urllib.request.urlopen(server.url, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
            assert exc.headers["WWW-Authenticate"] == 'Basic realm="streammetric", charset="UTF-8"'
        else:
            pytest.fail("no credentials got through")
        for user, password in [(AUTH_USER, "wrong"), ("nobody", AUTH_PASSWORD), (AUTH_USER, "")]:
            assert http_get(_with_auth(server.url, user, password))[0] == 401
        for _ in range(2):  # the second check comes from the cache
            status, body = http_get(_with_auth(server.url, AUTH_USER, AUTH_PASSWORD))
            assert status == 200 and b"streammetric_mae" in body
        if shutil.which("curl"):
            code = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", server.url]
            assert subprocess.run(code, capture_output=True, timeout=30).stdout == b"401"
            right = [*code[:1], "-u", f"{AUTH_USER}:{AUTH_PASSWORD}", *code[1:]]
            assert subprocess.run(right, capture_output=True, timeout=30).stdout == b"200"


def test_tls_and_basic_auth_together(tls_files: TlsFiles) -> None:
    with serve(
        sm.MAE(),
        port=0,
        tls_cert=tls_files.cert,
        tls_key=tls_files.key,
        basic_auth_file=tls_files.auth_file,
    ) as server:
        context = _tls_context(tls_files)
        assert http_get(server.url, context=context)[0] == 401
        request = _with_auth(server.url, AUTH_USER, AUTH_PASSWORD)
        assert http_get(request, context=context)[0] == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no user:hash line"),
        ("alice\n", ":1: a line must be user:hash"),
        ("# c\nalice:md5$x\n", ":2: a password hash must be pbkdf2_sha256$iterations$salt$key"),
        ("alice:pbkdf2_sha256$10$!!$AA==\n", ":1: salt and key must be standard base64"),
    ],
)
def test_malformed_basic_auth_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "users.txt"
    path.write_text(content)
    with pytest.raises(sm.ConfigError, match=__import__("re").escape(message)):
        serve(sm.MAE(), port=0, basic_auth_file=path)


def test_duplicate_user_is_refused(tmp_path: Path) -> None:
    line = basic_auth_line("a", "b", iterations=1)
    path = tmp_path / "users.txt"
    path.write_text(f"{line}\n{line}\n")
    with pytest.raises(sm.ConfigError, match=":2: user 'a' appears twice"):
        serve(sm.MAE(), port=0, basic_auth_file=path)


def test_hash_password_command_writes_a_usable_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streammetric.export.hash_password", "bob", "--iterations", "2000"],
        input="hunter2\n", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    line = result.stdout.strip()
    assert line.startswith("bob:pbkdf2_sha256$2000$")
    path = tmp_path / "users.txt"
    path.write_text(line + "\n")
    with serve(sm.MAE(), port=0, basic_auth_file=path) as server:
        assert http_get(_with_auth(server.url, "bob", "hunter2"))[0] == 200
        assert http_get(_with_auth(server.url, "bob", "hunter3"))[0] == 401


def test_serve_on_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = serve(sm.MAE(), host="::1", port=0)
    except sm.ConfigError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with server:
        assert server.url == f"http://[::1]:{server.port}/metrics"
        assert http_get(server.url)[0] == 200


def test_serve_on_a_given_port() -> None:
    port = free_port()
    with serve(sm.MAE(), port=port) as server:
        assert server.port == port and http_get(server.url)[0] == 200


def test_no_torn_values_under_load() -> None:
    """Hundreds of scrapes per second while batches keep landing: every scrape is consistent.

    Row i (0-based) has |error| = i, so after n rows MAE = (n-1)/2 and MSE = (n-1)(2n-1)/6
    exactly (the metrics are correctly rounded); both must match ``rows_total`` in every scrape.
    """
    tracker = Tracker(["mae", "mse"], group_by=["model"])
    stop = threading.Event()
    rng = np.random.default_rng(0)

    def updater() -> None:
        done = 1  # row 0 is in before the scrapes start
        while not stop.is_set():
            size = int(rng.integers(1, 64))
            errors = np.arange(done, done + size, dtype=np.float64)
            tracker.update(np.zeros(size), errors, group="m")
            done += size
            time.sleep(0)  # an engine yields the GIL between batches (I/O, numpy); without
            # this a pure-Python busy loop measures CPython's GIL convoy, not the exporter

    scrapes: list[int] = []
    failures: list[str] = []

    def scraper(url: str) -> None:
        while not stop.is_set():
            try:
                status, body = http_get(url)
                assert status == 200, status
                samples = {
                    (s.name, s.labels.get("scope")): s.value
                    for family in text_string_to_metric_families(body.decode())
                    for s in family.samples
                }
                n = int(samples[("streammetric_rows_total", None)])
                if n:
                    assert samples[("streammetric_mae", "global")] == (n - 1) / 2, n
                    expected_mse = float(Fraction((n - 1) * (2 * n - 1), 6))
                    assert samples[("streammetric_mse", "global")] == expected_mse, n
                scrapes.append(n)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    tracker.update([0.0], [0.0], group="m")  # row 0
    with serve(tracker, port=0) as server:
        threads = [threading.Thread(target=updater)]
        threads += [threading.Thread(target=scraper, args=(server.url,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert failures == []
    assert len(scrapes) >= 200, len(scrapes)
    assert len(set(scrapes)) > 10  # the values did move during the scrapes
