"""The live export of ``eval`` and ``watch`` (serve, push, textfile) and its options.

`export_options`/`ExportOptions`: ``--serve``, ``--push``, ``--textfile`` and their companions.

A `LiveExport` holds two :class:`~streammetric.export.Tracker` objects that follow the engine: one
with a metric object per group (the engine's groups, the engine's row counts) and one for the
overall values, each fed by *merging* the finished units' exact states (``run_job``'s
``on_merge``; whole files in ``watch``). After the run both equal the JSON result bit for bit.

Exported series (see :mod:`streammetric.export.prometheus`): the gauges
``streammetric_<name>{run, scope, <by columns>}`` per group (per-class values with a ``class``
label, matrices with ``true_class`` and ``pred_class``: ``--class-names`` or the class index),
plus the overall gauges without the group labels; the counters (``rows_total``, ...) per group
only, so ``sum`` gives the total. (A group whose by-values are all null or empty would export
the overall's labels: its gauges are left out, its counters stay.)

Local scope: a window is a run of consecutive units (``watch``: files) in plan order (``eval``
hands units over in plan order whatever the thread count, so windows do not depend on timing).
By default a window is one file; with ``--window-rows N`` it closes at the first unit boundary at
or after N evaluated rows. The local values are those of the current window; the next unit after
a closed window starts a new one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import click

from ._exceptions import StreamMetricError
from ._files import Spacing, write_atomic
from .cli_common import unwritable
from .engine.local import RunStart
from .engine.partial import Partial
from .engine.result import Result
from .engine.signals import StopSignal
from .export import DEFAULT_RUN
from .metrics import EvalMetric

if TYPE_CHECKING:  # the exporter (prometheus_client, http.server, ssl) loads only when used
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from .export import MetricsServer, Tracker, TrackerCollector


__all__ = [
    "ExportOptions",
    "LiveExport",
    "UnitFeeder",
    "export_options",
]

TEXTFILE_INTERVAL_SECONDS = 1.0
PUSH_TIMEOUT_SECONDS = 10.0


def parse_serve(value: str) -> tuple[str, int]:
    """``"[HOST:]PORT"`` -> ``(host, port)``; the host defaults to 127.0.0.1, ``[::1]:P`` works.

    >>> parse_serve("9477"), parse_serve("0.0.0.0:80"), parse_serve("[::1]:9477")
    (('127.0.0.1', 9477), ('0.0.0.0', 80), ('::1', 9477))
    """
    value = str(value)  # a TOML config may give the port as a number
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(
            f"expected [HOST:]PORT with PORT in 0..65535, got {value!r}", param_hint="--serve"
        )
    return host, int(port)


def check_push_url(url: str) -> None:
    """A usage error unless ``--push`` is ``[http(s)://]HOST[:PORT][/PATH]`` with a HOST that
    resolves (prometheus_client adds ``http://`` to a URL without a scheme), checked before
    the run rather than at its first push.

    >>> check_push_url("http://127.0.0.1:9091"), check_push_url("localhost:9091")
    (None, None)
    """
    import socket
    from urllib.parse import urlsplit

    full = url if url.startswith(("http://", "https://")) else f"http://{url}"
    try:
        parts = urlsplit(full)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise click.BadParameter(f"{url!r} is not a URL ({exc})", param_hint="--push") from None
    if not host or "://" in full[len(parts.scheme) + 3 :]:
        raise click.BadParameter(
            f"expected [http(s)://]HOST[:PORT][/PATH], got {url!r}", param_hint="--push"
        )
    if parts.username is not None or parts.password is not None:  # (not sent, and echoed)
        raise click.BadParameter(
            "credentials in the URL are not sent to a Pushgateway; leave them out of it",
            param_hint="--push",
        )
    try:
        socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise click.BadParameter(
            f"{url}: host {host!r} does not resolve ({getattr(exc, 'strerror', None) or exc})",
            param_hint="--push",
        ) from None


class ExportOptions(NamedTuple):
    """The export flags of one command, checked."""

    serve: tuple[str, int] | None = None
    linger: float = 0.0
    run: str = DEFAULT_RUN
    push: str | None = None
    push_interval: float = 0.0
    textfile: str | None = None
    window_rows: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    basic_auth_file: str | None = None
    max_groups: int = 1000
    web_config: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.serve or self.push or self.textfile)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExportOptions:
        """Pop the export options out of a command's keyword arguments; usage errors as click's."""
        values = {name: params.pop(name) for name in _EXPORT_PARAMS}
        serve = values.pop("serve")
        options = cls(serve=None if serve is None else parse_serve(serve), **values)
        needs_serve = {"--linger": options.linger > 0, "--tls-cert": options.tls_cert}
        needs_serve |= {"--tls-key": options.tls_key, "--basic-auth-file": options.basic_auth_file}
        needs_serve |= {"--web-config": options.web_config}
        for flag, given in needs_serve.items():
            if given and options.serve is None:
                raise click.UsageError(f"{flag} applies to the --serve endpoint; add --serve")
        if options.push_interval > 0 and not options.push:
            raise click.UsageError("--push-interval needs --push URL")
        if (options.tls_cert is None) != (options.tls_key is None):
            raise click.UsageError("--tls-cert and --tls-key go together")
        if options.web_config:
            flags = {"--tls-cert": options.tls_cert, "--basic-auth-file": options.basic_auth_file}
            clash = [flag for flag, value in flags.items() if value]
            if clash:
                raise click.UsageError(
                    f"--web-config holds the TLS and user settings itself; drop {' and '.join(clash)}"
                )
        for flag, given in (("--textfile", options.textfile), ("--push", options.push)):
            if given is not None and not given.strip():  # (it turned the export off)
                raise click.BadParameter("is empty", param_hint=flag)
        if options.textfile:
            why = unwritable(options.textfile)
            if why is not None:
                raise click.BadParameter(why, param_hint="--textfile")
        if options.push:
            check_push_url(options.push)
        return options


_EXPORT_PARAMS = (
    "serve", "linger", "run", "push", "push_interval", "textfile", "window_rows",
    "tls_cert", "tls_key", "basic_auth_file", "max_groups", "web_config",
)  # fmt: skip


def _linger(ctx: click.Context, param: click.Parameter, value: Any) -> float:
    try:
        seconds = float(value or 0)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise click.BadParameter(f"expected seconds >= 0 or 'inf', got {value!r}")
    return seconds


def export_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--serve/--push/--textfile`` options (and their companions) of eval and watch."""
    file = click.Path(dir_okay=False, exists=True)
    options = [
        click.option("--serve", metavar="[HOST:]PORT", help="Serve live values at http://HOST:PORT/metrics (host 127.0.0.1 by default)."),
        click.option("--linger", metavar="SECONDS", default="0", callback=_linger, help="After the run, keep serving the final values this long ('inf': until SIGINT/SIGTERM).  [default: 0]"),
        click.option("--run", default=DEFAULT_RUN, show_default=True, help="The `run` label of every exported series (and the Pushgateway grouping key)."),
        click.option("--push", metavar="URL", help="Push the final values to this Pushgateway (job streammetric, grouping key run)."),
        click.option("--push-interval", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS", help="Also push while running, at most this often (0: only at the end)."),
        click.option("--textfile", type=click.Path(dir_okay=False), help="Write node_exporter's textfile format here, atomically (as units finish, at most once a second, and at the end)."),
        click.option("--window-rows", type=click.IntRange(min=1), metavar="N", help="The local scope covers units (watch: files) until N rows are reached, then a new window starts (default: one window per file)."),
        click.option("--tls-cert", type=file, help="Serve HTTPS with this PEM certificate (with --tls-key)."),
        click.option("--tls-key", type=file, help="The PEM key of --tls-cert."),
        click.option("--basic-auth-file", type=file, help="Require HTTP basic auth; lines USER:pbkdf2_sha256$... (python -m streammetric.export.hash_password USER) or USER:$2b$... (bcrypt)."),
        click.option("--web-config", type=file, metavar="FILE", help="exporter-toolkit's web configuration (YAML: tls_server_config, basic_auth_users with bcrypt hashes, http_server_config), as the official exporters' --web.config.file; instead of --tls-cert/--tls-key/--basic-auth-file."),
        click.option("--max-groups", type=click.IntRange(min=1), default=1000, show_default=True, help="At most this many exported groups (--by values); one more is a usage error (exit 2)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


class LiveExport:
    """Trackers that follow an engine run, and the endpoint/Pushgateway/textfile reading them."""

    def __init__(self, options: ExportOptions, class_names: Sequence[str] | None = None) -> None:
        self.options = options
        self.class_names = class_names  # the `class` labels of per-class values (else indices)
        self.lock = threading.RLock()  # writers and collect() take it: both trackers agree
        self.registry: CollectorRegistry | None = None
        if options.enabled:
            from prometheus_client import CollectorRegistry

            self.registry = CollectorRegistry(auto_describe=False)
            self.registry.register(_Collector(self))
        self.server: MetricsServer | None = None
        self._groups: TrackerCollector | None = None
        self._overall: TrackerCollector | None = None
        self._window_rows = 0
        self._window_closed = False
        self._textfile_spacing = Spacing(TEXTFILE_INTERVAL_SECONDS)
        self._push_spacing = Spacing(options.push_interval)
        self._warned_empty_group = False

    @property
    def _live_registry(self) -> CollectorRegistry:
        """The registry; it exists whenever an export option is on (the only callers)."""
        assert self.registry is not None
        return self.registry

    def check(self, new_metrics: Callable[[], EvalMetric], by: tuple[str, ...]) -> None:
        """Fail early (ConfigError) on names that cannot be exported, before reading any data."""
        if self.options.enabled:
            self._trackers(new_metrics, by)

    def open(self) -> None:
        """Start the endpoint (when ``--serve``) and say where it is on stderr."""
        if self.options.serve is None:
            return
        from .export import MetricsServer

        host, port = self.options.serve
        self.server = MetricsServer(
            self._live_registry,
            host=host,
            port=port,
            tls_cert=self.options.tls_cert,
            tls_key=self.options.tls_key,
            basic_auth_file=self.options.basic_auth_file,
            web_config=self.options.web_config,
        )
        click.echo(f"streammetric: serving {self.server.url}", err=True)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _trackers(
        self, new_metrics: Callable[[], EvalMetric], by: tuple[str, ...]
    ) -> tuple[TrackerCollector, TrackerCollector]:
        from .export import Tracker, TrackerCollector

        groups = Tracker(
            [new_metrics()],
            group_by=by,
            max_groups=self.options.max_groups,
            cap_name="--max-groups",
        )
        overall = Tracker([new_metrics()])
        run, names = self.options.run, self.class_names
        reserved = ("job",) if self.options.push else ()  # the Pushgateway's grouping key
        return (
            TrackerCollector(groups, run=run, class_names=names, reserved=reserved),
            TrackerCollector(overall, run=run, class_names=names, reserved=reserved),
        )

    def start(
        self,
        new_metrics: Callable[[], EvalMetric],
        by: tuple[str, ...],
        restored: Partial | None = None,
    ) -> None:
        """Create the trackers (metric configs as the engine resolved them), then load ``restored``."""
        if not self.options.enabled:
            return
        with self.lock:
            self._groups, self._overall = self._trackers(new_metrics, by)
            if restored is not None and (restored.groups or restored.invalid_rows):
                self.add(restored, file_end=True)
                self._window_closed = True  # a restored state is a window of its own

    def set_result(self, result: Result) -> None:
        """The evaluation's intervals (``--ci``), exported with the final values."""
        if self._groups is None or self._overall is None or result.ci is None:
            return
        groups = cast("Tracker", self._groups.tracker)
        overall = cast("Tracker", self._overall.tracker)
        level = float(result.ci["level"])
        with self.lock:
            overall.set_intervals(level, {(): result.intervals or {}})
            if groups.group_by:
                groups.set_intervals(
                    level,
                    {
                        tuple(group["key"].values()): group.get("intervals", {})
                        for group in result.groups or []
                    },
                )
            else:
                groups.set_intervals(level, {(): result.intervals or {}})

    def add(self, part: Partial, *, file_end: bool) -> None:
        """Merge one unit's (or file's) exact state into the trackers, then export if due."""
        if self._groups is None or self._overall is None:
            return
        groups = cast("Tracker", self._groups.tracker)  # _trackers made them Trackers
        overall = cast("Tracker", self._overall.tracker)
        with self.lock:
            if self._window_closed:
                groups.reset_local()
                overall.reset_local()
                self._window_rows, self._window_closed = 0, False
            groups.merge_partial(part)  # checks --max-groups before merging anything
            if groups.group_by:  # without --by the one group is the overall
                overall.merge([part.overall()], rows=part.rows)
            self._window_rows += part.rows
            limit = self.options.window_rows
            self._window_closed = self._window_rows >= limit if limit else file_end
        self.flush(final=False)

    def flush(self, *, final: bool) -> None:
        """Write the textfile and push, when due (``final``: now; a failed push raises)."""
        if self.options.textfile and (final or self._textfile_spacing.due()):
            started = time.monotonic()
            from prometheus_client import generate_latest

            write_atomic(self.options.textfile, generate_latest(self._live_registry), mode=0o644)
            self._textfile_spacing.wrote(started)
        interval = self.options.push_interval
        if self.options.push and (final or (interval > 0 and self._push_spacing.due())):
            started = time.monotonic()
            try:
                self._push()
            except StreamMetricError as exc:
                if final:
                    raise
                click.echo(f"streammetric: warning: {exc}", err=True)
            finally:
                self._push_spacing.wrote(started)

    def _push(self) -> None:
        url = self.options.push
        assert url is not None
        import http.client  # (prometheus_client's push imports it anyway)

        try:
            from prometheus_client import push_to_gateway

            push_to_gateway(
                url,
                job="streammetric",
                registry=self._live_registry,
                grouping_key={"run": self.options.run},
                timeout=PUSH_TIMEOUT_SECONDS,
            )
        except (OSError, ValueError, http.client.HTTPException) as exc:  # (not HTTP at all)
            reason = getattr(exc, "reason", None) or exc
            body = _error_body(exc)
            said = f" ({body})" if body else ""
            raise StreamMetricError(f"--push {url}: push failed: {reason}{said}") from None

    def linger(self, stop: StopSignal) -> None:
        """Keep serving the final values for ``--linger`` seconds or until SIGINT/SIGTERM."""
        seconds = self.options.linger
        if self.server is None or seconds <= 0 or stop.is_set():
            return
        until = "until SIGINT/SIGTERM" if math.isinf(seconds) else f"for {seconds:g} s"
        click.echo(f"streammetric: serving the final values at {self.server.url} {until}", err=True)
        stop.wait(None if math.isinf(seconds) else seconds)

    def families(self) -> list[Metric]:
        """The group families with the overall gauges added (see the module docstring)."""
        if self._groups is None or self._overall is None:
            return []
        with self.lock:
            grouped = list(self._groups.collect())
            if not self._groups.tracker.group_by:
                return grouped
            overall = list(self._overall.collect())
        from .export import metric_name

        names = self._groups.tracker.names
        gauges = {metric_name(name) for name in names} | {
            metric_name(f"{name}_ci_{side}") for name in names for side in ("lower", "upper")
        }
        by_name = {family.name: family for family in grouped}
        labels = self._groups.group_labels
        for family in overall:
            if family.name not in gauges:
                continue
            mine = by_name.get(family.name)
            if mine is None:
                grouped.insert(0, family)
                continue
            kept = [s for s in mine.samples if any(s.labels.get(name) for name in labels)]
            if len(kept) < len(mine.samples) and not self._warned_empty_group:
                self._warned_empty_group = True
                click.echo(
                    "streammetric: note: a group whose by-values are all null/empty has the "
                    "labels of the overall values; its gauges are not exported",
                    err=True,
                )
            mine.samples[:] = [*family.samples, *kept]
        return grouped


class _Collector:
    """The registry's one collector: `LiveExport.families` at scrape (push, write) time."""

    def __init__(self, live: LiveExport) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        yield from self.live.families()


class UnitFeeder:
    """``run_job`` hooks handing unit states to a `LiveExport` in plan order, with file ends.

    ``on_merge`` sees units in completion order; a unit that finished early waits (its small
    metric state only) until the ones before it in the plan have been handed over.
    """

    def __init__(self, live: LiveExport) -> None:
        self.live = live
        self._order: list[str] = []
        self._planned: set[str | None] = set()
        self._file_ends: set[str] = set()
        self._waiting: dict[str | None, Partial] = {}
        self._next = 0

    def on_start(self, start: RunStart) -> None:
        pending = start.pending
        self._order = [unit.key for unit in pending]
        self._planned = set(self._order)
        after = [unit.path for unit in pending[1:]] + [None]
        self._file_ends = {u.key for u, nxt in zip(pending, after, strict=False) if nxt != u.path}
        self.live.start(start.new_metrics, start.resolved.by, start.restored)

    def on_merge(self, part: Partial) -> None:
        if part.unit_key not in self._planned:
            self.live.add(part, file_end=False)  # not a planned unit (another engine): as it comes
            return
        self._waiting[part.unit_key] = part
        while self._next < len(self._order) and self._order[self._next] in self._waiting:
            key = self._order[self._next]
            self._next += 1
            self.live.add(self._waiting.pop(key), file_end=key in self._file_ends)


def _error_body(exc: BaseException) -> str:
    """The first line of an HTTP error's response body (a Pushgateway says there why it
    refused a push), or ""."""
    read = getattr(exc, "read", None)
    if not callable(read):
        return ""
    try:
        text = read().decode("utf-8", "replace").strip()
    except Exception:  # the body is a courtesy: never the error
        return ""
    return text.splitlines()[0][:300] if text else ""
