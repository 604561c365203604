"""Metric state: declared exact accumulators, what each row adds to them, and their grouped form.

A metric declares its state once (``EvalMetric._add_state``) as named accumulators of four kinds:

========  ==============================  =============================================
kind      one state                       what a row adds (`Terms`)
========  ==============================  =============================================
``sum``   `ExactSum`                      a float64 per row ((n, E): E values a row), or
                                          `ROWS` (1.0 each)
``count`` Python int                      an int/bool per row ((n, E) likewise), or
                                          `ROWS` (1 each)
``counts`` int64 vector (a class, a bin)  `At` (index per row, +1 or +value; (n, E)
                                          indices: E positions a row), or (n, K)
``sums``  exact sums per position         `At` with float64 values, or (n, K) float64
========  ==============================  =============================================

A metric whose state is a sum over its rows (every built-in one but `CustomMetric`) says, per
batch, what each row adds (``EvalMetric._row_terms`` returns `Terms`). Then ``update`` folds the
batch into one state (`fold`), and the engine folds it into the state of every group at once
(`GroupedState.add`, a segmented exact sum in C: no metric object per group, no Python loop over
groups). Both are exact, so a group's state is the bits a metric updated with that group's rows
alone would have, whatever the batching, order or merge tree.

A contribution may also be `Rowwise`: known in total at once (e.g. the cross-entropy diagnostics
of a clean batch, all zero) and per row only when a grouped state asks for it.

>>> import numpy as np
>>> specs = {"total": Spec("sum"), "rows": Spec("count"), "per_class": Spec("counts", size=3)}
>>> terms = {"total": np.array([0.5, 1.0, 2.0]), "rows": ROWS,
...          "per_class": At(np.array([0, 2, 2]), size=3)}
>>> state = fresh_state(specs)
>>> fold(state, specs, terms, 3)
>>> state["total"].value, state["rows"], state["per_class"].tolist()
(3.5, 3, [1, 0, 2])
>>> grouped = GroupedState(specs)
>>> grouped.add(terms, np.array([1, 0, 1]), 2)
>>> g1 = grouped.state(1)
>>> g1["total"].value, g1["rows"], g1["per_class"].tolist()
(2.5, 2, [1, 0, 1])
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._exceptions import StateError
from .._kernels import group_counts as _group_counts
from .._kernels import weigh_cells as _weigh_cells
from ..accumulate import NONFINITE, ExactSum, GroupedExactSum
from ..accumulate import UNITS_PER_ONE as _UNIT

__all__ = [
    "ROWS",
    "At",
    "GroupedState",
    "Rowwise",
    "Spec",
    "State",
    "Terms",
    "add_rows",
    "dump_entry",
    "fold",
    "fresh_state",
    "load_entry",
    "merge_states",
    "zero_counts",
]

State = dict[str, Any]
KINDS = ("sum", "count", "counts", "sums")
_MAX_COUNT = 1 << 63  # counts are int64 in count vectors; Python int counts get the same bound


class _Rows:
    """`ROWS`: every row adds 1 (to a count, or 1.0 to a sum)."""

    _instance: _Rows | None = None

    def __new__(cls) -> _Rows:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ROWS"

    def __reduce__(self) -> str:
        return "ROWS"


ROWS = _Rows()


@dataclass(frozen=True)
class At:
    """Row ``i`` adds ``values[i]`` (1 when ``values`` is None) at position ``index[i]`` of a
    vector entry (``counts`` or ``sums``) of ``size`` positions; a negative index adds nothing.

    ``index`` may be (n, E): row ``i`` adds at each of its E positions ``index[i, e]`` (a class
    per element of a sequence, a column per label), ``values[i]`` each ((n,) values) or
    ``values[i, e]`` ((n, E) values)."""

    index: np.ndarray
    values: np.ndarray | None = None
    size: int = 0

    def flat(
        self, codes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(index, values, codes) one per position added to: a 2-D index flattened (each row's
        code repeated for its positions) and negative indices dropped."""
        index, values = self.index, self.values
        if index.ndim > 1:
            per_row = int(np.prod(index.shape[1:], dtype=np.int64))
            if values is not None:
                values = np.broadcast_to(
                    values.reshape(values.shape[0], per_row)
                    if values.ndim > 1
                    else values[:, None],
                    (index.shape[0], per_row),
                ).reshape(-1)
            if codes is not None:
                codes = np.repeat(codes, per_row)
            index = index.reshape(-1)
        if index.size and index.min() < 0:
            keep = index >= 0
            index = index[keep]
            values = None if values is None else values[keep]
            codes = None if codes is None else codes[keep]
        return index, values, codes

    def width(self, index: np.ndarray) -> int:
        """The vector's length after adding: ``size``, or past the largest index."""
        return max(self.size, int(index.max()) + 1 if index.size else 0)


class Rowwise(NamedTuple):
    """A contribution known in ``total`` (what all the rows add together: an int, a (K,)
    vector, or an `ExactSum`) whose per-row form ``per_row()`` is computed only when a grouped
    state needs it. (A named tuple: one is made per batch, and it is cheaper to make than a
    frozen dataclass.)"""

    total: Any
    per_row: Callable[[], Any]


#: What a batch adds to each entry (a missing entry or None: nothing).
Terms = Mapping[str, Any]


@dataclass(frozen=True)
class Spec:
    """A declared state entry: its kind and what a loaded value must satisfy."""

    kind: str
    nonnegative: bool = True  # sums: a sum of terms >= 0 (counts are always >= 0)
    size: int | None = None  # vectors: the one length besides 0 (fresh) they may have


# -- one state ------------------------------------------------------------------------------


_INT64 = np.dtype(np.int64)
_ZERO_COUNTS: dict[int, np.ndarray] = {}


def zero_counts(size: int) -> np.ndarray:
    """A read-only int64 vector of ``size`` zeros, one per size: a batch that adds nothing to
    a count vector (e.g. a clean batch's diagnostics, as a `Rowwise` total) can say so with it,
    and `fold` and `GroupedState.add` recognise it without reading it."""
    zeros = _ZERO_COUNTS.get(size)
    if zeros is None:
        zeros = _ZERO_COUNTS[size] = np.zeros(size, dtype=np.int64)
        zeros.flags.writeable = False
    return zeros


def fresh(kind: str) -> Any:
    if kind == "sum":
        return ExactSum()
    if kind == "count":
        return 0
    if kind == "counts":
        return np.zeros(0, dtype=np.int64)
    if kind == "sums":
        return GroupedExactSum()
    raise StateError(f"unknown state kind {kind!r}")


def fresh_state(specs: Mapping[str, Spec]) -> State:
    return {name: fresh(spec.kind) for name, spec in specs.items()}


def merge_value(kind: str, a: Any, b: Any) -> Any:
    """``a + b`` of one entry, exactly (neither is changed)."""
    if kind == "sum":
        return a.copy().merge(b)
    if kind == "count":
        return a + b
    if kind == "sums":
        return GroupedExactSum().merge(a).merge(b)
    if a.size == 0 or b.size == 0:  # a fresh count array has shape (0,): take the other
        return (b if a.size == 0 else a).copy()
    if a.shape != b.shape:  # count arrays grow (e.g. a confusion matrix meeting a new class)
        shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape, strict=True))
        a, b = _pad(a, shape), _pad(b, shape)
    return a + b


def merge_states(specs: Mapping[str, Spec], a: State, b: State) -> State:
    return {name: merge_value(spec.kind, a[name], b[name]) for name, spec in specs.items()}


def _pad(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` zero-padded at the end of each axis to ``shape`` (np.pad costs ~15 µs a call)."""
    out = np.zeros(shape, dtype=a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _add_at(target: np.ndarray, mapping: np.ndarray, values: np.ndarray) -> None:
    """``np.add.at(target, mapping, values)`` (int64); one sum when ``target`` has one group
    (a `GroupedState.total`: np.add.at of 100,000 values costs 20x their sum)."""
    if target.shape[0] == 1:
        target[0] += values.sum(axis=0)
    else:
        np.add.at(target, mapping, values)


def _zero(array: np.ndarray) -> None:
    """Set ``array`` to zeros, writing only if it holds something: an entry only read so far
    (e.g. a metric's count that stayed 0) is the kernel's shared zero page, and writing to it
    costs a page fault and a TLB shootdown on every core, for each page."""
    if array.any():
        array[...] = 0


def _grow(counts: np.ndarray, size: int) -> np.ndarray:
    return counts if counts.shape[0] >= size else _pad(counts, (size,))


def fold(state: State, specs: Mapping[str, Spec], terms: Terms, num_rows: int) -> None:
    """Add a batch of ``num_rows`` rows (its `Terms`) into ``state``, exactly."""
    for name, term in terms.items():
        if term is None:
            continue
        kind = specs[name].kind
        if term is ROWS and kind == "sum":
            state[name].add_count(num_rows)
        elif term is ROWS and kind == "count":
            state[name] += num_rows
        elif isinstance(term, Rowwise):
            _add_total(state, name, kind, term.total)
        elif kind == "sum":
            if term.dtype.kind == "b":  # 0 or 1 each (hits): counted, the same exact sum
                state[name].add_count(int(np.count_nonzero(term)))
            else:
                state[name].add(term)
        elif kind == "count":
            if term.dtype.kind == "b":
                state[name] += int(np.count_nonzero(term))
            else:
                state[name] += int(term.sum(dtype=np.int64))
        elif kind == "counts":
            state[name] = _add_counts(state[name], term)
        else:  # sums
            _add_sums(state[name], term)


def _add_total(state: State, name: str, kind: str, total: Any) -> None:
    if kind == "sum":
        state[name].merge(total)
    elif kind == "count":
        state[name] += int(total)
    elif kind == "counts":
        if type(total) is not np.ndarray or total.dtype is not _INT64:
            total = np.asarray(total, dtype=np.int64)
        size = total.shape[0]
        if state[name].shape[0] < size:
            state[name] = _grow(state[name], size)
        if total is not _ZERO_COUNTS.get(size) and np.count_nonzero(total):
            state[name][:size] += total
    else:
        state[name].merge(total)


def _add_counts(counts: np.ndarray, term: Any) -> np.ndarray:
    if isinstance(term, At):
        index, values, _ = term.flat()
        size = term.width(index)
        added = np.bincount(index, weights=values, minlength=size)
    else:
        added = np.asarray(term).sum(axis=0, dtype=np.int64)
        size = added.shape[0]
    counts = _grow(counts, size).copy()
    counts[: added.shape[0]] += added.astype(np.int64)
    return counts


def _add_sums(sums: GroupedExactSum, term: Any) -> None:
    if isinstance(term, At):
        index, values, _ = term.flat()
        sums.add(np.ones(index.shape[0]) if values is None else values, index)
        if term.size > len(sums):  # the vector's length, though its last positions got nothing
            sums._add_sum(term.size - 1, ExactSum())
    else:
        array = np.asarray(term, dtype=np.float64)
        rows, width = array.shape
        sums.add(array.reshape(-1), np.tile(np.arange(width), rows))


def _whole_column(spec: Spec, column: list[Any]) -> np.ndarray | None:
    """A column of plain ints in ``0 .. 2**63 - 1`` (counts) as int64, else None."""
    if set(map(type, column)) - {int}:
        return None
    try:
        array = np.array(column, dtype=np.int64)
    except OverflowError:
        return None
    return array if not array.size or int(array.min()) >= 0 else None


class _Units(NamedTuple):
    """A column of finite exact sums, as their units (`ExactSum.units`)."""

    units: list[int]


def _sum_column(spec: Spec, column: Any) -> np.ndarray | _Units | None:
    """A column of sums: of counts (ints, `_whole_column`), or of finite exact sums (items
    ``{"mantissa", "shift"}``, or those two fields' lists: `GroupedExactSum.json_columns`;
    checked as `ExactSum.units_from_json` checks them, >= 0 where the entry is), else None."""
    if isinstance(column, dict):
        if set(column) != {"mantissa", "shift"}:
            return None
        units = ExactSum.units_from_parts(column["mantissa"], column["shift"])
    else:
        whole = _whole_column(spec, column)
        if whole is not None:
            return whole
        units = ExactSum.units_from_json(column)
    if units is None or (spec.nonnegative and min(units, default=0) < 0):
        return None
    return _Units(units)


def _counts_column(spec: Spec, column: Any) -> np.ndarray | None:
    """A column of count vectors of one width (``{"shape": [groups, n], "values": [...]}`` of
    `GroupedState.columns`, or as `dump_entry` writes each: ``{"shape": [n], "values":
    [...]}``; ints in ``0 .. 2**63 - 1``) as int64 (groups, n), else None."""
    if isinstance(column, dict):
        groups, width = column["shape"]  # (`check_column` saw two ints)
        values = column["values"]
    else:
        if not column or set(map(type, column)) - {dict} or set(map(len, column)) - {2}:
            return None
        try:
            shapes = {tuple(item["shape"]) for item in column}
            rows = [item["values"] for item in column]
        except (KeyError, TypeError):
            return None
        if len(shapes) != 1:
            return None
        (shape,) = shapes
        if len(shape) != 1 or type(shape[0]) is not int:
            return None
        groups, width = len(column), shape[0]
        if set(map(type, rows)) - {list} or set(map(len, rows)) - {width}:
            return None
        values = list(itertools.chain.from_iterable(rows))
    if spec.size is not None and width not in (0, spec.size):
        return None
    if set(map(type, values)) - {int}:
        return None
    try:
        array = np.array(values, dtype=np.int64).reshape(groups, width)
    except OverflowError:
        return None
    return array if int(array.min(initial=0)) >= 0 else None


def check_column(column: Any, size: int, field: str) -> None:
    """That ``column`` holds ``size`` groups' values of a state entry: a list of them (one
    JSON value each), or a column `GroupedState.columns` writes whole (an exact sum's fields'
    lists, or one list of count vectors' values with their shape); a `StateError` names
    ``field`` otherwise. The values themselves are checked when they are read."""
    if isinstance(column, list) and len(column) == size:
        return
    if isinstance(column, dict) and {"mantissa", "shift"} <= set(column) <= _SUM_FIELDS:
        for name, values in column.items():
            if not isinstance(values, list) or len(values) != size:
                rule = f"must be a list of {size:,} values, one per group"
                raise StateError.bad_field(f"{field}.{name}", rule, values)
        return
    if isinstance(column, dict) and set(column) == {"shape", "values"}:
        shape, values = column["shape"], column["values"]
        if not (
            isinstance(shape, list)
            and len(shape) == 2
            and shape[0] == size
            and type(shape[0]) is int
            and type(shape[1]) is int
            and shape[1] >= 0
        ):
            rule = f"must be [{size:,}, n] (a vector of n counts per group)"
            raise StateError.bad_field(f"{field}.shape", rule, shape)
        if not isinstance(values, list) or len(values) != size * shape[1]:
            rule = f"must be a list of {size * shape[1]:,} counts ({size:,} groups x {shape[1]})"
            raise StateError.bad_field(f"{field}.values", rule, values)
        return
    raise StateError.bad_field(field, f"must be a list of {size:,} values, one per group", column)


def column_items(column: list[Any] | dict[str, list[Any]], count: int | None = None) -> list[Any]:
    """Each group's value of a column `check_column` accepted (the first ``count`` groups'
    only, if given), as `dump_entry` writes one."""
    if isinstance(column, list):
        return column if count is None else column[:count]
    if "values" in column:
        (groups, width), values = column["shape"], column["values"]
        groups = groups if count is None else min(groups, count)
        return [
            {"shape": [width], "values": values[i * width : (i + 1) * width]} for i in range(groups)
        ]
    names, lists = list(column), [v if count is None else v[:count] for v in column.values()]
    return [
        {
            name: value
            for name, value in zip(names, item, strict=True)
            if name in _JSON_PARTS or value != 0
        }
        for item in zip(*lists, strict=True)
    ]


_JSON_PARTS = ("mantissa", "shift")
_SUM_FIELDS = frozenset({*_JSON_PARTS, *NONFINITE})


#: what reads a column of an entry's values at once, by kind (None: read value by value): an
#: array of counts, or the units of exact sums
_COLUMN_READERS: dict[str, Callable[[Spec, Any], np.ndarray | _Units | None]] = {
    "sum": _sum_column,
    "count": _whole_column,
    "counts": _counts_column,
}


def _as_entry(kind: str, value: Any) -> Any:
    """An item of a column `_whole_column` or `_counts_column` read, as an ungrouped value of an
    entry of ``kind`` (a sum: an `ExactSum` of the count)."""
    if kind != "sum":
        return int(value) if kind == "count" else value
    total = ExactSum()
    total.add_count(int(value))
    return total


def _whole_count(total: ExactSum) -> int | None:
    """``total`` as an int if it is a whole number >= 0 (a sum of counts), else None."""
    units = total.units
    if total.num_pos_inf or total.num_neg_inf or total.num_nan or units < 0:
        return None
    count, rest = divmod(units, _UNIT)
    return None if rest else count


# -- JSON -------------------------------------------------------------------------------------


def dump_entry(kind: str, value: Any) -> Any:
    if kind == "sum":
        return value.to_json()
    if kind == "count":
        return value
    if kind == "sums":
        return {"shape": [len(value)], "sums": value.to_json()}
    return {"shape": list(value.shape), "values": [int(v) for v in value.ravel()]}


def load_entry(spec: Spec, data: Any, field: str) -> Any:
    """A state entry from its JSON form, every field checked (`StateError` naming it). A sum
    may also be an int >= 0: a whole count (as `GroupedState.columns` writes a sum of counts)."""
    if spec.kind == "sum":
        if type(data) is int:
            if not 0 <= data < _MAX_COUNT:
                raise StateError.bad_field(field, "must be an int >= 0 (a count)", data)
            total = ExactSum()
            total.add_count(data)
            return total
        total = ExactSum.from_json(data, field)
        if spec.nonnegative and (total.units < 0 or total.num_neg_inf):
            raise StateError.bad_field(field, "must be >= 0 (a sum of terms >= 0)", data)
        return total
    if spec.kind == "count":
        if type(data) is not int or not 0 <= data < _MAX_COUNT:
            raise StateError.bad_field(field, "must be an int >= 0 (a count)", data)
        return data
    key = "sums" if spec.kind == "sums" else "values"
    if not isinstance(data, dict) or set(data) != {"shape", key}:
        raise StateError.bad_field(
            field, f"must be a {spec.kind} vector {{'shape': [n], '{key}': [...]}}", data
        )
    shape, values = data["shape"], data[key]
    if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int):
        raise StateError.bad_field(field, "must have a one-dimensional shape [n]", shape)
    if spec.size is not None and shape[0] not in (0, spec.size):
        raise StateError.bad_field(field, f"must have shape [0] or [{spec.size}]", shape)
    if not isinstance(values, list) or len(values) != shape[0]:
        raise StateError.bad_field(field, f"must hold {shape[0]} values, as its shape says", values)
    if spec.kind == "sums":
        sums = GroupedExactSum.from_json(values, f"{field}.sums")
        if spec.nonnegative and any(s.units < 0 or s.num_neg_inf for s in sums.sums()):
            raise StateError.bad_field(field, "must hold sums >= 0 (sums of terms >= 0)", data)
        return sums
    if not all(type(v) is int and 0 <= v < _MAX_COUNT for v in values):
        raise StateError.bad_field(field, "must hold ints >= 0 (counts)", values)
    return np.array(values, dtype=np.int64)


# -- the grouped form -------------------------------------------------------------------------


def add_rows(
    out: np.ndarray | tuple[np.ndarray, ...], codes: np.ndarray, mask: np.ndarray | None = None
) -> None:
    """``out[g] +=`` the rows (``mask``: the true rows) of group ``g`` among ``codes`` (each
    below ``len(out)``), in place, into one array or each of a tuple: one pass over the rows in
    C, nothing over the groups (a batch of 13k rows among 100,000 groups would otherwise cost a
    count array per call)."""
    outs = out if isinstance(out, tuple) else (out,)
    for start in range(0, len(outs), _COUNTS_AT_ONCE):
        some = outs[start : start + _COUNTS_AT_ONCE]
        if not _group_counts(codes, mask, some):
            for one in some:
                one += np.bincount(codes if mask is None else codes[mask], minlength=len(one))


#: arrays `group_counts` counts into at once
_COUNTS_AT_ONCE = 8


class GroupedState:
    """The state of one metric for every group code ``0 .. size - 1``, entry by entry:
    sums as a `GroupedExactSum`, counts as int64 arrays (one per group), count vectors as int64
    (groups, K) arrays, vectors of sums as one `GroupedExactSum` per position.

    ``add(terms, codes, num_groups)`` folds a batch's `Terms` (row ``i`` into group
    ``codes[i]``) into every group at once; ``state(g)`` is group ``g``'s state as `fold`
    would have made it from that group's rows; ``merge(other, mapping)`` adds another's group
    ``i`` into group ``mapping[i]``.
    """

    def __init__(self, specs: Mapping[str, Spec]) -> None:
        self.specs = dict(specs)
        self._pending: tuple[int, State] | None = None  # batches of one group, not yet added
        self.size = 0
        self._capacity = 0  # the length of the arrays (`_grow_groups`)
        self._entries: dict[str, Any] = {name: self._fresh(spec) for name, spec in specs.items()}
        #: count-vector arrays of a state `clear`ed, zero, for `_widen` to take again
        self._scrap: dict[str, np.ndarray] = {}

    def clear(self) -> None:
        """Back to a fresh state (no groups), keeping the arrays' memory: an evaluation's units
        reuse their states (`Partial.clear`), and with 100,000 groups, fresh arrays for each
        unit cost more in page faults than the unit's additions. Count vectors keep their
        arrays aside (`_scrap`) and have no width again until `_widen` takes them back, so
        that the state is exactly a fresh one."""
        self._pending = None
        size = self.size
        for name, spec in self.specs.items():
            entry = self._entries[name]
            if spec.kind == "sum":
                _zero(entry.ones[:size])
                entry.sums = GroupedExactSum()  # (the C side keeps large blocks for reuse)
            elif spec.kind == "count":
                _zero(entry[:size])
            elif spec.kind == "counts":
                if entry.shape[1]:
                    _zero(entry[:size])
                    self._scrap[name] = entry
                self._entries[name] = np.zeros((self._capacity, 0), dtype=np.int64)
            else:
                self._entries[name] = []
        self.size = 0

    @staticmethod
    def _fresh(spec: Spec) -> Any:
        if spec.kind == "sum":  # the floats' exact sums, and the whole units (ROWS, bools)
            return _Sum(GroupedExactSum(), np.zeros(0, dtype=np.int64))
        if spec.kind == "count":
            return np.zeros(0, dtype=np.int64)
        if spec.kind == "counts":
            return np.zeros((0, 0), dtype=np.int64)
        return []  # sums: one GroupedExactSum (over groups) per position

    def _grow_groups(self, size: int) -> None:
        """Room for groups ``0 .. size - 1``: the arrays grow to at least twice their length
        (groups added a few at a time, e.g. the cells of a run with intervals, cost a copy
        of the arrays now and then, not at every batch); rows beyond ``size`` stay zero."""
        if size <= self.size:
            return
        capacity = self._capacity
        if size > capacity:
            capacity = max(size, 2 * capacity) if capacity > 1 else size
            for name, spec in self.specs.items():
                entry = self._entries[name]
                if spec.kind == "sum":
                    entry.ones = _pad(entry.ones, (capacity,))
                elif spec.kind == "count":
                    self._entries[name] = _pad(entry, (capacity,))
                elif spec.kind == "counts":
                    self._entries[name] = _pad(entry, (capacity, entry.shape[1]))
            self._capacity = capacity
        for name, spec in self.specs.items():  # the new groups' zeros written, not read first:
            # a fresh page read is the kernel's zero page, and the first addition to it then
            # costs a second fault and a TLB shootdown on every core
            entry = self._entries[name]
            if spec.kind == "sum":
                entry.ones[self.size : size] = 0
            elif spec.kind in ("count", "counts"):
                entry[self.size : size] = 0
        self.size = size

    def add_all(self, terms: Terms, num_rows: int, group: int = 0) -> None:
        """Fold a batch of ``num_rows`` rows into one group (`fold`'s one pass, no codes).
        Batches of one group (no ``--by``) are folded into one plain state, added to the
        grouped entries only when they are read (`_settle`): the cost of an ungrouped `fold`."""
        if self._pending is not None and self._pending[0] != group:
            self._settle()
        if self._pending is None:
            self._grow_groups(group + 1)
            self._pending = (group, fresh_state(self.specs))
        fold(self._pending[1], self.specs, terms, num_rows)

    def _settle(self) -> None:
        """Add the pending one-group state (`add_all`) into the grouped entries."""
        if self._pending is not None:
            group, state = self._pending
            self._pending = None
            self.set_state(group, state)

    def add(
        self,
        terms: Terms,
        codes: np.ndarray,
        num_groups: int,
        counted: list[np.ndarray] | None = None,
    ) -> None:
        """Fold a batch into the groups: row ``i`` into group ``codes[i]`` (int64, ``0 ..
        num_groups - 1``). Counts are added row by row in place (`add_rows`): a batch costs
        its rows, not the groups. ``counted``: the arrays that count every row (``ROWS``
        terms) are appended to it, for the caller to count with others in one pass."""
        self._settle()
        self._grow_groups(num_groups)
        for name, term in terms.items():
            if term is None:
                continue
            if isinstance(term, Rowwise):
                if not _is_zero(term.total):
                    self._add(name, term.per_row(), codes, counted)
                elif self.specs[name].kind == "counts":
                    self._widen(name, np.asarray(term.total).shape[0])
                continue
            self._add(name, term, codes, counted)

    def _add(
        self, name: str, term: Any, codes: np.ndarray, counted: list[np.ndarray] | None = None
    ) -> None:
        kind, entry, size = self.specs[name].kind, self._entries[name], self.size
        if term is ROWS and kind in ("sum", "count"):
            rows = entry.ones[:size] if kind == "sum" else entry[:size]
            if counted is None:
                add_rows(rows, codes)
            else:
                counted.append(rows)
            return
        if kind == "sum":
            if np.ndim(term) > 1:  # (n, elements): each row's elements into its group
                width = int(np.prod(np.shape(term)[1:]))
                if term.dtype == bool:
                    entry.ones[:size] += np.bincount(
                        codes, weights=term.sum(axis=1), minlength=size
                    ).astype(np.int64)
                else:
                    entry.sums.add(np.reshape(term, -1), np.repeat(codes, width))
            elif term.dtype == bool:  # 0 or 1 each: counted
                add_rows(entry.ones[:size], codes, term)
            else:
                entry.sums.add(term, codes)
        elif kind == "count":
            if term.ndim > 1:
                term = term.reshape(term.shape[0], -1).sum(axis=1, dtype=np.int64)
            if term.dtype == bool:
                add_rows(entry[:size], codes, term)
            else:
                entry[:size] += np.bincount(codes, weights=term, minlength=size).astype(np.int64)
        elif kind == "counts":
            if isinstance(term, At):
                index, values, flat_codes = term.flat(codes)
                assert flat_codes is not None
                codes = flat_codes
                entry = self._widen(name, term.width(index))
                width = entry.shape[1]
                cells = codes * width + index
                target = entry[:size]
                if 4 * cells.shape[0] < size * width and target.flags.c_contiguous:
                    # far fewer rows than (group, position) cells (AUC's 199 buckets at
                    # 100,000 groups): the cells they reach, not a count of every cell
                    reached, inverse = np.unique(cells, return_inverse=True)
                    added = np.bincount(inverse, weights=values, minlength=reached.shape[0])
                    target.reshape(-1)[reached] += added.astype(np.int64)
                else:
                    flat = np.bincount(cells, weights=values, minlength=size * width)
                    target += flat.reshape(size, width).astype(np.int64)
            else:
                array = np.asarray(term)
                entry = self._widen(name, array.shape[1])
                for column in range(array.shape[1]):
                    added = np.bincount(codes, weights=array[:, column], minlength=size)
                    entry[:size, column] += added.astype(np.int64)
        else:  # sums
            if isinstance(term, At):
                index, values, flat_codes = term.flat(codes)
                assert flat_codes is not None
                self._widen_sums(name, term.width(index))
                if index.size:  # one pass per position that gets something (sorted by position)
                    order = np.argsort(index, kind="stable")
                    index, codes = index[order], flat_codes[order]
                    values = np.ones(index.shape[0]) if values is None else values[order]
                    positions, starts = np.unique(index, return_index=True)
                    bounds = [*starts.tolist(), index.shape[0]]
                    for k, position in enumerate(positions.tolist()):
                        rows = slice(bounds[k], bounds[k + 1])
                        entry[position].add(values[rows], codes[rows])
            else:
                array = np.asarray(term, dtype=np.float64)
                self._widen_sums(name, array.shape[1])
                for position in range(array.shape[1]):
                    entry[position].add(array[:, position], codes)

    def _widen(self, name: str, width: int) -> np.ndarray:
        entry: np.ndarray = self._entries[name]
        if entry.shape[1] < width:
            scrap = self._scrap.pop(name, None)
            if scrap is not None and scrap.shape == (entry.shape[0], width):  # zero (`clear`)
                scrap[:, : entry.shape[1]] = entry
                entry = self._entries[name] = scrap
            else:
                entry = self._entries[name] = _pad(entry, (entry.shape[0], width))
        return entry

    def _widen_sums(self, name: str, width: int) -> None:
        entry = self._entries[name]
        while len(entry) < width:
            entry.append(GroupedExactSum())

    def state(self, group: int) -> State:
        """Group ``group``'s state (a fresh one beyond the groups added to)."""
        self._settle()
        return {name: self._value(name, group) for name in self.specs}

    def _value(self, name: str, group: int) -> Any:
        """Entry ``name`` of group ``group`` (settled: `_settle`)."""
        kind, entry, inside = self.specs[name].kind, self._entries[name], group < self.size
        if kind == "sum":
            total = entry.sums[group]
            if inside and entry.ones[group]:
                total.add_count(int(entry.ones[group]))
            return total
        if kind == "count":
            return int(entry[group]) if inside else 0
        if kind == "counts":
            return entry[group].copy() if inside and entry.shape[1] else fresh("counts")
        sums = GroupedExactSum()
        for position, per_group in enumerate(entry):
            sums._add_sum(position, per_group[group])
        return sums

    def columns(self, groups: np.ndarray) -> dict[str, Any]:
        """The state of the groups ``groups`` (codes, int64) as JSON, a column per entry: a
        list whose item ``i`` is group ``groups[i]``'s value as a metric's ``state_dict``
        writes it (``dump_entry``; a sum of whole counts: its count, an int), except for two
        kinds written whole: count vectors as ``{"shape": [groups, n], "values": [...]}`` (the
        groups' vectors one after the other) and exact sums as their fields' lists
        (`GroupedExactSum.json_columns`). No Python object per group: a checkpoint of 100,000
        groups is a few lists (`column_items` gives each group's value back)."""
        self._settle()
        inside = groups < self.size  # groups beyond hold nothing yet: 0s
        out: dict[str, Any] = {}
        for name, spec in self.specs.items():
            entry, kind = self._entries[name], spec.kind
            whole = None
            if kind == "count":
                whole = entry
            elif kind == "sum" and not len(entry.sums):
                whole = entry.ones
            if whole is not None or (kind == "counts" and entry.shape[1]):
                column = np.zeros((groups.shape[0], *np.shape(entry)[1:]), dtype=np.int64)
                column[inside] = (whole if whole is not None else entry)[groups[inside]]
                if kind == "counts":
                    out[name] = {"shape": list(column.shape), "values": column.ravel().tolist()}
                else:
                    out[name] = column.tolist()  # a sum of counts: its count (`load_entry`)
            elif kind == "counts":  # no class seen yet
                out[name] = {"shape": [groups.shape[0], 0], "values": []}
            elif kind == "sum":  # each group's exact sum, its counted rows added
                counts = np.zeros(groups.shape[0], dtype=np.int64)
                counts[inside] = entry.ones[groups[inside]]
                out[name] = entry.sums.json_columns(groups, counts)
            else:
                out[name] = [dump_entry(kind, self._value(name, g)) for g in groups.tolist()]
        return out

    def _merge_same(self, other: GroupedState) -> GroupedState:
        """`merge` of a state numbered as this one: arrays added position by position."""
        self._settle()
        self._grow_groups(other.size)
        for name, spec in self.specs.items():
            mine, theirs = self._entries[name], other._entries[name]
            if spec.kind == "sum":
                mine.sums.merge(theirs.sums)
                mine.ones[: other.size] += theirs.ones[: other.size]
            elif spec.kind == "count":
                mine[: other.size] += theirs[: other.size]
            elif spec.kind == "counts":
                mine = self._widen(name, theirs.shape[1])
                mine[: other.size, : theirs.shape[1]] += theirs[: other.size]
            else:
                self._widen_sums(name, len(theirs))
                for position, per_group in enumerate(theirs):
                    mine[position].merge(per_group)
        return self

    def whole(self, name: str) -> np.ndarray | None:
        """Entry ``name`` per group as int64 when every group's value is a whole number
        counted exactly (a count, or a sum of `ROWS` and bools only); else None."""
        self._settle()
        entry, kind = self._entries[name], self.specs[name].kind
        if kind == "count":
            return entry[: self.size]
        if kind == "sum" and not len(entry.sums):
            return entry.ones[: self.size]
        return None

    def whole_vector(self, name: str) -> np.ndarray:
        """Count vector entry ``name`` per group, int64 (groups, K)."""
        self._settle()
        entry: np.ndarray = self._entries[name]
        return entry[: self.size]

    def units(self, name: str, groups: slice | None = None) -> np.ndarray | None:
        """Sum entry ``name`` (kind ``sum``: (groups,)) or vector of sums (kind ``sums``:
        (groups, positions)) per group as exact Python ints of ``2**-1074`` units (an object
        array; `ExactSum.units` of each group's value); None if a group's sum is inf or NaN.
        ``groups``: those codes only (a slice of ``0 .. size - 1``; each int is over a thousand
        bits: a caller of many groups takes them a block at a time)."""
        self._settle()
        entry, kind = self._entries[name], self.specs[name].kind
        start, stop, _ = (groups or slice(None)).indices(self.size)
        codes = np.arange(start, max(start, stop), dtype=np.int64)
        if kind == "sum":
            parts = [(entry.sums, entry.ones[codes])]
        else:
            parts = [(sums, np.zeros(codes.shape[0], dtype=np.int64)) for sums in entry]
        out = np.zeros((len(parts), codes.shape[0]), dtype=object)
        for position, (sums, counts) in enumerate(parts):
            mantissas, shifts, special = sums._sums.json_parts(codes, counts)
            if np.frombuffer(special, dtype=np.int64).any():
                return None
            out[position] = list(map(operator.lshift, map(int, mantissas), shifts))
        return out[0] if kind == "sum" else out.T

    def ratios(self, name: str, denominators: np.ndarray) -> np.ndarray:
        """Sum entry ``name`` of each group over ``denominators`` (int64 per group), each
        correctly rounded as `ExactSum.ratio` with an int gives it (NaN for 0)."""
        self._settle()
        entry = self._entries[name]
        denominators = np.ascontiguousarray(denominators[: self.size], dtype=np.int64)
        ones = entry.ones[: self.size]
        if (
            not len(entry.sums)
            and int(ones.max(initial=0)) < 1 << 53
            and int(denominators.max(initial=0)) < 1 << 53
        ):
            with np.errstate(invalid="ignore", divide="ignore"):  # exact ints: one rounding
                values = ones.astype(np.float64) / denominators.astype(np.float64)
            values[denominators == 0] = np.nan
            return values
        sums = entry.sums
        if ones.any():  # the counted rows added to a copy (no copy without them)
            sums = GroupedExactSum().merge(entry.sums)
            sums._sums.merge(_as_units(ones), None)
        return np.frombuffer(sums._sums.ratios(denominators), dtype=np.float64).copy()

    def total(self) -> State:
        """Every group's state added together (exactly)."""
        self._settle()
        everything = GroupedState(self.specs)
        everything.merge(self, np.zeros(self.size, dtype=np.int64))
        return everything.state(0)

    def reserve(self, size: int) -> None:
        """Room for groups ``0 .. size - 1`` (empty): `set_state` of each then grows nothing."""
        self._grow_groups(size)

    def set_state(self, group: int, state: State) -> None:
        """Add an ungrouped ``state`` into group ``group`` (e.g. one loaded from JSON)."""
        if group >= self.size:
            self._grow_groups(group + 1)
        for name in self.specs:
            self._add_value(name, group, state[name])

    def _add_value(self, name: str, group: int, value: Any) -> None:
        """Add one entry's ungrouped value into group ``group`` (< ``size``)."""
        kind, entry = self.specs[name].kind, self._entries[name]
        if kind == "sum":
            count = _whole_count(value)
            if count is not None and int(entry.ones[group]) + count < _MAX_COUNT:
                entry.ones[group] += count  # where `add` counts: `columns` writes an int
            else:
                entry.sums._add_sum(group, value)
        elif kind == "count":
            entry[group] += value
        elif kind == "counts":
            entry = self._widen(name, value.shape[0])
            entry[group, : value.shape[0]] += value
        else:
            self._widen_sums(name, len(value))
            for position, one in enumerate(value.sums()):
                entry[position]._add_sum(group, one)

    def _add_units(self, name: str, codes: np.ndarray, units: list[int]) -> None:
        """Add finite sums (their units) into sum entry ``name`` of groups ``codes``: a whole
        count into the counted part, as `_add_value` adds it."""
        entry = self._entries[name]
        ones, sums, low = entry.ones, entry.sums, _UNIT - 1
        whole = [i for i, value in enumerate(units) if value >= 0 and not value & low]
        if whole:  # (rare: a sum of whole counts among others) counted apart where it fits
            at, kept = codes.tolist(), set(whole)
            for i in whole:
                count = units[i] // _UNIT
                if int(ones[at[i]]) + count < _MAX_COUNT:
                    ones[at[i]] += count
                else:
                    kept.remove(i)
            rest = [i for i in range(len(units)) if i not in kept]
            codes, units = codes[rest], [units[i] for i in rest]
        sums.add_units(codes, units)

    def staged_columns(
        self, columns: Mapping[str, Any], field: str
    ) -> Callable[[np.ndarray], None]:
        """Groups' states from their JSON columns (`columns`: one per entry, as `columns`
        writes it or a list whose item ``i`` is group ``i``'s value; `check_column` passed),
        each value checked as `load_entry` checks it (a `StateError` names
        ``{field}[i].{name}``). Returns what adds group ``i``'s state into group ``codes[i]``
        (codes distinct), so that a caller checks everything before it loads anything. Columns
        of counts and of finite sums are read as arrays, not value by value."""
        loaded: dict[str, Any] = {}
        for name, spec in self.specs.items():
            column = columns[name]
            read = _COLUMN_READERS.get(spec.kind)
            array = read(spec, column) if read is not None else None
            loaded[name] = (
                array
                if array is not None
                else [
                    load_entry(spec, v, f"{field}[{i}].{name}")
                    for i, v in enumerate(column_items(column))
                ]
            )

        def install(codes: np.ndarray) -> None:
            if codes.size:
                self._grow_groups(int(codes.max()) + 1)
            for name, spec in self.specs.items():
                values = loaded[name]
                if isinstance(values, _Units):
                    self._add_units(name, codes, values.units)
                    continue
                if isinstance(values, np.ndarray):
                    if spec.kind == "counts":
                        target = self._widen(name, values.shape[1])[:, : values.shape[1]]
                    else:
                        entry = self._entries[name]
                        target = entry.ones if spec.kind == "sum" else entry
                    if not target[codes].any():
                        target[codes] = values  # (each count below 2**63: the checks)
                        continue
                    values = [_as_entry(spec.kind, v) for v in values]  # added as `set_state` adds
                for code, value in zip(codes.tolist(), values, strict=True):
                    self._add_value(name, code, value)

        return install

    def replicated(
        self,
        cells: np.ndarray,
        groups: np.ndarray,
        buckets: np.ndarray,
        weights: np.ndarray,
        products: dict[bytes, np.ndarray] | None = None,
    ) -> GroupedState:
        """Bootstrap replicates of groups whose rows this state holds per (group, bucket)
        cell: code ``cells[i]`` is bucket ``buckets[i]`` of group ``groups[i]`` (``0 .. G -
        1``; one code per cell). Returns the state of ``G * R`` groups (``weights``: (R,
        buckets)): group ``g``'s replicate ``r`` at ``g * R + r``, the sum over its cells of
        ``weights[r, bucket]`` times the cell's state.

        Every product is a sum over a group's cells of the cell's value times its bucket's
        weights (a matrix product of the (G, buckets) cells by the weights when `_DENSE_SHARE`
        of the cells or more hold rows, else `weigh_cells` over the cells there are: at many
        groups the matrix is mostly zeros), made exact: whole entries are integers below ``2**53``,
        and a float sum is cut into slices of 38 bits at a scale common to the group's cells
        (the bits of a cell more than ``2**-114`` below the group's largest cell are dropped),
        whose products are integers too. So the sums are exact in any order, and the
        replicates are the same bits on every CPU. ``products``, shared by calls with the same
        cells, groups, buckets and weights (the metrics of one chunk of `replicate_values`),
        keeps each whole entry's product by its cells' values: an entry equal to one already
        multiplied (the rows and the weights of unweighted rows, in every metric) is not
        multiplied again."""
        self._settle()
        replicates = weights.shape[0]
        size = int(groups.max(initial=-1)) + 1
        out = GroupedState(self.specs)
        out._grow_groups(size * replicates)
        across = np.ascontiguousarray(weights.T, dtype=np.float64)  # (buckets, R)
        mass = float(weights.sum(axis=1).max(initial=0))  # most weight a replicate puts anywhere
        groups = np.ascontiguousarray(groups, dtype=np.int64)
        buckets = np.ascontiguousarray(buckets, dtype=np.int64)

        dense = groups.shape[0] >= _DENSE_SHARE * size * weights.shape[1]

        def weigh(values: np.ndarray) -> np.ndarray:  # (cells, ...) -> (G * R, ...), float64
            flat = np.ascontiguousarray(values.reshape(values.shape[0], -1), dtype=np.float64)
            entries = flat.shape[1]
            if dense:  # most cells there: a matrix product (BLAS) beats the cells' loop
                matrix = np.zeros((entries, size, weights.shape[1]), dtype=np.float64)
                matrix[:, groups, buckets] = flat.T
                product = matrix @ across  # (entries, G, R)
            else:
                product = np.zeros((entries, size, replicates), dtype=np.float64)
                if entries and not _weigh_cells(
                    flat, groups, buckets, across, product, entries, replicates
                ):
                    raise StateError("replicates: the cells do not fit the groups and buckets")
            return np.moveaxis(product, 0, -1).reshape(size * replicates, *values.shape[1:])

        def whole(values: np.ndarray) -> np.ndarray:  # int64 per cell -> per replicate
            picked = values[cells]
            if not picked.any():  # e.g. diagnostics of clean rows
                return np.zeros((size * replicates, *picked.shape[1:]), dtype=np.int64)
            if products is None:
                return product_of(picked)
            key = np.ascontiguousarray(picked).tobytes() + repr(picked.shape).encode()
            if key not in products:  # e.g. rows and weights of unweighted rows: once
                products[key] = product_of(picked)
            return products[key].copy()

        def product_of(picked: np.ndarray) -> np.ndarray:
            if float(np.abs(picked).max()) * mass < 2.0**53:
                return weigh(picked).astype(np.int64)
            exact = np.zeros((size, weights.shape[1], *picked.shape[1:]), dtype=object)
            exact[groups, buckets] = picked  # pragma: no cover (counts beyond 2**53 / mass)
            product = np.einsum("gb...,br->gr...", exact, weights.T.astype(object))
            return product.reshape((size * replicates, *picked.shape[1:])).astype(np.int64)

        for name, spec in self.specs.items():
            mine, theirs = out._entries[name], self._entries[name]
            if spec.kind == "sum":
                mine.ones += whole(theirs.ones)
                if len(theirs.sums):
                    _replicated_sums(mine.sums, theirs.sums, cells, groups, size, weigh)
            elif spec.kind == "count":
                mine += whole(theirs)
            elif spec.kind == "counts":
                if theirs.shape[1]:
                    out._entries[name] = whole(theirs)
            else:
                out._widen_sums(name, len(theirs))
                for position, per_group in enumerate(theirs):
                    _replicated_sums(mine[position], per_group, cells, groups, size, weigh)
        return out

    def rows_beyond(self, size: int) -> bool:
        """Whether a group from ``size`` on has counted a row (its whole entries: every
        metric's state counts its rows so)."""
        for name, spec in self.specs.items():
            entry = self._entries[name]
            whole = entry.ones if spec.kind == "sum" else entry
            if spec.kind in ("sum", "count", "counts") and whole[size:].any():
                return True
        return False

    def merge(self, other: GroupedState, mapping: np.ndarray | None = None) -> GroupedState:
        """Add ``other``'s group ``i`` into group ``mapping[i]`` (or ``i``); exact."""
        self._settle()
        other._settle()
        if mapping is None:
            return self._merge_same(other)
        mapping = np.asarray(mapping, dtype=np.int64)
        if other.size:
            self._grow_groups(int(mapping.max()) + 1)
        # ``mapping`` may name more codes than ``other`` holds (an index shared with threads
        # that numbered more groups since): its groups are the first ``size``
        size = min(other.size, mapping.shape[0])
        codes = mapping[:size]
        if other.size > size and other.rows_beyond(size):
            raise StateError(f"merge: groups {size} and beyond have rows but no code to go to")
        for name, spec in self.specs.items():
            mine, theirs = self._entries[name], other._entries[name]
            if spec.kind == "sum":
                mine.sums.merge(theirs.sums, mapping[: len(theirs.sums)])
                _add_at(mine.ones, codes, theirs.ones[:size])
            elif spec.kind == "count":
                _add_at(mine, codes, theirs[:size])
            elif spec.kind == "counts":
                mine = self._widen(name, theirs.shape[1])
                _add_at(mine, codes, _pad(theirs[:size], (size, mine.shape[1])))
            else:
                self._widen_sums(name, len(theirs))
                for position, per_group in enumerate(theirs):
                    mine[position].merge(per_group, mapping[: len(per_group)])
        return self


#: the share of a chunk's (group, bucket) cells holding rows from which `GroupedState.replicated`
#: multiplies them as a matrix (BLAS: faster per cell than `weigh_cells`, which only sees the
#: cells there are); the same bits either way
_DENSE_SHARE = 0.25

#: bits of a slice of `_replicated_sums`: a slice's value over its scale is an integer below
#: 2**38; a replicate's weights add up to far less than 2**15, so its products stay below 2**53
_SLICE_BITS = 38


def _replicated_sums(
    out: GroupedExactSum,
    sums: GroupedExactSum,
    cells: np.ndarray,
    groups: np.ndarray,
    size: int,
    weigh: Callable[[np.ndarray], np.ndarray],
) -> None:
    """`GroupedState.replicated` of one exact sum per cell: each cell's correctly rounded sum,
    in slices that multiply exactly, added exactly per replicate."""
    if not len(sums):
        return
    ones = np.ones(cells.shape[0], dtype=np.int64)  # the cells' sums only (0 beyond them)
    values = np.frombuffer(
        sums._sums.ratios(ones, np.ascontiguousarray(cells, dtype=np.int64)), np.float64
    )
    finite = np.isfinite(values)
    special = None
    if not finite.all():  # inf or NaN in a cell: a replicate drawing it gets it
        masks = np.stack([np.isnan(values), np.isposinf(values), np.isneginf(values)], axis=1)
        nan, pos, neg = (weigh(masks) > 0).T
        special = np.where(nan | (pos & neg), np.nan, np.where(pos, np.inf, -np.inf))
        special[~(nan | pos | neg)] = 0.0
        values = np.where(finite, values, 0.0)
    top = np.zeros(size)
    np.maximum.at(top, groups, np.abs(values))
    exponent = np.frexp(top)[1][groups]  # |value| < 2**exponent in each cell's group
    parts = []
    rest = values
    for slice_ in range(3):
        scale = np.ldexp(1.0, np.maximum(exponent - _SLICE_BITS * (slice_ + 1), -1074))
        part = np.trunc(rest / scale) * scale  # toward zero: never beyond the value
        rest = rest - part  # exact: the value's bits below the scale
        parts.append(part)
        if not rest.any():  # every bit taken (e.g. cells within 2**23 of their group's
            break  # largest, usually): the slices left are zeros, adding nothing
    weighed = weigh(np.stack(parts, axis=1))  # (G * R, slices): integers times the scales
    if special is not None:
        hit = special != 0
        weighed[hit] = 0.0
        weighed[hit, 0] = special[hit]
    codes = np.arange(weighed.shape[0], dtype=np.int64)
    out.add(weighed.T.reshape(-1), np.tile(codes, weighed.shape[1]))


@dataclass
class _Sum:
    """A grouped sum entry: exact sums of floats per group, plus whole units per group (rows
    of `ROWS`, bools) counted as int64 (a bincount instead of an exact sum of ones)."""

    sums: GroupedExactSum
    ones: np.ndarray


def _as_units(ones: np.ndarray) -> Any:
    """Whole counts per group as a `GroupSums` (each count exactly, as a float64 < 2**53 or
    in parts)."""
    out = GroupedExactSum()
    codes = np.arange(len(ones), dtype=np.int64)
    rest = ones.copy()
    while rest.any():  # counts >= 2**53 (never in practice) in exact float64 parts
        part = np.minimum(rest, 1 << 52)
        out.add(part.astype(np.float64), codes)
        rest -= part
    return out._sums


def _is_zero(total: Any) -> bool:
    if type(total) is np.ndarray and total is _ZERO_COUNTS.get(total.shape[0]):
        return True
    if isinstance(total, ExactSum):
        return total == ExactSum()
    if isinstance(total, GroupedExactSum):
        return not len(total)
    return not np.any(total)
