"""Paired comparison of two models' predictions (``streammetric compare``).

Each side (the baseline, the candidate) is evaluated by the local engine as ``eval --ci`` would
evaluate it: every metric's exact state is kept per bucket of rows, the bucket being the top bits
of the row's identity hash (its id with ``--on``; its file and row in single-file mode). A row
of the baseline and its pair in the candidate have the same identity, so they fall into the same
bucket and get the same Poisson weight in every bootstrap replicate (the same seed on both
sides): replicate ``r``'s delta ``candidate_r - baseline_r`` is a paired bootstrap replicate of
the difference, at no cost beyond two evaluations with intervals.

What the result holds, per metric (and per group with ``--by``):

* ``baseline`` and ``candidate``: each side's value over ALL of its own rows, the same bits as
  ``streammetric eval`` of that side (rows without a pair on the other side count in their own
  side's value; ``--strict`` refuses them);
* ``delta``: ``candidate - baseline``;
* ``lower``/``upper``: the percentile interval of the replicate deltas at the ``ci`` level
  (NaN when the delta is NaN: ``inf - inf``, or a side's value NaN);
* ``p_value`` and ``test``: for accuracy and top-k accuracy without sample weights,
  ``"mcnemar-exact"``: McNemar's exact test on the paired rows (`mcnemar_p`: ``b`` rows only the
  baseline gets right, ``c`` rows only the candidate does); for every other metric (and with
  weights) ``"paired-bootstrap"``: `bootstrap_p` of the replicate deltas. The p-value is NaN
  where the delta is not a finite number (NaN, ``inf``, ``-inf``, or no delta: a side without
  the group): an infinite value (a row of probability 0 for its class under cross-entropy) has
  no difference to test, and its replicates' deltas (infinite wherever that row is drawn,
  NaN where both sides' are infinite) are no sample of one. The interval of an infinite delta
  is still the replicates' percentiles (e.g. ``[-0.5, inf]``: the replicates that did not
  draw the row of probability 0).

Pairing (`Pairing`) holds a few numbers per row of the baseline, never predictions, at the
row's place among the rows of its files: its identity hash (8 bytes), whether it was read (1),
whether it has been paired (1), and for each McNemar metric its correctness and its pair's
(2): 12 bytes a row with accuracy; with ``--by`` also its cell (4 bytes, then its group).
Checking that no id repeats sorts a copy of the hashes (8 bytes a row, for the moment of the
check). A candidate row is paired with the baseline row at its own place when their ids
agree (two files of one evaluation set in one order: every row, with no search); only the
others are looked up, among the hashes sorted with their places (16 bytes a row more, made the
first time a row needs it). The two sides are read in one pool of threads (`_run_sides`), the
baseline's units first: a candidate batch paired at its own places needs only the baseline's
rows there, and the others wait for the check of the baseline's ids (`Pairing.seal`), which
runs beside the candidate's first units (8 million rows with accuracy: about 100 MB).
Two ids are told apart by their 64-bit hashes: two different ids of one side with the same
hash (chance about ``n**2 / 2**65``, 2e-6 for 8 million rows) would be reported as a repeated
id.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import mmap
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .._arrow import as_numpy
from .._exceptions import ConfigError, InvalidInputError
from .._keys import canonical_key, canonical_value
from ..functional.resample import check_replicates
from ..io import Unit, same_column_chunks
from ..metrics import EvalMetric
from ..metrics.bootstrap import Resampling, replicate_values
from ..metrics.state import GroupedState, Rowwise
from .intervals import check_resampled, collapse
from .local import HashesOf, Job, JobRun, ObservedRows, run_pool, run_units
from .partial import GroupKey, Partial, _sort_key
from .result import json_value

__all__ = ["Comparison", "Pairing", "bootstrap_p", "compare", "mcnemar_p"]

#: metrics whose rows are right or wrong: McNemar's test applies (without sample weights)
MCNEMAR_METRICS = frozenset({"accuracy", "topkaccuracy"})
MCNEMAR, BOOTSTRAP = "mcnemar-exact", "paired-bootstrap"
_LOG_RERR = math.log1p(1e-7)  # scipy's relative tolerance for "as likely as the observed"


# -- the tests --------------------------------------------------------------------------------


def mcnemar_p(b: int, c: int) -> float:
    """McNemar's exact test of ``b`` and ``c`` discordant pairs: the two-sided binomial test
    of ``min(b, c)`` successes in ``b + c`` trials at probability 1/2, the value of
    ``scipy.stats.binomtest(b, b + c, 0.5).pvalue`` (1.0 when ``b == c``, also 0 and 0).

    The probability of the observed count comes from Loader's saddle-point expansion (as R's
    ``dbinom``: no cancellation of large log-factorials, so it stays exact to ~1e-15 for n in the
    billions), each tail term from the previous one's ratio in log space; terms below e**-60
    of the observed one are left out. As scipy, the other tail holds the counts at most
    ``1 + 1e-7`` times as likely as the observed one.

    >>> mcnemar_p(0, 0), mcnemar_p(3, 3)
    (1.0, 1.0)
    >>> round(mcnemar_p(2, 10), 12)  # scipy.stats.binomtest(2, 12).pvalue
    0.038574218750
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b} and {c}")
    n, k = b + c, min(b, c)
    if 2 * k == n:
        return 1.0
    log_pk = _log_binom_half(k, n)
    # counts above k (towards the mode) as likely as k, within scipy's tolerance: their
    # mirror images in the upper tail count as "as extreme"
    mirror, mirror_level, log_ratio = k, 0.0, 0.0
    while 2 * (mirror + 1) <= n:
        i = mirror + 1
        log_ratio += math.log1p((n - 2 * i + 1) / i)  # log(pmf(i) / pmf(i - 1))
        if log_ratio > _LOG_RERR:
            break
        mirror, mirror_level = i, log_ratio
    tail = _tail_sum(k, n, 0.0) + _tail_sum(mirror, n, mirror_level)
    return min(1.0, math.exp(log_pk) * tail)


#: tail terms computed at once
_BLOCK = 1 << 16


def _tail_sum(k: int, n: int, level: float) -> float:
    """``sum_{j <= k} exp(level) pmf(j) / pmf(k)`` for Binomial(n, 1/2), each term from the
    previous one (``pmf(i - 1) / pmf(i) = i / (n - i + 1)``, summed as logs); the terms below
    ``e**-60`` (whose sum is below ``n e**-60``) are left out."""
    total, j = 0.0, k
    while True:
        count = min(j, _BLOCK)
        if count == 0:
            return total + math.exp(level)
        i = np.arange(j, j - count, -1, dtype=np.float64)
        steps = np.log1p((2 * i - n - 1) / (n - i + 1))  # log(pmf(i - 1) / pmf(i))
        logs = level + np.concatenate(([0.0], np.cumsum(steps)))  # j, j - 1, ..., j - count
        total += float(np.exp(logs[:-1]).sum())
        j, level = j - count, float(logs[-1])
        if level < -60.0:
            return total


def _stirlerr(n: int) -> float:
    """``log(n!) - log(sqrt(2 pi n) (n / e)**n)`` (Loader 2000)."""
    if n <= 15:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - 0.5 * math.log(2 * math.pi)
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    nn = float(n) * n
    if n > 500:
        return (s0 - s1 / nn) / n
    if n > 80:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, mean: float) -> float:
    """``x log(x / mean) + mean - x`` without cancellation (Loader 2000)."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        ej = 2 * x * v
        v *= v
        j = 1
        while True:
            ej *= v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s, j = s1, j + 1
    return x * math.log(x / mean) + mean - x


def _log_binom_half(k: int, n: int) -> float:
    """``log(pmf(k))`` of Binomial(n, 1/2)."""
    if k == 0 or k == n:
        return -n * math.log(2.0)
    mean = n / 2
    lc = _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, mean) - _bd0(n - k, mean)
    lf = math.log(2 * math.pi) + math.log(k) + math.log1p(-k / n)
    return lc - 0.5 * lf


def bootstrap_p(deltas: np.ndarray) -> np.ndarray:
    """The paired-bootstrap p-value of each row of replicate deltas (last axis):
    ``min(1, 2 (1 + min(#(d <= 0), #(d >= 0))) / (R + 1))`` over the R replicates whose delta
    is not NaN (NaN where none is).

    >>> bootstrap_p(np.array([[1.0, 2.0, 3.0], [-1.0, 1.0, np.nan]])).tolist()
    [0.5, 1.0]
    """
    valid = ~np.isnan(deltas)
    below = ((deltas <= 0) & valid).sum(axis=-1)
    above = ((deltas >= 0) & valid).sum(axis=-1)
    count = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(1.0, 2 * (1 + np.minimum(below, above)) / (count + 1))
    return np.where(count > 0, p, np.nan)


# -- pairing rows -----------------------------------------------------------------------------


@dataclass
class _Chunk:
    """Where a run of the baseline's rows came from (to name a row in an error)."""

    start: int  # its first row's place
    path: str
    rows: np.ndarray | int  # each row's file row, or the first one's (rows in a row)


@dataclass
class PairGroups:
    """The candidate's --by groups, for `Pairing.finish` to check each pair's: each candidate
    cell code's group code (``cell_group``), each candidate group code's baseline group code
    (``to_baseline``, -1: a key the baseline does not have), and both sides' group keys."""

    cell_group: np.ndarray
    to_baseline: np.ndarray
    baseline_keys: Sequence[GroupKey]
    candidate_keys: Sequence[GroupKey]

    @classmethod
    def of(
        cls,
        baseline_keys: Sequence[GroupKey],
        candidate_keys: Sequence[GroupKey],
        cell_group: np.ndarray,
    ) -> PairGroups:
        codes = {canonical_key(key): code for code, key in enumerate(baseline_keys)}
        to_baseline = np.array(
            [codes.get(canonical_key(key), -1) for key in candidate_keys] or [-1], dtype=np.int64
        )
        return cls(cell_group, to_baseline, baseline_keys, candidate_keys)


def label_keys(labels: np.ndarray | None, rows: int) -> np.ndarray:
    """One uint64 per row that is equal for equal labels (a class index, a binary label or a
    list of targets; 1 and 1.0 alike), to tell paired rows whose labels differ. Without
    labels, zeros."""
    if labels is None:
        return np.zeros(rows, dtype=np.uint64)
    flat = np.asarray(labels, dtype=np.float64).reshape(rows, -1) + 0.0  # -0.0 as 0.0
    bits = np.ascontiguousarray(flat).view(np.uint64)
    if bits.shape[1] == 1:
        return bits[:, 0].copy()
    key = np.zeros(rows, dtype=np.uint64)
    for column in bits.T:  # FNV-style mixing, wrapping
        key = (key * np.uint64(0x100000001B3)) ^ column
    return key


def _zeros_by_place(shape: int | tuple[int, int], dtype: Any) -> np.ndarray:
    """Zeros for a few numbers per row, written place by place: in memory of ordinary 4 KB
    pages (an anonymous map), not NumPy's, which asks the kernel for transparent huge pages
    for arrays of 4 MB or more. Written in order, such arrays gain nothing from huge pages,
    and where huge pages must first be assembled (a virtual machine, memory in use: the
    benchmark machine) their first write costs far more: 64 MB written for the first time,
    205 ms with them against 25 ms without. (Arrays read at random, as the sorted hashes a
    shuffled candidate's rows are looked up in, keep NumPy's: there huge pages save misses of
    the address cache.)"""
    count = int(np.prod(shape, dtype=np.int64))
    size = count * np.dtype(dtype).itemsize
    if size < (4 << 20):
        return np.zeros(shape, dtype=dtype)
    memory = mmap.mmap(-1, size)  # zero-filled, freed with the last array on it
    return np.frombuffer(memory, dtype=dtype, count=count).reshape(shape)


class _Plan:
    """Each unit's first row's place among all the rows of a plan (units in plan order), when
    every unit's rows are known before it is read (not a stream)."""

    def __init__(self, units: Sequence[Unit]) -> None:
        self.known = all(unit.num_rows is not None for unit in units)
        self.start: dict[str, int] = {}
        self.rows = 0
        self._units: list[Unit] = []
        if self.known:
            for unit in units:
                self.start[unit.key] = self.rows
                self._units.append(unit)
                self.rows += int(unit.num_rows or 0)
        self._starts = [self.start[unit.key] for unit in self._units]
        #: the unit whose rows begin at each place (units with rows)
        self.unit_at = {self.start[u.key]: u for u in self._units if u.num_rows}

    def places(self, rows: ObservedRows) -> np.ndarray:
        return self.start[rows.unit.key] + (rows.source_rows() - rows.unit.row_offset)

    def first_place(self, rows: ObservedRows) -> int | None:
        """The first row's place when the rows are in a row (then the others follow it),
        else None."""
        if rows.first_row is None:
            return None
        return self.start[rows.unit.key] + rows.first_row - rows.unit.row_offset

    def locate(self, place: int) -> tuple[str, int]:
        unit = self._units[bisect.bisect_right(self._starts, place) - 1]
        return unit.display_path, unit.row_offset + place - self.start[unit.key]


class Pairing:
    """The rows of the two sides matched by identity hash, and McNemar's discordant counts.

    `observe_baseline` is shown each baseline batch (any thread); `seal` checks the held rows
    (a repeated id is an error); `observe_candidate` pairs each candidate batch (any thread,
    also while the baseline is still read: see below), noting for each baseline row whether it
    is paired and the correctness of its pair; `finish` counts, per baseline group, the paired
    rows, ``b`` (baseline right, candidate wrong) and ``c`` (the reverse) for each McNemar
    leaf, and the unpaired rows. With ``strict``, an unpaired row is an error naming file,
    column and row.

    The baseline's rows are held by place: their row among all the rows of its plan (``plans``:
    each side's units, in plan order), or the order they were shown in (a stream). A candidate
    row is first looked for at its own place: the baseline row there, if it has the same id.
    Two files of one evaluation set in one order pair entirely so, with no sort and no search,
    and a candidate batch so paired needs no more than the baseline rows at its places: it may
    be read while the rest of the baseline still is (`compare` reads the two sides in one pool
    of threads). The other rows wait for `seal`, then are looked up among the baseline's hashes
    sorted (made the first time one is needed).

    Memory: see the module docstring (about 15 bytes per baseline row with one McNemar
    metric)."""

    def __init__(
        self,
        column: str,
        mcnemar: Sequence[int],
        strict: bool,
        names: tuple[str, str] = ("baseline", "candidate"),
        plans: tuple[Sequence[Unit], Sequence[Unit]] | None = None,
        grouped: bool = True,
    ) -> None:
        self.column = column  # the id column (or what identifies a row) in messages
        self.mcnemar = list(mcnemar)  # leaf indices whose rows are right or wrong
        self.strict = strict
        self.names = names
        self.grouped = grouped  # rows have groups (--by): else every row is in group 0
        base, cand = (_Plan(plans[0]), _Plan(plans[1])) if plans else (None, None)
        self._plans = (base, cand) if base and cand and base.known and cand.known else None
        self._lock = threading.Lock()
        width = len(self.mcnemar)
        size = self._plans[0].rows if self._plans else 0
        #: by place: each baseline row's hash, whether it was read, its cell code, correctness
        self.held_hashes = _zeros_by_place(size, np.uint64)
        self.held_labels = _zeros_by_place(size, np.uint64)  # `label_keys`
        self.label_column = "label"  # in messages (`compare` names the resolved one)
        self.present = _zeros_by_place(size, bool)
        self._cells = _zeros_by_place(size if grouped else 0, np.int32)
        #: by the baseline's place: the cell code (in the candidate's run) of its pair
        self._pair_cells = _zeros_by_place(size if grouped else 0, np.int32)
        #: the --by columns (in messages), set by `compare`
        self.by_columns: tuple[str, ...] = ()
        #: (side 0 or 1, identity hash) -> that side's (file, row) of the row with this hash
        #: that it skipped as invalid (--on-invalid skip), or None: to say why a row has no
        #: pair (`compare` sets it)
        self.skipped_row: Callable[[int, int], tuple[str, int] | None] | None = None
        self.correct_rows = _zeros_by_place((size, width), bool)
        #: by the baseline's place: whether a candidate row is paired with it, and that row's
        #: correctness (a stream's: made by `seal`)
        self.paired = _zeros_by_place(size, bool)
        self.candidate_correct = _zeros_by_place((size, width), bool)
        #: set when `seal` is over (or the baseline failed: `abort`); a candidate row that is
        #: not paired at its own place waits for it
        self._sealed = threading.Event()
        self._seal_failed = False
        self._seal_error: BaseException | None = None
        #: each baseline batch's (first place, first id, last id) while every batch's ids are
        #: integers increasing within it (`_increasing`); None once one is not
        self._runs: list[tuple[int, int, int]] | None = [] if self._plans else None
        #: what seals when a candidate row waits for it, if not `seal` in another thread
        self.sealer: Callable[[], None] | None = None
        #: a stream's rows: (hashes, cells, correctness, label keys) of each batch
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._chunks: list[_Chunk] = []
        self._held = 0
        self.hashes = np.zeros(0, dtype=np.uint64)  # sorted (`_sorted`)
        self.position = np.zeros(0, dtype=np.int64)  # sorted -> place
        self._sorted_made = False
        self.groups: np.ndarray | None = None  # each place's group code (`finish`)
        self.unpaired_candidate = 0
        self.unpaired_baseline = 0
        self.pairs = np.zeros(0, dtype=np.int64)  # paired rows per baseline group code
        self.discordant = np.zeros((width, 2, 0), dtype=np.int64)  # [leaf, b/c, group]

    @property
    def by_place(self) -> bool:
        """Whether the rows are held by place (both sides' rows known before they are read)."""
        return self._plans is not None

    def correct(self, terms: Sequence[Any], rows: int) -> np.ndarray:
        """(rows, McNemar leaves) bools: each row's correctness, from each leaf's own row terms
        (``sum_metric``: the row's hit, without weights)."""
        columns = []
        for leaf in self.mcnemar:
            hits = terms[leaf]["sum_metric"]
            if isinstance(hits, Rowwise):
                hits = hits.per_row()
            hits = np.asarray(hits)
            if hits.ndim != 1:
                raise ConfigError(
                    "McNemar's test needs one label per row; compare has several a row"
                )
            columns.append(hits if hits.dtype == bool else hits > 0)
        if len(columns) == 1:
            return columns[0][:, None]
        return np.stack(columns, axis=1) if columns else np.zeros((rows, 0), dtype=bool)

    def observe_baseline(self, rows: ObservedRows) -> None:
        correct = self.correct(rows.terms, rows.hashes.shape[0])
        cells = np.asarray(rows.codes, dtype=np.int32) if self.grouped else None
        if self._plans is not None:  # written at their places (threads write apart)
            count = rows.hashes.shape[0]
            first = self._plans[0].first_place(rows)
            where: slice | np.ndarray
            if first is not None:
                where = slice(first, first + count)
            else:
                where = self._plans[0].places(rows)
                start = int(where[0]) if count else 0
                if count and int(where[-1]) - start == count - 1:
                    where = slice(start, start + count)
            ends = _increasing(rows.ids) if first is not None and self._runs is not None else None
            with self._lock:  # a candidate batch may be looking at these places
                if self._runs is not None and count:
                    if ends is None:
                        self._runs = None
                    else:
                        self._runs.append((first, *ends))  # type: ignore[arg-type]  # first set
                self.held_hashes[where] = rows.hashes
                self.held_labels[where] = label_keys(rows.labels, count)
                if cells is not None:
                    self._cells[where] = cells
                self.correct_rows[where] = correct
                self.present[where] = True
            return
        source = rows.source_rows()
        contiguous = source.size == 0 or int(source[-1]) - int(source[0]) == source.size - 1
        with self._lock:
            self._chunks.append(
                _Chunk(
                    self._held,
                    rows.unit.display_path,
                    int(source[0]) if contiguous and source.size else source,
                )
            )
            self._parts.append(
                (
                    rows.hashes,
                    cells if cells is not None else np.zeros(0),
                    correct,
                    label_keys(rows.labels, rows.hashes.shape[0]),
                )
            )
            self._held += rows.hashes.shape[0]

    def seal(self) -> None:
        """Check the baseline's rows, all shown: a hash held twice is a repeated id, an error.
        Then (or on that error) the candidate rows waiting for it go on."""
        try:
            self._seal()
        except BaseException as exc:
            self._seal_failed, self._seal_error = True, exc
            raise
        finally:
            self._sealed.set()

    def abort(self) -> None:
        """The baseline failed: release the candidate rows waiting for `seal`."""
        self._seal_failed = True
        self._sealed.set()

    def _wait_sealed(self) -> None:
        if self.sealer is not None and not self._sealed.is_set():
            self.sealer()  # seals, or waits for the thread that does
        self._sealed.wait()
        if self._seal_error is not None:  # the candidate's rows fail with the seal's error
            raise self._seal_error
        if self._seal_failed:  # a baseline unit's error, first in the run's order
            raise RuntimeError("compare: the baseline failed, so candidate rows cannot be paired")

    def _seal(self) -> None:
        if self._plans is None:  # a stream: its rows in the order they were shown
            parts, self._parts = self._parts, []
            self.held_hashes = (
                np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
            )
            if self.grouped:
                self._cells = (
                    np.concatenate([p[1] for p in parts]).astype(np.int32)
                    if parts
                    else np.zeros(0, np.int32)
                )
                self._pair_cells = np.zeros_like(self._cells)
            self.correct_rows = (
                np.concatenate([p[2] for p in parts])
                if parts
                else np.zeros((0, len(self.mcnemar)), bool)
            )
            self.held_labels = (
                np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.uint64)
            )
            self.present = np.ones(self.held_hashes.shape[0], dtype=bool)
            self.paired = np.zeros(self.held_hashes.shape[0], dtype=bool)
            self.candidate_correct = np.zeros_like(self.correct_rows)
            self._chunks.sort(key=lambda chunk: chunk.start)
            self._starts = [chunk.start for chunk in self._chunks]
        if self._ids_ascend():
            return
        read = self.held_hashes if self.present.all() else self.held_hashes[self.present]
        ordered = np.sort(read)  # a repeated id: two equal neighbours
        if ordered.shape[0] > 1 and bool((ordered[1:] == ordered[:-1]).any()):
            self._sorted()
            same = np.flatnonzero(self.hashes[1:] == self.hashes[:-1])
            at = int(same[0])
            first, again = sorted(self._locate(int(self.position[i])) for i in (at, at + 1))
            raise InvalidInputError(
                f"{again[0]}: column `{self.column}`, row {again[1]}: repeats the id of "
                f"{'' if first[0] == again[0] else first[0] + ' '}row {first[1]} (each id "
                f"must appear once in the {self.names[0]} to pair rows)",
                path=again[0],
                column=self.column,
                row=again[1],
                rule="ids must be unique within a side",
            )

    def _ids_ascend(self) -> bool:
        """Whether the baseline's ids are integers that increase from row to row through all
        its rows in place order (as ids numbered as the rows were written do): then none
        repeats, and its hashes need no sort to tell. (Two different ids of the same hash, a
        chance of about ``n**2 / 2**65``, are then not reported; the sort reports them as a
        repeated id.)"""
        runs = self._runs  # every batch's, if not None: so every row held
        if not runs:
            return False
        runs.sort()  # in place order
        return all(before[2] < after[1] for before, after in itertools.pairwise(runs))

    def _sorted(self) -> None:
        """The read places' hashes sorted, and each one's place (for rows not paired by
        place)."""
        with self._lock:
            if self._sorted_made:
                return
            places = np.flatnonzero(self.present)
            order = places[np.argsort(self.held_hashes[places])]
            self.hashes = self.held_hashes[order]
            self.position = order
            self._build_index()
            self._sorted_made = True

    def _build_index(self) -> None:
        """Where each value of a hash's top bits starts among the sorted hashes (about 8 rows
        per value: 1 byte a row), so a lookup searches a few rows, not all (`lookup`)."""
        n = self.hashes.shape[0]
        bits = max(1, min(32, (n >> 3).bit_length()))
        self._shift = np.uint64(64 - bits)
        top = (self.hashes >> self._shift).astype(np.intp)
        counts = np.bincount(top, minlength=1 << bits)
        self._starts_of = np.concatenate(([0], np.cumsum(counts))).astype(np.intp)
        self._steps = int(counts.max(initial=0)).bit_length()

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """``numpy.searchsorted(self.hashes, hashes)``: a binary search within each hash's
        top-bits range (`_build_index`), all hashes a step at a time."""
        top = (hashes >> self._shift).astype(np.intp)
        lo, hi = self._starts_of[top], self._starts_of[top + 1]
        last = max(self.hashes.shape[0] - 1, 0)
        for _ in range(self._steps):
            mid = (lo + hi) >> 1
            right = (lo < hi) & (self.hashes[np.minimum(mid, last)] < hashes)
            lo = np.where(right, mid + 1, lo)
            hi = np.where(right | (lo >= hi), hi, mid)
        return lo

    def _locate(self, place: int) -> tuple[str, int]:
        """(file, file row) of the baseline row at ``place``."""
        if self._plans is not None:
            return self._plans[0].locate(place)
        chunk = self._chunks[bisect.bisect_right(self._starts, place) - 1]
        offset = place - chunk.start
        row = chunk.rows + offset if isinstance(chunk.rows, int) else int(chunk.rows[offset])
        return chunk.path, row

    def candidate_hashes(self, unit: Unit, column: str) -> HashesOf | None:
        """The identity hashes of a candidate unit's rows without reading its ids, when its
        id ``column`` holds the very bytes of the baseline's unit at the same places (the
        same ids, row for row: `same_column_chunks`) and the baseline's rows there are held: the
        baseline's hashes there (`Evaluator.known_hashes`), else None."""
        if self._plans is None:
            return None
        base_plan, cand_plan = self._plans
        start = cand_plan.start.get(unit.key)
        base_unit = base_plan.unit_at.get(start) if start is not None else None
        count = unit.num_rows
        if base_unit is None or not count or base_unit.num_rows != count:
            return None
        if not same_column_chunks(unit, base_unit, column):
            return None
        assert start is not None
        with self._lock:  # held, and not being written
            if not bool(self.present[start : start + count].all()):
                return None
        offset, held = start - unit.row_offset, self.held_hashes

        def hashes(rows: slice | np.ndarray) -> np.ndarray:
            if isinstance(rows, slice):
                return held[rows.start + offset : rows.stop + offset]
            return held[rows + offset]

        return hashes

    def _at_own_place(self, rows: ObservedRows) -> slice | None:
        """The baseline's places of a candidate batch whose rows are in a row and every one
        paired with the baseline row at its own place (same id), else None. Before `seal`, the
        places the baseline has not shown yet do not pair (the rows then wait for `seal`)."""
        if self._plans is None:
            return None
        first = self._plans[1].first_place(rows)
        count = rows.hashes.shape[0]
        if first is None or not count or first + count > self.held_hashes.shape[0]:
            return None
        where = slice(first, first + count)
        if self._sealed.is_set():
            same = bool((self.held_hashes[where] == rows.hashes).all())
            return where if same and bool(self.present[where].all()) else None
        with self._lock:  # the baseline's threads may be writing these places
            ready = bool(self.present[where].all())
            same = ready and bool((self.held_hashes[where] == rows.hashes).all())
        return where if same else None

    def _places(self, rows: ObservedRows) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate row's baseline place with the same id (-1: none), and which of the
        found rows were looked up (not found at their own place): at their own place when the
        ids agree there, else among the sorted hashes. Waits for `seal` (every baseline row
        held)."""
        self._wait_sealed()
        hashes = rows.hashes
        at = np.full(hashes.shape[0], -1, dtype=np.int64)
        if self._plans is not None:
            places = self._plans[1].places(rows)
            inside = places < self.held_hashes.shape[0]
            if not inside.all():
                places = np.where(inside, places, 0)
            same = inside & self.present[places] & (self.held_hashes[places] == hashes)
            at[same] = places[same]
        rest = np.flatnonzero(at < 0)
        if rest.size and self.held_hashes.shape[0]:
            self._sorted()
            # looked up in hash order: the lookups then walk the sorted hashes forwards (about
            # 6 times quicker than in row order, which misses the cache at nearly every step)
            order = rest[np.argsort(hashes[rest])]
            wanted = hashes[order]
            where = self.lookup(wanted)
            found = where < self.hashes.shape[0]
            found[found] = self.hashes[where[found]] == wanted[found]
            at[order[found]] = self.position[where[found]]
            rest = order[found]
        else:
            rest = rest[:0]
        return at, rest

    def observe_candidate(self, rows: ObservedRows) -> None:
        correct = self.correct(rows.terms, rows.hashes.shape[0]) if self.mcnemar else None
        own = self._at_own_place(rows)
        if own is not None:  # every row paired at its own place
            self._check_labels(rows, own, slice(None))
            with self._lock:  # a row looked up by an earlier batch (of any thread) may repeat
                again = self.paired[own]
                if again.any():
                    self._repeated(rows, int(np.argmax(again)))
                self.paired[own] = True
                if correct is not None:
                    self.candidate_correct[own] = correct
                if self.grouped:
                    self._pair_cells[own] = rows.codes
            return
        at, looked_up = self._places(rows)
        found = at >= 0
        missing = int(found.shape[0] - np.count_nonzero(found))
        if missing and self.strict:  # the first unpaired row of the batch
            index = int(np.argmax(~found))
            row = int(rows.source_rows()[index])
            raise self._unpaired(
                rows.unit.display_path, row, self.names[1], self.names[0],
                (0, int(rows.hashes[index])),
            )  # fmt: skip
        if looked_up.size:  # rows paired by place are one a place; one looked up may repeat
            ordered = np.sort(at[found])
            twice = np.flatnonzero(ordered[1:] == ordered[:-1])
            if twice.size:  # one id twice in this batch: the later row
                self._repeated(rows, int(np.flatnonzero(at == ordered[twice[0]]).max()))
        everywhere = bool(found.all())
        batch_rows = slice(None) if everywhere else np.flatnonzero(found)
        held = at if everywhere else at[batch_rows]
        self._check_labels(rows, held, batch_rows)
        with self._lock:  # ids paired by an earlier batch (of any thread)
            again = self.paired[held]
            if again.any():
                first = int(np.argmax(again))
                self._repeated(rows, first if everywhere else int(np.flatnonzero(found)[first]))
            self.paired[held] = True
            if correct is not None:
                self.candidate_correct[held] = correct[batch_rows]
            if self.grouped:
                self._pair_cells[held] = np.asarray(rows.codes)[batch_rows]
            self.unpaired_candidate += missing

    def _check_labels(
        self, rows: ObservedRows, held: slice | np.ndarray, batch_rows: slice | np.ndarray
    ) -> None:
        """Paired rows must have the same label: else the two sides are not the same rows
        (a file of another evaluation set, or shifted ids), and the comparison means
        nothing. The first candidate row of the batch whose label differs is the error."""
        if rows.labels is None:
            return
        mine = label_keys(rows.labels, rows.hashes.shape[0])[batch_rows]
        differ = self.held_labels[held] != mine
        if not differ.any():
            return
        first = int(np.argmax(differ))
        index = first if isinstance(batch_rows, slice) else int(batch_rows[first])
        row = int(rows.source_rows()[index])
        path = rows.unit.display_path
        value = np.asarray(rows.labels[index]).tolist()
        rule = f"paired rows must have the same label (the {self.names[0]}'s row of this id)"
        raise InvalidInputError(
            f"{path}: column `{self.label_column}`, row {row}: its label {value} is not the "
            f"label of the {self.names[0]}'s row with the same id (`{self.column}`): the two "
            "sides must hold the same rows",
            path=path,
            column=self.label_column,
            row=row,
            rule=rule,
            value=value,
        )

    def _repeated(self, rows: ObservedRows, index: int) -> None:
        """Row ``index`` of a candidate batch repeats an id seen before: the error."""
        row = int(rows.source_rows()[index])
        path = rows.unit.display_path
        raise InvalidInputError(
            f"{path}: column `{self.column}`, row {row}: repeats the id of an earlier row of "
            f"the {self.names[1]} (each id must appear once in the {self.names[1]} to pair "
            "rows)",
            path=path,
            column=self.column,
            row=row,
            rule="ids must be unique within a side",
        )

    def _unpaired(
        self, path: str, row: int, side: str, other: str, identity: tuple[int, int] | None = None
    ) -> InvalidInputError:
        """The error of a row without a pair (``--strict``). ``identity``: the other side
        (0, 1) and the row's hash, to tell a row the other side skipped as invalid
        (`skipped_row`) from one it does not have."""
        found = None
        if identity is not None and self.skipped_row is not None:
            found = self.skipped_row(*identity)
        if found is None:
            why = f"no row of the {other} has this row's id"
        else:
            where = found[0] if found[0] != path else "its file"
            why = (
                f"the {other}'s row with this row's id ({where}, row {found[1]}) was skipped "
                "as invalid (--on-invalid skip), so this row has no pair"
            )
        return InvalidInputError(
            f"{path}: column `{self.column}`, row {row}: {why} (--strict: every row must "
            "have a pair)",
            path=path,
            column=self.column,
            row=row,
            rule="every row must have a pair (--strict)",
        )

    def _check_groups(self, pair_groups: PairGroups) -> None:
        """Paired rows must be in the same --by group on both sides: else the two files
        disagree about what the row is (as with labels, `_check_labels`), and a group's
        numbers would mix the two groupings. The first such baseline row, in file and row
        order, is the error (the candidate's rows are not held, only their groups)."""
        assert self.groups is not None
        if not pair_groups.cell_group.shape[0] or not self.paired.any():
            return
        theirs = pair_groups.to_baseline[pair_groups.cell_group[self._pair_cells]]
        differ = self.paired & (self.groups != theirs)
        if not differ.any():
            return
        (path, row), place = min(
            (self._locate(place), place) for place in np.flatnonzero(differ)[:1000].tolist()
        )
        mine = pair_groups.baseline_keys[int(self.groups[place])]
        other = pair_groups.candidate_keys[int(pair_groups.cell_group[self._pair_cells[place]])]
        columns = self.by_columns or tuple(f"--by {i + 1}" for i in range(len(mine)))
        at = next(
            (
                i
                for i, (a, b) in enumerate(zip(mine, other, strict=True))
                if canonical_value(a) != canonical_value(b)
                and not (a != a and b != b)  # NaN, NaN: the same group
            ),
            0,
        )
        column, value = columns[at], other[at]
        rule = f"paired rows must be in the same --by group (the {self.names[0]}'s row of this id)"
        raise InvalidInputError(
            f"{path}: column `{column}`, row {row}: its value {mine[at]!r} is not the "
            f"{self.names[1]}'s {value!r} for the row with the same id (`{self.column}`): "
            "paired rows must be in the same --by group (the two sides must hold the same rows)",
            path=path,
            column=column,
            row=row,
            rule=rule,
            value=value,
        )

    def finish(
        self,
        cell_group: np.ndarray | None = None,
        groups: int = 1,
        pair_groups: PairGroups | None = None,
    ) -> None:
        """Count the baseline's unpaired rows (``strict``: the first one, in file and row
        order, is an error), then per baseline group the paired rows and McNemar's discordant
        ones. ``cell_group``: each cell code's group code (the baseline's groups, ``groups``
        of them), with ``--by``; ``pair_groups``: the candidate's groups, to check that every
        pair is in one group (`PairGroups`)."""
        paired = self.paired  # a paired place is a held one
        pairs = int(np.count_nonzero(paired))
        self.unpaired_baseline = int(np.count_nonzero(self.present)) - pairs
        if self.unpaired_baseline and self.strict:
            lonely = np.flatnonzero(self.present & ~paired)
            (path, row), place = min((self._locate(int(i)), int(i)) for i in lonely.tolist())
            identity = (1, int(self.held_hashes[place]))
            raise self._unpaired(path, row, self.names[0], self.names[1], identity)
        if self.grouped:
            assert cell_group is not None
            self.groups = cell_group[self._cells].astype(np.int32)
            self._cells = np.zeros(0, dtype=np.int32)
            if pair_groups is not None:
                self._check_groups(pair_groups)
            self._pair_cells = np.zeros(0, dtype=np.int32)

        def count(mask: np.ndarray) -> np.ndarray:
            if self.groups is None:
                return np.array([np.count_nonzero(mask)], dtype=np.int64)
            return np.bincount(self.groups[mask], minlength=groups).astype(np.int64)

        self.pairs = count(paired)
        self.discordant = np.zeros((len(self.mcnemar), 2, self.pairs.shape[0]), dtype=np.int64)
        everywhere = pairs == paired.shape[0]  # every place paired: no mask
        scratch = _zeros_by_place(paired.shape[0], bool) if self.mcnemar else paired[:0]
        for leaf in range(len(self.mcnemar)):
            base = self.correct_rows[:, leaf]
            differ = np.bitwise_xor(base, self.candidate_correct[:, leaf], out=scratch)
            if not everywhere:  # discordant pairs
                np.bitwise_and(differ, paired, out=differ)
            discordant = count(differ)
            only_base = np.bitwise_and(differ, base, out=scratch)
            self.discordant[leaf, 0] = count(only_base)
            self.discordant[leaf, 1] = discordant - self.discordant[leaf, 0]


def _increasing(ids: pa.Array | None) -> tuple[int, int] | None:
    """The first and last of a batch's ids when they are integers, each greater than the one
    before it, else None."""
    if ids is None or not pa.types.is_integer(ids.type) or ids.null_count or not len(ids):
        return None
    values = as_numpy(ids)
    if values.shape[0] > 1 and not bool((values[1:] > values[:-1]).all()):
        return None
    return int(values[0]), int(values[-1])


# -- the comparison ---------------------------------------------------------------------------


@dataclass
class Comparison:
    """The result of `compare`: ``to_dict()`` is ``streammetric compare --format json``."""

    rows: int
    unpaired: dict[str, int]
    ci: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    groups: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    higher_is_better: dict[str, bool | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "unpaired": self.unpaired,
            "ci": self.ci,
            "metrics": self.metrics,
        }
        if self.groups is not None:
            out["groups"] = self.groups
        return out

    def worse(self, name: str, margin: float) -> str | None:
        """Why the candidate is significantly worse than the baseline on metric ``name`` (an
        output name) by more than ``margin`` over all rows, or None: where higher is better,
        the delta's interval lies below ``-margin`` (``upper < -margin``); where lower is
        better, above ``margin`` (``lower > margin``). A delta infinite in the worse direction
        (a candidate's infinite loss against a finite one) is worse by any margin, whatever
        the replicates without its rows give; a NaN delta (both infinite, or a value undefined)
        cannot show the candidate within the margin, so it fails the gate too."""
        entry = self.metrics[name]
        delta, lower, upper = entry["delta"], entry["lower"], entry["upper"]
        sides = f"baseline {entry['baseline']!r}, candidate {entry['candidate']!r}"
        if delta != delta:
            return f"{name}: delta nan ({sides}): cannot tell whether it is within {margin!r}"
        if delta == (-math.inf if self.higher_is_better.get(name) else math.inf):
            return f"{name}: delta {delta!r} ({sides}) is worse by more than any margin"
        if self.higher_is_better.get(name):
            if upper < -margin:
                return f"{name}: delta {entry['delta']!r}, interval [{lower!r}, {upper!r}] is below {-margin!r}"
        elif lower > margin:
            return f"{name}: delta {entry['delta']!r}, interval [{lower!r}, {upper!r}] is above {margin!r}"
        return None


def _leaves(metric: EvalMetric) -> list[EvalMetric]:
    children = getattr(metric, "metrics", None)
    return list(children) if children is not None else [metric]


def _value_names(leaf: EvalMetric) -> list[str]:
    names, _ = leaf.get()
    return [str(n) for n in names] if isinstance(names, list) else [str(names)]


def check_scalar_metrics(template: EvalMetric) -> None:
    """A usage error for a metric whose value is not one number (per-class values, a
    matrix): compare gives a delta and interval of numbers."""
    for leaf in _leaves(template):
        _, values = leaf.get()
        values = values if isinstance(values, list) else [values]
        if any(np.ndim(value) for value in values):
            raise ConfigError(
                f"{leaf.name}: its value is not one number (per class or a matrix); "
                "compare needs metrics of one value (e.g. an average)"
            )


def higher_is_better(template: EvalMetric) -> dict[str, bool | None]:
    """Each value name's direction (the metric class's ``higher_is_better``)."""
    return {
        name: leaf.higher_is_better for leaf in _leaves(template) for name in _value_names(leaf)
    }


def compare(
    baseline: Job,
    candidate: Job,
    *,
    column: str,
    strict: bool = False,
    threads: int | None = None,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` (two jobs with the same metrics, group-by columns
    and `Resampling`; with ``ids`` set to the id column, or none in single-file mode, where a
    row's identity is its file and row). ``column`` names what pairs rows in messages."""
    resampling = baseline.resampling
    if resampling is None or candidate.resampling != resampling:
        raise ConfigError("compare needs the same resampling on both sides")
    check_replicates(resampling.level, resampling.replicates)  # before anything is read
    base_run = JobRun(baseline)
    cand_run = JobRun(candidate)
    template = base_run.evaluator.template
    check_scalar_metrics(template)
    leaves = _leaves(template)
    weighted = base_run.resolved.weights is not None or cand_run.resolved.weights is not None
    mcnemar = [
        i
        for i, leaf in enumerate(leaves)
        if leaf.registered_name in MCNEMAR_METRICS and not weighted
    ]
    by = base_run.resolved.by
    if tuple(cand_run.resolved.by) != tuple(by):
        raise ConfigError("compare: both sides need the same --by columns")
    plans = (base_run.units, cand_run.units)
    pairing = Pairing(column, mcnemar, strict, plans=plans, grouped=bool(by))
    pairing.label_column = cand_run.resolved.labels
    if strict:
        runs = (base_run, cand_run)
        pairing.skipped_row = lambda side, identity: _skipped_row(runs[side], identity)
    base_run.evaluator.observer = pairing.observe_baseline
    cand_run.evaluator.observer = pairing.observe_candidate
    if pairing.by_place and not any(u.sequential for u in (*base_run.pending, *cand_run.pending)):
        ids = cand_run.resolved.ids
        if ids is not None and ids == base_run.resolved.ids:  # ids the baseline's: not read
            cand_run.evaluator.known_hashes = functools.partial(
                pairing.candidate_hashes, column=ids
            )
        _run_sides(base_run, cand_run, pairing, threads or os.cpu_count() or 1)
    else:  # a stream: the baseline's rows all held before the candidate's are read
        run_units(base_run, threads)
        pairing.seal()
        run_units(cand_run, threads)
    base_cells = base_run.total
    base_collapsed = collapse(base_cells)
    base_groups, base_group_of, _ = base_collapsed
    cand_cells = cand_run.total
    cand_collapsed = collapse(cand_cells)
    cand_groups = cand_collapsed[0]
    pair_groups = None
    if by:
        pairing.by_columns = tuple(by)
        pair_groups = PairGroups.of(base_groups.keys, cand_groups.keys, cand_collapsed[1])
    pairing.finish(base_group_of, len(base_groups.keys), pair_groups)
    if base_cells.rows and cand_cells.rows and not int(pairing.pairs.sum()):
        rule = "some rows must pair"
        raise InvalidInputError(
            f"compare: no row of the candidate ({cand_cells.rows} rows) pairs with one of the "
            f"baseline ({base_cells.rows}) by {column}: nothing to compare (ids pair by value "
            "and type: 1 and '1' do not)",
            column=column,
            rule=rule,
        )

    notes: list[str] = []
    results = []
    for side, run, groups_partial in (
        ("baseline", base_run, base_groups),
        ("candidate", cand_run, cand_groups),
    ):
        result = groups_partial.result([*run.notes, *run.resolved.notes], grouped=bool(by), by=by)
        notes += [f"{side}: {note}" for note in result.notes]
        results.append(result.to_dict())
    base_result, cand_result = results

    value_leaf = {name: i for i, leaf in enumerate(leaves) for name in _value_names(leaf)}
    names = list(base_result["metrics"])

    def entries(
        base_values: dict[str, Any],
        cand_values: dict[str, Any],
        deltas: dict[str, np.ndarray],
        counts: np.ndarray | None,
    ) -> dict[str, dict[str, Any]]:
        """A scope's entries: ``deltas`` (R,) replicate deltas per name; ``counts`` each McNemar
        leaf's (b, c), or None."""
        out = {}
        for name in names:
            x, y = base_values.get(name), cand_values.get(name)
            reps = deltas[name]
            delta = None if x is None or y is None else _difference(y, x)
            if delta is not None and math.isnan(delta):  # inf - inf, or a NaN value
                lower = upper = math.nan  # nothing to bound
            else:
                lower, upper = _interval(reps, resampling)
            leaf = value_leaf.get(name)
            if counts is not None and leaf in mcnemar:
                b, c = counts[mcnemar.index(leaf)]
                p, test = mcnemar_p(int(b), int(c)), MCNEMAR
            else:
                p, test = float(bootstrap_p(reps)), BOOTSTRAP
            if delta is None or not math.isfinite(delta):  # no difference to test
                p = math.nan
            out[name] = {
                "baseline": x,
                "candidate": y,
                "delta": None if delta is None else json_value(delta),
                "lower": json_value(lower),
                "upper": json_value(upper),
                "p_value": json_value(p),
                "test": test,
            }
        return out

    # replicate values over all rows (group 0), then per group
    base_all = _replicates(_Cells(base_cells, base_collapsed, None), 0, 1, resampling, threads)
    cand_all = _replicates(_Cells(cand_cells, cand_collapsed, None), 0, 1, resampling, threads)
    total_counts = pairing.discordant.sum(axis=2) if mcnemar else None
    metrics = entries(
        base_result["metrics"],
        cand_result["metrics"],
        _deltas(cand_all, base_all, 0, names),
        total_counts,
    )
    groups_out = None
    if by:
        keys = sorted({*_present_keys(base_groups), *_present_keys(cand_groups)}, key=_sort_key)
        common = {key: code for code, key in enumerate(keys)}
        base_layout = _Cells(base_cells, base_collapsed, common)
        cand_layout = _Cells(cand_cells, cand_collapsed, common)
        per_pass = max(1, REPLICATE_VALUES // resampling.replicates)
        base_by_key = {_key_of(g, by): g for g in base_result["groups"]}
        cand_by_key = {_key_of(g, by): g for g in cand_result["groups"]}
        to_common = np.array([common.get(key, -1) for key in base_groups.keys], dtype=np.int64)
        pairs = np.zeros(len(keys), dtype=np.int64)
        discordant = np.zeros((len(mcnemar), 2, len(keys)), dtype=np.int64)
        known = to_common[: pairing.pairs.shape[0]] >= 0
        np.add.at(pairs, to_common[: pairing.pairs.shape[0]][known], pairing.pairs[known])
        for leaf in range(len(mcnemar)):
            for which in range(2):
                np.add.at(
                    discordant[leaf, which],
                    to_common[: pairing.pairs.shape[0]][known],
                    pairing.discordant[leaf, which][known],
                )
        groups_out = []
        for code, key in enumerate(keys):
            if code % per_pass == 0:  # the replicates of the next groups (bounded memory)
                end = min(code + per_pass, len(keys))
                base_reps = _replicates(base_layout, code, end, resampling, threads)
                cand_reps = _replicates(cand_layout, code, end, resampling, threads)
            base_group, cand_group = base_by_key.get(key), cand_by_key.get(key)
            groups_out.append(
                {
                    "key": dict(zip(by, key, strict=True)),
                    "rows": int(pairs[code]),
                    "metrics": entries(
                        base_group["metrics"] if base_group else {},
                        cand_group["metrics"] if cand_group else {},
                        _deltas(cand_reps, base_reps, code % per_pass, names),
                        discordant[:, :, code] if mcnemar else None,
                    ),
                }
            )
    return Comparison(
        rows=int(pairing.pairs.sum()),
        unpaired={"baseline": pairing.unpaired_baseline, "candidate": pairing.unpaired_candidate},
        ci=resampling.header(),
        metrics=metrics,
        groups=groups_out,
        notes=notes,
        higher_is_better=higher_is_better(template),
    )


def _run_sides(base_run: JobRun, cand_run: JobRun, pairing: Pairing, threads: int) -> None:
    """Evaluate both sides' units in one pool of ``threads``: the baseline's, then `seal`
    (the check for repeated ids, once every baseline unit has been read), then the
    candidate's, so that no thread waits between the sides. A candidate batch that pairs at
    its own places needs only the baseline's rows there, read long before in plan order; the
    others wait for `seal`, and run it if no thread has yet (whatever the pool does with the
    seal's own item, e.g. cancel it after a failure, no thread waits for it forever: every
    baseline unit has started before any candidate unit)."""
    base_units, cand_units = base_run.pending, cand_run.pending
    resampling = base_run.evaluator.resampling
    left = [len(base_units)]  # baseline units still being read; -1: one failed
    read = threading.Event()  # every baseline unit read (or one failed)
    if not base_units:
        read.set()
    lock = threading.Lock()
    sealing = threading.Lock()
    sealed: list[BaseException | None] = []  # once sealed: its error, or None

    def seal_once() -> None:
        with sealing:
            if not sealed:
                read.wait()
                if left[0] < 0:  # a baseline unit failed: its error is the run's
                    pairing.abort()
                    sealed.append(None)
                else:
                    try:
                        pairing.seal()
                        sealed.append(None)
                    except BaseException as exc:
                        sealed.append(exc)
            error = sealed[0]
        if error is not None:
            raise error

    pairing.sealer = seal_once

    def work(item: tuple[str, Unit | None]) -> Partial | None:
        side, unit = item
        if unit is None:
            seal_once()
            if resampling is not None:  # the replicates' weights, made beside the candidate
                resampling.weights  # noqa: B018  # a cached property
            return None
        if side == "candidate":
            return cand_run.evaluator.unit_partial(unit)
        try:
            part = base_run.evaluator.unit_partial(unit)
        except BaseException:
            with lock:
                left[0] = -1
            read.set()
            raise
        with lock:
            if left[0] > 0:
                left[0] -= 1
                if left[0] == 0:
                    read.set()
        return part

    def finish(item: tuple[str, Unit | None], part: Partial | None) -> None:
        side, unit = item
        if unit is not None and part is not None:
            (base_run if side == "baseline" else cand_run).finish(unit, part)

    # `seal` after the first candidate units: while it sorts, the other threads read them
    cut = len(base_units) + min(threads - 1, len(cand_units))
    items: list[tuple[str, Unit | None]] = [
        *(("baseline", unit) for unit in base_units),
        *(("candidate", unit) for unit in cand_units),
    ]
    items.insert(cut, ("seal", None))
    run_pool(items, work, finish, threads)


def _deltas(
    cand: dict[str, np.ndarray], base: dict[str, np.ndarray], code: int, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Group ``code``'s replicate deltas per name (inf - inf: NaN, a replicate left out)."""
    with np.errstate(invalid="ignore"):
        return {name: cand[name][code] - base[name][code] for name in names}


def _difference(candidate: Any, baseline: Any) -> float:
    """``candidate - baseline`` as a float (inf - inf: NaN, without a warning)."""
    with np.errstate(invalid="ignore"):
        return float(np.float64(candidate) - np.float64(baseline))


def _skipped_row(run: JobRun, identity: int) -> tuple[str, int] | None:
    """The (file, row) of the row of ``run`` whose identity hash is ``identity``, when the run
    skipped invalid rows (``--on-invalid skip``) and its inputs can be read again (not a
    stream): its ids read again, for the message of a row whose pair is not there (a row
    shown to `Pairing` would have paired, so a row found here was skipped). None otherwise."""
    from ..functional.resample import hash_ids, hash_positions
    from ..io.reader import iter_arrow

    job = run.evaluator.job
    resampling = job.resampling
    if job.on_invalid != "skip" or resampling is None:
        return None
    ids = run.resolved.ids
    for unit in run.units:
        if unit.sequential:
            return None
        try:
            for data, offset in iter_arrow(unit, run.resolved):
                if ids is not None:
                    hashes = hash_ids(data.column(ids), resampling.seed)
                else:
                    rows = np.arange(offset, offset + data.num_rows)
                    hashes = hash_positions(run.evaluator.row_name(unit), rows, resampling.seed)
                hit = np.flatnonzero(hashes == np.uint64(identity))
                if hit.size:
                    return unit.display_path, offset + int(hit[0])
        except (OSError, ValueError, TypeError, KeyError):  # e.g. a null id: not this message
            return None
    return None


def _present_keys(groups: Partial) -> list[GroupKey]:
    return [groups.keys[code] for code in groups.present().tolist()]


def _key_of(group: dict[str, Any], by: Sequence[str]) -> GroupKey:
    return tuple(group["key"][column] for column in by)


def _interval(deltas: np.ndarray, resampling: Resampling) -> tuple[float, float]:
    from ..functional.resample import percentile_interval

    lower, upper = percentile_interval(deltas, resampling.level)
    return float(lower), float(upper)


#: replicate values of one side and metric held at once at most (groups x replicates)
REPLICATE_VALUES = 1 << 20


class _Cells:
    """A side's cells (group key + bucket) laid out for `_replicates`: each cell's bucket,
    whether it has rows, and its group's code in ``common`` (every cell in group 0 when
    ``common`` is None: all rows). ``collapsed``: `collapse` of ``cells``."""

    def __init__(
        self,
        cells: Partial,
        collapsed: tuple[Partial, np.ndarray, np.ndarray],
        common: dict[GroupKey, int] | None,
    ) -> None:
        check_resampled(cells)
        self.cells = cells
        groups, group_of, self.buckets = collapsed
        size = group_of.shape[0]
        self.present = np.zeros(size, dtype=bool)
        rows = cells._rows[:size]
        self.present[: rows.shape[0]] = rows > 0
        if common is None:
            self.group = np.zeros(size, dtype=np.int64)
        else:
            to_common = np.array([common.get(key, -1) for key in groups.keys], dtype=np.int64)
            self.group = to_common[group_of]
            self.present &= self.group >= 0


def _replicates(
    layout: _Cells, start: int, end: int, resampling: Resampling, threads: int | None
) -> dict[str, np.ndarray]:
    """Each value name's replicate values of groups ``start .. end - 1`` (codes of the
    layout), ``(end - start, replicates)``; NaN for a group without rows on this side."""
    cells = layout.cells
    chosen = layout.present & (layout.group >= start) & (layout.group < end)
    cell_groups = np.where(chosen, layout.group - start, -1)
    states: list[GroupedState] = cells.states  # type: ignore[assignment]  # checked
    out = {
        name: np.full((end - start, resampling.replicates), np.nan)
        for leaf in cells.leaves
        for name in _value_names(leaf)
    }
    for codes, values in replicate_values(
        cells.leaves, states, cell_groups, layout.buckets, resampling, threads
    ):
        for name, array in values.items():
            out.setdefault(name, np.full((end - start, resampling.replicates), np.nan))
            out[name][codes] = array
    return out


def fail_messages(comparison: Comparison, checks: Sequence[tuple[str, float]]) -> list[str]:
    """`Comparison.worse` of each ``(output name, margin)``."""
    return [m for name, margin in checks if (m := comparison.worse(name, margin)) is not None]
