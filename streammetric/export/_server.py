"""The HTTP(S) endpoint behind :func:`~streammetric.export.serve`: a threading stdlib server.

``GET /metrics`` answers in the format the client asks for (Prometheus text or OpenMetrics, gzip
when accepted, as ``prometheus_client`` negotiates it); ``GET /`` links to it; anything else is a
404. With a basic-auth file every request needs credentials (401 and ``WWW-Authenticate``
otherwise; 429 with ``Retry-After`` when the client's failed logins are over the cap, see
:mod:`~streammetric.export._auth`). With TLS the handshake runs in the request's thread, so a slow
client cannot stall the accept loop. A web configuration file (exporter-toolkit's format, see
:mod:`~streammetric.export._webconfig`) gives TLS, users and extra headers in one file.
"""

from __future__ import annotations

import gzip
import logging
import os
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from .._exceptions import ConfigError
from ._auth import BasicAuth, Verdict, load_basic_auth_file
from ._webconfig import WebConfig, load_web_config

__all__ = ["MetricsServer"]

log = logging.getLogger("streammetric.export")
_REQUEST_TIMEOUT_SECONDS = 10.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "streammetric"
    timeout = _REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        auth = self.server.auth
        if auth is not None:
            verdict = auth.verify(self.headers.get("Authorization"), self.client_address[0])
            if verdict is Verdict.THROTTLED:
                message = b"429 Too Many Requests: too many failed logins, retry later\n"
                self._send(429, message, "text/plain; charset=utf-8", [("Retry-After", "1")])
                return
            if verdict is not Verdict.OK:
                challenge = ("WWW-Authenticate", 'Basic realm="streammetric", charset="UTF-8"')
                self._send(401, b"401 Unauthorized\n", "text/plain; charset=utf-8", [challenge])
                return
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path == "/":
            page = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
            self._send(200, page, "text/html; charset=utf-8")
        else:
            self._send(404, b"404 Not Found: see /metrics\n", "text/plain; charset=utf-8")

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(self.server.registry)
        except Exception as exc:  # a metric failing to compute: say so, keep serving
            log.exception("streammetric: collecting metrics failed")
            message = f"500 collecting metrics failed: {type(exc).__name__}: {exc}\n"
            self._send(500, message.encode("utf-8"), "text/plain; charset=utf-8")
            return
        headers = []
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        self._send(200, body, content_type, headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in [*self.server.headers, *(headers or [])]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing per request."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # a burst of connections waits in the kernel, not 1 s for a SYN retry

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        tls: ssl.SSLContext | None,
        auth: BasicAuth | None,
        web: WebConfig | None = None,
    ) -> None:
        self.address_family = _family(address[0])
        self.registry = registry
        self.tls = tls
        self.auth = auth
        self.web = web
        self.headers = web.headers if web is not None else []
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's also runs a slow getfqdn()
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_REQUEST_TIMEOUT_SECONDS)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("streammetric: TLS handshake with %s failed: %s", client_address, exc)
            return
        if self.web is not None and not self.web.san_allowed(wrapped.getpeercert()):
            log.debug("streammetric: client certificate of %s has no allowed SAN", client_address)
            self.shutdown_request(wrapped)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            self.shutdown_request(wrapped)


def _family(host: str) -> socket.AddressFamily:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"`host` must be an address or name to bind, got {host!r}: {exc}"
        ) from exc
    return infos[0][0]


def _tls_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"`tls_cert`/`tls_key` must be a PEM certificate and its key, got {os.fspath(cert)!r} "
            f"and {os.fspath(key)!r}: {exc}"
        ) from exc
    return context


class MetricsServer:
    """A running metrics endpoint: ``.host``, ``.port``, ``.url``, ``.stop()``; a context manager.

    Normally made by :func:`streammetric.export.serve`; any ``CollectorRegistry`` can be served.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        tracker: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        basic_auth_file: str | os.PathLike[str] | None = None,
        web_config: str | os.PathLike[str] | None = None,
    ) -> None:
        flags = {"tls_cert": tls_cert, "tls_key": tls_key, "basic_auth_file": basic_auth_file}
        given = [name for name, value in flags.items() if value is not None]
        if web_config is not None and given:
            raise ConfigError(
                f"`web_config` holds TLS and users itself; drop {', '.join(f'`{n}`' for n in given)}"
            )
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError(
                f"`tls_cert` and `tls_key` go together, got tls_cert={tls_cert!r} and tls_key={tls_key!r}"
            )
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"`port` must be an int in 0..65535, got {port!r}")
        web = None if web_config is None else load_web_config(web_config)
        tls = None if tls_cert is None or tls_key is None else _tls_context(tls_cert, tls_key)
        auth = None if basic_auth_file is None else BasicAuth(load_basic_auth_file(basic_auth_file))
        if web is not None:
            tls, auth = web.tls, BasicAuth(web.users) if web.users else None
        self.auth = auth  # None without basic auth; .hashes counts the password hashes computed
        try:
            self._server = _Server((host, port), registry, tls, auth, web)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.registry = registry
        self.tracker = tracker  # the Tracker behind the registry, when serve() made it
        self.host = host
        self.port: int = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{self.scheme}://{shown}:{self.port}/metrics"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"streammetric-serve-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MetricsServer(url={self.url!r})"
