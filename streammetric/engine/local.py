"""The local engine: units of work (file, row group) on a thread pool, states merged exactly.

Each unit is read slice by slice; every slice goes through the metrics' row terms into a
`Partial` (one state per metric over all groups, ``--by``). With a checkpoint or a live
exporter, each unit has its own partial, which the main thread merges into the total as the unit
completes: the merged states and the keys of the finished units are written atomically as units
finish, and a re-run resumes from them. Otherwise each worker thread keeps one partial for all of
its units, merged into the total at the end. Merging is exact, so the result is the same bits
whatever the thread count, the units each thread took or the completion order.

Hooks for live exporters: ``on_start(RunStart)`` once the plan is known (and the checkpoint is
loaded), then ``on_merge(part)`` with each finished unit's `Partial` (``part.unit_key`` names the
unit) right after it is merged into the total, in completion order, in the main thread.

>>> # evaluate(["preds.parquet"], ["ce", "acc"], by=["model"]) -> Result
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
import pyarrow as pa

from .._arrow import from_numpy
from .._exceptions import ConfigError, InvalidInputError, StateError
from ..io import (
    STDIN,
    Batch,
    ColumnSpec,
    ResolvedColumns,
    Unit,
    file_items,
    fingerprint,
    group_codes,
    iter_arrow,
    make_batch,
    plan,
    resolve_paths,
    resolve_units,
)
from ..io.sources import stdin_digest, stdin_end_note
from ..io.storage import is_uri, use_storage_options
from ..metrics import EvalMetric
from .partial import CellIndex, GroupIndex, Partial, RowTally, locate_error
from .result import Result

if TYPE_CHECKING:  # imported where used: a plain eval (no --ci, no checkpoint, files) loads neither
    from ..metrics.bootstrap import Resampling
    from .checkpoint import Checkpoint

__all__ = [
    "Evaluator",
    "HashesOf",
    "Job",
    "JobRun",
    "ObservedRows",
    "ProgressHook",
    "Result",
    "RunStart",
    "evaluate",
    "run_job",
    "run_pool",
    "run_units",
]

ProgressHook = Callable[[int], None]
#: the identity hashes of a unit's rows from their rows in its file (a slice: rows in a row)
HashesOf = Callable[[slice | np.ndarray], np.ndarray]


class ObservedRows(NamedTuple):
    """What `Evaluator.observer` is shown of the rows of a batch, when they are folded into the
    state (under resampling only: the identity hashes are the resampling's). For a caller that
    needs a per-row fact beside the states (``compare`` pairs rows by ``hashes``)."""

    unit: Unit
    #: each row's identity hash (uint64): `hash_ids` of its id, else of its file and row
    hashes: np.ndarray
    #: each row's group code in the run's `GroupIndex` (whose keys end with the bucket)
    codes: np.ndarray
    #: each leaf's row terms of these rows (None: a leaf updated group by group)
    terms: Sequence[Any]
    #: each row's row in its file (for error messages)
    source_rows: Callable[[], np.ndarray]
    #: the first row's row in its file when the rows are the file's rows in a row (none
    #: skipped), else None: then ``source_rows()`` is that row onwards, without computing it
    first_row: int | None = None
    #: the rows' ids (the id column's values) when ``first_row`` is set and the rows have ids
    ids: pa.Array | None = None
    #: the rows' labels, as the metrics took them
    labels: np.ndarray | None = None


#: why ``checkpoint`` is refused for an in-memory input
NO_CHECKPOINT = (
    "checkpoint: an in-memory input cannot be resumed from a checkpoint (no name, size or "
    "mtime says it holds the same data on the next run); write it to a Parquet file to "
    "checkpoint its evaluation, or leave checkpoint out"
)

#: Metrics that need one score per class: a prediction of one value per row (the positive-class
#: score, as the binary metrics and ``explain`` read it) is refused for them.
PER_CLASS_METRICS = frozenset(
    {"crossentropy", "negativeloglikelihood", "perplexity", "accuracy", "topkaccuracy"}
)


@dataclass
class Job:
    """Everything that defines an evaluation (and so a checkpoint's identity)."""

    paths: list[str]
    metrics: list[Any]  # metric specs for `streammetric.create`
    columns: ColumnSpec = field(default_factory=ColumnSpec)
    on_invalid: str = "raise"
    metric_defaults: dict[str, Any] = field(default_factory=dict)  # e.g. convention, from_logits
    #: rows of probabilities that do not sum to 1 break a rule (raise, or skip as invalid)
    strict: bool = False
    #: bootstrap intervals (the state is then kept per bucket of rows: see `intervals`)
    resampling: Resampling | None = None
    #: options of the object stores of URI paths (`streammetric.io.storage`): credentials,
    #: endpoints; not part of the identity (an object's identity is its URI and ETag). Empty:
    #: the process's (`use_storage_options`), which the Dask engine sends to its workers
    storage_options: dict[str, str] = field(default_factory=dict)
    #: in-memory inputs (`streammetric.io.memory`: Arrow tables and readers, pandas and polars
    #: DataFrames, DuckDB results), read in place of ``paths`` (then empty); not in `settings`
    tables: list[Any] = field(default_factory=list, repr=False)
    #: widths of list columns of any length known before the paths are read (``pred_width``,
    #: ``label_width``: a `watch`'s first file's), so that a list of another length is a
    #: ragged row here too, as in one run over every file; not in `settings`
    list_widths: dict[str, int] = field(default_factory=dict)
    #: local files read through a memory map (`streammetric.io.map_file`: 3-4% faster); False
    #: (`watch`, whose files may be rewritten as it reads them): read into memory, so that a
    #: file rewritten in place is an error the run reports, not SIGBUS; not in `settings`
    in_place: bool = True

    def identity(self, units: Sequence[Unit]) -> dict[str, Any]:
        return {"inputs": fingerprint(units), **self.settings()}

    def settings(self) -> dict[str, Any]:
        """The identity without the inputs (a metric without a JSON config raises ConfigError)."""
        settings: dict[str, Any] = {
            "metrics": [_config_of(m) for m in self.metrics],
            "columns": repr(self.columns),
            "on_invalid": self.on_invalid,
            "metric_defaults": self.metric_defaults,
        }
        if self.strict:  # only then: checkpoints of non-strict runs keep their identity
            settings["strict"] = True
        if self.resampling is not None:  # the buckets' states depend on the seed and the ids
            from ..functional.resample import BUCKETS

            settings["resampling"] = {
                "seed": self.resampling.seed,
                "buckets": BUCKETS,
                "ids": self.columns.ids,
            }
        return settings


def _config_of(spec: Any) -> Any:
    return spec.get_config() if isinstance(spec, EvalMetric) else spec


class RunStart(NamedTuple):
    """What ``run_job`` tells ``on_start`` before it evaluates anything."""

    units: tuple[Unit, ...]  # every unit, in plan order (files sorted by path, then row groups)
    pending: tuple[Unit, ...]  # the units still to evaluate (not in the checkpoint), plan order
    resolved: ResolvedColumns
    new_metrics: Callable[[], EvalMetric]  # fresh metric objects as every unit's Partial uses
    restored: Partial  # the state loaded from the checkpoint (empty without one); read only


class Evaluator:
    """Turns batches into a `Partial` (per-group metric states) for one job."""

    def __init__(self, job: Job, resolved: ResolvedColumns, where: str) -> None:
        if resolved.label_kind == "binary" and resolved.pred_kind != "scalar":
            raise InvalidInputError(
                f"{where}: column `{resolved.labels}` holds floats, but predictions `{', '.join(resolved.preds)}` have one score per class, "
                "so labels must be integer class indices (cast the column to an integer type)",
                path=where,
                column=resolved.labels,
                rule="must be integer class indices",
            )
        #: the job without its in-memory inputs: a `Result` keeps the run's `Partial`, whose
        #: metric factory is this Evaluator's, and must not keep the caller's tables alive
        self.job = dataclasses.replace(job, tables=[]) if job.tables else job
        self.resolved = resolved
        self.where = where
        self._row_names: dict[str, str] = {}  # `row_name` of each file
        #: the group keys' codes, shared by the run's partials; with intervals a key ends with
        #: the row's bucket (`intervals`)
        self.index: GroupIndex | CellIndex = GroupIndex()
        self.resampling = job.resampling
        #: called with each batch's `ObservedRows` as they are folded (in worker threads);
        #: only under resampling. An error it raises fails the unit, as a metric's would.
        self.observer: Callable[[ObservedRows], None] | None = None
        self._spare: list[Partial] = []  # merged units' partials, cleared for the next units
        #: under resampling: asked before each unit is read (in its worker thread) for the
        #: identity hashes of its rows; a `HashesOf` it returns gives them (the unit's id column
        #: is then not read), None: they are hashed from the rows' ids as usual (``compare``:
        #: the candidate's ids, when they are the baseline's at the same places)
        self.known_hashes: Callable[[Unit], HashesOf | None] | None = None
        if self.resampling is not None:
            from ..functional.resample import BUCKETS

            if resolved.by:
                self.index = CellIndex(BUCKETS)
            else:  # code == bucket: no lookup
                self.index.codes_of([(bucket,) for bucket in range(BUCKETS)])
        self.metric_kwargs = dict(job.metric_defaults)
        if resolved.from_logits and "from_logits" not in self.metric_kwargs:
            self.metric_kwargs["from_logits"] = True
        if resolved.pred_kind != "scalar" and resolved.pred_width == 1:
            self.check_one_score(where)
        if self.resampling is not None:
            for leaf in getattr(self.template, "metrics", None) or [self.template]:
                if not leaf.sums_rows():
                    raise ConfigError(
                        f"{leaf.name}: its state is not a sum over rows, so it has no "
                        "bootstrap intervals (--ci)"
                    )

    @functools.cached_property
    def template(self) -> EvalMetric:
        """The run's metrics, never updated: every unit's `Partial` computes its batches'
        terms with them."""
        return self.new_metrics()

    @functools.cached_property
    def per_class_metrics(self) -> list[str]:
        """The requested metrics that need one score per class (`PER_CLASS_METRICS`)."""
        metrics = getattr(self.new_metrics(), "metrics", [])  # a CompositeEvalMetric's
        return [m.name for m in metrics if m.registered_name in PER_CLASS_METRICS]

    def check_one_score(self, where: str, row: int | None = None) -> None:
        """One prediction value per row is the positive-class score (binary), as a scalar
        column is: metrics that need a score per class refuse it rather than read it as one
        class (cross-entropy 0.0) or as class indices."""
        if self.per_class_metrics:
            at = "" if row is None else f", row {row}"
            raise InvalidInputError(
                f"{where}: column `{', '.join(self.resolved.preds)}`{at}: one prediction value "
                f"per row is the positive-class score (binary), but {', '.join(self.per_class_metrics)} "
                f"{'needs' if len(self.per_class_metrics) == 1 else 'need'} one score per class "
                "(2 or more); give every class's score, or use a binary "
                "metric (bce, brier, ece, auc, f1, mcc)",
                argument="preds",
                row=row,
                path=where,
                column=", ".join(self.resolved.preds),
            )

    def new_metrics(self) -> EvalMetric:
        from ..metrics.specs import build_metrics

        return build_metrics(self.job.metrics, self.metric_kwargs)

    def unit_partial(self, unit: Unit, into: Partial | None = None) -> Partial:
        """The unit's state: every batch through the metrics' `row_terms`, folded into its
        rows' groups (of a new partial, or added to ``into``'s). With ``--by``, batches wait
        (`_Pending`) until about `FLUSH_ROWS` rows are read, so that the group keys are
        encoded once per row group, not per slice."""
        if into is not None:
            partial = into
        else:
            try:
                partial = self._spare.pop()  # a merged unit's (`recycle`)
                partial.unit_key = unit.key
            except IndexError:
                partial = Partial(
                    self.new_metrics, unit_key=unit.key, index=self.index, template=self.template
                )
        pending = _Pending() if self.resolved.by else None
        if self.resampling is not None and self.resolved.by:
            pending = _Pending()
        hashes_of = None
        if self.known_hashes is not None and self.resampling is not None:
            hashes_of = self.known_hashes(unit)
        resolved = self.resolved
        if hashes_of is not None:  # the id column is not read
            resolved = dataclasses.replace(resolved, ids=None)
        for data, row_offset in iter_arrow(unit, resolved, in_place=self.job.in_place):
            batch = make_batch(
                data, unit, resolved, row_offset=row_offset, on_invalid=self.job.on_invalid
            )
            self.add_batch(partial, batch, pending, hashes_of)
            if pending is not None and pending.rows >= FLUSH_ROWS:
                pending.flush(partial)
        if pending is not None:
            pending.flush(partial)
        return partial

    def recycle(self, partial: Partial) -> None:
        """Reuse a unit's partial, once merged and no longer read, for a later unit: its
        arrays are already in memory (with 100,000 groups a fresh partial costs ~20 MB of
        page faults per unit)."""
        if (
            partial.index is self.index
            and partial.template is self.template
            and len(self._spare) < 2
            and partial.clear()
        ):
            self._spare.append(partial)

    @functools.cached_property
    def checks_sums(self) -> bool:
        """``strict`` with predictions that are probabilities (not logits)."""
        return self.job.strict and not self.metric_kwargs.get("from_logits", False)

    def not_distributions(self, batch: Batch, preds: np.ndarray) -> np.ndarray | None:
        """Under ``strict``: rows of probabilities (2 or more a row) that do not sum to 1
        within ``sqrt(eps)`` of their dtype (as the cross-entropy diagnostics count them);
        with ``on_invalid="raise"`` the first one is an error naming file, column and row."""
        if not self.checks_sums or preds.ndim != 2 or preds.shape[1] < 2 or not len(preds):
            return None
        dtype = preds.dtype if preds.dtype.kind == "f" else np.dtype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            sums = preds.sum(axis=1, dtype=np.float64)
            bad = np.abs(sums - 1) > float(np.sqrt(np.finfo(dtype).eps))
        bad &= np.isfinite(sums)  # NaN/inf rows: the metrics' own rules
        if not bad.any():
            return None
        if self.job.on_invalid == "raise":
            row = int(np.argmax(bad))
            raise InvalidInputError.bad_row(
                "preds", row, "probabilities must sum to 1 (--strict)", sums[row]
            ).located(
                batch.unit.display_path,
                ", ".join(self.resolved.preds),
                int(batch.source_rows()[row]),
            )
        return bad

    def add_batch(
        self,
        partial: Partial,
        batch: Batch,
        pending: _Pending | None = None,
        hashes_of: HashesOf | None = None,
    ) -> None:
        partial.invalid_rows += batch.invalid_count
        labels, preds, weights = batch.labels, batch.preds, batch.weights
        if preds.ndim == 2 and preds.shape[1] == 1 and batch.num_rows:  # lists of one value
            self.check_one_score(batch.unit.display_path, int(batch.source_rows()[0]))
        keep = None
        stats = None  # the batch's statistics, shared by the skip mask and the row terms
        unsummed = self.not_distributions(batch, preds)
        if self.job.on_invalid == "skip" and batch.num_rows:
            try:  # (an error of the whole batch, as a shape's, is not a row to skip)
                stats = partial.batch_stats(labels, preds, None)  # weights: the terms check
                bad = partial.invalid_mask(stats)
            except InvalidInputError as exc:
                raise locate_error(exc, batch.unit, self.resolved, batch.source_rows()) from None
            if weights is not None:
                stats = None  # the terms read the weights too
            if unsummed is not None:
                bad = unsummed if bad is None else bad | unsummed
            if bad is not None and bad.any():
                keep = ~bad
                partial.invalid_rows += int(bad.sum())
        if keep is not None:
            labels, preds = labels[keep], preds[keep]
            weights = None if weights is None else weights[keep]
            stats = None  # other rows: other statistics

        def file_rows() -> np.ndarray:
            """File row of each updated row; computed only to locate an error."""
            rows = batch.source_rows()
            return rows if keep is None else rows[keep]

        def locate(exc: InvalidInputError) -> InvalidInputError:
            """A metric's error about these rows, in the file."""
            return locate_error(exc, batch.unit, self.resolved, file_rows())

        try:
            terms = partial.row_terms(labels, preds, weights, stats)
        except InvalidInputError as exc:
            raise locate(exc) from None
        hashes = buckets = None
        if self.resampling is not None:
            from ..functional.resample import buckets_of

            hashes = self.row_hashes(batch, keep, file_rows, hashes_of)
            buckets = buckets_of(hashes)
        observe = None
        if self.observer is not None and hashes is not None:
            first = batch.row_offset if keep is None and batch.invalid is None else None
            ids = batch.ids if first is not None else None
            observe = functools.partial(
                _observe, self.observer, batch.unit, hashes, terms, file_rows, first, ids, labels
            )
        if pending is not None and batch.groups is not None:
            groups = batch.groups
            if keep is not None:
                mask = from_numpy(keep)
                groups = {name: array.filter(mask) for name, array in groups.items()}
            if observe is None and all(leaf_terms is not None for leaf_terms in terms):
                # the terms are all the flush needs: it holds neither the decoded slice nor
                # (through `locate`) the batch, so the reader reuses their memory, still in
                # the cache, for the next slice (single thread: 0.32 -> 0.19 s of decoding
                # 4M rows with 100,000 groups, against 0.16 s without --by)
                preds = np.empty((0, *preds.shape[1:]), preds.dtype)
                locate = _unlocated
            pending.add(groups, labels, preds, weights, terms, locate, buckets, observe)
            return
        codes: np.ndarray | int
        if buckets is not None:  # no --by: a bucket's code is the bucket
            partial.codes_of([])  # rows counted for every bucket
            codes = buckets
        else:
            codes = int(partial.codes_of([()])[0])
        try:  # a metric updated group by group (no row terms) checks its rows here
            partial.add(labels, preds, weights, codes, terms)
        except InvalidInputError as exc:
            raise locate(exc) from None
        if observe is not None and isinstance(codes, np.ndarray):
            observe(codes)

    def row_hashes(
        self,
        batch: Batch,
        keep: np.ndarray | None,
        file_rows: Callable[[], np.ndarray],
        hashes_of: HashesOf | None = None,
    ) -> np.ndarray:
        """Each kept row's identity hash (its bucket is the top bits): the hash of its id
        (``--id``), else of its file (relative to the PATH argument) and its row in that file;
        ``hashes_of`` the unit's (`known_hashes`), if given."""
        assert self.resampling is not None
        if hashes_of is not None:
            if keep is None and batch.invalid is None:
                return hashes_of(slice(batch.row_offset, batch.row_offset + batch.num_rows))
            return hashes_of(file_rows())
        from ..functional.resample import hash_ids, hash_positions

        seed = self.resampling.seed
        if batch.ids is None:
            return hash_positions(self.row_name(batch.unit), file_rows(), seed)
        ids = batch.ids if keep is None else batch.ids.filter(from_numpy(keep))
        return hash_ids(ids, seed)

    def row_name(self, unit: Unit) -> str:
        """The file's part of a row's identity: its path relative to the PATH argument it was
        found under (its name, for a file given itself), with ``/`` separators; an in-memory
        input's name (``<table>``, ``<table 0>``, ...)."""
        if unit.kind == "memory":
            return unit.path
        name = self._row_names.get(unit.path)
        if name is None:  # one entry per file of the run, kept by the run (not a global cache,
            # which would keep every Evaluator alive)
            name = self._row_names[unit.path] = self._file_row_name(unit.path)
        return name

    def _file_row_name(self, unit_path: str) -> str:
        if unit_path == STDIN:
            return "-"
        if is_uri(unit_path):  # relative to the URI given, as a local path to its directory
            for argument in self.job.paths:
                if unit_path == argument:
                    return unit_path.rstrip("/").rsplit("/", 1)[-1]
                if unit_path.startswith(argument.rstrip("/") + "/"):
                    return unit_path[len(argument.rstrip("/")) + 1 :]
            return unit_path.rsplit("/", 1)[-1]
        path = os.path.abspath(unit_path)
        for argument in self.job.paths:
            root = os.path.abspath(argument)
            if path == root:
                return os.path.basename(path)
            if path.startswith(root.rstrip(os.sep) + os.sep):
                return os.path.relpath(path, root).replace(os.sep, "/")
        return os.path.basename(path)


def _observe(
    observer: Callable[[ObservedRows], None],
    unit: Unit,
    hashes: np.ndarray,
    terms: Sequence[Any],
    source_rows: Callable[[], np.ndarray],
    first_row: int | None,
    ids: pa.Array | None,
    labels: np.ndarray,
    codes: np.ndarray,
) -> None:
    observer(ObservedRows(unit, hashes, codes, terms, source_rows, first_row, ids, labels))


#: rows of a unit whose group keys are encoded together (see `_Pending`)
FLUSH_ROWS = 1 << 20


def _unlocated(exc: InvalidInputError) -> InvalidInputError:
    """A `locate` for rows whose metrics' errors were all raised when their terms were made."""
    return exc


class _Pending:
    """Batches of a unit whose rows' groups are not yet known: their group columns and
    metric terms, held until `flush` encodes the group keys of all of them at once (building a
    key costs Python time per distinct value: once per row group, not once per slice)."""

    def __init__(self) -> None:
        self.batches: list[tuple[Any, ...]] = []
        self.rows = 0

    def add(
        self,
        groups: dict[str, pa.Array],
        labels: np.ndarray,
        preds: np.ndarray,
        weights: np.ndarray | None,
        terms: list[Any],
        locate: Callable[[InvalidInputError], InvalidInputError],
        buckets: np.ndarray | None = None,
        observe: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        """A batch's group columns, arrays and terms, and ``locate``: its metrics' errors in
        the file (a metric updated group by group checks its rows only in `flush`); with
        intervals, each row's bucket (the last element of its key), and ``observe``, shown
        the rows' codes once they are known."""
        self.batches.append((groups, labels, preds, weights, terms, locate, buckets, observe))
        self.rows += int(labels.shape[0])

    def flush(self, partial: Partial) -> None:
        if not self.batches:
            return
        batches, self.batches, self.rows = self.batches, [], 0
        columns = {name: _one_array([b[0][name] for b in batches]) for name in batches[0][0]}
        index = partial.index
        groups = index.groups if isinstance(index, CellIndex) else index
        codes = None
        if len(columns) == 1:  # one column of strings or ints: the index's C table numbers them
            (column,) = columns.values()
            codes = groups.codes_of_column(column)
        if codes is None:
            local, keys = group_codes(columns)
            codes = groups.codes_of(keys)[local]
        if batches[0][6] is not None:  # the cells (group, bucket)
            assert isinstance(index, CellIndex)  # the Evaluator's, with intervals and groups
            codes = index.codes_of_cells(codes, np.concatenate([b[6] for b in batches]))
        partial.codes_of([])  # rows counted for every code
        tally = RowTally()  # the rows of all the batches counted at once
        start = 0
        try:
            for _, labels, preds, weights, terms, locate, _, observe in batches:
                end = start + int(labels.shape[0])
                try:  # a metric updated group by group (no row terms) checks its rows here
                    partial.add(labels, preds, weights, codes[start:end], terms, tally)
                except InvalidInputError as exc:
                    raise locate(exc) from None
                if observe is not None:
                    observe(codes[start:end])
                start = end
        finally:
            tally.close()


def _one_array(chunks: list[pa.Array]) -> pa.Array | pa.ChunkedArray:
    """The slices of a group-by column as one column (dictionary-encoded slices, as strings
    are read, with their dictionaries unified rather than decoded). Parquet's reader grows
    one dictionary over a row group's slices when its pages fall back from dictionary to plain
    encoding (many distinct values), so each slice's dictionary is often a prefix of the last
    one's: then the last one serves all, and nothing is hashed."""
    column = pa.chunked_array(chunks)
    if not pa.types.is_dictionary(column.type):
        return column
    last = chunks[-1].dictionary
    if all(_prefix(chunk.dictionary, last) for chunk in chunks[:-1]):
        indices = pa.chunked_array([chunk.indices for chunk in chunks]).combine_chunks()
        return pa.DictionaryArray.from_arrays(indices, last)
    return column.unify_dictionaries()


def _prefix(head: pa.Array, whole: pa.Array) -> bool:
    """Whether ``head`` is ``whole``'s first values."""
    return len(head) <= len(whole) and whole.slice(0, len(head)).equals(head)


class JobRun:
    """One job on the coordinating side, whatever runs its units: plan, resume from a
    checkpoint, merge each unit's state exactly once, save progress, build the result.
    Shared by the local engine and the Dask engine, so both give the same bits."""

    def __init__(
        self,
        job: Job,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: ProgressHook | None = None,
        on_merge: Callable[[Partial], None] | None = None,
        on_start: Callable[[RunStart], None] | None = None,
    ) -> None:
        self.notes: list[str] = []  # about the inputs (`plan`), before the columns' notes
        if job.storage_options:
            use_storage_options(job.storage_options)
        resolved: ResolvedColumns | None
        if job.tables:
            if checkpoint:
                raise ConfigError(NO_CHECKPOINT)
            if job.paths:
                raise ConfigError("give paths or in-memory inputs, not both")
            from ..io.memory import memory_sources, resolve_memory

            sources = memory_sources(job.tables)
            self.units = [unit for source in sources for unit in source.units()]
            resolved = resolve_memory(sources, job.columns)
            where = sources[0].name
        else:
            self.units = plan(job.paths, job.columns, notes=self.notes)
            resolved = resolve_units(self.units, job.columns, job.list_widths)
            if resolved is None:  # files without row groups: no rows, like files of empty ones
                resolved = resolve_paths(job.paths, job.columns)
            if resolved is None:  # no rows at all (e.g. empty directory handled by plan)
                raise InvalidInputError(f"no rows to evaluate in {', '.join(job.paths)}")
            where = self.units[0].display_path if self.units else job.paths[0]
        assert resolved is not None
        self.resolved = resolved
        self.evaluator = Evaluator(job, resolved, where)
        self.settings = job.settings()  # checked now; the inputs are hashed only when needed
        self.total = Partial(self.evaluator.new_metrics, index=self.evaluator.index)
        self.saver: Checkpoint | None = None
        if checkpoint:
            from .checkpoint import Checkpoint

            ci = None
            if job.resampling is not None:
                ci = {"level": job.resampling.level, "replicates": job.resampling.replicates}
            self.saver = Checkpoint(checkpoint, self.identity, files=file_items(self.units), ci=ci)
        self.done: set[str] = self.saver.load_into(self.total, self.units) if self.saver else set()
        if self.saver is not None and self.saver.stdin is not None:
            self._check_stdin(self.saver)
        self.progress, self.on_merge = progress, on_merge
        if progress is not None and self.done:
            progress(self.total.rows + self.total.invalid_rows)
        if on_start is not None:
            new_metrics = self.evaluator.new_metrics
            restored = self.total
            if self.evaluator.resampling is not None:  # the groups, without their buckets
                from .intervals import collapse

                restored = collapse(restored)[0]
            on_start(
                RunStart(tuple(self.units), tuple(self.pending), resolved, new_metrics, restored)
            )

    @functools.cached_property
    def identity(self) -> dict[str, Any]:
        """`Job.identity`: computed when a checkpoint or Dask task keys need it (hashing the
        inputs imports hashlib, ~4 ms of start-up that a plain ``eval`` does without)."""
        return {"inputs": fingerprint(self.units), **self.settings}

    @staticmethod
    def _check_stdin(saver: Checkpoint) -> None:
        """The checkpoint's state holds stdin's rows: read stdin now (without evaluating it) and
        refuse unless it holds the very bytes the checkpoint consumed (stdin has no name, size
        or mtime in the identity: only its content says which data it is)."""
        recorded = saver.stdin
        assert recorded is not None
        now = stdin_digest(drain=True)
        assert now is not None  # draining opened it
        if (now["bytes"], now["sha256"]) != (recorded["bytes"], recorded["sha256"]):
            raise StateError(
                f"{saver.path}: the checkpoint was written for other data on stdin "
                f"({recorded['bytes']:,} bytes, SHA-256 {recorded['sha256'][:16]}...; stdin "
                f"now has {now['bytes']:,} bytes, SHA-256 {now['sha256'][:16]}...); "
                "use another --checkpoint file or delete this one",
                path=str(saver.path),
                field="stdin",
                rule="must match the bytes on stdin",
                value=now,
            )

    @property
    def pending(self) -> list[Unit]:
        """Units not yet merged, in plan order."""
        return [unit for unit in self.units if unit.key not in self.done]

    def finish(self, unit: Unit, part: Partial) -> None:
        """Merge one unit's state (a unit delivered twice, e.g. by a rescheduled task, once)."""
        if unit.key in self.done:
            return
        if unit.path == STDIN and self.saver is not None:  # read whole: say what it held
            read = stdin_digest()
            assert read is not None  # evaluating it opened it
            self.saver.stdin = {**read, "rows": part.rows + part.invalid_rows}
        self.total.merge(part)
        self.done.add(unit.key)
        if unit.path == STDIN and (note := stdin_end_note()) is not None:
            self.notes.append(note)
        if self.on_merge is not None:
            if self.evaluator.resampling is not None:  # the groups, without their buckets
                from .intervals import collapse

                part = collapse(part)[0]
                part.unit_key = unit.key
            self.on_merge(part)
        if self.saver is not None:
            self.saver.save(self.total, self.done)
        if self.progress is not None:
            self.progress(part.rows + part.invalid_rows)
        if self.on_merge is None:  # nothing else holds it
            self.evaluator.recycle(part)

    @contextlib.contextmanager
    def save_finished(self) -> Iterator[None]:
        """On a failure inside (a bad row, Ctrl-C, a lost worker), write the checkpoint with
        every unit finished so far before the error goes on: resuming evaluates the others
        only (the checkpoint is otherwise written at most once a second). A failure to write
        it leaves the first error to be told."""
        try:
            yield
        except BaseException:
            if self.saver is not None:
                with contextlib.suppress(Exception):
                    self.saver.save(self.total, self.done, force=True)
            raise

    @property
    def merges_each_unit(self) -> bool:
        """Whether the total is read as each unit finishes (a checkpoint is written, or a live
        exporter told): then every unit has its own partial, merged when it finishes."""
        return self.saver is not None or self.on_merge is not None

    def absorb(self, partials: Sequence[Partial]) -> None:
        """Merge the threads' partials (`ThreadPartials`) into the total. A total without rows
        (nothing restored, no unit merged) is replaced by the first of them: with 100,000
        groups, merging it into fresh arrays would cost their page faults (10-20 ms)."""
        rest = list(partials)
        if rest and self.total.rows == 0 and self.total.invalid_rows == 0:
            self.total = rest.pop(0)
        for partial in rest:
            self.total.merge(partial)

    def absorb_units(self, units: Sequence[Unit], part: Partial) -> None:
        """Merge ``part``, the state of several units evaluated together (no unit needs its own
        partial: see `merges_each_unit`), and count them done."""
        self.absorb([part])
        self.done.update(unit.key for unit in units)
        if self.progress is not None:
            self.progress(part.rows + part.invalid_rows)

    def counted(self, unit: Unit, rows: int) -> None:
        """A unit evaluated into a thread's partial (`ThreadPartials`), of ``rows`` rows."""
        self.done.add(unit.key)
        if self.progress is not None:
            self.progress(rows)

    def result(self, threads: int | None = None) -> Result:
        """The run's result (its intervals' replicates on ``threads``, default the cores)."""
        if self.saver is not None:
            self.saver.save(self.total, self.done, force=True)
        by = self.resolved.by
        notes = [*self.notes, *self.resolved.notes]
        if self.evaluator.resampling is not None:
            from .intervals import result_with_intervals

            return result_with_intervals(self.total, notes, by, self.evaluator.resampling, threads)
        result: Result = self.total.result(notes, grouped=bool(by), by=by)
        return result


def run_job(
    job: Job,
    *,
    threads: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: ProgressHook | None = None,
    on_merge: Callable[[Partial], None] | None = None,
    on_start: Callable[[RunStart], None] | None = None,
) -> Result:
    """Evaluate ``job`` with a thread pool over its units (see module docstring)."""
    run = JobRun(job, checkpoint, progress, on_merge, on_start)
    run_units(run, threads)
    return run.result(threads)


def run_units(run: JobRun, threads: int | None = None) -> None:
    """Evaluate and merge ``run``'s pending units: stdin first, batch by batch, then the
    others on a pool of ``threads`` (default: the cores). A run that fails saves its
    checkpoint first (`JobRun.save_finished`)."""
    pending = run.pending
    threads = threads or os.cpu_count() or 1
    parallel = [u for u in pending if not u.sequential]
    with run.save_finished():  # (without a checkpoint: nothing to save)
        for unit in (u for u in pending if u.sequential):  # stdin: one pass, batch by batch
            run.finish(unit, run.evaluator.unit_partial(unit))
        if run.merges_each_unit:
            run_pool(parallel, run.evaluator.unit_partial, run.finish, threads)
            return
    partials = ThreadPartials(run.evaluator)
    run_pool(parallel, partials.add, run.counted, threads)
    run.absorb(partials.partials)


class ThreadPartials:
    """One `Partial` per worker thread, which takes every unit the thread evaluates: merged
    into the total once, at the end, not once per unit (with 100,000 groups, a unit's merge
    and the clearing of its partial for the next unit cost ~10 ms)."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.partials: list[Partial] = []
        self._mine = threading.local()

    def add(self, unit: Unit) -> int:
        """Evaluate ``unit`` into this thread's partial: the rows it held (valid or not)."""
        mine: Partial | None = getattr(self._mine, "partial", None)
        before = 0 if mine is None else mine.rows + mine.invalid_rows
        partial = self.evaluator.unit_partial(unit, into=mine)
        if mine is None:  # the thread's first unit: its partial from now on
            partial.unit_key = None
            self._mine.partial = partial
            self.partials.append(partial)
        return partial.rows + partial.invalid_rows - before


_Item = TypeVar("_Item")
_Done = TypeVar("_Done")


def run_pool(
    units: Sequence[_Item],
    work: Callable[[_Item], _Done],
    finish: Callable[[_Item, _Done], None],
    threads: int,
) -> None:
    """``finish(unit, work(unit))`` for every unit: ``work`` on a pool of ``threads``, in
    order of submission (the units' order), at most ``2 * threads`` at a time; ``finish`` in
    the calling thread, in completion order. A failure raises the error of the unit first in
    that order among those that failed (`_raise_first_failure`)."""
    if not units:
        return
    if threads <= 1:
        for unit in units:
            finish(unit, work(unit))
        return
    queue = iter(units)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="streammetric") as pool:
        running: dict[Future[_Done], _Item] = {}

        def submit_next() -> None:
            unit = next(queue, None)
            if unit is not None:
                running[pool.submit(work, unit)] = unit

        for _ in range(threads * 2):  # bounded: memory is about one row group per thread
            submit_next()
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    if future.exception() is not None:
                        _raise_first_failure(running, finish)
                    unit = running.pop(future)
                    finish(unit, future.result())
                    submit_next()
        except BaseException:
            for future in running:
                future.cancel()
            raise


def _raise_first_failure(
    running: dict[Future[_Done], _Item], finish: Callable[[_Item, _Done], None]
) -> None:
    """Raise the error of the failed unit first in plan order, whatever the completion order.

    Units are submitted in plan order, so every unit before a failed one has finished or is
    running: wait for those still running (cancel the rest), ``finish`` those that succeeded
    (a checkpoint keeps them), and raise the earliest failure.
    """
    for future in running:
        future.cancel()
    wait(running)
    for future, unit in running.items():
        if not future.cancelled() and future.exception() is None:
            finish(unit, future.result())
    for future in running:  # insertion order: submission order, i.e. plan order
        if not future.cancelled() and future.exception() is not None:
            future.result()


def evaluate(
    paths: Any,
    metrics: Any = "ce",
    *,
    labels: str | None = None,
    preds: str | Sequence[str] | None = None,
    weights: str | None = None,
    by: str | Sequence[str] | None = (),
    from_logits: bool | None = None,
    convention: str | None = None,
    on_invalid: str = "raise",
    threads: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> Result:
    """Evaluate prediction files (Parquet, Arrow IPC, directories, URIs such as
    ``"s3://bucket/prefix/"``, ``"-"`` for stdin) or data in memory.

    ``paths`` is a path or a list of paths, or an in-memory input or a list of them: a pyarrow
    ``Table``, ``RecordBatch`` or ``RecordBatchReader``, a pandas or polars DataFrame, a DuckDB
    relation or result, anything exporting the Arrow C stream interface (``__arrow_c_stream__``).
    Tables and DataFrames are read in place (slices of their buffers, on ``threads``); a reader
    or stream batch by batch, once: a second evaluation of the same reader is a `ConfigError`.
    Errors name an in-memory input ``<table>`` (``<table N>`` for the N-th of several) where a
    file's path would be, and its rows from 0 in the order given. ``checkpoint`` is refused for
    in-memory inputs. The results are those of the same rows in a file, bit for bit.

    ``metrics`` is a metric spec or a list of them (names, ``"top_k_accuracy:top_k=5"``, config
    dicts). ``labels``, ``preds`` and ``weights`` name the columns (by default the usual names,
    see ``streammetric eval --help``); ``by`` one or more group-by columns (None or ``()``: no
    groups). ``from_logits`` and ``convention`` set those options of every metric that has
    them; ``on_invalid`` is ``"raise"`` (the first bad row is an `InvalidInputError` naming
    file, column and row) or ``"skip"`` (bad rows are counted in ``invalid_rows`` and left
    out); ``threads`` defaults to the cores; ``checkpoint`` is a file the run saves its progress
    to and resumes from; ``storage_options`` are options of the object store of URI paths
    (``{"endpoint_override": "http://127.0.0.1:9000", "region": "eu-west-1"}``: see
    `streammetric.io.storage`; credentials otherwise come from the standard environment).
    Returns a `Result`; ``result.to_dict()`` is the CLI's JSON.
    """
    from ..io.memory import is_in_memory

    tables: list[Any] = []
    path_list: list[str] = []
    if is_in_memory(paths):
        tables = [paths]
    elif isinstance(paths, (str, os.PathLike)):
        path_list = [os.fspath(paths)]
    else:
        try:
            given = list(paths)
        except TypeError:
            given = [paths]
        tables = [p for p in given if is_in_memory(p)]
        if tables and len(tables) != len(given):
            raise ConfigError(
                "give paths or in-memory inputs (tables, DataFrames, readers), not both"
            )
        for other in given:
            if not tables and not isinstance(other, (str, os.PathLike)):
                if not isinstance(paths, (list, tuple)):  # e.g. an array: itself, not its items
                    other = paths
                raise ConfigError(
                    f"a {type(other).__module__}.{type(other).__name__} is not an input (give "
                    "a path, a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or "
                    "polars DataFrame, or an object with __arrow_c_stream__)"
                )
        path_list = [] if tables else [os.fspath(p) for p in given]
    if tables and checkpoint is not None:
        raise ConfigError(NO_CHECKPOINT)
    from ..metrics.specs import distinct_names

    metric_list = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    if not metric_list:  # the CLI computes ce without -m; an empty list would compute nothing
        raise ConfigError(f"`metrics` must name at least one metric, got {metrics!r}")
    if threads is not None:  # 0 would silently mean the cores (`run_units`), < 0 nothing
        import operator

        try:
            count = None if isinstance(threads, bool) else operator.index(threads)
        except TypeError:
            count = None
        if count is None or count < 1:
            raise ConfigError(f"`threads` must be an int >= 1 (None: the cores), got {threads!r}")
        threads = count
    defaults: dict[str, Any] = {}
    if convention is not None:
        defaults["convention"] = convention
    if from_logits is not None:
        defaults["from_logits"] = from_logits
    by_columns = tuple([by] if isinstance(by, str) else by or ())
    if len(set(by_columns)) != len(by_columns):
        raise ConfigError(f"`by` names a column twice, got {list(by_columns)!r}")
    job = Job(
        paths=path_list,
        metrics=distinct_names(list(metric_list), defaults),
        columns=ColumnSpec(
            labels=labels,
            preds=preds if preds is None or isinstance(preds, str) else tuple(preds),
            weights=weights,
            by=by_columns,
            from_logits=from_logits,
        ),
        on_invalid=on_invalid,
        metric_defaults=defaults,
        storage_options=dict(storage_options or {}),
        tables=tables,
    )
    return run_job(job, threads=threads, checkpoint=checkpoint)
