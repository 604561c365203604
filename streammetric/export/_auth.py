"""HTTP basic auth for :func:`~streammetric.export.serve`: password hashes and the cost caps.

A basic-auth file holds one ``user:hash`` line per user (``#`` comments and blank lines are
ignored). Two hash formats are accepted:

- PBKDF2-HMAC-SHA256 as Django writes it (stdlib only), from
  ``python -m streammetric.export.hash_password USER`` or :func:`basic_auth_line`::

      pbkdf2_sha256$<iterations>$<salt, standard base64>$<derived key, standard base64>

- bcrypt (``$2a$``, ``$2b$``, ``$2y$``), as ``htpasswd -nbB`` and exporter-toolkit's web
  configuration use; checking them needs the ``bcrypt`` package (``streammetric[auth]``).

Each check of a password costs CPU on purpose, so it is a denial-of-service lever; the caps:

- the cost in a hash is bounded when the file is loaded: PBKDF2 at most
  :data:`PBKDF2_MAX_ITERATIONS` iterations, bcrypt at most cost :data:`BCRYPT_MAX_COST` (a
  ConfigError names the file, line and cap). Low counts are accepted: they cost less, and how
  strong a stored hash must be is the operator's decision;
- a verified user:password is remembered (keyed digest of user, password and stored hash; LRU),
  so a scraper pays the hash once; a refused one is remembered too, so repeating the same wrong
  password costs nothing;
- hashing a new user:password needs a token of the client's bucket (by address, IPv6 by /64:
  :data:`FAILURES_PER_SECOND`, burst :data:`FAILURE_BURST`; a success gives its token back) and a
  place among :data:`MAX_PARALLEL_HASHES` concurrent hashes (waiting at most
  :data:`HASH_WAIT_SECONDS`). Without either the answer is "throttled" (HTTP 429) at once,
  without hashing. Cached valid credentials are never throttled.

>>> line = basic_auth_line("alice", "s3cret", iterations=1000, salt=b"0123456789abcdef")
>>> line.split("$")[:3]
['alice:pbkdf2_sha256', '1000', 'MDEyMzQ1Njc4OWFiY2RlZg==']
>>> verify_password("s3cret", line.split(":", 1)[1]), verify_password("wrong", line[6:])
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import ipaddress
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigError
from .._files import read_text

__all__ = [
    "BCRYPT_MAX_COST",
    "DEFAULT_ITERATIONS",
    "PBKDF2_MAX_ITERATIONS",
    "BasicAuth",
    "Verdict",
    "basic_auth_line",
    "check_hash",
    "load_basic_auth_file",
    "make_password_hash",
    "verify_password",
]

SCHEME = "pbkdf2_sha256"
#: OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
DEFAULT_ITERATIONS = 600_000
#: The most PBKDF2 iterations a stored hash may ask for (about 0.7 s of one core each check).
PBKDF2_MAX_ITERATIONS = 2_000_000
#: The highest bcrypt cost a stored hash may have (2**14 rounds, about 1 s of one core).
BCRYPT_MAX_COST = 14
#: Uncached password checks a client may start per second, on average ...
FAILURES_PER_SECOND = 1.0
#: ... and in a burst.
FAILURE_BURST = 5
#: Password hashes computed at once, at most (the rest of the CPU stays for scrapes).
MAX_PARALLEL_HASHES = 1
#: How long a check waits for a place among the concurrent hashes before it is throttled.
HASH_WAIT_SECONDS = 0.5
CACHE_SIZE = 1024
_CLIENT_LIMIT = 4096
_KEY_BYTES = 32
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_INSTALL_AUTH = "pip install 'streammetric[auth]'"


def make_password_hash(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """``pbkdf2_sha256$iterations$salt$key`` for ``password`` (a random 16-byte salt by default)."""
    if not isinstance(iterations, int) or not 1 <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise ConfigError(
            f"`iterations` must be an int in 1..{PBKDF2_MAX_ITERATIONS}, got {iterations!r}"
        )
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, _KEY_BYTES)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(key)}"


def basic_auth_line(
    user: str, password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """One ``user:hash`` line of a basic-auth file."""
    if not user or ":" in user or any(c in user for c in "\r\n"):
        raise ConfigError(f"`user` must be non-empty without ':' or newlines, got {user!r}")
    return f"{user}:{make_password_hash(password, iterations=iterations, salt=salt)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bcrypt() -> Any:
    try:
        import bcrypt
    except ImportError:
        raise ConfigError(
            f"bcrypt password hashes need the bcrypt package: {_INSTALL_AUTH}"
        ) from None
    return bcrypt


def check_hash(encoded: str) -> None:
    """Raise ValueError (one line) unless ``encoded`` is a usable hash within the cost caps."""
    if encoded.startswith("$2"):
        match = _BCRYPT.fullmatch(encoded)
        if match is None:
            raise ValueError(
                "a bcrypt hash must be $2a$, $2b$ or $2y$, a 2-digit cost, $ and 53 characters"
            )
        cost = int(match.group(1))
        if not 4 <= cost <= BCRYPT_MAX_COST:
            raise ValueError(
                f"bcrypt cost {cost} is outside 4..{BCRYPT_MAX_COST} (the cap bounds the CPU "
                f"one login attempt can cost; hash again with a lower cost)"
            )
        _bcrypt()
        return
    _parse_pbkdf2(encoded)


def _parse_pbkdf2(encoded: str) -> tuple[int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(
            f"a password hash must be {SCHEME}$iterations$salt$key or bcrypt ($2b$...)"
        )
    if not parts[1].isdigit():
        raise ValueError(f"the iteration count must be an integer, got {parts[1]!r}")
    iterations = int(parts[1])
    if iterations < 1:
        raise ValueError("the iteration count must be >= 1")
    if iterations > PBKDF2_MAX_ITERATIONS:
        raise ValueError(
            f"{iterations} iterations exceed the cap {PBKDF2_MAX_ITERATIONS} (the cap bounds the "
            f"CPU one login attempt can cost; hash again with python -m "
            f"streammetric.export.hash_password)"
        )
    try:
        salt = base64.b64decode(parts[2], validate=True)
        key = base64.b64decode(parts[3], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"salt and key must be standard base64: {exc}") from None
    return iterations, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the hash ``encoded`` (PBKDF2 or bcrypt; constant time)."""
    if encoded.startswith("$2"):
        check_hash(encoded)
        try:
            return bool(_bcrypt().checkpw(password.encode("utf-8"), encoded.encode("ascii")))
        except ValueError:  # e.g. bcrypt >= 5 refuses passwords over 72 bytes
            return False
    iterations, salt, key = _parse_pbkdf2(encoded)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, len(key))
    return hmac.compare_digest(derived, key)


def load_basic_auth_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{user: hash}`` from a basic-auth file; a malformed line raises ConfigError naming it."""
    text = read_text(path, "`basic_auth_file`")
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        try:
            if not sep or not user:
                raise ValueError("a line must be user:hash")
            check_hash(encoded)
        except ValueError as exc:
            raise ConfigError(f"`basic_auth_file` {path}:{number}: {exc}") from None
        if user in users:
            raise ConfigError(f"`basic_auth_file` {path}:{number}: user {user!r} appears twice")
        users[user] = encoded
    if not users:
        raise ConfigError(f"`basic_auth_file` {path} holds no user:hash line")
    return users


class Verdict(enum.Enum):
    """What :meth:`BasicAuth.verify` decided: let in, refuse (401), or throttle (429)."""

    OK = "ok"
    DENIED = "denied"
    THROTTLED = "throttled"


class _LRU:
    """A bounded set of digests, least recently used out first (not thread-safe: callers lock)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, key: bytes) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        return False

    def add(self, key: bytes) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)


class _Buckets:
    """One token bucket per client (bounded table; not thread-safe: callers lock)."""

    def __init__(self, rate: float, burst: int, size: int = _CLIENT_LIMIT) -> None:
        self.rate, self.burst, self.size = rate, burst, size
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        tokens, last = self._state.pop(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def take(self, client: str, now: float) -> bool:
        tokens = self._tokens(client, now)
        taken = tokens >= 1.0
        self._state[client] = (tokens - 1.0 if taken else tokens, now)
        while len(self._state) > self.size:
            self._state.popitem(last=False)
        return taken

    def give_back(self, client: str, now: float) -> None:
        self._state[client] = (min(float(self.burst), self._tokens(client, now) + 1.0), now)


def client_key(address: str) -> str:
    """The rate-limit key of a peer address: IPv4 as is, IPv6 by its /64 network.

    >>> client_key("127.0.0.1"), client_key("2001:db8::1"), client_key("::ffff:10.0.0.1")
    ('127.0.0.1', '2001:db8::/64', '10.0.0.1')
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class BasicAuth:
    """Checks ``Authorization: Basic ...`` headers against ``{user: hash}``, within the caps.

    ``hashes`` counts the password hashes computed (the expensive part), for tests and logs.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        failures_per_second: float = FAILURES_PER_SECOND,
        failure_burst: int = FAILURE_BURST,
        max_parallel: int = MAX_PARALLEL_HASHES,
        wait_seconds: float = HASH_WAIT_SECONDS,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if not users:
            raise ConfigError("basic auth needs at least one user")
        for encoded in users.values():
            try:
                check_hash(encoded)
            except ValueError as exc:
                raise ConfigError(f"basic auth: {exc}") from None
        self._users = dict(users)
        self._dummy = next(iter(self._users.values()))  # unknown users cost the same time
        self._secret = os.urandom(32)
        self._valid = _LRU(cache_size)
        self._invalid = _LRU(cache_size)
        self._buckets = _Buckets(failures_per_second, failure_burst)
        self._hashing = threading.BoundedSemaphore(max_parallel)
        self._wait = wait_seconds
        self._lock = threading.Lock()
        self.hashes = 0

    def check(self, header: str | None, client: str = "") -> bool:
        """True when ``header`` carries the right credentials of a known user."""
        return self.verify(header, client) is Verdict.OK

    def verify(self, header: str | None, client: str = "") -> Verdict:
        """OK, DENIED (wrong or no credentials) or THROTTLED (no hash computed: try later)."""
        credentials = _decode_basic(header)
        if credentials is None:
            return Verdict.DENIED
        user, password = credentials
        encoded = self._users.get(user)
        stored = encoded or self._dummy
        digest = hmac.new(self._secret, digestmod="sha256")
        for part in (user, password, stored):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "big") + data)
        key = digest.digest()
        key_client = client_key(client)
        with self._lock:
            if key in self._valid:
                return Verdict.OK
            if key in self._invalid:
                return Verdict.DENIED
            if not self._buckets.take(key_client, time.monotonic()):
                return Verdict.THROTTLED
        if not self._hashing.acquire(timeout=self._wait):
            with self._lock:
                self._buckets.give_back(key_client, time.monotonic())
            return Verdict.THROTTLED
        try:
            with self._lock:
                self.hashes += 1
            ok = verify_password(password, stored) and encoded is not None
        finally:
            self._hashing.release()
        with self._lock:
            if ok:
                self._valid.add(key)
                self._buckets.give_back(key_client, time.monotonic())
            else:
                self._invalid.add(key)
        return Verdict.OK if ok else Verdict.DENIED


def _decode_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
