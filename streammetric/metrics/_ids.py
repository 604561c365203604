"""Rows counted once per id: what ``update(..., sample_ids=ids)`` keeps (`IdRows`).

A metric updated with ``sample_ids`` counts a row only if its id is new: an id seen before
(since the last ``reset()``, in any window) or earlier in the same batch drops the row before
anything is computed. That is exact within one process. Across processes (the padding that
``torch.utils.data.DistributedSampler`` adds repeats some ids on other ranks) the duplicates are
only known when the ranks compare their ids, in `streammetric.distributed.sync`; a rank whose
id is also a lower rank's then recomputes its state without that row, from the rows it kept.

So a metric updated with ids keeps:

* the ids it counted, sorted (levels of sorted int64 or string arrays, merged as they grow:
  ``O(log n)`` per lookup, ``O(n log n)`` in all): 8 bytes per row for integer ids (a string
  id: 4 bytes per character of the longest id), twice that briefly while two levels merge;
* each counted row as it was given (its label, prediction and weight, copied: the caller may
  reuse its buffers), with its id again: 8 bytes + the row's own bytes (e.g. 1,000 float32
  probabilities and an int64 label: 4,016 bytes), by window (local, past).

That is ``16 + row bytes`` per row, for as long as the metric holds them (until ``reset()``, or
a ``sync``, which releases them). Metrics without ``sample_ids`` keep none of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from .._tensors import as_numpy

__all__ = ["ID_RULE", "IdRows", "as_ids"]


#: what every id must be (`as_ids`)
ID_RULE = "must be integers or strings"


def as_ids(sample_ids: Any, rows: int, *, beyond_int64: bool = False) -> np.ndarray:
    """``sample_ids`` as ``rows`` ids in one canonical array, whatever held them: int64 for
    integers, NumPy unicode (``<U``) for strings. The one conversion of ids, for a metric's
    ``update(..., sample_ids=)`` and for `Bootstrap.update`: an id is the same id (compares and
    hashes the same) from any container.

    Integers: integer arrays and tensors of any width, lists of ints, object arrays of ints
    (which must fit in int64; with ``beyond_int64``, `Bootstrap`'s, uint64 ids above it stay
    uint64, hashed by value). Strings: NumPy unicode arrays, lists and object arrays of
    ``str`` (a pandas Series of strings, pyarrow string arrays), and bytes decoded as UTF-8
    (NumPy bytes arrays, object arrays of ``bytes``, TensorFlow string tensors): ``b"a"`` is
    the id ``"a"``. All ids of a batch are of one kind (all str, all bytes or all integers).
    Refused in one line naming ``sample_ids``: another dtype (floats, bools), a batch of mixed
    kinds or with None / NaN (the row of the first such id), bytes that are not UTF-8, a
    string ending in NUL (NumPy's strings drop it: it would be another string's id).

    >>> as_ids(["a", "b"], 2).tolist(), as_ids(np.array([b"a", b"b"], dtype=object), 2).tolist()
    (['a', 'b'], ['a', 'b'])
    >>> as_ids(np.array([3, 4], dtype=np.uint8), 2).dtype
    dtype('int64')
    """
    ids = as_numpy(sample_ids, "sample_ids", objects=True)
    if isinstance(sample_ids, (list, tuple)) and ids.dtype.kind not in "iu":
        ids = np.array(sample_ids, dtype=object)  # item by item: NumPy made str of 1 and "a"
    if ids.ndim != 1 or ids.shape[0] != rows:
        raise InvalidInputError.bad_argument(
            "sample_ids", f"must be one id per row (shape ({rows},))", f"shape {ids.shape}"
        )
    kind = ids.dtype.kind
    if kind in "iu":
        return _int_ids(ids, beyond_int64)
    if kind not in "USO":
        raise InvalidInputError.bad_argument("sample_ids", ID_RULE, ids.dtype)
    if not rows:  # no id: of no kind (an empty array of strings would be of no Arrow type)
        return np.zeros(0, dtype=np.int64)
    if kind == "U":
        return ids.astype(str, copy=False)  # native byte order
    if kind == "S":
        return _decoded(ids.tolist())
    return _object_ids(ids.tolist(), beyond_int64)


def _int_ids(ids: np.ndarray, beyond_int64: bool) -> np.ndarray:
    """Integer ids as int64 (uint64 above int64: refused, or kept with ``beyond_int64``)."""
    if ids.dtype == np.uint64 and ids.size and int(ids.max()) > np.iinfo(np.int64).max:
        if beyond_int64:
            return ids.copy()
        row = int(np.argmax(ids > np.iinfo(np.int64).max))
        raise InvalidInputError.bad_row("sample_ids", row, "must fit in int64", ids[row])
    return ids.astype(np.int64, copy=True)


_KIND_WORDS = {"int": "an integer", "str": "a string (str)", "bytes": "bytes"}


def _id_kind(item: Any) -> str | None:
    """``"str"``, ``"bytes"`` or ``"int"``: the kinds of ids; None for anything else."""
    if isinstance(item, str):
        return "str"
    if isinstance(item, bytes):
        return "bytes"
    if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
        return "int"
    return None


def _object_ids(items: list[Any], beyond_int64: bool) -> np.ndarray:
    """The ids of an object array's items (`as_ids`), refused at the first bad row."""
    types = set(map(type, items))
    if types <= {str, np.str_}:
        return _strings(items)
    if types <= {bytes, np.bytes_}:
        return _decoded(items)
    kinds = list(map(_id_kind, items))
    first = kinds[0]
    if first is None:
        raise InvalidInputError.bad_row("sample_ids", 0, "must be an integer or a string", items[0])
    if any(kind != first for kind in kinds):
        row = next(i for i, kind in enumerate(kinds) if kind != first)
        rule = f"must be {_KIND_WORDS[first]}, as row 0 is"
        raise InvalidInputError.bad_row("sample_ids", row, rule, items[row])
    try:  # all Python / NumPy integers
        return _int_ids(np.array([int(item) for item in items], dtype=np.int64), False)
    except OverflowError:
        if beyond_int64:
            try:
                return np.array([int(item) for item in items], dtype=np.uint64)
            except OverflowError:
                pass
        row = next(i for i, item in enumerate(items) if not -(1 << 63) <= int(item) < (1 << 63))
        raise InvalidInputError.bad_row(
            "sample_ids", row, "must fit in int64", items[row]
        ) from None


def _strings(items: list[str]) -> np.ndarray:
    """Python strings as a NumPy unicode array: refused if one ends in NUL (NumPy drops it)."""
    ids = np.array(items, dtype=str)
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    cut = np.char.str_len(ids) != lengths  # (np.char: NumPy 1.24 has no np.strings)
    if cut.any():
        row = int(np.argmax(cut))
        raise InvalidInputError.bad_row(
            "sample_ids",
            row,
            "must not end with a NUL character (NumPy's strings drop it)",
            items[row],
        )
    return ids


def _decoded(items: list[bytes]) -> np.ndarray:
    """Bytes ids as the strings of their UTF-8 text (refused at the first that is not)."""
    try:
        return _strings([item.decode("utf-8") for item in items])
    except UnicodeDecodeError:
        for row, item in enumerate(items):
            try:
                item.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInputError.bad_row(
                    "sample_ids", row, "must be UTF-8 text when bytes", item
                ) from None
        raise  # pragma: no cover - one of them failed above


@dataclass
class IdRows:
    """The ids a metric counted, and the rows behind them (see the module docstring)."""

    levels: list[np.ndarray] = field(default_factory=list)  # sorted, disjoint
    #: per window, the counted rows: (ids, labels, preds, weights or None) per update
    local: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = field(
        default_factory=list
    )
    past: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = field(
        default_factory=list
    )

    @property
    def kind(self) -> str | None:
        """``"i"`` (integer ids) or ``"U"`` (strings); None before the first id."""
        return self.levels[0].dtype.kind if self.levels else None

    def new_rows(self, ids: np.ndarray) -> np.ndarray:
        """A mask of the rows to count: ids not seen before, each id's first row in the batch."""
        if self.kind is not None and ids.size and ids.dtype.kind != self.kind:
            raise InvalidInputError.bad_argument(
                "sample_ids",
                f"must be of one kind in every update ({'integers' if self.kind == 'i' else 'strings'} so far)",
                ids.dtype,
            )
        keep = np.zeros(ids.shape[0], dtype=bool)
        keep[np.unique(ids, return_index=True)[1]] = True
        for level in self.levels:
            keep &= ~_contains(level, ids)
        return keep

    def add(
        self,
        ids: np.ndarray,
        label: np.ndarray,
        pred: np.ndarray,
        weight: np.ndarray | None,
        *,
        window: str = "local",
    ) -> None:
        """Record counted rows (``ids`` new and distinct: from `new_rows`) in ``window``
        (``"local"``, or ``"past"``: rows a merged metric had before its local window)."""
        if not ids.size:
            return
        getattr(self, window).append((ids, label, pred, weight))
        self.levels.append(np.sort(ids))
        while len(self.levels) > 1 and self.levels[-1].size >= self.levels[-2].size:
            last = self.levels.pop()
            self.levels[-1] = np.sort(np.concatenate([self.levels[-1], last]), kind="stable")

    def reset_local(self) -> None:
        self.past.extend(self.local)
        self.local = []

    def ids(self) -> np.ndarray:
        """Every counted id (sorted within levels, not overall)."""
        if not self.levels:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self.levels)

    def nbytes(self) -> int:
        """The bytes held: the ids' levels and the rows kept."""
        rows = sum(
            sum(0 if a is None else a.nbytes for a in batch) for batch in [*self.local, *self.past]
        )
        return rows + sum(level.nbytes for level in self.levels)


def _contains(level: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each of ``ids`` is in the sorted array ``level``."""
    if not level.size or not ids.size:
        return np.zeros(ids.shape[0], dtype=bool)
    at = np.searchsorted(level, ids)
    at[at == level.size] = level.size - 1
    return level[at] == ids
