"""`Result`: what an evaluation returns, the JSON contract of ``streammetric eval --format json``.

Its own module so that the engine (`local`, `dask`), the grouped state (`partial`) and the CLI
import it without importing each other.

A metric value in a result is its JSON form (`json_value`): a number for a metric with one
value; for a per-class metric (``get()`` gives a 1-D array, index = class) a `ClassValues`
mapping, keyed by the class index as text or, with class names, by the name; for a matrix (a 2-D
array, e.g. a confusion matrix: rows true class, columns predicted class) a list of lists.

>>> import numpy as np
>>> json_value(np.array([0.5, np.nan])), json_value(np.array([[3, 1], [0, 2]]))
({'0': 0.5, '1': nan}, [[3, 1], [0, 2]])
>>> json_value(np.array([0.5, 0.25]), ["cat", "dog"]), json_value(np.float64(0.5))
({'cat': 0.5, 'dog': 0.25}, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError
from .._json import Table

if TYPE_CHECKING:
    from ..explain import Explanation
    from .partial import Partial

__all__ = ["ClassValues", "Result", "class_label", "json_value"]


class ClassValues(dict[str, Any]):
    """A per-class value in JSON form: ``{class: value}`` in class order, keyed by the class
    index as text (``"0"``, ``"1"``, ...) or by the class's name. A dict (JSON writes it as an
    object); its own type so that `Result.to_dict` names the classes of these values only."""


def class_label(index: int, class_names: Sequence[str] | None = None) -> str:
    """The key of class ``index``: its name, or the index as text (also for a class beyond
    the names: while a run is exported live, before the result checks their number).

    >>> class_label(1), class_label(1, ["cat", "dog"]), class_label(2, ["cat", "dog"])
    ('1', 'dog', '2')
    """
    if class_names is None or index >= len(class_names):
        return str(index)
    return class_names[index]


def _number(value: Any) -> int | float:
    """An element as JSON holds it: integers (counts) stay ints, the rest are floats."""
    return value if type(value) is int else float(value)


def json_value(value: Any, class_names: Sequence[str] | None = None) -> Any:
    """A metric value (as ``get()`` gives it) in its JSON form (see the module docstring);
    ``class_names`` name the classes of a 1-D value (a `ConfigError` if there are fewer names
    than classes). Mappings and lists are returned as they are."""
    if isinstance(value, (dict, list)):
        return value
    ndim = getattr(value, "ndim", 0)
    if not ndim:
        return float(value)
    if class_names is not None:
        _check_count(value.shape[0] if ndim == 1 else max(value.shape[:2]), class_names, None)
    items = value.tolist()  # Python ints for integer arrays, floats for float arrays
    if ndim == 1:
        return ClassValues((class_label(i, class_names), _number(v)) for i, v in enumerate(items))
    return items if value.dtype.kind in "iuf" else _nested(items)  # (already ints or floats)


def _nested(items: Any) -> Any:
    return [_nested(item) for item in items] if isinstance(items, list) else _number(items)


def _check_count(classes: int, class_names: Sequence[str], metric: str | None) -> None:
    if classes > len(class_names):
        whose = f"{metric} has" if metric else "the value has"
        raise ConfigError(
            f"{len(class_names)} class names given, but {whose} {classes} classes "
            f"(0 to {classes - 1}); give one name per class, in class index order"
        )


def _named_values(metrics: dict[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    """``metrics`` with the classes of its per-class values named (matrices are checked)."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, ClassValues):
            indices = [int(key) + 1 for key in value if key.isdigit()]  # (a loaded JSON's keys)
            _check_count(max(len(value), *indices, 0), class_names, name)
            value = ClassValues(  # named before (a JSON result's): renamed by position
                (class_names[int(key) if key.isdigit() else position], item)
                for position, (key, item) in enumerate(value.items())
            )
        elif isinstance(value, list) and value and isinstance(value[0], list):
            _check_count(max(len(value), max(len(row) for row in value)), class_names, name)
        out[name] = value
    return out


def _named_bounds(bounds: dict[str, Any], class_names: Sequence[str] | None) -> dict[str, Any]:
    """Intervals ``{name: {"lower": x, "upper": y}}`` with per-class bounds keyed by name."""
    if class_names is None:
        return bounds
    return {
        name: {
            side: _named_values({name: value}, class_names)[name] for side, value in ends.items()
        }
        for name, ends in bounds.items()
    }


def _named_group(group: dict[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    out = {**group, "metrics": _named_values(group["metrics"], class_names)}
    if "intervals" in group:
        out["intervals"] = _named_bounds(group["intervals"], class_names)
    return out


class Result:
    """What `evaluate` returns: the JSON contract of ``streammetric eval --format json``.

    ``rows`` and ``invalid_rows`` count the rows; ``metrics`` maps each metric name to its value
    over all rows (in its JSON form, `json_value`); ``groups`` (with ``by``; else None) lists
    each group as ``{"key": {column: value}, "rows": n, "metrics": {...}}`` in key order;
    ``notes`` say why values are inf, NaN or not exact; ``partial`` is the run's grouped state.
    An engine may give the groups by column instead (``table``, a `streammetric._json.Table`):
    ``groups`` builds the dicts when first read, and the command writes the JSON from the
    columns without building them.
    """

    def __init__(
        self,
        rows: int,
        invalid_rows: int,
        metrics: dict[str, Any],
        groups: list[dict[str, Any]] | None = None,
        notes: list[str] | None = None,
        partial: Partial | None = None,
        *,
        table: Table | None = None,
        conventions: dict[str, Explanation] | None = None,
    ) -> None:
        self.rows = rows
        self.invalid_rows = invalid_rows
        self.metrics = metrics
        self._groups = groups
        self._table = table
        self.notes = [] if notes is None else notes
        self.partial = partial
        #: the cross-entropy metrics made with ``explain=`` (``eval --conventions``): every
        #: convention's value side by side, by metric name
        self.conventions: dict[str, Explanation] = conventions or {}
        #: with intervals: ``{"level", "replicates", "seed", "method"}``, and each metric's
        #: ``{"lower": x, "upper": y}`` over all rows (per group: in each group's dict)
        self.ci: dict[str, Any] | None = None
        self.intervals: dict[str, Any] | None = None

    def set_intervals(
        self,
        header: dict[str, Any],
        overall: dict[str, Any],
        per_group: list[dict[str, Any]] | None = None,
    ) -> None:
        """Add intervals: ``header`` (the ``"ci"`` object), the intervals over all rows, and
        each group's (in the order of ``groups``)."""
        self.ci, self.intervals = header, overall
        if per_group is not None:
            groups = self.groups
            assert groups is not None and len(groups) == len(per_group)
            for group, bounds in zip(groups, per_group, strict=True):
                group["intervals"] = bounds

    @property
    def groups(self) -> list[dict[str, Any]] | None:
        if self._groups is None and self._table is not None:
            self._groups = self._table.records()
        return self._groups

    def __repr__(self) -> str:
        return (
            f"Result(rows={self.rows!r}, invalid_rows={self.invalid_rows!r}, "
            f"metrics={self.metrics!r}, groups={self.groups!r}, notes={self.notes!r})"
        )

    def _repr_html_(self) -> str:
        """A compact table for notebooks: each metric (with its interval), then each group's
        values (the first groups), then the notes."""
        from .._html import html_table

        bounds = self.intervals or {}
        header = ["metric", "value"] + (["lower", "upper"] if bounds else [])
        rows = []
        for name, value in self.metrics.items():
            row = [name, value]
            if bounds:
                row += [bounds.get(name, {}).get("lower"), bounds.get(name, {}).get("upper")]
            rows.append(row)
        caption = f"{self.rows:,} rows, {self.invalid_rows:,} invalid"
        if self.ci is not None:
            caption += f"; intervals at level {self.ci.get('level')}"
        out = html_table(header, rows, caption=caption)
        groups = self.groups
        if groups:
            names = [n for n, v in groups[0]["metrics"].items() if isinstance(v, (int, float))]
            columns = list(groups[0]["key"])
            out += html_table(
                [*columns, "rows", *names],
                [
                    [*g["key"].values(), g["rows"], *(g["metrics"].get(n) for n in names)]
                    for g in groups
                ],
                caption=f"{len(groups):,} groups",
            )
        if self.notes:
            import html

            out += "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>"
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return (self.to_dict(), self.notes) == (other.to_dict(), other.notes)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def saved_class_names(self) -> list[str] | None:
        """The class names a loaded JSON result keys its per-class values by (in class order),
        or None (keyed by index, or no per-class value): so that its matrices are named too."""
        for value in self.metrics.values():
            if isinstance(value, ClassValues) and value and not all(k.isdigit() for k in value):
                return list(value)
        return None

    def named_metrics(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """``metrics``, with per-class values keyed by ``class_names`` when given (a
        `ConfigError` when a value has more classes than names)."""
        return self.metrics if class_names is None else _named_values(self.metrics, class_names)

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """The JSON contract; ``class_names`` key the per-class values by class name instead
        of index (a `ConfigError` when a value has more classes than names)."""
        groups = self.groups
        if class_names is not None and groups is not None:
            groups = [_named_group(group, class_names) for group in groups]
        out: dict[str, Any] = {"rows": self.rows, "invalid_rows": self.invalid_rows}
        if self.ci is not None:
            out["ci"] = self.ci
        out["metrics"] = self.named_metrics(class_names)
        if self.intervals is not None:
            out["intervals"] = _named_bounds(self.intervals, class_names)
        if self.conventions:
            out["conventions"] = {
                name: e.to_dict(nonfinite_strings=False) for name, e in self.conventions.items()
            }
        if groups is not None:
            out["groups"] = groups
        return out

    def json_data(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """`to_dict`'s value to write as JSON (`streammetric._json.dumps_indented`): the
        groups left as their `Table` when they were given so and not yet built (unless class
        names rename per-class values in them)."""
        vectors = any(isinstance(v, (dict, list)) for v in self.metrics.values())
        if (
            self._groups is not None
            or self._table is None
            or (class_names and vectors)
            or self.ci is not None
            or self.conventions
        ):
            return self.to_dict(class_names)
        return {
            "rows": self.rows,
            "invalid_rows": self.invalid_rows,
            "metrics": self.named_metrics(class_names),
            "groups": self._table,
        }
