"""exporter-toolkit's web configuration file (``--web.config.file`` of the official exporters).

The YAML file of https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md,
so the same file secures streammetric and node_exporter. What maps onto Python's ``ssl`` and
``http.server`` is supported; anything else is refused with one line naming the key:

- ``tls_server_config``: ``cert_file``/``key_file`` (or inline ``cert``/``key``),
  ``client_auth_type`` (``NoClientCert``, ``VerifyClientCertIfGiven``,
  ``RequireAndVerifyClientCert``; Python cannot take a client certificate without verifying it, so
  ``RequestClientCert`` and ``RequireAnyClientCert`` are refused), ``client_ca_file``/``client_ca``,
  ``client_allowed_sans``, ``min_version``/``max_version`` (``TLS10`` .. ``TLS13``; default
  TLS 1.2 .. 1.3), ``prefer_server_cipher_suites``. ``cipher_suites`` and ``curve_preferences``
  (Go names) are refused: OpenSSL's defaults apply.
- ``http_server_config``: ``headers`` (the five exporter-toolkit allows, with its allowed values);
  ``http2`` is accepted and has no effect (the server speaks HTTP/1.1).
- ``basic_auth_users``: ``user: hash``, bcrypt as in exporter-toolkit (``htpasswd -nBC 10 ""``);
  streammetric's ``pbkdf2_sha256$...`` works too. The cost caps of
  :mod:`~streammetric.export._auth` apply.
- ``rate_limit`` is refused (streammetric limits the expensive part, failed logins, per client).

Relative file names resolve against the configuration file's folder, as in exporter-toolkit.
The file is read once, at start.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError
from .._files import read_text
from ._auth import _INSTALL_AUTH, check_hash

__all__ = ["WebConfig", "load_web_config"]

_TOP = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
_TLS_KEYS = {
    "cert_file", "key_file", "cert", "key", "client_auth_type", "client_ca_file", "client_ca",
    "client_allowed_sans", "min_version", "max_version", "prefer_server_cipher_suites",
    "cipher_suites", "curve_preferences",
}  # fmt: skip
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
#: exporter-toolkit's extraHTTPHeaders: the headers it lets a config set (and their values).
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_SAN_KINDS = {"DNS", "IP Address", "email", "URI"}


@dataclass
class WebConfig:
    """A checked web configuration: a TLS context, users, extra headers, allowed client SANs."""

    path: str
    tls: ssl.SSLContext | None = None
    users: dict[str, str] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)
    allowed_sans: frozenset[str] = frozenset()

    def san_allowed(self, cert: dict[str, Any] | None) -> bool:
        """True without a SAN list, else when the verified peer certificate has a listed SAN."""
        if not self.allowed_sans:
            return True
        names = (
            value for kind, value in (cert or {}).get("subjectAltName", ()) if kind in _SAN_KINDS
        )
        return any(name in self.allowed_sans for name in names)


class _Errors:
    def __init__(self, path: str, lines: dict[tuple[str, ...], int]) -> None:
        self.path, self.lines = path, lines

    def __call__(self, where: tuple[str, ...], message: str) -> ConfigError:
        line = self.lines.get(where)
        at = f"{self.path}:{line}" if line else self.path
        return ConfigError(f"`--web-config` {at}: {'.'.join(where)}: {message}")


def _key_lines(node: Any, path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            where = (*path, str(key.value))
            lines[where] = key.start_mark.line + 1
            _key_lines(value, where, lines)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and check the web configuration file at ``path`` (ConfigError, one line, if bad)."""
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"`--web-config` needs the PyYAML package: {_INSTALL_AUTH}") from None
    shown = os.fspath(path)
    text = read_text(path, "`--web-config`")
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"`--web-config` {at}: not valid YAML: {problem}") from None
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _key_lines(node, (), lines)
    error = _Errors(shown, lines)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(
            f"`--web-config` {shown}: expected a mapping at the top, got {type(data).__name__}"
        )
    base = Path(path).resolve().parent
    config = WebConfig(path=shown)
    for key in data:
        if key not in _TOP:
            raise error((str(key),), f"unknown key (known: {', '.join(sorted(_TOP))})")
    if "rate_limit" in data:
        raise error(
            ("rate_limit",),
            "not supported: streammetric throttles failed logins per client instead; remove it",
        )
    tls = _section(data, "tls_server_config", error)
    if tls is not None:
        config.tls, config.allowed_sans = _tls(tls, base, error)
    http = _section(data, "http_server_config", error)
    if http is not None:
        config.headers = _http(http, error)
    users = data.get("basic_auth_users")
    if users is not None:
        config.users = _users(users, error)
    return config


def _section(data: dict[str, Any], name: str, error: _Errors) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise error((name,), f"expected a mapping, got {type(value).__name__}")
    return value


def _string(section: dict[str, Any], where: tuple[str, ...], error: _Errors) -> str | None:
    value = section.get(where[-1])
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise error(where, f"expected a string, got {value!r}")
    return value


def _tls(tls: dict[str, Any], base: Path, error: _Errors) -> tuple[ssl.SSLContext, frozenset[str]]:
    name = "tls_server_config"
    for given in tls:
        if given not in _TLS_KEYS:
            raise error((name, str(given)), f"unknown key (known: {', '.join(sorted(_TLS_KEYS))})")
    for refused in ("cipher_suites", "curve_preferences"):
        if tls.get(refused):
            raise error(
                (name, refused),
                "not supported (Go names; Python's ssl uses OpenSSL's defaults): remove it",
            )

    def get(key: str) -> str | None:
        return _string(tls, (name, key), error)

    def file(key: str) -> str | None:
        value = get(key)
        return None if value is None else str(base / value)

    cert_file, key_file, cert, key = file("cert_file"), file("key_file"), get("cert"), get("key")
    if cert_file and cert:
        raise error((name, "cert"), "give cert or cert_file, not both")
    if key_file and key:
        raise error((name, "key"), "give key or key_file, not both")
    if not (cert_file or cert) or not (key_file or key):
        raise error((name,), "needs a certificate and its key (cert_file and key_file)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = []
    for key_name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        value = get(key_name) or default
        if value not in _VERSIONS:
            raise error((name, key_name), f"expected one of {', '.join(_VERSIONS)}, got {value!r}")
        versions.append(_VERSIONS[value])
    if versions[0] > versions[1]:
        raise error((name, "min_version"), "is above max_version")
    try:
        context.minimum_version, context.maximum_version = versions
    except (ValueError, ssl.SSLError) as exc:
        raise error((name, "min_version"), f"this OpenSSL refuses it: {exc}") from None
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise error(
            (name, "prefer_server_cipher_suites"), f"expected true or false, got {prefer!r}"
        )
    if prefer:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        _load_chain(context, cert_file, key_file, cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise error((name, "cert_file"), f"must be a PEM certificate and its key: {exc}") from None
    auth_type = get("client_auth_type") or "NoClientCert"
    if auth_type not in _CLIENT_AUTH:
        if auth_type in ("RequestClientCert", "RequireAnyClientCert"):
            message = "Python's ssl cannot take a client certificate without verifying it; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        else:
            message = f"expected one of {', '.join(_CLIENT_AUTH)}, got {auth_type!r}"
        raise error((name, "client_auth_type"), message)
    ca_file, ca = file("client_ca_file"), get("client_ca")
    if ca_file and ca:
        raise error((name, "client_ca"), "give client_ca or client_ca_file, not both")
    if (ca_file or ca) and auth_type == "NoClientCert":
        raise error(
            (name, "client_ca_file"),
            "needs client_auth_type VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        )
    if not (ca_file or ca) and auth_type != "NoClientCert":
        raise error((name, "client_auth_type"), f"{auth_type} needs client_ca_file")
    if ca_file or ca:
        try:
            context.load_verify_locations(cafile=ca_file, cadata=ca)
        except (OSError, ssl.SSLError) as exc:
            raise error((name, "client_ca_file"), f"must be PEM CA certificates: {exc}") from None
    context.verify_mode = _CLIENT_AUTH[auth_type]
    sans = tls.get("client_allowed_sans") or []
    if not isinstance(sans, list) or not all(isinstance(s, str) for s in sans):
        raise error((name, "client_allowed_sans"), f"expected a list of strings, got {sans!r}")
    if sans and auth_type != "RequireAndVerifyClientCert":
        raise error(
            (name, "client_allowed_sans"), "needs client_auth_type RequireAndVerifyClientCert"
        )
    return context, frozenset(sans)


def _load_chain(
    context: ssl.SSLContext,
    cert_file: str | None,
    key_file: str | None,
    cert: str | None,
    key: str | None,
) -> None:
    if cert is None and key is None:
        context.load_cert_chain(certfile=str(cert_file), keyfile=key_file)
        return
    with tempfile.TemporaryDirectory(prefix="streammetric-tls-") as folder:  # mode 0700
        if cert is not None:
            cert_file = os.path.join(folder, "cert.pem")
            Path(cert_file).write_text(cert, encoding="utf-8")
        if key is not None:
            key_file = os.path.join(folder, "key.pem")
            with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
                out.write(key)
        context.load_cert_chain(certfile=str(cert_file), keyfile=key_file)


def _http(http: dict[str, Any], error: _Errors) -> list[tuple[str, str]]:
    name = "http_server_config"
    for key in http:
        if key not in ("headers", "http2"):
            raise error((name, str(key)), "unknown key (known: headers, http2)")
    if not isinstance(http.get("http2", True), bool):
        raise error((name, "http2"), f"expected true or false, got {http['http2']!r}")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise error((name, "headers"), f"expected a mapping, got {type(headers).__name__}")
    out = []
    for header, value in headers.items():
        where = (name, "headers", str(header))
        if header not in _HEADERS:
            raise error(where, f"cannot be configured (allowed: {', '.join(_HEADERS)})")
        if not isinstance(value, str) or any(c in value for c in "\r\n"):
            raise error(where, f"expected a one-line string, got {value!r}")
        allowed = _HEADERS[header]
        if allowed and value not in allowed:
            raise error(where, f"expected one of {', '.join(allowed)}, got {value!r}")
        if value:
            out.append((str(header), value))
    return out


def _users(users: Any, error: _Errors) -> dict[str, str]:
    name = "basic_auth_users"
    if not isinstance(users, dict):
        raise error((name,), f"expected a mapping of user: bcrypt hash, got {type(users).__name__}")
    out = {}
    for user, encoded in users.items():
        where = (name, str(user))
        if not isinstance(user, str) or not user or ":" in user:
            raise error(where, "a user name must be a non-empty string without ':'")
        if not isinstance(encoded, str):
            raise error(where, f"expected a bcrypt hash string, got {encoded!r}")
        try:
            check_hash(encoded)
        except ValueError as exc:
            raise error(where, str(exc)) from None
        out[user] = encoded
    return out
