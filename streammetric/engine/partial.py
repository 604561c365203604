"""`Partial`: the metric states of some units, per group, with exact merge and (de)serialisation."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from .._arrow import as_numpy, from_numpy
from .._exceptions import InvalidInputError, StateError
from .._json import Strings, Table
from .._kernels import KeyCodes
from .._keys import canonical_key
from ..functional._validation import as_sample_weight
from ..io import Batch, ResolvedColumns, Unit
from ..metrics import EvalMetric
from ..metrics._inputs import as_pairs
from ..metrics.base import STATE_VERSION, _num_rows
from ..metrics.batch import BatchStats
from ..metrics.state import (
    GroupedState,
    State,
    Terms,
    add_rows,
    check_column,
    column_items,
    dump_entry,
)
from .result import Result, json_value

__all__ = ["CellIndex", "GroupKey", "Partial", "RowTally", "locate_error"]

GroupKey = tuple[Any, ...]


class Partial:
    """The grouped state of an evaluation: rows seen, rows dropped, and each requested metric's
    state for every group key (`GroupedState`: one accumulator per entry over all groups, no
    metric object per group). The one grouped-state type of the engine, checkpoints, ``watch``
    and the live exporters.

    ``unit_key`` names the unit of work a partial was computed from (``None`` for a merged
    total). Group codes ``0 .. len(keys) - 1`` number the keys in the order they were first
    seen; results and checkpoints list the groups sorted by key, so the numbering never shows.
    """

    def __init__(
        self,
        new_metrics: Callable[[], EvalMetric],
        *,
        unit_key: str | None = None,
        index: GroupIndex | CellIndex | None = None,
        template: EvalMetric | None = None,
    ) -> None:
        self._new = new_metrics
        self.unit_key = unit_key
        #: never updated (it may be shared by the partials of a run): its leaves say what the
        #: state is and compute each batch's terms
        self.template = template if template is not None else new_metrics()
        self.leaves: list[EvalMetric] = _leaves(self.template)
        self.states = [_grouped(leaf) for leaf in self.leaves]
        #: the group keys' codes, shared by the partials of one run (then merging them is
        #: adding arrays, no key looked up)
        self.index: GroupIndex | CellIndex = index if index is not None else GroupIndex()
        self._rows = np.zeros(0, dtype=np.int64)  # rows per group code
        self.rows = 0
        self.invalid_rows = 0

    def clear(self) -> bool:
        """Back to an empty partial of the same run (the next unit's), keeping the memory of
        its states (`GroupedState.clear`); False, nothing changed, if a metric keeps one
        object per group (those are not reused)."""
        if any(isinstance(state, _ObjectStates) for state in self.states):
            return False
        for state in self.states:
            assert isinstance(state, GroupedState)
            state.clear()
        self._rows[:] = 0  # (counted in every unit: written, not the zero page)
        self.rows = self.invalid_rows = 0
        self.unit_key = None
        return True

    @property
    def keys(self) -> list[GroupKey]:
        """The key of each code of the index (some may have no rows in this partial)."""
        return self.index.keys

    # -- codes ---------------------------------------------------------------------------------
    def codes_of(self, keys: Sequence[GroupKey]) -> np.ndarray:
        """The code of each key (new keys get the next codes), as int64."""
        return self._grown(self.index.codes_of(keys))

    def codes_of_values(self, values: pa.Array) -> np.ndarray:
        """The code of each one-column key ``(value,)`` (`GroupIndex.codes_of_values`)."""
        return self._grown(self.index.codes_of_values(values))

    def _codes_of_loaded(self, keys: list[GroupKey]) -> np.ndarray:
        """`codes_of` of keys loaded from JSON: keys of one string or one int each as a column
        (`codes_of_values`: the C table, no dict of tuples), others as they are."""
        if keys and not set(map(len, keys)) - {1}:
            try:
                values = pa.array([key[0] for key in keys])
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                values = None
            if values is not None and (
                pa.types.is_string(values.type) or pa.types.is_int64(values.type)
            ):
                return self.codes_of_values(values)
        return self.codes_of(keys)

    def _grown(self, out: np.ndarray) -> np.ndarray:
        """``out``, after making room in the rows per group for every code of the index."""
        size = self.index.size
        if size > self._rows.shape[0]:
            grown = np.zeros(size, dtype=np.int64)
            grown[: self._rows.shape[0]] = self._rows
            self._rows = grown
        return out

    def present(self) -> np.ndarray:
        """The codes of the groups with rows in this partial."""
        return np.flatnonzero(self._rows)

    @property
    def group_rows(self) -> dict[GroupKey, int]:
        """Rows counted per group key."""
        keys, rows = self.keys, self._rows
        return {keys[code]: int(rows[code]) for code in self.present().tolist()}

    def sorted_codes(self) -> list[int]:
        """The group codes in key order (as results and checkpoints list them)."""
        return self._sorted_order().tolist()

    def _sorted_order(self) -> np.ndarray:
        """`sorted_codes` as an int64 array."""
        order = self.index.key_order()
        if order is not None:  # one string or int per key: sorted by the C table or NumPy
            rows = self._rows
            order = order[order < rows.shape[0]]
            return order[rows[order] > 0]
        return sorted_by_key(self.keys, self.present())

    # -- adding ---------------------------------------------------------------------------------
    def add(
        self,
        labels: np.ndarray,
        preds: np.ndarray,
        weights: np.ndarray | None,
        codes: np.ndarray | int,
        terms: Sequence[Terms | None] | None = None,
        tally: RowTally | None = None,
    ) -> None:
        """Fold a batch into its rows' groups: ``codes`` from `codes_of`, one per row, or one
        code for every row. ``terms``: each leaf's `row_terms` of the batch when already
        computed; a leaf whose state is not a sum over rows (its terms None) is updated group
        by group. ``tally``: the rows are counted there (in the arrays that count every row)
        when it is closed, with the other batches' rows, rather than now."""
        count = _num_rows(labels, preds) if isinstance(codes, int) else int(codes.shape[0])
        if not count:
            return
        num_groups = self._rows.shape[0]
        if terms is None:
            terms = self.row_terms(labels, preds, weights)
        counted = [self._rows]  # the arrays that count every row: in one pass, at the end
        for leaf, state, leaf_terms in zip(self.leaves, self.states, terms, strict=True):
            if isinstance(state, _ObjectStates):
                state.add(leaf, labels, preds, weights, codes)
            elif isinstance(codes, int):
                assert leaf_terms is not None
                state.add_all(leaf_terms, count, codes)
            else:
                assert leaf_terms is not None
                state.add(leaf_terms, codes, num_groups, counted)
        if isinstance(codes, int):
            self._rows[codes] += count
        elif tally is not None:
            tally.add(tuple(counted), codes)
        else:
            add_rows(tuple(counted), codes)
        self.rows += count

    def batch_stats(
        self, labels: np.ndarray, preds: np.ndarray, weights: np.ndarray | None
    ) -> BatchStats:
        """The batch as the leaves read it: its statistics computed once for all of them."""
        return BatchStats.of(labels, preds, weights, self.leaves)

    def row_terms(
        self,
        labels: np.ndarray,
        preds: np.ndarray,
        weights: np.ndarray | None,
        batch: BatchStats | None = None,
    ) -> list[Terms | None]:
        """Each leaf's `row_terms` of a batch (None for a leaf updated group by group); the
        leaves share the batch's statistics (one `BatchStats`: ``batch``, if the caller has
        made it for these arrays)."""
        if batch is None:
            batch = self.batch_stats(labels, preds, weights)
        out: list[Terms | None] = []
        refused: list[InvalidInputError] = []
        for leaf, state in zip(self.leaves, self.states, strict=True):
            try:
                out.append(None if isinstance(state, _ObjectStates) else leaf.batch_terms(batch))
            except InvalidInputError as exc:  # the other leaves may refuse an earlier row
                refused.append(exc)
        if refused:  # the first bad row of the batch, whichever metric found it
            raise min(refused, key=_row_order)
        return out

    def update(
        self, key: GroupKey, labels: np.ndarray, preds: np.ndarray, weights: np.ndarray | None
    ) -> None:
        """Fold a batch of one group's rows."""
        code = int(self.codes_of([key])[0])
        for label, pred, weight in as_pairs(labels, preds, weights):
            self.add(label, pred, weight, code)

    def invalid_mask(self, batch: BatchStats) -> np.ndarray | None:
        """Rows any of the metrics would reject (so every metric sees the same clean rows);
        the statistics this computes stay in ``batch`` for `row_terms`."""
        return self.template._batch_invalid_rows(batch)

    def merge(self, other: Partial, mapping: np.ndarray | None = None) -> Partial:
        """Add ``other``'s states into this one, exactly (``other`` is left as it was):
        ``other``'s code ``i`` into code ``mapping[i]`` (codes of this partial's index), or
        into the code of the same key."""
        size = other._rows.shape[0]
        if mapping is None and other.index is self.index:  # the same codes
            self.codes_of([])  # rows for every code of the index
            self._rows[:size] += other._rows
        else:  # another run's or process's codes (its keys are canonical: loaded from JSON)
            if mapping is None:  # one string or int each: by column, no tuple each
                column = other.index.key_column(size)
                if column is None or isinstance(self.index, CellIndex):
                    mapping = self.codes_of(other.keys[:size])
                else:
                    mapping = self.codes_of_values(column)
            else:
                mapping = self._grown(mapping[:size])
            np.add.at(self._rows, mapping, other._rows)
        for mine, theirs in zip(self.states, other.states, strict=True):
            mine.merge(theirs, mapping)  # type: ignore[arg-type]
        self.rows += other.rows
        self.invalid_rows += other.invalid_rows
        return self

    # -- reading ---------------------------------------------------------------------------------
    def metric_of(self, states: Sequence[State]) -> EvalMetric:
        """A fresh metric object (the requested composite) holding ``states`` (one per leaf)."""
        metric = self._new()
        for leaf, state in zip(_leaves(metric), states, strict=True):
            leaf._local = state
        return metric

    def group_metric(self, code: int) -> EvalMetric:
        """Group ``code``'s metric object."""
        return self.metric_of([state.state(code) for state in self.states])

    @property
    def groups(self) -> dict[GroupKey, EvalMetric]:
        """The metric object of each group key, in key order (one object per group: for
        exporters and tests; results and checkpoints read the states directly)."""
        return {self.keys[code]: self.group_metric(code) for code in self.sorted_codes()}

    def overall(self) -> EvalMetric:
        """All groups merged (exactly) into one metric object."""
        return self.metric_of([state.total() for state in self.states])

    def value_columns(self, codes: np.ndarray) -> list[tuple[str, list[Any]]]:
        """Each metric value's name with its values in the groups ``codes`` (int64, in that
        order): floats, or arrays for per-class values and matrices. Every group at once where
        the metric can (`EvalMetric.group_values`), else group by group; no metric object."""
        out: list[tuple[str, list[Any]]] = []
        for leaf, state in zip(self.leaves, self.states, strict=True):
            values = None
            if isinstance(state, GroupedState):
                state.reserve(self.index.size)  # the groups without rows here: fresh
                values = leaf.group_values(state)
            if values is not None:
                out += ((str(name), column[codes].tolist()) for name, column in values.items())
                continue
            names = [str(name) for name, _ in leaf.name_values(leaf._fresh_state())]
            like = leaf.name_values(state.total())  # the run's classes, for every group
            per_group = [leaf.name_values(state.state(code), like) for code in codes.tolist()]
            out += ((name, [pairs[i][1] for pairs in per_group]) for i, name in enumerate(names))
        return out

    def diagnostic_columns(self, codes: np.ndarray) -> list[tuple[str, dict[str, list[int]]]]:
        """The diagnostic counts of each metric that has them (``diagnostics()``: the
        cross-entropy family) in the groups ``codes``: (metric name, kind -> count per group)."""
        out: list[tuple[str, dict[str, list[int]]]] = []
        for leaf, state in zip(self.leaves, self.states, strict=True):
            diagnostics = getattr(leaf, "diagnostics", None)
            if not callable(diagnostics):
                continue
            if isinstance(state, GroupedState) and hasattr(leaf, "group_diagnostics"):
                state.reserve(self.index.size)
                columns = leaf.group_diagnostics(state)
                out.append((leaf.name, {k: c[codes].tolist() for k, c in columns.items()}))
                continue
            per_group = []
            for code in codes.tolist():  # (a metric without the shortcut: an object each)
                one: Any = copy.deepcopy(leaf)
                one._local = state.state(code)
                per_group.append(one.diagnostics())
            kinds = list(per_group[0]) if per_group else list(diagnostics())
            out.append((leaf.name, {k: [int(d[k]) for d in per_group] for k in kinds}))
        return out

    def result(self, notes: list[str], *, grouped: bool, by: tuple[str, ...] = ()) -> Result:
        """The `Result`: ``notes`` (e.g. about the columns), then why values are inf or NaN or
        not exact, condensed over the groups (`streammetric.engine.notes`)."""
        from .notes import condense

        overall = self.overall()
        groups = None
        table = None
        noted: dict[GroupKey, EvalMetric] = {}
        if grouped:
            order = self._sorted_order()
            codes = order.tolist()
            names: list[str] = []
            columns: list[np.ndarray] = []  # each value of every group (in key order)
            objects: list[dict[str, Any]] | None = None  # or, if a leaf has none, each group's
            flags = np.zeros(self._rows.shape[0], dtype=bool)
            for leaf, state in zip(self.leaves, self.states, strict=True):
                values = leaf.group_values(state) if isinstance(state, GroupedState) else None
                if values is not None:  # every group at once
                    assert isinstance(state, GroupedState)
                    flags[: state.size] |= leaf.group_notes(state, values)
                    names += map(str, values)
                    columns += (column[order] for column in values.values())
                    continue
                objects = _with_columns(objects, names, columns, len(codes))  # the values so far
                names, columns = [], []
                like = leaf.name_values(state.total())  # the run's classes, for every group
                per_class = _class_columns(leaf, state, like)
                if per_class is not None:  # each group's per-class values at once
                    for name, array in per_class.items():
                        for out, row in zip(objects, array[order], strict=True):
                            out[name] = json_value(row)
                    continue
                for out, code in zip(objects, codes, strict=True):  # group by group
                    one = state.state(code)
                    _add_values(out, leaf.name_values(one, like))
                    flags[code] |= leaf.may_note(one)
            rows = self._rows[order]
            if objects is None and len(set(names)) == len(names):  # by column: a Table
                key_columns: list[Any] = []
                ints = self.index.int_keys() if len(by) == 1 else None
                column = self.index.key_values(order) if len(by) == 1 and ints is None else None
                if ints is not None:  # one int column: its values, no Python object each
                    key_columns.append(ints[order])
                elif column is not None:  # one string column: no tuple each
                    key_columns.append(column)
                else:
                    in_order = list(map(self.keys.__getitem__, codes))  # (zip(*keys): 5x slower)
                    key_columns += (list(map(itemgetter(i), in_order)) for i in range(len(by)))
                shape = {
                    "key": {name: i for i, name in enumerate(by)},
                    "rows": len(by),
                    "metrics": {name: len(by) + 1 + j for j, name in enumerate(names)},
                }
                table = Table(shape, [*key_columns, rows, *columns])
            else:
                per_group = _with_columns(objects, names, columns, len(codes))
                keys = self.keys
                groups = [
                    {"key": dict(zip(by, keys[code], strict=True)), "rows": count, "metrics": out}
                    for code, count, out in zip(codes, rows.tolist(), per_group, strict=True)
                ]
            noted = {self.keys[c]: self.group_metric(c) for c in order[flags[order]].tolist()}
        lines = condense(overall, noted if grouped else None, by, len(self.present()))
        explained = {leaf.name: leaf.explanation() for leaf in _leaves(overall)}
        return Result(
            self.rows,
            self.invalid_rows,
            _values(overall),
            groups,
            [*notes, *lines],
            self,
            table=table,
            conventions={name: e for name, e in explained.items() if e is not None},
        )

    def to_json(self) -> dict[str, Any]:
        """The state as JSON, by column: the groups' keys (in key order) and rows, and for each
        metric (leaf) each state entry's list of the groups' values, each as the metric's
        ``state_dict`` writes that entry (no metric object per group)."""
        order = self._sorted_order()
        rows = self._rows[order]  # (`_sorted_order` lists codes with rows only)
        values = self.index.key_values(order)  # one int or string each: no tuple each
        if values is None:
            keys = self.keys
            key_lists = [list(keys[code]) for code in order.tolist()]
        else:
            listed = values if isinstance(values, list) else values.tolist()
            key_lists = [[value] for value in listed]
        return {
            "rows": self.rows,
            "invalid_rows": self.invalid_rows,
            "state_version": STATE_VERSION,
            "keys": key_lists,
            "group_rows": rows.tolist(),
            "states": [
                state.columns(order)
                if isinstance(state, GroupedState)
                else _object_columns(leaf, state, order.tolist())
                for leaf, state in zip(self.leaves, self.states, strict=True)
            ],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """Load `to_json` output into this (empty) partial. Every field is checked before
        anything is loaded: row counts are ints >= 0, the groups' rows add up to ``rows``, each
        group key comes once, and each group's state passes the checks of
        `EvalMetric.load_state_dict`; else a `StateError` names the field (e.g.
        ``states[0][3].num_inst``) and nothing changes. A partial written group by group
        (``groups``: [key, rows, state_dict], before the states were written by column) is
        read too."""
        if not isinstance(data, dict):
            raise StateError.bad_field("", "must be {rows, invalid_rows, keys, ...}", data)
        if "groups" not in data:
            self._load_columns(data)
            return
        rows = _count(data.get("rows"), "rows")
        invalid_rows = _count(data.get("invalid_rows"), "invalid_rows")
        groups = data.get("groups")
        if not isinstance(groups, list):
            raise StateError.bad_field("groups", "must be a list of [key, rows, state]", groups)
        staged: dict[GroupKey, tuple[int, EvalMetric]] = {}
        for index, item in enumerate(groups):
            field = f"groups[{index}]"
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], list)):
                raise StateError.bad_field(field, "must be [key, rows, state]", item)
            key_list, group_rows, state = item
            key = _new_key(key_list, staged, field)
            metric = self._new()
            try:
                metric._staged_load(state)()
            except StateError as exc:
                raise exc.within(f"{field}.state", what="`partial`") from None
            staged[key] = (_count(group_rows, f"{field}.rows"), metric)
        total = sum(group_rows for group_rows, _ in staged.values())
        if total != rows:
            raise StateError.bad_field(
                "rows", f"must be the sum of the groups' rows ({total:,})", rows
            )
        codes = self.codes_of(list(staged))
        for code, (group_rows, metric) in zip(codes.tolist(), staged.values(), strict=True):
            for leaf, state in zip(_leaves(metric), self.states, strict=True):
                state.set_state(code, leaf._global_state())
            self._rows[code] += group_rows
        self.rows += rows
        self.invalid_rows += invalid_rows

    def _load_columns(self, data: dict[str, Any]) -> None:
        """`load_json` of the state by column (`to_json`)."""
        rows = _count(data.get("rows"), "rows")
        invalid_rows = _count(data.get("invalid_rows"), "invalid_rows")
        version = data.get("state_version")
        if type(version) is not int or version != STATE_VERSION:
            raise StateError.bad_field(
                "state_version", f"must be {STATE_VERSION} (a state of another version)", version
            )
        keys, group_rows, states = data.get("keys"), data.get("group_rows"), data.get("states")
        if not isinstance(keys, list):
            raise StateError.bad_field("keys", "must be a list of group keys (lists)", keys)
        if not isinstance(group_rows, list) or len(group_rows) != len(keys):
            rule = f"must be a list of {len(keys):,} row counts, one per key"
            raise StateError.bad_field("group_rows", rule, group_rows)
        if not isinstance(states, list) or len(states) != len(self.leaves):
            rule = f"must be a list of {len(self.leaves)} states, one per metric"
            raise StateError.bad_field("states", rule, states)
        staged_keys = _plain_keys(keys, group_rows)
        if staged_keys is None:  # each key made canonical and checked alone
            staged_keys = {}
            for index, key_list in enumerate(keys):
                if not isinstance(key_list, list):
                    rule = "must be a list of scalars"
                    raise StateError.bad_field(f"keys[{index}]", rule, key_list)
                key = _new_key(key_list, staged_keys, f"keys[{index}]")
                staged_keys[key] = _count(group_rows[index], f"group_rows[{index}]")
        total = sum(staged_keys.values())
        if total != rows:
            raise StateError.bad_field(
                "rows", f"must be the sum of the groups' rows ({total:,})", rows
            )
        staged = [
            _leaf_columns(leaf, state, columns, len(keys), f"states[{i}]")
            for i, (leaf, state, columns) in enumerate(
                zip(self.leaves, self.states, states, strict=True)
            )
        ]
        codes = self._codes_of_loaded(list(staged_keys))
        for install in staged:
            install(codes)
        np.add.at(self._rows, codes, list(staged_keys.values()))
        self.rows += rows
        self.invalid_rows += invalid_rows


class GroupIndex:
    """Group keys numbered ``0, 1, ...`` in the order they are first seen, shared by the
    threads of a run (new keys are numbered under a lock).

    Keys that are one int64 or one string are also held by a C table (`KeyCodes`), which
    numbers a column's values (`codes_of_column`, `codes_of_values`) with no Python object per
    value; keys of any other kind go through a Python dict (`codes_of`). Both follow the one
    list `keys`: each catches up with the keys the other numbered (under the lock) before it
    numbers more, so a key has one code whichever way it came. The keys the C table numbers
    become Python tuples only when `keys` is read (a result with one key column takes them
    from the table as a column instead: `key_values`). The first key the C table cannot hold
    (a float, a null, two columns, an int beyond int64, ...) retires it for good: then every
    key goes through the dict."""

    def __init__(self) -> None:
        self._keys: list[GroupKey] = []  # of codes 0, 1, ... (the C table may hold more)
        self._codes: dict[GroupKey, int] = {}  # the keys ``keys[:len(_codes)]``
        self._lock = threading.Lock()
        #: every key (one int64 or one string each), or None once a key is not
        self._table: KeyCodes | None = KeyCodes()

    @property
    def keys(self) -> list[GroupKey]:
        """The key of each code."""
        table = self._table
        if table is not None and table.size > len(self._keys):
            with self._lock:
                return self._made()
        return self._keys

    def _made(self) -> list[GroupKey]:
        """`keys`, the lock held: the C table's newer keys made Python tuples."""
        keys, table = self._keys, self._table
        if table is not None and table.size > len(keys):
            keys.extend(table.keys(len(keys), table.size))
        return keys

    @property
    def size(self) -> int:
        """The number of keys."""
        table = self._table
        return max(len(self._keys), 0 if table is None else table.size)

    def codes_of(self, keys: Sequence[GroupKey]) -> np.ndarray:
        """The code of each key (new keys get the next codes), as int64."""
        get = self._codes.get
        found = [get(key) for key in keys]  # known keys, without the lock (reads are atomic)
        if None in found:
            with self._lock:
                codes, known = self._codes, self._made()
                for key in known[len(codes) :]:  # the keys the C table numbered since
                    codes[key] = len(codes)
                for position, key in enumerate(keys):
                    if found[position] is None:
                        code = codes.get(key)
                        if code is None:
                            code = codes[key] = len(known)
                            known.append(key)
                        found[position] = code
        return np.array(found, dtype=np.int64)

    def codes_of_values(self, values: pa.Array) -> np.ndarray:
        """``codes_of([(value,) for value in values])`` for an array of strings or integers
        without nulls (the C table's, else Python's)."""
        codes = self.codes_of_column(values)
        if codes is None:
            return self.codes_of([(value,) for value in values.to_pylist()])
        return codes

    def codes_of_column(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
        """The code of each row's key ``(value,)`` of a column of strings or integers without
        nulls (a dictionary array's dictionary looked up, its indices mapped through), looked
        up and numbered by the C table in one call per array (a chunked column's chunks in
        place, not first copied into one); None for any other column, or once the table is
        retired (the caller takes `codes_of`)."""
        if self._table is None:
            return None
        if column.null_count:
            return None
        if pa.types.is_dictionary(column.type):
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            dictionary = column.dictionary
            if dictionary.null_count:
                return None
            codes = self._table_codes([dictionary])
            return None if codes is None else codes[as_numpy(column.indices)]
        return self._table_codes(column.chunks if isinstance(column, pa.ChunkedArray) else [column])

    def _table_codes(self, chunks: Sequence[pa.Array]) -> np.ndarray | None:
        """`codes_of_column` of arrays of values of one type (no nulls), one after another."""
        calls = []
        for values in chunks:
            args = _table_args(values)
            if args is None:
                return None
            calls.append((len(values), args))
        out = np.empty(sum(count for count, _ in calls), dtype=np.int64)
        start = 0
        with self._lock:
            table = self._synced()
            if table is None:
                return None
            for count, args in calls:
                into = out[start : start + count]
                start += count
                try:
                    if len(args) == 1:
                        numbered = table.add_ints(args[0], into)
                    else:
                        numbered = table.add_strings(args[0], args[1], into)
                except ValueError:  # a string that is not UTF-8: Python's path says so
                    return None  # (the chunks before keep their keys: each has one code)
                if numbered is None:  # buffers it cannot read (not expected)
                    return None
        return out

    def _synced(self) -> KeyCodes | None:
        """The C table with every key (the lock held): it numbers the keys `codes_of` added
        since, or is retired if one is not an int64 or a string."""
        table = self._table
        if table is not None and table.size < len(self._keys):
            added = self._keys[table.size :]
            if table.add_keys(added) < len(added):
                self._table = table = None  # for good: keys are never removed
        return table

    def key_values(self, codes: np.ndarray) -> list[Any] | Strings | None:
        """The key value of each code of ``codes`` (int64) when every key is one int or one
        string: a column of them, with no tuple each (strings as `Strings`, with no str each);
        else None."""
        with self._lock:
            table = self._synced()
            if table is None:
                return None
            strings = table.strings_of(codes)
            if strings is not None:
                return Strings(np.frombuffer(strings[0], dtype=np.int64), strings[1])
            return table.values(codes)

    def key_column(self, size: int) -> pa.Array | None:
        """The keys of codes ``0 .. size - 1`` as one column (no tuple each) when every key is
        one int or one string; else None."""
        ints = self.int_keys()
        if ints is not None:
            return pa.array(ints[:size])
        values = self.key_values(np.arange(size, dtype=np.int64))
        if not isinstance(values, Strings):
            return None
        offsets = pa.py_buffer(np.ascontiguousarray(values.offsets, dtype=np.int64))
        return pa.LargeStringArray.from_buffers(size, offsets, pa.py_buffer(values.data))

    def int_keys(self) -> np.ndarray | None:
        """Each code's key value (int64, code order) when every key is one int; else None."""
        with self._lock:
            table = self._synced()
            if table is None or table.strings:
                return None
            values = np.empty(table.size, dtype=np.int64)
            return values if table.ints(values) else None

    def key_order(self) -> np.ndarray | None:
        """Every code, in key order, when each key is one string or each one int (NumPy
        sorts the ints, C the strings by their UTF-8 bytes, which is Python's order of
        strings: by code point); else None."""
        with self._lock:
            table = self._synced()
            if table is None or table.size < 2:
                return None
            if not table.strings:
                values = np.empty(table.size, dtype=np.int64)
                if not table.ints(values):
                    return None
                return np.argsort(values, kind="stable")
            order = np.empty(table.size, dtype=np.int64)
            return order if table.order(order) else None


_INT64_MAX = 2**63 - 1


def _table_args(values: pa.Array) -> tuple[Any, ...] | None:
    """The buffers `KeyCodes` numbers an array of ints or strings from (ints: int64; strings:
    offsets and bytes); None for other arrays, or ints beyond int64."""
    kind = values.type
    if pa.types.is_integer(kind):
        ints = as_numpy(values)
        if ints.dtype != np.int64:
            if ints.dtype == np.uint64 and len(ints) and int(ints.max()) > _INT64_MAX:
                return None  # beyond int64: Python's ints
            ints = ints.astype(np.int64)
        return (ints,)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        width = 8 if pa.types.is_large_string(kind) else 4
        _, offsets, data = values.buffers()
        if offsets is None:  # an empty array
            return (np.zeros(1, dtype=np.int64), b"")
        dtype = np.int64 if width == 8 else np.int32
        where = np.frombuffer(offsets, dtype, len(values) + 1, values.offset * width)
        return (where, b"" if data is None else data)
    return None


class CellIndex:
    """The keys of a run with intervals and groups: ``(*group key, bucket)``, numbered through
    the groups' own `GroupIndex` (``groups``: one string or int column takes its C table) and
    the cells', each cell one int64 value ``group code * buckets + bucket`` looked up in a
    table (int32 code per value, -1 for none; up to `DENSE_CELLS` values, then through a
    `GroupIndex` of the values): no Python object per cell while rows are read. The keys
    themselves are made when read (checkpoints, the results of other engines)."""

    #: cell values the table holds at most (int32 each: 256 MiB), ~65,000 groups of 1,024
    #: buckets; beyond, the cells are numbered by a `GroupIndex` of their values (its C table)
    DENSE_CELLS = 1 << 26

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.groups = GroupIndex()
        self._table: np.ndarray | None = np.full(0, -1, dtype=np.int32)  # value -> code
        self._beyond: GroupIndex | None = None  # numbering by value once the table is full
        self._values = np.zeros(0, dtype=np.int64)  # code -> value
        self._size = 0
        self._keys: list[GroupKey] = []
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    @property
    def keys(self) -> list[GroupKey]:
        """Each code's key ``(*group key, bucket)``."""
        if len(self._keys) < self._size:
            with self._lock:
                groups, buckets = self.groups.keys, self.buckets
                values = self._values[len(self._keys) : self._size].tolist()
                self._keys.extend((*groups[v // buckets], v % buckets) for v in values)
        return self._keys

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Each code's group code (in ``groups``) and bucket."""
        values = self._values[: self._size]
        return values // self.buckets, values % self.buckets

    def codes_of(self, keys: Sequence[GroupKey]) -> np.ndarray:
        """The code of each key ``(*group key, bucket)`` (new keys get the next codes)."""
        if not keys:
            return np.zeros(0, dtype=np.int64)
        groups = self.groups.codes_of([key[:-1] for key in keys])
        buckets = np.array([key[-1] for key in keys], dtype=np.int64)
        return self.codes_of_cells(groups, buckets)

    def codes_of_cells(self, groups: np.ndarray, buckets: np.ndarray) -> np.ndarray:
        """The code of each row's cell: its group's code (in ``groups``) and its bucket."""
        values = groups * self.buckets + buckets
        table = self._table
        if table is None:  # numbered by value: under the lock
            with self._lock:
                return self._add(values)
        codes = np.full(values.shape[0], -1, dtype=np.int64)
        inside = values < table.shape[0]
        codes[inside] = table[values[inside]]
        missing = codes < 0
        if missing.any():
            with self._lock:
                codes[missing] = self._add(values[missing])
        return codes

    def _add(self, values: np.ndarray) -> np.ndarray:
        """Codes of cell values not found without the lock (the lock held)."""
        table = self._table
        if table is not None and int(values.max()) >= table.shape[0]:
            wanted = int(values.max()) + 1
            if wanted > self.DENSE_CELLS:  # number by value from now on
                self._beyond = GroupIndex()
                self._beyond.codes_of([(v,) for v in self._values[: self._size].tolist()])
                self._table = table = None
            else:
                grown = np.full(max(wanted, 2 * table.shape[0]), -1, dtype=np.int32)
                grown = grown[: min(grown.shape[0], self.DENSE_CELLS)]
                grown[: table.shape[0]] = table
                self._table = table = grown
        if table is None:
            assert self._beyond is not None
            codes = self._beyond.codes_of_values(from_numpy(values))
            if self._beyond.size > self._size:  # new cells: their values
                added = self._beyond.keys[self._size :]
                self._append(np.array([v for (v,) in added], dtype=np.int64))
            return codes
        codes = table[values].astype(np.int64)
        new = np.unique(values[codes < 0])
        if new.size:
            table[new] = np.arange(self._size, self._size + new.size, dtype=np.int32)
            self._append(new)
            codes = table[values].astype(np.int64)
        return codes

    def _append(self, values: np.ndarray) -> None:
        end = self._size + values.shape[0]
        if end > self._values.shape[0]:
            grown = np.zeros(max(end, 2 * self._values.shape[0]), dtype=np.int64)
            grown[: self._size] = self._values[: self._size]
            self._values = grown
        self._values[self._size : end] = values
        self._size = end

    def codes_of_values(self, values: pa.Array) -> np.ndarray:  # pragma: no cover - unused
        raise TypeError("a CellIndex numbers (group, bucket) cells: use codes_of_cells")

    def key_order(self) -> np.ndarray | None:
        """Every cell code in key order: by its group's key order (the groups' index's, else
        their keys sorted), then by bucket; no key made for a cell."""
        groups, buckets = self.cells()
        order = self.groups.key_order()
        if order is None:
            order = sorted_by_key(self.groups.keys, np.arange(self.groups.size, dtype=np.int64))
        rank = np.empty(order.shape[0], dtype=np.int64)
        rank[order] = np.arange(order.shape[0], dtype=np.int64)
        return np.lexsort((buckets, rank[groups]))

    def key_column(self, size: int) -> pa.Array | None:
        return None

    def int_keys(self) -> np.ndarray | None:
        return None

    def key_values(self, codes: np.ndarray) -> list[Any] | Strings | None:
        return None


class _ObjectStates:
    """The grouped state of a metric whose state is not a sum over rows (no ``_row_terms``,
    e.g. a `CustomMetric` or `Loss`): one metric object per group, updated with its rows."""

    def __init__(self, leaf: EvalMetric) -> None:
        self.leaf = leaf  # fresh: copies of it are the groups' objects
        self.by_code: dict[int, EvalMetric] = {}

    def _object(self, code: int) -> EvalMetric:
        found = self.by_code.get(code)
        if found is None:
            found = self.by_code[code] = copy.deepcopy(self.leaf)
        return found

    def add(
        self,
        leaf: EvalMetric,
        labels: np.ndarray,
        preds: np.ndarray,
        weights: np.ndarray | None,
        codes: np.ndarray | int,
    ) -> None:
        if isinstance(codes, int):  # the whole batch is one group's (labels may be None: Loss)
            self._object(codes).update(labels, preds, weights)
            return
        order = np.argsort(codes, kind="stable")
        present, starts = np.unique(codes[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        for index, code in enumerate(present.tolist()):
            rows = order[bounds[index] : bounds[index + 1]]
            group_weights = None if weights is None else weights[rows]
            try:
                self._object(code).update(labels[rows], preds[rows], group_weights)
            except InvalidInputError as exc:  # its row among the group's: the batch's row
                raise exc.in_batch(rows) from None

    def state(self, code: int) -> State:
        found = self.by_code.get(code)
        return self.leaf._fresh_state() if found is None else found._global_state()

    def total(self) -> State:
        total = self.leaf._fresh_state()
        for code in sorted(self.by_code):
            total = self.leaf._merged(total, self.by_code[code]._global_state())
        return total

    def set_state(self, code: int, state: State) -> None:
        target = self._object(code)
        target._local = target._merged(target._local, state)

    def merge(self, other: _ObjectStates, mapping: np.ndarray | None) -> _ObjectStates:
        for code, metric in other.by_code.items():
            target = code if mapping is None else int(mapping[code])
            self.set_state(target, metric._global_state())
        return self


class RowTally:
    """The rows of some batches to count into the arrays that count every row (a partial's
    rows per group and each metric's `ROWS` entries: five arrays with ``-m ce -m acc``),
    counted when `close`d: one pass over all the rows into one tally, then the tally added to
    each array, where the rows are many for the groups (a flush's 2^20 rows, `_Pending`). At
    100,000 groups a row is then one scattered increment instead of five: 1.5 against 6.3 ms
    for 2^20 rows and five arrays."""

    def __init__(self) -> None:
        self._batches: list[tuple[tuple[np.ndarray, ...], np.ndarray]] = []

    def add(self, arrays: tuple[np.ndarray, ...], codes: np.ndarray) -> None:
        """Count ``codes``' rows into each of ``arrays`` at `close`."""
        self._batches.append((arrays, codes))

    def close(self) -> None:
        """Count the rows added since the last `close`."""
        batches, self._batches = self._batches, []
        if not batches:
            return
        rows = sum(codes.shape[0] for _, codes in batches)
        arrays = batches[0][0]
        size = arrays[0].shape[0]
        places = [_place(array) for array in arrays]
        if (
            len(arrays) == 1
            or size > 2 * rows  # adding the tally would cost more than the rows
            or any(array.shape[0] != size for array in arrays)
            or any([_place(array) for array in other] != places for other, _ in batches[1:])
        ):
            for arrays, codes in batches:
                add_rows(arrays, codes)
            return
        tally = np.zeros(size, dtype=np.int64)
        for _, codes in batches:
            add_rows(tally, codes)
        for array in arrays:
            array += tally


def _place(array: np.ndarray) -> tuple[int, int]:
    """Where an int64 array's values are: its first value's address and its length (views
    of the same values, made anew for each batch, have the same place)."""
    return array.__array_interface__["data"][0], array.shape[0]


def _plain_keys(keys: list[Any], group_rows: list[Any]) -> dict[GroupKey, int] | None:
    """Loaded keys of strings and ints only (as they are: canonical) with their rows (ints >=
    0), all distinct; else None (then each is checked alone, for the error)."""
    values = itertools.chain.from_iterable(keys)
    if set(map(type, keys)) - {list} or set(map(type, values)) - {str, int}:
        return None
    if set(map(type, group_rows)) - {int} or min(group_rows, default=0) < 0:
        return None
    staged = dict(zip(map(tuple, keys), group_rows, strict=True))
    return staged if len(staged) == len(keys) else None


def _new_key(key_list: list[Any], staged: dict[GroupKey, Any], field: str) -> GroupKey:
    """A loaded group key (plain JSON values: `streammetric.io.grouping`) not in ``staged``."""
    try:
        key = canonical_key(key_list)
        repeated = key in staged
    except TypeError:  # an unhashable key value
        raise StateError.bad_field(field, "must have a key of scalars", key_list) from None
    if repeated:
        raise StateError.bad_field(field, "repeats the key of an earlier group", key_list)
    return key


def _object_columns(leaf: EvalMetric, states: _ObjectStates, codes: list[int]) -> dict[str, Any]:
    """`GroupedState.columns` of a metric that keeps an object per group."""
    kinds = {name: spec.kind for name, spec in leaf.state_specs().items()}
    values = [states.state(code) for code in codes]
    return {name: [dump_entry(kind, one[name]) for one in values] for name, kind in kinds.items()}


def _leaf_columns(
    leaf: EvalMetric,
    state: GroupedState | _ObjectStates,
    columns: Any,
    size: int,
    field: str,
) -> Callable[[np.ndarray], None]:
    """What adds ``size`` groups' states of metric ``leaf``, from its columns (`to_json`), into
    ``state`` at the groups' codes: each group's state checked first as
    `EvalMetric.load_state_dict` checks a window (a `StateError` names the field, e.g.
    ``states[0][3].num_inst``). By column (`GroupedState.staged_columns`) where the metric
    has no rule across its entries; group by group otherwise."""
    if not isinstance(columns, dict):
        raise StateError.bad_field(field, "must be a mapping of state entries", columns)
    for name, column in columns.items():
        check_column(column, size, f"{field}.{name}")

    def group(i: int, items: dict[str, list[Any]]) -> State:
        return leaf._checked_state(
            {name: column[i] for name, column in items.items()}, f"{field}[{i}]"
        )

    if not size:
        return lambda codes: None
    if isinstance(state, GroupedState) and type(leaf)._state_problem is EvalMetric._state_problem:
        first = {name: column_items(column, 1) for name, column in columns.items()}
        group(0, first)  # the entries' names, as a group's state is checked
        return state.staged_columns(columns, field)
    items = {name: column_items(column) for name, column in columns.items()}
    loaded = [group(i, items) for i in range(size)]

    def install(codes: np.ndarray) -> None:
        if isinstance(state, GroupedState):
            state.reserve(int(codes.max(initial=-1)) + 1)  # once, not per group
        for code, one in zip(codes.tolist(), loaded, strict=True):
            state.set_state(code, one)

    return install


def _leaves(metric: EvalMetric) -> list[EvalMetric]:
    children = getattr(metric, "metrics", None)
    return list(children) if children is not None else [metric]


def _grouped(leaf: EvalMetric) -> GroupedState | _ObjectStates:
    return GroupedState(leaf.state_specs()) if leaf.sums_rows() else _ObjectStates(leaf)


def _per_group(names: list[str], columns: list[np.ndarray], count: int) -> list[dict[str, Any]]:
    """Each of ``count`` groups' values by name (plain Python numbers), from the columns of
    every group's values."""
    rows = zip(*(column.tolist() for column in columns), strict=True)
    return [dict(zip(names, row, strict=True)) for row in rows] or [{} for _ in range(count)]


def _row_order(error: InvalidInputError) -> tuple[int, ...]:
    """Where ``error``'s row comes in the batch (an error of no row, the whole batch's, first)."""
    row = error.row
    if row is None:
        return (-1,)
    return tuple(row) if isinstance(row, tuple) else (int(row),)


def _class_columns(
    leaf: EvalMetric, state: Any, like: list[tuple[str, Any]]
) -> dict[str, np.ndarray] | None:
    """Every group's per-class values and matrices of ``leaf`` at once (name -> (groups,
    classes, ...) array with the run's classes: `EvalMetric.group_arrays`), when each of its
    values is one (float64, or int64 counts: every group's are ints then, their state has no
    weighted sums, and they are given as int64 when they are whole below 2**53, else None);
    None otherwise (numbers: group by group)."""
    if not isinstance(state, GroupedState):
        return None
    kinds = [
        isinstance(value, np.ndarray) and value.ndim in (1, 2) and value.dtype in _CLASS_DTYPES
        for _, value in like
    ]
    if not kinds or not all(kinds):
        return None
    arrays = leaf.group_arrays(state, like)
    if arrays is None or [str(n) for n, _ in like] != list(arrays):
        return None
    out = {}
    for (_, value), (name, array) in zip(like, arrays.items(), strict=True):
        if array.ndim != value.ndim + 1:
            return None
        if value.dtype == np.int64:
            whole = np.isfinite(array).all() and (array == np.round(array)).all()
            if not whole or (array.size and np.abs(array).max() >= 2.0**53):
                return None
            array = array.astype(np.int64)
        out[name] = array
    return out


#: the dtypes of the per-class values and matrices `_class_columns` gives
_CLASS_DTYPES = (np.dtype(np.float64), np.dtype(np.int64))


def _with_columns(
    objects: list[dict[str, Any]] | None, names: list[str], columns: list[np.ndarray], count: int
) -> list[dict[str, Any]]:
    """Each group's values by name: ``objects`` (None: none yet) with the values of ``columns``
    (every group's, by ``names``) added after the ones it holds."""
    later = _per_group(names, columns, count)
    if objects is None:
        return later
    for out, more in zip(objects, later, strict=True):
        out.update(more)
    return objects


def _add_values(out: dict[str, Any], pairs: list[tuple[str, Any]]) -> None:
    """Each ``(name, value)`` pair as the result holds it: a float, or a per-class value or
    matrix in its JSON form (`streammetric.engine.result.json_value`)."""
    for name, value in pairs:
        out[str(name)] = json_value(value)


def _count(value: Any, field: str) -> int:
    if type(value) is not int or value < 0:
        raise StateError.bad_field(field, "must be an int >= 0 (a count of rows)", value)
    return value


def sorted_by_key(keys: Sequence[GroupKey], codes: np.ndarray) -> np.ndarray:
    """``codes`` (int64) in the order of their keys (`_sort_key`): compared as they are when
    each position of the keys holds one plain type (str or int) in all of them."""
    listed = codes.tolist()
    if listed:
        width = len(keys[listed[0]])
        kinds = [{type(keys[code][i]) for code in listed} for i in range(width)]
        if all(len(kind) == 1 and kind <= {str, int} for kind in kinds):
            listed.sort(key=keys.__getitem__)
        else:
            listed.sort(key=lambda code: _sort_key(keys[code]))
    return np.array(listed, dtype=np.int64)


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


def _values(metric: EvalMetric) -> dict[str, Any]:
    names, values = metric.get_global()
    if not isinstance(names, list):
        names, values = [names], [values]
    out: dict[str, Any] = {}
    _add_values(out, list(zip(names, values, strict=True)))
    return out


def batch_weights(batch: Batch, columns: ResolvedColumns) -> np.ndarray | None:
    """The sample weights of a batch read from a file (``None``: no weight column), each
    finite and >= 0 (`as_sample_weight`, the metrics' rule); else the error names the file,
    the weight column and the row in the file, as ``eval``'s (`locate_error`): ``"PATH:
    column `w`, row 1003: must be finite and >= 0, got -1.0"``. For readers that keep the
    batches' weights apart from the metrics (``streammetric explain``)."""
    if batch.weights is None:
        return None
    try:
        return as_sample_weight(batch.weights, batch.num_rows)
    except InvalidInputError as exc:
        raise locate_error(exc, batch.unit, columns, batch.source_rows()) from None


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
