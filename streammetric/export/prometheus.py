"""Prometheus export: a scrape-time collector, an HTTP endpoint, Pushgateway and textfile output.

Everything reads a :class:`~streammetric.export.Tracker` (metric objects are wrapped in one) at
the moment of export, through :meth:`Tracker.snapshot`, on a private ``CollectorRegistry``.

Series (``<name>`` is the metric's ``get()`` name with every character outside ``[A-Za-z0-9]``
turned into ``_``; every series also has ``run`` and the extra constant ``labels``, and the
per-group series one label per group-by column)::

    streammetric_<name>{scope="global"|"local"}            gauge: value since reset / this window
    streammetric_<name>{class=, scope=}                     per-class values: one series a class
    streammetric_<name>{true_class=, pred_class=, scope=}   a matrix: one series a cell
    streammetric_rows_total                                 counter: rows evaluated, per group
    streammetric_invalid_rows_total                         counter: rows skipped as invalid, per run
    streammetric_ce_diagnostic_total{metric=, kind=}        counter: a CE-family metric's
                                                            diagnostics() counts ("num_" dropped)
    streammetric_last_update_timestamp_seconds              gauge: Unix time of the last update
    streammetric_build_info{version=}                       info: 1
    streammetric_<name>_ci_lower{level=}, ..._ci_upper      gauges: the bounds of an evaluation's
                                                            confidence interval (``eval --ci``),
                                                            per group and class like the value

A metric that has seen nothing (or a window that is empty) exports ``NaN``, which Prometheus stores
as is. A per-class metric (``get()`` gives a 1-D array, index = class) is one gauge family with
a ``class`` label, a matrix (2-D, rows true class) one with ``true_class`` and ``pred_class``:
the class's name from ``class_names``, else its index (each class's NaN exported as is; a
window where such a metric gives a number, no series). With such a metric, group columns cannot
export as those labels. Group values become label values (``None`` -> ``""``, see
``render_label_value``), escaped by ``prometheus_client``; group column names become label names
the way metric names do (and a leading digit gets a ``_``). The timestamp series appears after
the first update. Names that would clash (two metrics, a column named ``scope``...) raise
:class:`~streammetric.ConfigError` up front.

>>> import streammetric as sm
>>> m = sm.create("mae").update([1.0, 2.0], [1.5, 2.0])
>>> print(generate_latest(make_registry(m, run="r")).decode().splitlines()[2])
streammetric_mae{run="r",scope="global"} 0.25
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from .._exceptions import ConfigError
from .._files import write_atomic
from ..metrics.base import EvalMetric
from . import DEFAULT_RUN
from ._server import MetricsServer
from ._tracker import MetricView, Snapshot, Tracker

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_RUN",
    "TrackerCollector",
    "as_tracker",
    "generate_latest",
    "make_registry",
    "metric_name",
    "push",
    "serve",
    "write_textfile",
]

#: Default port of :func:`serve` (9100 is node_exporter's; configs/prometheus.yml scrapes this).
DEFAULT_PORT = 9477
#: ``run`` label value when none is given.
PREFIX = "streammetric_"
_FIXED = (  # family and sample names of the fixed series, in both exposition formats
    *("rows", "rows_total", "invalid_rows", "invalid_rows_total", "ce_diagnostic"),
    *("ce_diagnostic_total", "last_update_timestamp_seconds", "build", "build_info"),
)
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: the labels of an array value's elements, by the array's number of dimensions
CLASS_LABELS: dict[int, tuple[str, ...]] = {0: (), 1: ("class",), 2: ("true_class", "pred_class")}


def metric_name(name: str) -> str:
    """The gauge name of a metric's ``get()`` name (a closing ``]`` of the options that tell
    same-named metrics apart is dropped, each other character outside ``[A-Za-z0-9]`` becomes
    ``_``).

    >>> metric_name("cross-entropy"), metric_name("top_k_accuracy_5")
    ('streammetric_cross_entropy', 'streammetric_top_k_accuracy_5')
    >>> metric_name("cross-entropy[convention=keras]")
    'streammetric_cross_entropy_convention_keras'
    """
    if "[" in name and name.endswith("]"):
        name = name[:-1]
    return PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name)


def _label_name(column: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", column)
    return "_" + name if name[:1].isdigit() or not name else name


def as_tracker(source: Any) -> Tracker | MetricView:
    """``source`` itself if it is a Tracker; a live view of metric objects (the caller updates
    them; each scrape reads them); else a Tracker of the metrics a spec names."""
    if isinstance(source, (Tracker, MetricView)):
        return source
    objects = source if isinstance(source, (list, tuple)) else [source]
    if objects and all(isinstance(metric, EvalMetric) for metric in objects):
        return MetricView(objects)
    return Tracker(source)


class TrackerCollector:
    """A ``prometheus_client`` collector reading a tracker's snapshot at each ``collect()``."""

    def __init__(
        self,
        tracker: Tracker | MetricView,
        *,
        run: str = DEFAULT_RUN,
        labels: Mapping[str, str] | None = None,
        class_names: Sequence[str] | None = None,
        reserved: Sequence[str] = (),
    ) -> None:
        self.tracker = tracker
        self.const_labels = {"run": str(run), **{str(k): str(v) for k, v in (labels or {}).items()}}
        #: label names a group-by column may not take besides the collector's own (a
        #: Pushgateway's grouping key, ``job``, when pushed)
        self.reserved = tuple(reserved)
        self.group_labels = tuple(_label_name(column) for column in tracker.group_by)
        self.class_names = None if class_names is None else tuple(map(str, class_names))
        self._check_names()

    def _check_names(self) -> None:
        for name in self.const_labels:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ConfigError(
                    f"`labels` names must match [A-Za-z_][A-Za-z0-9_]* without a leading __, got {name!r}"
                )
        taken = {*self.const_labels, *self.reserved, "scope", "metric", "kind", "level"}
        if self.tracker.array_names:
            taken |= {*CLASS_LABELS[1], *CLASS_LABELS[2]}
        for column, label in zip(self.tracker.group_by, self.group_labels, strict=True):
            if label in taken or label.startswith("__"):
                raise ConfigError(
                    f"group-by column {column!r} would export as label {label!r}, which is taken or reserved"
                )
            taken.add(label)
        seen: dict[str, str] = {PREFIX + fixed: "(streammetric itself)" for fixed in _FIXED}
        for name in self.tracker.names:
            exported = metric_name(name)
            if exported in seen:
                raise ConfigError(
                    f"metrics {seen[exported]!r} and {name!r} would both export as {exported}"
                )
            seen[exported] = name

    def collect(self) -> Iterator[Metric]:
        """The families of one consistent snapshot (taken under the tracker's lock)."""
        yield from families(
            self.tracker.snapshot(), self.const_labels, self.group_labels, self.class_names
        )


def families(
    snapshot: Snapshot,
    const_labels: Mapping[str, str],
    group_labels: tuple[str, ...],
    class_names: Sequence[str] | None = None,
) -> list[Metric]:
    """The metric families of a snapshot, in a stable order (``class_names``: the ``class``
    labels of per-class values and matrices, else the class indices)."""
    const_names, const_values = list(const_labels), list(const_labels.values())
    group_names = [*const_names, *group_labels]
    gauges: dict[str, GaugeMetricFamily] = {}
    rows = CounterMetricFamily(
        PREFIX + "rows_total", "Rows evaluated (folded into the metrics).", labels=group_names
    )
    diagnostics = CounterMetricFamily(
        PREFIX + "ce_diagnostic_total",
        "Cross-entropy diagnostic counts of a metric since its last reset.",
        labels=[*group_names, "metric", "kind"],
    )
    dims = _dims(snapshot)
    # counters by their label values: groups whose by-values are all null or empty (None and
    # "" alike) share them, and add up (they have no gauges)
    row_totals: dict[tuple[str, ...], int] = {}
    diagnostic_totals: dict[tuple[str, ...], int] = {}
    for group in snapshot.groups:
        values = [*const_values, *group.label_values]
        for reading in group.values:
            gauge = gauges.get(reading.name)
            if gauge is None:
                class_labels = _class_labels(reading.name, dims[reading.name], group_names)
                gauge = gauges[reading.name] = GaugeMetricFamily(
                    metric_name(reading.name),
                    f"Metric {reading.name!r}: scope=global since reset, local since reset_local.",
                    labels=[*group_names, *class_labels, "scope"],
                )
            if not dims[reading.name]:
                gauge.add_metric([*values, "global"], reading.global_value)
                gauge.add_metric([*values, "local"], reading.local_value)
                continue
            for scope, value in (("global", reading.global_value), ("local", reading.local_value)):
                for classes, number in _elements(value, class_names):
                    gauge.add_metric([*values, *classes, scope], number)
        for name, lower, upper in group.intervals:
            for side, bound in (("lower", lower), ("upper", upper)):
                family = f"{name}_ci_{side}"
                gauge = gauges.get(family)
                if gauge is None:
                    ndim = getattr(bound, "ndim", 0)
                    class_labels = _class_labels(name, ndim, group_names) if ndim else ()
                    gauge = gauges[family] = GaugeMetricFamily(
                        metric_name(family),
                        f"The {side} bound of {name!r}'s confidence interval at `level`.",
                        labels=[*group_names, *class_labels, "level"],
                    )
                level = repr(snapshot.level)
                if not getattr(bound, "ndim", 0):
                    gauge.add_metric([*values, level], float(bound))
                    continue
                for classes, number in _elements(bound, class_names):
                    gauge.add_metric([*values, *classes, level], number)
        key = tuple(values)
        row_totals[key] = row_totals.get(key, 0) + group.rows_total
        for metric, counts in group.diagnostics:
            for kind, count in counts:
                one = (*key, metric, kind.removeprefix("num_"))
                diagnostic_totals[one] = diagnostic_totals.get(one, 0) + count
    for key, total in row_totals.items():
        rows.add_metric(list(key), total)
    for one, total in diagnostic_totals.items():
        diagnostics.add_metric(list(one), total)
    invalid = CounterMetricFamily(
        PREFIX + "invalid_rows_total", "Rows skipped as invalid.", labels=const_names
    )
    invalid.add_metric(const_values, snapshot.invalid_rows_total)
    out: list[Metric] = [*gauges.values(), rows, invalid]
    if diagnostics.samples:
        out.append(diagnostics)
    if snapshot.last_update_timestamp is not None:
        updated = GaugeMetricFamily(
            PREFIX + "last_update_timestamp_seconds",
            "Unix time of the last update.",
            labels=const_names,
        )
        updated.add_metric(const_values, snapshot.last_update_timestamp)
        out.append(updated)
    out.append(_build_info(const_names, const_values))
    return out


def _dims(snapshot: Snapshot) -> dict[str, int]:
    """Each metric's number of dimensions (0: a number) over every group and scope."""
    dims: dict[str, int] = {}
    for group in snapshot.groups:
        for reading in group.values:
            for value in (reading.global_value, reading.local_value):
                ndim = getattr(value, "ndim", 0)
                if ndim and dims.get(reading.name, ndim) != ndim:
                    raise ConfigError(
                        f"metric {reading.name!r} has values of {dims[reading.name]} and {ndim} "
                        "dimensions; the exporter takes one shape of value per metric"
                    )
                dims[reading.name] = max(dims.get(reading.name, 0), ndim)
    return dims


def _class_labels(name: str, ndim: int, taken: Sequence[str]) -> tuple[str, ...]:
    if ndim not in CLASS_LABELS:
        raise ConfigError(
            f"metric {name!r} has a {ndim}-dimensional value; the exporter takes numbers, "
            "per-class values (1-D) and matrices (2-D)"
        )
    clash = [label for label in CLASS_LABELS[ndim] if label in taken]
    if clash:  # a tracker whose fresh metric gave a number, then an array
        raise ConfigError(
            f"metric {name!r} exports label {clash[0]!r}, which a group column or constant "
            "label has"
        )
    return CLASS_LABELS[ndim]


def _elements(value: Any, class_names: Sequence[str] | None) -> Iterator[tuple[list[str], float]]:
    """(class label values, number) of each element of an array value, in index order (a
    number where the metric gives arrays, e.g. NaN of a window without rows: no series)."""
    ndim = getattr(value, "ndim", 0)
    if ndim == 1:
        for index, number in enumerate(value.tolist()):
            yield [_class_label(index, class_names)], float(number)
    elif ndim == 2:
        for true, row in enumerate(value.tolist()):
            for pred, number in enumerate(row):
                yield (
                    [_class_label(true, class_names), _class_label(pred, class_names)],
                    float(number),
                )


def _class_label(index: int, class_names: Sequence[str] | None) -> str:
    """A class's label value: its name, or its index (also a class beyond the names).

    >>> _class_label(1, None), _class_label(1, ["cat", "dog"]), _class_label(2, ["cat", "dog"])
    ('1', 'dog', '2')
    """
    return (
        class_names[index] if class_names is not None and index < len(class_names) else str(index)
    )


def _build_info(names: list[str], values: list[str]) -> InfoMetricFamily:
    info = InfoMetricFamily(PREFIX + "build", "streammetric version.", labels=names)
    info.add_metric(values, {"version": _version()})
    return info


@functools.cache
def _version() -> str:
    try:
        from .. import __version__  # the package itself, when imported normally

        return str(__version__)
    except ImportError:
        try:
            return importlib.metadata.version("streammetric")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


def _resolve_run(run: str | None, labels: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    extra = {str(k): str(v) for k, v in (labels or {}).items()}
    from_labels = extra.pop("run", None)
    if run is not None and from_labels is not None and str(run) != from_labels:
        raise ConfigError(f"`run` and `labels['run']` disagree, got {run!r} and {from_labels!r}")
    chosen = run if run is not None else from_labels
    return (DEFAULT_RUN if chosen is None else str(chosen)), extra


def make_registry(
    source: Any,
    *,
    run: str | None = None,
    labels: Mapping[str, str] | None = None,
    class_names: Sequence[str] | None = None,
) -> CollectorRegistry:
    """A private registry holding one :class:`TrackerCollector` over ``source``.

    ``source``: a Tracker, a metric object or a list of them. ``run`` (default ``"default"``, or
    ``labels["run"]``) and the other ``labels`` are added to every series. ``class_names``
    are the ``class`` labels of per-class values and matrices (default: the class indices).
    """
    chosen, extra = _resolve_run(run, labels)
    registry = CollectorRegistry(auto_describe=False)
    collector = TrackerCollector(
        as_tracker(source), run=chosen, labels=extra, class_names=class_names
    )
    registry.register(collector)
    return registry


def serve(
    source: Any,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    run: str | None = None,
    labels: Mapping[str, str] | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
    basic_auth_file: str | os.PathLike[str] | None = None,
    web_config: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> MetricsServer:
    """Serve ``source`` on ``http(s)://host:port/metrics`` from a background thread.

    Binds loopback unless ``host`` says otherwise; ``port=0`` picks a free port (see ``.port``).
    ``tls_cert``/``tls_key`` (PEM files) switch to HTTPS; ``basic_auth_file`` holds
    ``user:pbkdf2_sha256$...`` (``python -m streammetric.export.hash_password USER``) or
    ``user:$2b$...`` (bcrypt) lines; ``web_config`` is exporter-toolkit's YAML web configuration
    (``tls_server_config``, ``basic_auth_users``, ``http_server_config``) instead of those three.
    Failed logins are capped per client (HTTP 429 beyond), verified ones cached.
    The returned handle has ``.port``, ``.url``, ``.tracker``, ``.stop()`` and is a context
    manager. Metric objects passed directly are read as they are: update them inside
    ``with server.tracker.lock:`` (or through the tracker) for scrapes that never fall between
    two halves of an update.
    """
    tracker = as_tracker(source)
    registry = make_registry(tracker, run=run, labels=labels, class_names=class_names)
    return MetricsServer(
        registry,
        tracker=tracker,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        basic_auth_file=basic_auth_file,
        web_config=web_config,
    )


def push(
    source: Any,
    url: str,
    *,
    job: str = "streammetric",
    run: str | None = None,
    labels: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    class_names: Sequence[str] | None = None,
) -> None:
    """Replace the Pushgateway group ``{job, run}`` at ``url`` with the current values (HTTP PUT)."""
    chosen, _ = _resolve_run(run, labels)
    registry = make_registry(source, run=chosen, labels=labels, class_names=class_names)
    push_to_gateway(url, job=job, registry=registry, grouping_key={"run": chosen}, timeout=timeout)


def write_textfile(
    source: Any,
    path: str | os.PathLike[str],
    *,
    run: str | None = None,
    labels: Mapping[str, str] | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Write the current values to ``path`` (node_exporter textfile format), atomically.

    The text goes to a temporary file in the same directory (not ending in ``.prom``), is
    fsync'ed, made world-readable and renamed over ``path`` with ``os.replace``: a reader sees the
    old file or the new one, never a part.
    """
    data = generate_latest(make_registry(source, run=run, labels=labels, class_names=class_names))
    write_atomic(path, data, mode=0o644)
