"""serve(web_config=...): exporter-toolkit's web configuration file, with real TLS (openssl
certificates, client certificates) and real bcrypt hashes, on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

import streammetric as sm
from streammetric.export import serve

from .conftest import AUTH_PASSWORD, AUTH_USER, TlsFiles, _unavailable, http_get
from .test_auth_limits import _request


def bcrypt_hash(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def write_config(folder: Path, text: str) -> Path:
    path = folder / "web.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def certs(tmp_path: Path, tls_files: TlsFiles) -> Path:
    """The server certificate and key in ``tmp_path/certs`` (the config names them relatively)."""
    folder = tmp_path / "certs"
    folder.mkdir()
    shutil.copy(tls_files.cert, folder / "cert.pem")
    shutil.copy(tls_files.key, folder / "key.pem")
    return folder


def test_web_config_tls_bcrypt_users_and_headers(tmp_path: Path, certs: Path) -> None:
    config = write_config(
        tmp_path,
        "# exporter-toolkit web configuration\n"
        "tls_server_config:\n"
        "  cert_file: certs/cert.pem\n"
        "  key_file: certs/key.pem\n"
        "  min_version: TLS12\n"
        "http_server_config:\n"
        "  http2: true\n"
        "  headers:\n"
        "    X-Content-Type-Options: nosniff\n"
        "    X-Frame-Options: deny\n"
        "basic_auth_users:\n"
        f"  {json.dumps(AUTH_USER)}: {json.dumps(bcrypt_hash(AUTH_PASSWORD, cost=10))}\n"
        f"  other: {bcrypt_hash('other password')}\n",
    )
    context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    metric = sm.MAE().update([0.0], [0.25])
    with serve(metric, port=0, web_config=config) as server:
        assert server.url.startswith("https://127.0.0.1:")
        try:
            urllib.request.urlopen(server.url, timeout=5, context=context)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401 and exc.headers["X-Frame-Options"] == "deny"
        else:
            pytest.fail("no credentials got through")
        assert http_get(_request(server.url, AUTH_USER, "wrong"), context=context)[0] == 401
        for user, password in [(AUTH_USER, AUTH_PASSWORD), ("other", "other password")]:
            request = _request(server.url, user, password)
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                assert response.status == 200
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert b'scope="global"} 0.25' in response.read()
        assert server.auth is not None and server.auth.hashes == 3


def test_an_empty_web_config_serves_plain_http(tmp_path: Path) -> None:
    with serve(sm.MAE(), port=0, web_config=write_config(tmp_path, "# nothing\n")) as server:
        assert server.url.startswith("http://") and http_get(server.url)[0] == 200


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


def _client_cert(folder: Path, name: str, san: str) -> ClientCert:
    openssl = shutil.which("openssl")
    if openssl is None:
        _unavailable("the openssl CLI is needed to make client certificates")
    assert openssl is not None
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
         "-addext", f"subjectAltName={san}", "-addext", "extendedKeyUsage=clientAuth"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return ClientCert(cert, key)


def test_web_config_client_certificates_and_allowed_sans(tmp_path: Path, certs: Path) -> None:
    good = _client_cert(tmp_path, "scraper", "DNS:scraper.example")
    other = _client_cert(tmp_path, "intruder", "DNS:intruder.example")
    cas = tmp_path / "clients.pem"
    cas.write_text(good.cert.read_text() + other.cert.read_text())
    config = write_config(
        tmp_path,
        "tls_server_config:\n"
        "  cert_file: certs/cert.pem\n"
        "  key_file: certs/key.pem\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: clients.pem\n"
        "  client_allowed_sans: [scraper.example]\n",
    )

    def get(url: str, client: ClientCert | None) -> int:
        context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
        if client is not None:
            context.load_cert_chain(client.cert, client.key)
        return http_get(url, context=context)[0]

    with serve(sm.MAE(), port=0, web_config=config) as server:
        assert get(server.url, good) == 200
        for client in (None, other):  # no certificate; a verified one without an allowed SAN
            with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
                get(server.url, client)
        assert get(server.url, good) == 200  # still serving


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http_server_config:\nbogus: 1\n", ":2: bogus: unknown key (known: basic_auth_users, http_server_config, rate_limit, tls_server_config)"),
        ("rate_limit:\n  interval: 1s\n", ":1: rate_limit: not supported"),
        ("tls_server_config:\n  cert_file: c.pem\n", ":1: tls_server_config: needs a certificate and its key"),
        ("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", ":4: tls_server_config.cipher_suites: not supported"),
        ("tls_server_config:\n  cert_file: c.pem\n  key_fil: k.pem\n", ":3: tls_server_config.key_fil: unknown key"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_version: TLS9\n", ":4: tls_server_config.min_version: expected one of TLS10, TLS11, TLS12, TLS13, got 'TLS9'"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAnyClientCert\n", ":4: tls_server_config.client_auth_type: Python's ssl cannot take a client certificate without verifying it"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAndVerifyClientCert\n", ":4: tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: missing.pem\n", ":2: tls_server_config.cert_file: must be a PEM certificate and its key"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", ":3: http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin, got 'allow'"),
        ("http_server_config:\n  headers:\n    Server: x\n", ":3: http_server_config.headers.Server: cannot be configured"),
        ("basic_auth_users:\n  alice: $2y$15$" + "a" * 53 + "\n", ":2: basic_auth_users.alice: bcrypt cost 15 is outside 4..14"),
        ("basic_auth_users:\n  alice: secret\n", ":2: basic_auth_users.alice: a password hash must be"),
        ("basic_auth_users: [alice]\n", ":1: basic_auth_users: expected a mapping of user: bcrypt hash"),
        ("tls_server_config:\n  cert_file: [\n", ":3: not valid YAML"),
    ],
)  # fmt: skip
def test_bad_web_configs_are_one_line_naming_file_line_and_key(
    tmp_path: Path, certs: Path, text: str, message: str
) -> None:
    config = write_config(tmp_path, text.format(cert=certs / "cert.pem", key=certs / "key.pem"))
    with pytest.raises(sm.ConfigError) as caught:
        serve(sm.MAE(), port=0, web_config=config)
    text = str(caught.value)
    assert text.startswith(f"`--web-config` {config}") and "\n" not in text
    assert message in text, text


def test_web_config_replaces_the_tls_and_auth_arguments(
    tmp_path: Path, tls_files: TlsFiles
) -> None:
    config = write_config(tmp_path, "basic_auth_users: {}\n")
    with pytest.raises(sm.ConfigError, match=re.escape("drop `basic_auth_file`")):
        serve(sm.MAE(), port=0, web_config=config, basic_auth_file=tls_files.auth_file)


def test_web_config_inline_certificate_and_key(tmp_path: Path, certs: Path) -> None:
    def block(path: Path) -> str:
        return "|\n" + "".join(f"    {line}\n" for line in path.read_text().splitlines())

    config = write_config(
        tmp_path,
        f"tls_server_config:\n  cert: {block(certs / 'cert.pem')}  key: {block(certs / 'key.pem')}",
    )
    context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    with serve(sm.MAE(), port=0, web_config=config) as server:
        assert http_get(server.url, context=context)[0] == 200
