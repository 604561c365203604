"""`Partial`: the metric states of some units, per group, with exact merge and (de)serialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import InvalidInputError, StateError
from .._keys import canonical_key
from ..io import ResolvedColumns, Unit
from ..metrics import EvalMetric
from .result import Result

if TYPE_CHECKING:
    from ..functional._ce_fast import CleanPass

__all__ = ["GroupKey", "Partial", "locate_error"]

GroupKey = tuple[Any, ...]


class Partial:
    """Rows seen, rows dropped, and one (composite) metric object per group key.

    ``unit_key`` names the unit of work a partial was computed from (``None`` for a merged total).
    Clean rows (`fold_clean`) are kept as a `CleanPass` and folded into the metric objects
    only when ``groups`` is read: a unit of a clean file then builds no metric objects, and
    merging it is adding a few counts and one exact sum. Every fold adds exact sums and
    counts, so folding late gives the same bits.
    """

    def __init__(
        self, new_metrics: Callable[[], EvalMetric], *, unit_key: str | None = None
    ) -> None:
        self._new = new_metrics
        self.unit_key = unit_key
        self._groups: dict[GroupKey, EvalMetric] = {}
        self._clean: CleanPass | None = None  # clean rows not yet folded into group ()
        self.group_rows: dict[GroupKey, int] = {}
        self.rows = 0
        self.invalid_rows = 0
        self._probe: EvalMetric | None = None

    @property
    def groups(self) -> dict[GroupKey, EvalMetric]:
        """The metric object of each group key, with every clean row folded in."""
        if self._clean is not None:
            clean, self._clean = self._clean, None
            self.metric(()).fold_clean(clean)
        return self._groups

    def metric(self, key: GroupKey) -> EvalMetric:
        metric = self._groups.get(key)
        if metric is None:
            metric = self._groups[key] = self._new()
        return metric

    def update(
        self, key: GroupKey, labels: np.ndarray, preds: np.ndarray, weights: np.ndarray | None
    ) -> None:
        self.metric(key).update(labels, preds, weights)
        count = int(labels.shape[0])
        self.rows += count
        self.group_rows[key] = self.group_rows.get(key, 0) + count

    def fold_clean(self, clean: CleanPass) -> None:
        """Fold in the rows a `CleanPass` accepted (no groups: `clean_arrays` takes none)."""
        self._add_clean(clean)
        self.rows += clean.rows
        self.group_rows[()] = self.group_rows.get((), 0) + clean.rows

    def _add_clean(self, clean: CleanPass) -> None:
        if self._clean is None:
            self._clean = clean.empty_like()  # never adopt the caller's object
        self._clean.merge(clean)

    def invalid_mask(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        """Rows any of the metrics would reject (so every metric sees the same clean rows)."""
        if self._probe is None:
            self._probe = self._new()
        return self._probe.invalid_rows(labels, preds)

    def merge(self, other: Partial) -> Partial:
        """Add ``other``'s states into this one, exactly (``other`` is left as it was)."""
        # keys are canonical again: a NaN key of another process (Dask) is another object
        for key, metric in other._groups.items():
            self.metric(canonical_key(key)).merge(metric)  # never adopt other's objects
        if other._clean is not None:
            self._add_clean(other._clean)
        for key, rows in other.group_rows.items():
            key = canonical_key(key)
            self.group_rows[key] = self.group_rows.get(key, 0) + rows
        self.rows += other.rows
        self.invalid_rows += other.invalid_rows
        return self

    def overall(self) -> EvalMetric:
        """All groups merged (exactly) into one metric object."""
        total = self._new()
        for key in sorted(self.groups, key=_sort_key):
            total.merge(self.groups[key])
        return total

    def result(self, notes: list[str], *, grouped: bool, by: tuple[str, ...] = ()) -> Result:
        """The `Result`: ``notes`` (e.g. about the columns), then why values are inf or NaN or
        not exact, condensed over the groups (`streammetric.engine.notes`)."""
        from .notes import condense

        groups = None
        if grouped:
            groups = [
                {
                    "key": dict(zip(by, key, strict=True)),
                    "rows": self.group_rows.get(key, 0),
                    "metrics": _values(self.groups[key]),
                }
                for key in sorted(self.groups, key=_sort_key)
            ]
        overall = self.overall()
        ordered = {key: self.groups[key] for key in sorted(self.groups, key=_sort_key)}
        notes = [*notes, *condense(overall, ordered if grouped else None, by)]
        return Result(self.rows, self.invalid_rows, _values(overall), groups, notes, self)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "invalid_rows": self.invalid_rows,
            "groups": [
                [list(key), self.group_rows.get(key, 0), metric.state_dict()]
                for key, metric in sorted(self.groups.items(), key=lambda kv: _sort_key(kv[0]))
            ],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """Load `to_json` output. Every field is checked before anything is loaded: row counts
        are ints >= 0, the groups' rows add up to ``rows``, each group key comes once, and each
        state passes `EvalMetric.load_state_dict`'s checks; else a `StateError` names the
        field (e.g. ``groups[0].state.local.num_inst``) and nothing changes."""
        if not isinstance(data, dict):
            raise StateError.bad_field("", "must be {rows, invalid_rows, groups}", data)
        rows = _count(data.get("rows"), "rows")
        invalid_rows = _count(data.get("invalid_rows"), "invalid_rows")
        groups = data.get("groups")
        if not isinstance(groups, list):
            raise StateError.bad_field("groups", "must be a list of [key, rows, state]", groups)
        staged: dict[GroupKey, tuple[int, EvalMetric, Callable[[], None]]] = {}
        for index, item in enumerate(groups):
            field = f"groups[{index}]"
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], list)):
                raise StateError.bad_field(field, "must be [key, rows, state]", item)
            key_list, group_rows, state = item
            try:
                key = canonical_key(key_list)  # plain JSON values (`streammetric.io.grouping`)
                repeated = key in staged
            except TypeError:  # an unhashable key value
                raise StateError.bad_field(field, "must have a key of scalars", key_list) from None
            if repeated:
                raise StateError.bad_field(field, "repeats the key of an earlier group", key_list)
            metric = self._new()
            try:
                install = metric._staged_load(state)
            except StateError as exc:
                raise exc.within(f"{field}.state", what="`partial`") from None
            staged[key] = (_count(group_rows, f"{field}.rows"), metric, install)
        total = sum(group_rows for group_rows, _, _ in staged.values())
        if total != rows:
            raise StateError.bad_field(
                "rows", f"must be the sum of the groups' rows ({total:,})", rows
            )
        self.rows, self.invalid_rows = rows, invalid_rows
        for key, (group_rows, metric, install) in staged.items():
            install()
            self._groups[key] = metric
            self.group_rows[key] = group_rows


def _count(value: Any, field: str) -> int:
    if type(value) is not int or value < 0:
        raise StateError.bad_field(field, "must be an int >= 0 (a count of rows)", value)
    return value


def _sort_key(key: GroupKey) -> tuple[Any, ...]:
    return tuple(
        (
            value is None,
            value != value,  # NaN: after the numbers (it compares with none of them)
            type(value).__name__,
            value if value is not None and value == value else 0,
        )
        for value in key
    )


def _values(metric: EvalMetric) -> dict[str, float]:
    names, values = metric.get_global()
    if not isinstance(names, list):
        names, values = [names], [values]
    return {str(n): float(v) for n, v in zip(names, values, strict=True)}


def locate_error(
    exc: InvalidInputError, unit: Unit, columns: ResolvedColumns, rows: np.ndarray
) -> InvalidInputError:
    """A metric's error (its row within the update) in the file: path, column and file row."""
    column = {
        "labels": columns.labels,
        "preds": ",".join(columns.preds),
        "sample_weight": columns.weights,
    }.get(exc.argument or "")
    row = exc.row if isinstance(exc.row, int) and 0 <= exc.row < len(rows) else None
    file_row = None if row is None else int(rows[row])
    return exc.located(unit.display_path, column, file_row)  # "file: column `c`, row N: rule"
