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
from .._tensors import as_numpy, is_array_object

__all__ = ["IdRows", "as_ids"]


def as_ids(sample_ids: Any, rows: int) -> np.ndarray:
    """``sample_ids`` as a 1-D int64 or str array of ``rows`` ids (one clear error otherwise)."""
    if isinstance(sample_ids, (list, tuple)) or not is_array_object(sample_ids):
        ids = np.asarray(sample_ids)
    else:
        ids = as_numpy(sample_ids, "sample_ids")
    if ids.ndim != 1 or ids.shape[0] != rows:
        raise InvalidInputError.bad_argument(
            "sample_ids", f"must be one id per row (shape ({rows},))", f"shape {ids.shape}"
        )
    if ids.dtype.kind in "iu":
        if ids.dtype.kind == "u" and ids.size and int(ids.max()) > np.iinfo(np.int64).max:
            raise InvalidInputError.bad_argument("sample_ids", "must fit in int64", int(ids.max()))
        return ids.astype(np.int64, copy=True)
    if ids.dtype.kind in "US":
        return ids.astype(str)
    raise InvalidInputError.bad_argument(
        "sample_ids", "must be integers or strings", f"dtype {ids.dtype}"
    )


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
                f"dtype {ids.dtype}",
            )
        keep = np.zeros(ids.shape[0], dtype=bool)
        keep[np.unique(ids, return_index=True)[1]] = True
        for level in self.levels:
            keep &= ~_contains(level, ids)
        return keep

    def add(
        self, ids: np.ndarray, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> None:
        """Record counted rows (``ids`` new and distinct: from `new_rows`)."""
        if not ids.size:
            return
        self.local.append((ids, label, pred, weight))
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
