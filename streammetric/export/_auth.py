"""HTTP basic auth for :func:`~streammetric.export.serve`, with stdlib password hashes.

A basic-auth file holds one ``user:hash`` line per user (``#`` comments and blank lines are
ignored). The hash format is PBKDF2-HMAC-SHA256, as Django writes it::

    pbkdf2_sha256$<iterations>$<salt, standard base64>$<derived key, standard base64>

The key is 32 bytes; lines come from ``python -m streammetric.export.hash_password USER`` or
:func:`basic_auth_line`. Passwords are checked in constant time; a verified user:password pair is
remembered (as a keyed digest, in memory) so that scrapes do not pay the PBKDF2 cost each time.

>>> line = basic_auth_line("alice", "s3cret", iterations=1000, salt=b"0123456789abcdef")
>>> line.split("$")[:3]
['alice:pbkdf2_sha256', '1000', 'MDEyMzQ1Njc4OWFiY2RlZg==']
>>> verify_password("s3cret", line.split(":", 1)[1]), verify_password("wrong", line[6:])
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from pathlib import Path

from .._exceptions import ConfigError

__all__ = [
    "DEFAULT_ITERATIONS",
    "BasicAuth",
    "basic_auth_line",
    "load_basic_auth_file",
    "make_password_hash",
    "verify_password",
]

SCHEME = "pbkdf2_sha256"
#: OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
DEFAULT_ITERATIONS = 600_000
_KEY_BYTES = 32
_CACHE_LIMIT = 1024


def make_password_hash(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """``pbkdf2_sha256$iterations$salt$key`` for ``password`` (a random 16-byte salt by default)."""
    if not isinstance(iterations, int) or iterations < 1:
        raise ConfigError(f"`iterations` must be an int >= 1, got {iterations!r}")
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


def _parse_hash(encoded: str) -> tuple[int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(f"a password hash must be {SCHEME}$iterations$salt$key")
    iterations = int(parts[1])
    if iterations < 1:
        raise ValueError("the iteration count must be >= 1")
    try:
        salt = base64.b64decode(parts[2], validate=True)
        key = base64.b64decode(parts[3], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"salt and key must be standard base64: {exc}") from None
    return iterations, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the hash ``encoded`` (constant-time comparison)."""
    iterations, salt, key = _parse_hash(encoded)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, len(key))
    return hmac.compare_digest(derived, key)


def load_basic_auth_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{user: hash}`` from a basic-auth file; a malformed line raises ConfigError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"`basic_auth_file` cannot be read: {path}: {exc}") from exc
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        try:
            if not sep or not user:
                raise ValueError("a line must be user:hash")
            _parse_hash(encoded)
        except ValueError as exc:
            raise ConfigError(f"`basic_auth_file` {path}:{number}: {exc}") from None
        if user in users:
            raise ConfigError(f"`basic_auth_file` {path}:{number}: user {user!r} appears twice")
        users[user] = encoded
    if not users:
        raise ConfigError(f"`basic_auth_file` {path} holds no user:hash line")
    return users


class BasicAuth:
    """Checks ``Authorization: Basic ...`` headers against ``{user: hash}``."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)
        self._dummy = next(iter(self._users.values()))  # unknown users cost the same time
        self._secret = os.urandom(32)
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        """True when ``header`` carries the right credentials of a known user."""
        credentials = _decode_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = hmac.new(self._secret, f"{user}\0{password}".encode(), "sha256").digest()
        with self._lock:
            if digest in self._verified:
                return True
        encoded = self._users.get(user)
        ok = verify_password(password, encoded or self._dummy) and encoded is not None
        if ok:
            with self._lock:
                if len(self._verified) >= _CACHE_LIMIT:
                    self._verified.clear()
                self._verified.add(digest)
        return ok


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
