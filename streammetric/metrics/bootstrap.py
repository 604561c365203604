"""Bootstrap intervals from bucketed metric states: the `Resampling` settings, the replicate
values of any grouped state whose groups are (group, bucket) cells, and `Bootstrap`, the wrapper
that gives a metric object intervals in an eval loop.

Rows are hashed into `BUCKETS` buckets by their identity (`streammetric.functional.resample`);
each metric keeps one exact state per bucket; replicate ``r``'s state is the buckets' states
added with Poisson(1) weights ``W[r, bucket]``. The interval is the percentile interval of the
replicates' values. The buckets' states are exact, so the replicates, and so the intervals, are
the same bits whatever the batching, order, threads or merge tree, and the value itself (all
buckets added) is the metric's value without intervals, bit for bit.

>>> import numpy as np
>>> from streammetric import Accuracy
>>> rng = np.random.default_rng(0)
>>> labels = rng.integers(0, 2, 500)
>>> preds = np.eye(2)[np.where(rng.random(500) < 0.8, labels, 1 - labels)]
>>> boot = Bootstrap(Accuracy(), replicates=200, seed=1)
>>> boot.update(labels, preds)
>>> boot.get() == Accuracy().update(labels, preds).get()
True
>>> name, lower, upper = boot.get_interval()
>>> name, bool(lower < boot.get()[1] < upper), bool(upper - lower < 0.1)
('accuracy', True, True)
"""

from __future__ import annotations

import collections
import copy
import functools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._exceptions import ConfigError, InvalidInputError, StateError
from ..functional.resample import (
    BUCKETS,
    DEFAULT_REPLICATES,
    buckets_of,
    hash_ids,
    hash_positions,
    percentile_interval,
    poisson_weights,
)
from ._ids import as_ids
from ._inputs import as_pairs
from .base import EvalMetric
from .batch import BatchStats
from .state import GroupedState

__all__ = ["Bootstrap", "Resampling", "replicate_values"]

#: the method reported in results (``"ci": {"method": ...}``)
METHOD = "percentile bootstrap (Poisson weights over 1024 hashed buckets of rows)"
#: replicate values computed at once at most (groups x replicates): bounds the memory of
#: intervals over many groups
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Resampling:
    """How intervals are made: the confidence ``level`` (e.g. 0.95), the number of bootstrap
    ``replicates`` and the ``seed`` of the rows' weights."""

    level: float = 0.95
    replicates: int = DEFAULT_REPLICATES
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kinds in (("level", (int, float)), ("replicates", (int,)), ("seed", (int,))):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (*kinds, np.integer)):
                kind = "a number" if name == "level" else "an int"
                raise ConfigError(f"`{name}` must be {kind}, got {value!r}")
        if not 0 < self.level < 1:
            raise ConfigError(f"the confidence level must be in (0, 1), not {self.level}")
        if not 1 <= self.replicates <= 100_000:
            raise ConfigError(f"replicates must be in 1..100000, not {self.replicates}")
        if not 0 <= self.seed < 1 << 64:
            raise ConfigError(f"the seed must be an int in 0..2**64-1, not {self.seed}")

    @functools.cached_property
    def weights(self) -> np.ndarray:
        """Replicate ``r``'s weight of bucket ``k``, ``[r, k]``."""
        return poisson_weights(self.seed, self.replicates)

    def header(self) -> dict[str, Any]:
        """The ``"ci"`` object of a result."""
        return {
            "level": self.level,
            "replicates": self.replicates,
            "seed": self.seed,
            "method": METHOD,
        }


def leaf_values(
    leaf: EvalMetric, state: GroupedState, like: list[tuple[str, Any]] | None = None
) -> dict[str, np.ndarray]:
    """Every group's values of one metric (name -> array, groups first): `group_arrays`, or
    each group's state alone (with ``like``, the pairs of the run's total, per-class values
    with the run's classes: `EvalMetric.widen`)."""
    values = leaf.group_arrays(state, like)
    if values is not None:
        return values
    per_group = [leaf.name_values(state.state(code), like) for code in range(state.size)]
    names = [str(name) for name, _ in per_group[0]] if per_group else []
    return {
        name: np.array([np.asarray(pairs[i][1], dtype=np.float64) for pairs in per_group])
        for i, name in enumerate(names)
    }


def replicate_values(
    leaves: Sequence[EvalMetric],
    states: Sequence[GroupedState],
    cell_groups: np.ndarray,
    cell_buckets: np.ndarray,
    resampling: Resampling,
    threads: int | None = None,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Replicate values of grouped states whose group code ``c`` is a cell: the rows of group
    ``cell_groups[c]`` in bucket ``cell_buckets[c]`` (-1: no rows, left out). Yields, a few
    groups at a time, ``(groups, values)``: the group codes, and each metric value name ->
    ``(len(groups), replicates, ...)`` array. The chunks of groups run on ``threads`` (default:
    the cores); the values are the same bits whatever their number."""
    weights = resampling.weights
    replicates, buckets = weights.shape
    cells = np.flatnonzero(cell_groups >= 0)
    if not cells.shape[0]:  # no rows: no group has replicates
        return
    pairs = cell_groups[cells] * buckets + cell_buckets[cells]
    unique, inverse = np.unique(pairs, return_inverse=True)
    if unique.shape[0] < cells.shape[0]:  # cells of one (group, bucket): added first, exactly
        mapping = np.full(cell_groups.shape[0], unique.shape[0], dtype=np.int64)  # the rest
        mapping[cells] = inverse
        merged = []
        for state in states:
            one = GroupedState(state.specs)
            one.merge(state, mapping[: state.size])
            merged.append(one)
        states = merged
        cell_groups, cell_buckets = unique // buckets, unique % buckets
        cells = np.arange(unique.shape[0])
    likes = [leaf.name_values(state.total()) for leaf, state in zip(leaves, states, strict=True)]
    order = cells[np.argsort(cell_groups[cells], kind="stable")]
    groups_sorted = cell_groups[order]
    starts = np.flatnonzero(np.r_[True, groups_sorted[1:] != groups_sorted[:-1]])
    cores = threads or os.cpu_count() or 1  # a chunk per thread, when there are groups enough
    per_chunk = max(1, min(_CHUNK // max(replicates, buckets), -(-starts.shape[0] // cores)))

    def chunk(first: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        chunk_starts = starts[first : first + per_chunk]
        end = starts[first + per_chunk] if first + per_chunk < starts.shape[0] else order.shape[0]
        chunk_cells = order[chunk_starts[0] : end]
        groups = groups_sorted[chunk_starts]
        local = np.searchsorted(groups, cell_groups[chunk_cells])  # 0 .. len(groups) - 1
        values: dict[str, np.ndarray] = {}
        products: dict[bytes, np.ndarray] = {}  # the chunk's whole products, by their cells
        for leaf, state, like in zip(leaves, states, likes, strict=True):
            replicated = state.replicated(
                chunk_cells, local, cell_buckets[chunk_cells], weights, products
            )
            for name, array in leaf_values(leaf, replicated, like).items():
                values[name] = array.reshape(groups.shape[0], replicates, *array.shape[1:])
        return groups, values

    firsts = range(0, starts.shape[0], per_chunk)
    workers = min(len(firsts), cores)
    if workers < 2:
        yield from map(chunk, firsts)
        return
    for state in states:  # read, never written, by the chunks' threads
        state._settle()
    # chunks on a thread per core (the matrix products and the C sums release the GIL), at
    # most one ahead per thread (each holds ~_CHUNK replicates' states), yielded in order
    with ThreadPoolExecutor(workers, thread_name_prefix="streammetric-replicates") as pool:
        running: collections.deque[Future[tuple[np.ndarray, dict[str, np.ndarray]]]]
        running = collections.deque()
        for first in firsts:
            running.append(pool.submit(chunk, first))
            if len(running) >= workers:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()


def intervals(
    values: dict[str, np.ndarray], level: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each name's percentile interval over the replicates (axis 1 of ``(groups, replicates,
    ...)`` arrays): ``(lower, upper)``, each ``(groups, ...)``."""
    return {
        name: percentile_interval(np.moveaxis(array, 1, -1), level)
        for name, array in values.items()
    }


class Bootstrap:
    """A metric with bootstrap intervals, for eval loops: ``update`` as the metric's own,
    ``get()`` the metric's value (the same bits as the metric updated alone), and
    ``get_interval()`` its ``(name, lower, upper)`` at ``level``.

    A row's weight in each replicate depends only on (``seed``, its identity, the replicate):
    its identity is its ``sample_ids`` value when ``update`` is given ids (integers or
    strings; then the intervals are the same bits whatever the batching or order of the rows),
    else its position in the rows this object has seen (then they depend on the order of the
    rows). ``merge`` adds another `Bootstrap`'s state (e.g. another rank's), exactly;
    `streammetric.distributed.sync` merges every rank's. Unlike a metric's ``update``, a
    repeated id here is a row counted again, not dropped (a ``DistributedSampler``'s padding
    counts twice)."""

    def __init__(
        self,
        metric: EvalMetric,
        *,
        level: float = 0.95,
        replicates: int = DEFAULT_REPLICATES,
        seed: int = 0,
    ) -> None:
        self.metric = metric
        self.resampling = Resampling(level, replicates, seed)
        children = getattr(metric, "metrics", None)
        self.leaves: list[EvalMetric] = list(children) if children is not None else [metric]
        for leaf in self.leaves:
            if not leaf.sums_rows():
                raise ConfigError(
                    f"{leaf.name}: its state is not a sum over rows, so it has no bootstrap "
                    "intervals from bucket states"
                )
        self.reset()

    def reset(self) -> None:
        self.states = [GroupedState(leaf.state_specs()) for leaf in self.leaves]
        self.num_rows = 0
        self._synced = False  # streammetric.distributed.sync gave it every rank's rows

    def update(
        self,
        labels: Any,
        preds: Any,
        sample_weight: Any = None,
        *,
        sample_ids: Any = None,
    ) -> None:
        """Add a batch as the metric's ``update`` takes it (arrays, or lists of arrays paired
        element-wise: every pair's terms are computed before any is added); ``sample_ids``: one
        id per row of one pair (the rows' identity for the resampling)."""
        pairs = list(as_pairs(labels, preds, sample_weight))
        if sample_ids is not None and len(pairs) != 1:
            raise InvalidInputError.bad_argument(
                "sample_ids",
                "takes one array of labels and one of preds, not lists of them",
                f"{len(pairs)} pairs",
            )
        added = []
        for label, pred, weight in pairs:
            batch = BatchStats.of(label, pred, weight, self.leaves)
            rows = int(label.shape[0]) if label.ndim else 1
            added.append(([leaf.batch_terms(batch) for leaf in self.leaves], rows))
        for terms, rows in added:
            if sample_ids is None:
                positions = np.arange(self.num_rows, self.num_rows + rows)
                hashes = hash_positions("", positions, self.seed)
            else:  # the ids a metric's update takes, the same ids (uint64 ones beyond int64 too)
                hashes = hash_ids(as_ids(sample_ids, rows, beyond_int64=True), self.seed)
            codes = buckets_of(hashes)
            for state, leaf_terms in zip(self.states, terms, strict=True):
                assert leaf_terms is not None  # every leaf sums rows (checked when made)
                state.add(leaf_terms, codes, BUCKETS)
            self.num_rows += rows

    @property
    def seed(self) -> int:
        return self.resampling.seed

    def merge(self, other: Bootstrap) -> Bootstrap:
        """Add ``other``'s rows (same metric and resampling), exactly; returns ``self``."""
        if not isinstance(other, Bootstrap):
            raise StateError(f"`other` must be a Bootstrap, got {type(other).__name__}")
        if other.resampling != self.resampling:
            raise ConfigError("only bootstraps of one level, replicates and seed merge")
        self.metric._check_config(other.metric._state_config(), "other.metric")  # StateError
        for mine, theirs in zip(self.states, other.states, strict=True):
            mine.merge(theirs)
        self.num_rows += other.num_rows
        return self

    def _total(self) -> EvalMetric:
        """A copy of the metric holding every bucket's rows (exactly: the state it would have
        had updated with them)."""
        metric = copy.deepcopy(self.metric)
        metric.reset()
        children = getattr(metric, "metrics", None)
        for leaf, state in zip(
            list(children) if children is not None else [metric], self.states, strict=True
        ):
            leaf._local = state.total()
        return metric

    def get(self) -> tuple[Any, Any]:
        """The metric's ``get()`` over every row."""
        return self._total().get()

    def get_interval(self) -> tuple[Any, Any, Any]:
        """``(name, lower, upper)`` (lists for a composite metric, as ``get()``)."""
        cells = np.arange(BUCKETS)
        size = max(state.size for state in self.states)
        cell_groups = np.where(cells < size, 0, -1)
        values: dict[str, np.ndarray] = {}
        for _, chunk in replicate_values(
            self.leaves, self.states, cell_groups, cells, self.resampling
        ):
            values.update(chunk)
        names, value = self.get()
        bounds = intervals(values, self.resampling.level)
        listed = names if isinstance(names, list) else [names]
        values_listed = value if isinstance(names, list) else [value]
        lower, upper = [], []
        for name, one in zip(listed, values_listed, strict=True):
            if str(name) in bounds:
                lower.append(_one(bounds[str(name)][0]))
                upper.append(_one(bounds[str(name)][1]))
            else:  # no rows: NaN, as the value
                missing = float("nan") if np.ndim(one) == 0 else np.full(np.shape(one), np.nan)
                lower.append(missing)
                upper.append(missing)
        if isinstance(names, list):
            return names, lower, upper
        return names, lower[0], upper[0]


def _one(array: np.ndarray) -> Any:
    """A group's bound as ``get()`` gives values: a float, or an array per class."""
    value = array[0]
    return float(value) if np.ndim(value) == 0 else value
