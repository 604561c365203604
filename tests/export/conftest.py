"""Fixtures that run the real programs: Prometheus, the Pushgateway, openssl.

``system_binaries`` finds ``prometheus`` and the Pushgateway on PATH, running
``scripts/install_system_deps`` once when one is missing (under a file lock, as xdist workers
race). When they still cannot be had the tests skip, except under ``CI`` (env var set), where
they fail: CI must run them.

``prometheus`` starts a private Prometheus (temp config and TSDB, ``127.0.0.1:<free port>``)
scraping every second two targets whose ports it reserves up front: ``plain_port`` (job
``streammetric``, plain HTTP) and ``tls_port`` (job ``streammetric_tls``, HTTPS with basic auth,
CA and credentials from ``tls_files``). Tests start ``serve()`` on those ports and query the
HTTP API.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streammetric.export import basic_auth_line
from tests.helpers.system import ensure, unavailable

_unavailable = unavailable  # the name the export tests import

REPO = Path(__file__).resolve().parents[2]
AUTH_USER, AUTH_PASSWORD = "scraper", "pa:ss wörd"


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    url: str | urllib.request.Request, timeout: float = 5.0, **kwargs: Any
) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, **kwargs) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    pushgateway: str


def _find() -> Binaries | None:
    prometheus = shutil.which("prometheus")
    pushgateway = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    return Binaries(prometheus, pushgateway) if prometheus and pushgateway else None


@pytest.fixture(scope="session")
def system_binaries() -> Binaries:
    return ensure(_find, "prometheus/prometheus-pushgateway")


class Process:
    """A program started on a loopback port, stopped (and its log kept) at teardown."""

    def __init__(self, args: list[str], log_path: Path, ready_url: str) -> None:
        self.name = Path(args[0]).name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        self.ready_url = ready_url

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited early:\n{self.log_tail()}")
            return http_get(self.ready_url, timeout=1.0)[0] == 200

        wait_until(ready, timeout, f"{self.ready_url}\n{self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    auth_file: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (openssl CLI) and a basic-auth file."""
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("the openssl CLI is needed to make a test certificate")
    assert openssl is not None
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    auth_file = folder / "users.txt"
    line = basic_auth_line(AUTH_USER, AUTH_PASSWORD, iterations=1000)
    auth_file.write_text(f"# test users\n\n{line}\n", encoding="utf-8")
    return TlsFiles(cert, key, auth_file)


@dataclass
class PrometheusServer:
    process: Process
    api: str
    plain_port: int
    tls_port: int | None  # None: no openssl, no TLS job

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url)
        payload = json.loads(body)
        if status != 200 or payload.get("status") != "success":
            raise ValueError(f"query {expr!r} failed: {status} {body[:300]!r}")
        return list(payload["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(json.loads(http_get(f"{self.api}/api/v1/targets")[1])["data"]["activeTargets"])


_PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: streammetric
    static_configs:
      - targets: ["127.0.0.1:{plain_port}"]
"""
_TLS_JOB = """\
  - job_name: streammetric_tls
    scheme: https
    tls_config:
      ca_file: {ca_file}
    basic_auth:
      username: {user}
      password: {password}
    static_configs:
      - targets: ["127.0.0.1:{tls_port}"]
"""


@pytest.fixture(scope="session")
def prometheus(
    system_binaries: Binaries,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusServer]:
    try:  # without openssl, Prometheus still runs, without the TLS job
        tls_files: TlsFiles | None = request.getfixturevalue("tls_files")
    except pytest.skip.Exception:
        tls_files = None
    folder = tmp_path_factory.mktemp("prometheus")
    plain_port, tls_port, api_port = free_port(), free_port(), free_port()
    text = _PROMETHEUS_CONFIG.format(plain_port=plain_port)
    if tls_files is not None:
        text += _TLS_JOB.format(
            tls_port=tls_port,
            ca_file=json.dumps(str(tls_files.cert)),
            user=json.dumps(AUTH_USER),
            password=json.dumps(AUTH_PASSWORD),
        )
    config = folder / "prometheus.yml"
    config.write_text(text)
    process = Process(
        [
            system_binaries.prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{api_port}",
            "--log.level=warn",
        ],
        folder / "prometheus.log",
        f"http://127.0.0.1:{api_port}/-/ready",
    )
    try:
        process.wait_ready()
        api = f"http://127.0.0.1:{api_port}"
        yield PrometheusServer(process, api, plain_port, tls_port if tls_files else None)
    finally:
        process.stop()


@dataclass
class Pushgateway:
    process: Process
    url: str


@pytest.fixture(scope="session")
def pushgateway(
    system_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pushgateway]:
    folder = tmp_path_factory.mktemp("pushgateway")
    port = free_port()
    process = Process(
        [
            system_binaries.pushgateway,
            f"--web.listen-address=127.0.0.1:{port}",
            "--persistence.file=",
            "--log.level=warn",
        ],
        folder / "pushgateway.log",
        f"http://127.0.0.1:{port}/-/ready",
    )
    try:
        process.wait_ready()
        yield Pushgateway(process, f"http://127.0.0.1:{port}")
    finally:
        process.stop()
