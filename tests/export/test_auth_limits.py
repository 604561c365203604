"""Basic auth is not a denial-of-service lever: cached verifications, per-client and global caps
on password hashing, capped hash costs, bcrypt hashes. Real servers on 127.0.0.1; the hash
function is wrapped only to count (and time) the real calls."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import threading
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest

import streammetric as sm
from streammetric.export import _auth, basic_auth_line, serve

from .conftest import http_get

PASSWORD = "right horse"


def _request(url: str, user: str, password: str) -> urllib.request.Request:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})


class HashSpy:
    """Counts the real PBKDF2 calls of ``_auth`` and the most that ran at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = self.running = self.most = 0
        self._lock = threading.Lock()
        monkeypatch.setattr(_auth, "hashlib", types.SimpleNamespace(pbkdf2_hmac=self))

    def __call__(self, *args: Any) -> bytes:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return hashlib.pbkdf2_hmac(*args)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.txt"
    path.write_text(basic_auth_line("scraper", PASSWORD, iterations=100_000) + "\n")
    return path


def test_a_flood_of_bad_logins_hashes_a_bounded_number_and_a_valid_scraper_is_served(
    users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 wrong passwords from 8 threads: the hashes are bounded by the per-client cap (burst 5,
    then 1 per second), not by the requests; the rest get 429 at once; a scraper whose
    credentials were verified before is served all along, quickly."""
    spy = HashSpy(monkeypatch)
    with serve(sm.MAE(), port=0, basic_auth_file=users_file) as server:
        assert http_get(_request(server.url, "scraper", PASSWORD))[0] == 200
        assert spy.calls == 1
        statuses: list[int] = []
        scrapes: list[tuple[int, float]] = []
        flooding = threading.Event()
        flooding.set()

        def flood(worker: int) -> None:
            for i in range(25):
                status = http_get(_request(server.url, "scraper", f"guess-{worker}-{i}"))[0]
                statuses.append(status)

        def scrape() -> None:
            while flooding.is_set() or len(scrapes) < 3:
                start = time.perf_counter()
                status = http_get(_request(server.url, "scraper", PASSWORD))[0]
                scrapes.append((status, time.perf_counter() - start))
                time.sleep(0.02)

        start = time.monotonic()
        workers = [threading.Thread(target=flood, args=(w,)) for w in range(8)]
        scraper = threading.Thread(target=scrape)
        for thread in [*workers, scraper]:
            thread.start()
        for thread in workers:
            thread.join(timeout=120)
        elapsed = time.monotonic() - start
        flooding.clear()
        scraper.join(timeout=60)
    assert len(statuses) == 200 and set(statuses) <= {401, 429}
    failed_hashes = spy.calls - 1
    assert failed_hashes <= _auth.FAILURE_BURST + int(elapsed * _auth.FAILURES_PER_SECOND) + 1
    assert statuses.count(429) >= 200 - failed_hashes
    assert spy.most <= _auth.MAX_PARALLEL_HASHES
    assert scrapes and all(status == 200 for status, _ in scrapes), scrapes
    assert max(seconds for _, seconds in scrapes) < 2.0, scrapes


def test_verified_and_refused_credentials_are_hashed_once(
    users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = HashSpy(monkeypatch)
    with serve(sm.MAE(), port=0, basic_auth_file=users_file) as server:
        for _ in range(10):
            assert http_get(_request(server.url, "scraper", PASSWORD))[0] == 200
        for _ in range(10):  # a scraper with a stale password: 401 each time, hashed once
            assert http_get(_request(server.url, "scraper", "old password"))[0] == 401
        assert http_get(server.url)[0] == 401  # no credentials: nothing to hash
        assert server.auth is not None and server.auth.hashes == 2
    assert spy.calls == 2


def test_failed_logins_are_capped_per_client_and_the_bucket_refills() -> None:
    users = {"u": _auth.make_password_hash("pw", iterations=1000)}
    auth = _auth.BasicAuth(users, failures_per_second=20.0, failure_burst=3)

    def header(password: str) -> str:
        return "Basic " + base64.b64encode(f"u:{password}".encode()).decode()

    verdicts = [auth.verify(header(f"bad{i}"), "10.0.0.1") for i in range(5)]
    assert verdicts == [_auth.Verdict.DENIED] * 3 + [_auth.Verdict.THROTTLED] * 2
    assert auth.hashes == 3
    assert auth.verify(header("bad0"), "10.0.0.1") is _auth.Verdict.DENIED  # cached: no token
    assert auth.verify(header("bad9"), "10.0.0.2") is _auth.Verdict.DENIED  # another client
    for i in range(3):  # one IPv6 /64 is one client
        auth.verify(header(f"v6-{i}"), f"2001:db8::{i + 1}")
    assert auth.verify(header("v6-x"), "2001:db8::ffff") is _auth.Verdict.THROTTLED
    assert auth.verify(header("v6-y"), "2001:db8:0:1::1") is _auth.Verdict.DENIED
    time.sleep(0.2)  # 20 per second: the bucket has refilled
    assert auth.verify(header("pw"), "10.0.0.1") is _auth.Verdict.OK
    assert auth.verify(header("late"), "10.0.0.1") is _auth.Verdict.DENIED


def test_expensive_hashes_run_one_at_a_time_whatever_the_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = {"u": _auth.make_password_hash("pw", iterations=50_000)}
    spy = HashSpy(monkeypatch)
    auth = _auth.BasicAuth(users, wait_seconds=0.05)
    verdicts: list[_auth.Verdict] = []

    def client(n: int) -> None:
        token = base64.b64encode(f"u:bad{n}".encode()).decode()
        verdicts.append(auth.verify(f"Basic {token}", f"10.1.0.{n}"))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(verdicts) == 16 and spy.most == 1
    assert set(verdicts) <= {_auth.Verdict.DENIED, _auth.Verdict.THROTTLED}
    assert auth.hashes == spy.calls == verdicts.count(_auth.Verdict.DENIED)


@pytest.mark.parametrize(
    ("hash_", "message"),
    [
        ("pbkdf2_sha256$2000001$AAAA$AAAA", "2000001 iterations exceed the cap 2000000"),
        ("pbkdf2_sha256$99999999999999$AAAA$AAAA", "99999999999999 iterations exceed the cap"),
        ("pbkdf2_sha256$ten$AAAA$AAAA", "the iteration count must be an integer"),
        ("$2b$15$" + "a" * 53, "bcrypt cost 15 is outside 4..14"),
        ("$2b$10$tooshort", "a bcrypt hash must be $2a$, $2b$ or $2y$"),
    ],
)
def test_hash_costs_are_capped_when_the_file_is_loaded(
    tmp_path: Path, hash_: str, message: str
) -> None:
    path = tmp_path / "users.txt"
    path.write_text(f"# users\nalice:{hash_}\n")
    with pytest.raises(sm.ConfigError, match=re.escape(f"{path}:2: {message}")):
        serve(sm.MAE(), port=0, basic_auth_file=path)
    with pytest.raises(sm.ConfigError, match=r"must be an int in 1\.\.2000000"):
        basic_auth_line("a", "b", iterations=2_000_001)


def test_bcrypt_lines_in_a_basic_auth_file(tmp_path: Path) -> None:
    """``htpasswd -nbB user pw`` output works as a basic-auth file line."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "users.txt"
    path.write_text(f"scraper:{hashed.replace('$2b$', '$2y$')}\n")
    with serve(sm.MAE(), port=0, basic_auth_file=path) as server:
        assert http_get(_request(server.url, "scraper", PASSWORD))[0] == 200
        assert http_get(_request(server.url, "scraper", "nope"))[0] == 401
        assert http_get(_request(server.url, "nobody", PASSWORD))[0] == 401


def test_hash_password_bcrypt_and_the_iteration_cap(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "streammetric.export.hash_password", "bob"]
    done = subprocess.run(
        [*command, "--bcrypt", "--cost", "4"],
        input="hunter2\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("bob:$2b$04$")
    path = tmp_path / "users.txt"
    path.write_text(line + "\n")
    with serve(sm.MAE(), port=0, basic_auth_file=path) as server:
        assert http_get(_request(server.url, "bob", "hunter2"))[0] == 200
    for extra, message in [
        (["--iterations", "3000000"], "must be an int in 1..2000000"),
        (["--bcrypt", "--cost", "15"], "`--cost` must be in 4..14"),
    ]:
        done = subprocess.run(
            [*command, *extra], input="x\n", capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
