"""The live state an evaluation engine writes and the exporters read: :class:`Tracker`.

A tracker holds, under ONE re-entrant lock, the metric objects of every group (a tuple of
group-by values -> a list of :class:`~streammetric.EvalMetric`), the row counters and the time of
the last update. Exporters call :meth:`Tracker.snapshot`, which reads everything under the lock, so
a scrape never sees a sum from one batch and a count from the next.

An engine uses it like this::

    tracker = Tracker(["ce", "acc"], group_by=["model"], max_groups=100)
    with serve(tracker, port=9477, run="nightly"):        # streammetric.export.serve
        for labels, preds, weights, model in batches:
            tracker.update(labels, preds, weights, group=(model,))
        tracker.add_rows(invalid_rows=skipped)             # rows dropped as invalid (per run)
        tracker.reset_local()                              # each --window-rows N rows, or per file

An engine that folds partial states itself (parallel workers) calls
``tracker.merge(partials, group=key, rows=n)``, or works inside ``with tracker.lock:`` on
``tracker.metrics_for(key)`` and then calls ``tracker.add_rows(n, group=key)``.

>>> t = Tracker("mae", group_by=["model"])
>>> t.update([1.0, 2.0], [1.5, 2.0], group="a").snapshot().groups[0].values
(MetricReading(name='mae', local_value=0.25, global_value=0.25),)
>>> t.reset_local(); t.snapshot().groups[0].rows_total
2
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._exceptions import ConfigError, InvalidInputError
from .._keys import canonical_key
from ..metrics.base import EvalMetric
from ..metrics.registry import CompositeEvalMetric, create

__all__ = [
    "GroupSnapshot",
    "MetricReading",
    "MetricView",
    "Snapshot",
    "Tracker",
    "render_label_value",
]

GroupKey = tuple[Any, ...]
DEFAULT_MAX_GROUPS = 1000


class MetricReading(NamedTuple):
    """One metric value at one instant: its ``get()`` name, local and global values (floats;
    for a per-class metric 1-D arrays, index = class; for a matrix 2-D arrays, rows true
    class; copies, never the metric's own arrays)."""

    name: str
    local_value: Any  # float | np.ndarray
    global_value: Any  # float | np.ndarray


@dataclass(frozen=True)
class GroupSnapshot:
    """A group's values at the snapshot instant (``key`` is ``()`` when nothing is grouped)."""

    key: GroupKey
    label_values: tuple[str, ...]
    rows_total: int
    values: tuple[MetricReading, ...]
    #: (metric name, ((kind, count), ...)) for every metric that has ``diagnostics()``
    diagnostics: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    #: (metric name, lower, upper) of each interval given by `Tracker.set_intervals`
    intervals: tuple[tuple[str, Any, Any], ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything an exporter emits, read under the tracker's lock at one instant."""

    group_by: tuple[str, ...]
    groups: tuple[GroupSnapshot, ...]
    invalid_rows_total: int
    last_update_timestamp: float | None
    #: the confidence level of the groups' intervals (None: no intervals)
    level: float | None = None

    @property
    def rows_total(self) -> int:
        return sum(group.rows_total for group in self.groups)


def render_label_value(value: Any) -> str:
    """A group-by value as label text: ``None`` -> ``""``, bools lower case, floats by ``repr``.

    >>> [render_label_value(v) for v in (None, True, 2, 0.5, b"x", "a\\"b")]
    ['', 'true', '2', '0.5', 'x', 'a"b']
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


class Tracker:
    """The grouped state of the tracked metrics (two windows: local and past), row counters
    and the last update time, under one lock.

    ``metrics`` is what :func:`streammetric.create` takes (a name, config, list, or metric
    objects: their configuration and current state are taken; composites count as their
    metrics). The state is the engine's grouped state (`streammetric.engine.Partial`: one
    accumulator per state entry over all groups), so a tracker holds no metric object per
    group. At most ``max_groups`` groups: one more raises :class:`~streammetric.ConfigError`.
    """

    def __init__(
        self,
        metrics: Any,
        *,
        group_by: Sequence[str] = (),
        max_groups: int = DEFAULT_MAX_GROUPS,
        clock: Callable[[], float] = time.time,
        cap_name: str = "`max_groups`",
    ) -> None:
        if isinstance(group_by, str):
            group_by = [group_by]
        if not isinstance(max_groups, int) or isinstance(max_groups, bool) or max_groups < 1:
            raise ConfigError(f"`max_groups` must be an int >= 1, got {max_groups!r}")
        self.lock = threading.RLock()
        self.group_by: tuple[str, ...] = tuple(str(column) for column in group_by)
        self.max_groups = max_groups
        self._cap_name = cap_name  # how errors name the cap (the CLI: --max-groups)
        self._clock = clock
        specs = metrics if isinstance(metrics, (list, tuple)) else [metrics]
        given = [leaf for spec in specs for leaf in _flat(create(spec))]
        if not given:
            raise ConfigError("`metrics` must name at least one metric, got an empty list")
        self._templates: list[EvalMetric] = [_fresh_copy(metric) for metric in given]
        pairs = [pair for metric in self._templates for pair in metric.get_name_value()]
        self.names: tuple[str, ...] = tuple(str(name) for name, _ in pairs)
        #: the metrics whose value is an array (per-class values, matrices), as a fresh one says
        self.array_names: frozenset[str] = frozenset(
            str(name) for name, value in pairs if _is_array(value)
        )
        self._start()
        if not self.group_by:  # the given objects' state so far is the one group's
            self._add_group(())
            code = int(self._index.codes_of([()])[0])
            for window, part in (("_local", self._local), ("_past", self._past)):
                for leaf, state in zip(given, part.states, strict=True):
                    state.set_state(code, getattr(leaf, window))

    def _new(self) -> EvalMetric:
        return CompositeEvalMetric(metrics=[_fresh_copy(t) for t in self._templates])

    def _start(self) -> None:
        from ..engine.partial import GroupIndex, Partial

        self._index = GroupIndex()
        self._local = Partial(self._new, index=self._index)
        self._past = Partial(self._new, index=self._index)
        self._rows: dict[GroupKey, int] = {}  # rows counted per group, in first-seen order
        self._by_labels: dict[tuple[str, ...], GroupKey] = {}
        self.invalid_rows_total = 0
        self.last_update_timestamp: float | None = None

    # -- groups --------------------------------------------------------------------------------
    def _normalize(self, group: Any) -> GroupKey:
        if not isinstance(group, (tuple, list)):
            group = (group,)
        key = canonical_key(group)  # every NaN one group, whatever object or process
        if len(key) != len(self.group_by):
            columns = ", ".join(self.group_by) or "none"
            raise InvalidInputError(
                f"`group` must have one value per group-by column ({columns}), got {key!r}"
            )
        return key

    def _add_group(self, key: GroupKey) -> None:
        labels = self._new_labels(key)
        self._rows[key] = 0
        self._by_labels[labels] = key

    def _new_labels(self, key: GroupKey) -> tuple[str, ...]:
        """A new group's label values, refused if another group's are the same."""
        labels = tuple(render_label_value(v) for v in key)
        if labels in self._by_labels and any(labels):  # (all empty: no gauges; counters added)
            raise ConfigError(
                f"group keys {self._by_labels[labels]!r} and {key!r} give the same label values {labels!r}"
            )
        return labels

    def _check_new(self, keys: Iterable[GroupKey]) -> list[GroupKey]:
        """The keys not tracked yet, refused (nothing added) beyond ``max_groups``."""
        new = list(dict.fromkeys(key for key in keys if key not in self._rows))
        if len(self._rows) + len(new) > self.max_groups:
            beyond = new[self.max_groups - len(self._rows)]
            raise ConfigError(
                f"{self._cap_name} caps the number of groups at {self.max_groups}, got a new "
                f"group {beyond!r} beyond it (raise {self._cap_name.strip('`')} or group by "
                "fewer columns)"
            )
        return new

    def _group(self, group: Any) -> GroupKey:
        key = self._normalize(group)
        for new in self._check_new([key]):
            self._add_group(new)
        return key

    def metrics_for(self, group: Any = ()) -> list[EvalMetric]:
        """Metric objects holding ``group``'s state now (local and past windows): copies to
        read, not live objects (write with `update`, `merge` or `merge_partial`)."""
        with self.lock:
            return self._objects(self._group(group))

    def _objects(self, key: GroupKey) -> list[EvalMetric]:
        code = int(self._index.codes_of([key])[0])
        objects = [_fresh_copy(t) for t in self._templates]
        for metric, local, past in zip(objects, self._local.states, self._past.states, strict=True):
            metric._local, metric._past = local.state(code), past.state(code)
        return objects

    @property
    def groups(self) -> list[GroupKey]:
        with self.lock:
            return list(self._rows)

    # -- writing ---------------------------------------------------------------------------------
    def update(
        self,
        labels: Any,
        preds: Any,
        sample_weight: Any = None,
        *,
        group: Any = (),
        rows: int | None = None,
    ) -> Tracker:
        """Update ``group``'s metrics with a batch (arrays, or lists of arrays paired as
        ``EvalMetric.update`` pairs them) and count its rows (``len(labels)`` by default).
        Every metric's terms are computed before any is added: a bad batch adds nothing."""
        rows = _count_rows(labels) if rows is None else _check_count("rows", rows)
        with self.lock:
            key = self._normalize(group)
            new = self._check_new([key])  # checked first; a new group kept only if the batch is
            for one in new:
                self._new_labels(one)
            self._local.update(key, labels, preds, sample_weight)
            for one in new:
                self._add_group(one)
            self._count(key, rows, 0)
        return self

    def merge(self, partials: Sequence[EvalMetric], *, group: Any = (), rows: int = 0) -> Tracker:
        """Merge partial metrics (one per tracked metric, same configs; composites count as
        their metrics) into ``group``'s state, window by window, exactly."""
        rows = _check_count("rows", rows)
        flat = [leaf for partial in partials for leaf in _flat(partial)]
        if len(flat) != len(self._templates):
            raise InvalidInputError(
                f"`partials` must hold one metric per tracked metric ({len(self._templates)}), got {len(flat)}"
            )
        for template, partial in zip(self._templates, flat, strict=True):
            template._check_config(partial.get_config(), "partials")
        with self.lock:
            key = self._group(group)
            code = int(self._index.codes_of([key])[0])
            for partial, local, past in zip(
                flat, self._local.states, self._past.states, strict=True
            ):
                windows = partial._snapshot()
                local.set_state(code, windows[0])
                past.set_state(code, windows[1])
            self._count(key, rows, 0)
        return self

    def merge_partial(self, part: Any) -> Tracker:
        """Merge an engine's grouped state (`streammetric.engine.Partial` of the same metrics)
        into the local window: every group at once, its rows and invalid rows counted. New
        groups beyond ``max_groups`` are refused before anything is merged."""
        with self.lock:
            present = part.present().tolist()
            keys = [self._normalize(part.keys[code]) for code in present]
            for new in self._check_new(keys):
                self._add_group(new)
            self._local.merge(part)
            rows = part._rows
            for key, code in zip(keys, present, strict=True):
                self._rows[key] += int(rows[code])
            self._count(None, 0, part.invalid_rows)
        return self

    def add_rows(self, rows: int = 0, invalid_rows: int = 0, *, group: Any = ()) -> None:
        """Count ``rows`` evaluated in ``group`` and ``invalid_rows`` skipped (counted per run)."""
        rows, invalid_rows = _check_count("rows", rows), _check_count("invalid_rows", invalid_rows)
        with self.lock:
            key = self._group(group) if rows or self.group_by == () else None
            self._count(key, rows, invalid_rows)

    def _count(self, key: GroupKey | None, rows: int, invalid_rows: int) -> None:
        if key is not None:
            self._rows[key] += rows
        self.invalid_rows_total += invalid_rows
        self.last_update_timestamp = self._clock()

    def reset_local(self) -> None:
        """Start a new local window in every group; global values and counters keep going."""
        from ..engine.partial import Partial

        with self.lock:
            self._past.merge(self._local)
            self._local = Partial(self._new, index=self._index)

    def reset(self) -> None:
        """Forget everything: metric states, groups and counters."""
        with self.lock:
            self._start()
            self._synced = False  # streammetric.distributed.sync gave it every rank's rows
            if not self.group_by:
                self._add_group(())

    def set_intervals(self, level: float, per_group: Mapping[Any, Mapping[str, Any]]) -> None:
        """Intervals to export with the values (an evaluation's, once it has them): for each
        group key, ``{metric name: {"lower": x, "upper": y}}`` (numbers, or per-class values
        and matrices as arrays, mappings in class order or lists). Replaces earlier ones."""
        with self.lock:
            self._level = level
            self._intervals = {
                self._normalize(group): {
                    str(name): (_as_value(ends["lower"]), _as_value(ends["upper"]))
                    for name, ends in bounds.items()
                }
                for group, bounds in per_group.items()
            }

    # -- reading ---------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every value, counter and diagnostic count, read at one instant under the lock."""
        from ..engine.partial import Partial

        with self.lock:
            intervals = getattr(self, "_intervals", {})
            keys = list(self._rows)
            codes = self._index.codes_of(keys)
            everything = Partial(self._new, index=self._index, template=self._local.template)
            everything.merge(self._past).merge(self._local)
            local = self._local.value_columns(codes)  # every group's values at once
            global_ = everything.value_columns(codes)
            names = [name for name, _ in local]
            readings = zip(
                _by_group([map(_reading, column) for _, column in local], len(keys)),
                _by_group([map(_reading, column) for _, column in global_], len(keys)),
                strict=True,
            )
            counts = _by_group(
                [
                    _diagnostics(metric, columns, len(keys))
                    for metric, columns in everything.diagnostic_columns(codes)
                ],
                len(keys),
            )
            groups = []
            for key, (local_row, global_row), diagnostics in zip(
                keys, readings, counts, strict=True
            ):
                bounds = intervals.get(key) or {}
                groups.append(
                    GroupSnapshot(
                        key,
                        tuple(render_label_value(v) for v in key),
                        self._rows[key],
                        tuple(map(MetricReading, names, local_row, global_row)),
                        diagnostics,
                        tuple((name, lower, upper) for name, (lower, upper) in bounds.items()),
                    )
                )
            return Snapshot(
                self.group_by,
                tuple(groups),
                self.invalid_rows_total,
                self.last_update_timestamp,
                getattr(self, "_level", None),
            )


class MetricView:
    """The live values of metric objects the caller updates itself (``serve(metric)``): one
    group, read from the objects at each snapshot, no rows counted. What the exporters take
    besides a `Tracker`."""

    group_by: tuple[str, ...] = ()
    invalid_rows_total = 0
    last_update_timestamp: float | None = None

    def __init__(self, metrics: Sequence[EvalMetric]) -> None:
        self.lock = threading.RLock()
        self._metrics = list(metrics)
        pairs = [pair for metric in self._metrics for pair in metric.get_name_value()]
        self.names: tuple[str, ...] = tuple(str(name) for name, _ in pairs)
        self.array_names: frozenset[str] = frozenset(
            str(name) for name, value in pairs if _is_array(value)
        )

    def metrics_for(self, group: Any = ()) -> list[EvalMetric]:
        """The objects themselves."""
        return self._metrics

    @property
    def groups(self) -> list[GroupKey]:
        return [()]

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot((), (_read_group((), 0, self._metrics),), 0, None)


def _flat(metric: EvalMetric) -> list[EvalMetric]:
    """A metric, or a composite's metrics (recursively), in order."""
    if isinstance(metric, CompositeEvalMetric):
        return [leaf for child in metric.metrics for leaf in _flat(child)]
    return [metric]


def _fresh_copy(template: EvalMetric) -> EvalMetric:
    metric = template.copy()
    metric.reset()
    return metric


def _by_group(columns: list[Iterable[Any]], count: int) -> list[tuple[Any, ...]]:
    """Columns of ``count`` groups' items as one tuple per group (empty with no columns)."""
    return list(zip(*columns, strict=True)) if columns else [()] * count


def _diagnostics(
    metric: str, columns: Mapping[str, list[int]], count: int
) -> list[tuple[Any, ...]]:
    """Each of ``count`` groups' ``(metric, ((kind, count), ...))`` from the columns of its
    counts."""
    kinds = tuple(columns)
    rows = _by_group(list(columns.values()), count)
    return [(metric, tuple(zip(kinds, row, strict=True))) for row in rows]


def _check_count(name: str, count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise InvalidInputError(f"`{name}` must be an int >= 0, got {count!r}")
    return int(count)


def _count_rows(labels: Any) -> int:
    """Rows in ``labels``, paired as ``update`` pairs them, without converting the data."""
    from ..metrics._inputs import _as_list

    total = 0
    for label in _as_list(labels):
        try:
            total += len(label)
        except TypeError:  # a scalar or 0-d array: one row
            total += 1
    return total


def _as_value(value: Any) -> Any:
    """A bound as the exporter takes values: a float, or an array (per-class values in class
    order, a matrix as rows)."""
    if isinstance(value, Mapping):
        return np.array(list(value.values()), dtype=np.float64)
    if isinstance(value, (list, np.ndarray)):
        return np.asarray(value, dtype=np.float64)
    return float(value)


def _read_group(
    key: GroupKey,
    rows: int,
    metrics: list[EvalMetric],
    intervals: Mapping[str, tuple[Any, Any]] | None = None,
) -> GroupSnapshot:
    values: list[MetricReading] = []
    for metric in metrics:
        local = metric.get_name_value()
        global_ = metric.get_global_name_value()
        values.extend(
            MetricReading(str(name), _reading(lv), _reading(gv))
            for (name, lv), (_, gv) in zip(local, global_, strict=True)
        )
    diagnostics = tuple(
        (leaf.name, _read_diagnostics(counts)) for leaf, counts in _diagnostic_sources(metrics)
    )
    labels = tuple(render_label_value(v) for v in key)
    bounds = tuple((name, lower, upper) for name, (lower, upper) in (intervals or {}).items())
    return GroupSnapshot(key, labels, rows, tuple(values), diagnostics, bounds)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim > 0


def _reading(value: Any) -> Any:
    """A float, or a copy of an array value (per-class values, a matrix)."""
    return np.array(value) if _is_array(value) else float(value)


def _diagnostic_sources(metrics: Iterable[EvalMetric]) -> Iterable[tuple[EvalMetric, Any]]:
    for metric in metrics:
        diagnostics = getattr(metric, "diagnostics", None)
        if callable(diagnostics):
            yield metric, diagnostics()
        elif isinstance(metric, CompositeEvalMetric):
            yield from _diagnostic_sources(metric.metrics)


def _read_diagnostics(counts: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    return tuple((str(kind), int(count)) for kind, count in counts.items())
