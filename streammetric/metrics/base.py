"""`EvalMetric`: the MXNet-1.x-style base class, with exact, declared, mergeable state.

A metric declares its state once (``_add_state``) as exact sums (:class:`ExactSum`), Python int
counts, or integer count arrays. The base class then provides everything generic: reset and
reset_local, the global view, state_dict / load_state_dict (JSON, exact), merge, pickling, config.

Each metric object has a lock (an ``RLock``, not pickled or copied): ``update``, ``reset``,
``reset_local``, ``get``, ``state_dict``, ``load_state_dict`` and the rest of the API take it
(`_LOCKED`, also in subclasses that override them), so threads may share one metric object.
``merge`` copies the other metric's state under the other's lock, then folds it in under its own,
so ``a.merge(b)`` and ``b.merge(a)`` in two threads cannot deadlock.

Two copies of the state are kept: ``local`` (since the last ``reset_local``) and ``past`` (what
earlier local windows saw). The global state is their merge, so an update touches one state only.

``value_notes()`` says why the global value is inf or NaN, or differs from the exact one
(`ValueNote`); ``streammetric eval`` condenses them over groups into its notes on stderr.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._exceptions import ConfigError, InvalidInputError, StateError
from ._ids import IdRows, as_ids
from ._inputs import as_pairs
from ._options import check_bool, check_names
from .batch import BatchStats
from .state import (
    ROWS,
    GroupedState,
    Spec,
    State,
    Terms,
    dump_entry,
    fold,
    fresh,
    fresh_state,
    load_entry,
    merge_states,
    merge_value,
)

if TYPE_CHECKING:
    from .batch import Stat

__all__ = ["EvalMetric", "ValueNote", "fixed", "outcome_of", "plural"]

STATE_VERSION = 1
#: `update`'s ``sample_ids`` for rows already filtered by id (`EvalMetric._update_once_per_id`)
_COUNTED: Any = object()
# the state's building blocks, under the names this module has always had
_fresh, _merge_value, _dump, _load, _Spec = fresh, merge_value, dump_entry, load_entry, Spec


#: The methods and properties that run under the metric's lock (in every subclass that defines
#: them). ``merge`` is not among them: it takes the locks itself (see the module docstring).
_LOCKED = (
    "update",
    "update_dict",
    "reset",
    "reset_local",
    "get",
    "get_global",
    "get_name_value",
    "get_global_name_value",
    "value_notes",
    "diagnostics",
    "get_bound",
    "get_global_bound",
    "state_dict",
    "load_state_dict",
    "copy",
    "num_inst",
    "global_num_inst",
    "sum_metric",
    "global_sum_metric",
)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` run while holding ``self._lock`` (re-entrant: it may call other locked ones)."""
    if getattr(method, "_streammetric_locked", False):
        return method

    @functools.wraps(method)
    def locked(self: EvalMetric, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    locked._streammetric_locked = True  # type: ignore[attr-defined]
    return locked


def _lock_methods(cls: type) -> None:
    for name in _LOCKED:
        member = cls.__dict__.get(name)
        if isinstance(member, property) and member.fget is not None:
            setattr(
                cls, name, property(_locked(member.fget), member.fset, member.fdel, member.__doc__)
            )
        elif callable(member):
            setattr(cls, name, _locked(member))


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``plural(1, "row")`` -> ``"1 row"``, ``plural(1200, "row")`` -> ``"1,200 rows"``."""
    return f"{count:,} {noun if count == 1 else (plural_noun or noun + 's')}"


def outcome_of(value: float) -> tuple[str, str]:
    """What a non-finite value is, said of one metric and of several: ``("is inf", "are inf")``."""
    text = "nan" if math.isnan(value) else str(value)
    return f"is {text}", f"are {text}"


def fixed(text: str) -> Callable[[tuple[int, ...]], str]:
    """A `ValueNote` reason that counts nothing."""
    return lambda counts: text


@dataclass(frozen=True)
class ValueNote:
    """Why a metric's value is inf or NaN, or not the exact value: one cause, with its counts.

    ``render(counts)`` words the reason (so counts summed over groups can be worded again);
    notes of one metric and ``cause`` in several groups condense into one (see
    `streammetric.engine.notes`).

    >>> note = ValueNote("cross-entropy", "p_zero", outcome_of(math.inf), (2,),
    ...                  lambda c: f"{plural(c[0], 'row')} give probability 0 to their true class")
    >>> note.text()
    'cross-entropy is inf: 2 rows give probability 0 to their true class'
    """

    metric: str  # the value's name in results ("cross-entropy")
    cause: str  # a key: "p_zero", "guard", "no_rows", "constant_labels", ...
    outcome: tuple[str, str]  # e.g. ("is inf", "are inf"); one metric, several metrics
    counts: tuple[int, ...] = ()  # what the reason counts (rows, values), summed over groups
    render: Callable[[tuple[int, ...]], str] = field(default=fixed(""), compare=False, repr=False)
    hint: str = ""  # what to do about it, if anything

    @property
    def reason(self) -> str:
        return self.render(self.counts)

    def text(self) -> str:
        """``"METRIC OUTCOME: REASON; HINT"``."""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.metric} {self.outcome[0]}: {self.reason}{hint}"


def _mxnet_shim(cls: type[EvalMetric]) -> None:
    """Let ``cls`` take MXNet's positional arguments though its constructor takes keywords only.

    The constructor is the class's own ``__init__`` or, for a class without one (its arguments
    are MXNet's three), `_common_init` with the class's `EvalMetric.default_name`. Calls pass
    through as they are unless they give positional arguments, which become the keywords
    `EvalMetric.mxnet_positional` names, in its order. ``inspect.signature(cls)`` shows
    `_shown_signature`.
    """
    init: Callable[..., None] = getattr(cls.__init__, "_keyword_init", cls.__init__)
    if init is EvalMetric.__init__:  # no constructor of its own
        init = _common_init
    order = cls.mxnet_positional or ()
    signature = _shown_signature(cls, init)
    unknown = [key for key in order if key not in signature.parameters]
    if unknown:
        raise TypeError(f"{cls.__name__}.mxnet_positional names no argument {unknown}")

    @functools.wraps(init)
    def __init__(self: EvalMetric, *args: Any, **kwargs: Any) -> None:
        if args:
            kwargs = _as_keywords(type(self).__name__, order, args, kwargs)
        init(self, **kwargs)

    __init__._keyword_init = init  # type: ignore[attr-defined]
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[method-assign]


def _shown_signature(cls: type[EvalMetric], init: Callable[..., None]) -> inspect.Signature:
    """The constructor's signature as ``inspect.signature(cls)`` shows it, so that it lists
    the real arguments:

    - a constructor that takes its own keywords and passes ``**options`` on to its base
      class's keyword-only constructor (FBeta's ``beta``) shows its own, then the base's;
    - ``name=None`` shows as the class's `EvalMetric.default_name`, the name
      `EvalMetric.__init__` gives a metric given none.
    """
    signature = inspect.signature(init)
    parameters = list(signature.parameters.values())  # with self
    if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
        base = list(inspect.signature(super(cls, cls).__init__).parameters.values())[1:]
        if base and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in base):
            own = {p.name for p in parameters}
            parameters = parameters[:-1] + [p for p in base if p.name not in own]
    if cls.default_name is not None:
        parameters = [
            p.replace(default=cls.default_name, annotation="str")
            if p.name == "name" and p.default is None
            else p
            for p in parameters
        ]
    return signature.replace(parameters=parameters)


def _as_keywords(
    klass: str, order: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Positional arguments as the keywords ``order`` names (MXNet's order of a class's)."""
    if len(args) > len(order):
        if not order:
            raise ConfigError(
                f"{klass} takes keyword arguments only, got {plural(len(args), 'positional argument')}"
            )
        raise ConfigError(
            f"{klass} takes at most {plural(len(order), 'positional argument')} ({', '.join(order)}:"
            f" MXNet's order), got {len(args)}; give the others by keyword"
        )
    given = dict(zip(order, args, strict=False))
    for key in given:
        if key in kwargs:
            raise ConfigError(f"{klass} got `{key}` both by position and by keyword")
    return {**given, **kwargs}


def _common_init(
    self: EvalMetric,
    *,
    name: str | None = None,
    output_names: list[str] | None = None,
    label_names: list[str] | None = None,
) -> None:
    """The constructor of a metric class that has none of its own: MXNet's three arguments,
    ``name`` by default the class's `EvalMetric.default_name`."""
    EvalMetric.__init__(self, name, output_names, label_names)


class _Locked:
    """Gives each object a lock before any ``__init__`` code runs (and objects unpickled or
    copied, which are made by ``__new__`` and then get a ``__dict__`` without the lock). A base
    class of its own, so that ``inspect.signature`` of a metric class is its ``__init__``'s."""

    _lock: Any  # threading.RLock

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__new__(cls)
        obj._lock = threading.RLock()
        return obj


class EvalMetric(_Locked):
    """Base class of every metric: ``update(labels, preds)``, ``get()``, local and global state.

    Subclasses declare state in ``_init_states`` with ``self._add_state(name, kind)`` (kind
    ``"sum"``, ``"count"`` or ``"counts"``), fold one (label, pred, weight) array triple into a
    state in ``_update_state``, and compute the value from a state in ``_compute``. A subclass
    whose only arguments are these three needs no constructor: ``default_name = "mae"`` gives it
    a keyword-only one (see `mxnet_positional` for MXNet's positional calls).

    Parameters
    ----------
    name : str, optional
        The name ``get()`` reports the value under; by default the class's `default_name`
        (required when the class has none, as for a direct subclass written for MXNet).
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts, in order (None:
        every value, in the dict's order).
    **kwargs
        ``has_global_stats`` (default True; False: ``get_global()`` is ``get()``, no state is
        kept beyond the local window, as MXNet's), and a subclass's options, which `get_config`
        writes.
    """

    higher_is_better: ClassVar[bool | None] = None
    #: the name :func:`streammetric.create` knows the class by (set by ``register``)
    registered_name: ClassVar[str | None] = None
    #: the statistics of a batch this metric reads from its `BatchStats` (in `_batch_terms`),
    #: which the batch computes once for all its metrics (`streammetric.metrics.batch`)
    batch_stats: ClassVar[frozenset[Stat]] = frozenset()
    #: MXNet's ``has_global_stats`` (an instance attribute once constructed)
    _has_global_stats: bool = True
    #: config keys that earlier versions wrote though the constructor does not take them, with
    #: the value they always had; a config or state of such a version still fits (see `_upgraded`)
    retired_options: ClassVar[dict[str, Any]] = {}
    #: MXNet 1.9.1's positional order of the class's arguments (``("eps", "name",
    #: "output_names", "label_names")`` for CrossEntropy; ``()``: none, the class is not
    #: MXNet's). A class that declares it, or `default_name`, has a keyword-only constructor
    #: and still takes MXNet code's positional calls, mapped to those keywords (one shim, here:
    #: `_mxnet_shim`); any other class takes its ``__init__``'s own signature, as this one.
    mxnet_positional: ClassVar[tuple[str, ...]] = ("name", "output_names", "label_names")
    #: the ``name`` of a metric of a class without a constructor of its own, when none is given
    default_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _lock_methods(cls)  # a subclass's own update, get, ... take the lock too
        if "mxnet_positional" in cls.__dict__ or "default_name" in cls.__dict__:
            _mxnet_shim(cls)

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:  # a consistent copy, though threads keep updating
            state = self.__dict__.copy()
            if "_local" in state and "_past" in state:
                state["_local"], state["_past"] = self._snapshot()
        state.pop("_lock", None)  # a lock cannot be pickled, and a copy needs its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __init__(
        self,
        name: str | None = None,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if name is None:
            name = type(self).default_name
        if name is None:
            raise ConfigError(f"{type(self).__name__} needs a `name` (it has no default_name)")
        self.name = str(name)
        self.output_names = check_names(output_names, "output_names")
        self.label_names = check_names(label_names, "label_names")
        # As MXNet 1.x: taken out of the config (PCC, which has it as an argument, puts it back).
        # False: get_global() is get() (no state beyond the local window). MXNet's base class
        # defaults to False, but every built-in metric of MXNet and streammetric keeps global stats.
        self._has_global_stats = check_bool(
            kwargs.pop("has_global_stats", True), "has_global_stats"
        )
        self._kwargs = kwargs
        self._kinds: dict[str, str] = {}
        self._specs: dict[str, Spec] = {}
        self._init_states()
        self._local: State = self._fresh_state()
        self._past: State = self._fresh_state()

    # -- state declaration -------------------------------------------------------------------
    #: whether the default state's ``sum_metric`` may be negative (the loss values of `Loss`
    #: may; absolute and squared errors, hits and Brier terms may not)
    _signed_sum_metric: ClassVar[bool] = False

    def _init_states(self) -> None:
        """Declare state with ``_add_state``. Default: a weighted mean's sums and a count."""
        self._add_state("sum_metric", "sum", nonnegative=not self._signed_sum_metric)
        self._add_state("sum_weight", "sum")  # sample weights are >= 0
        self._add_state("num_inst", "count")

    def _add_state(
        self, name: str, kind: str, *, nonnegative: bool = True, size: int | None = None
    ) -> None:
        """Declare a state entry. ``nonnegative`` (sums): every term is >= 0, so a loaded
        state with a negative sum is refused; ``size`` (count arrays): their length once
        grown (they start empty). Counts are always ints >= 0."""
        _fresh(kind)  # validates the kind
        self._kinds[name] = kind
        self._specs[name] = _Spec(kind, nonnegative, size)

    def _state_problem(self, state: State) -> tuple[str, str, Any] | None:
        """``(entry, rule, value)`` when a loaded state's entries disagree with each other
        (each was checked alone already); None when they agree. Subclasses with such rules
        override it."""
        return None

    def _fresh_state(self) -> State:
        return fresh_state(self._specs)

    def _merged(self, a: State, b: State) -> State:
        return merge_states(self._specs, a, b)

    # -- the MXNet API -----------------------------------------------------------------------
    def update(
        self, labels: Any, preds: Any, sample_weight: Any = None, *, sample_ids: Any = None
    ) -> EvalMetric:
        """Fold a batch (arrays, or lists of arrays paired element-wise) into the state.

        ``sample_ids``: one id per row (integers or strings; one array of labels and one of
        preds): a row whose id was counted before, since the last ``reset()``, is not counted
        again (`streammetric.metrics._ids`: the metric keeps its ids and rows, so that
        `streammetric.distributed.sync` drops ids repeated on other ranks too). Once an update
        had ids, every update until ``reset()`` needs them."""
        with self._lock:  # taken here, not by a `_locked` wrapper: the hot path of small batches
            if (sample_ids is not None or self._id_rows is not None) and (
                sample_ids is not _COUNTED
            ):
                self._update_once_per_id(labels, preds, sample_weight, sample_ids)
                return self
            if (
                sample_weight is None
                and type(labels) is np.ndarray
                and type(preds) is np.ndarray
                and preds.dtype.isbuiltin != 2  # ml_dtypes' bfloat16, ...: as_pairs widens it
                and labels.dtype.isbuiltin != 2
            ):
                self._update_state(self._local, labels, preds, None)  # as_pairs' one pair
                return self
            pairs = list(as_pairs(labels, preds, sample_weight))  # each converted and paired
            if len(pairs) == 1:
                self._update_state(self._local, *pairs[0])
                return self
            # several pairs: every pair's terms before any is folded, so that a pair refused
            # adds nothing of the others (a metric with a fold of its own: undone)
            batches = [BatchStats(label, pred, weight, (self,)) for label, pred, weight in pairs]
            terms = self._batches_terms(batches)
            if terms is not None:
                self._fold_batches(batches, terms)
                return self
            before = self._merged(self._fresh_state(), self._local)
            try:
                for label, pred, weight in pairs:
                    self._update_state(self._local, label, pred, weight)
            except BaseException:
                self._local = before
                raise
            return self

    def _update_once_per_id(
        self, labels: Any, preds: Any, sample_weight: Any, sample_ids: Any
    ) -> None:
        """`update` with ``sample_ids``: the rows of new ids only, recorded once counted."""
        label, pred, weight, ids, ledger = self._new_id_rows(
            labels, preds, sample_weight, sample_ids
        )
        self.update(label, pred, weight, sample_ids=_COUNTED)  # the class's own update
        ledger.add(ids, label, pred, weight)
        self._id_rows = ledger

    def _new_id_rows(
        self, labels: Any, preds: Any, sample_weight: Any, sample_ids: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, IdRows]:
        """The rows of ``sample_ids`` not counted yet (copies), their ids, and the ledger."""
        if sample_ids is None:
            rule = "must be given to every update once one had them (until reset())"
            raise InvalidInputError(f"`sample_ids` {rule}", argument="sample_ids", rule=rule)
        pairs = list(as_pairs(labels, preds, sample_weight))
        if len(pairs) != 1:
            raise InvalidInputError.bad_argument(
                "sample_ids",
                "takes one array of labels and one of preds, not lists of them",
                f"{len(pairs)} pairs",
            )
        label, pred, weight = pairs[0]
        rows = _num_rows(label, pred)
        for array, what in ((label, "labels"), (pred, "preds")):
            if array.ndim == 0 or array.shape[0] != rows:
                raise InvalidInputError.bad_argument(
                    what, f"must have one row per id ({rows} rows)", f"shape {array.shape}"
                )
        ids = as_ids(sample_ids, rows)
        ledger = self._id_rows
        if ledger is None:
            if self._holds_rows():
                rule = "must be given from the first update after reset()"
                why = (
                    "this metric holds every rank's rows since a sync"
                    if self._synced
                    else "its rows came from load_state_dict, and a state_dict keeps no ids "
                    "(pickle the metric to keep them)"
                    if self._loaded
                    else "this metric has counted rows without ids"
                )
                raise InvalidInputError(
                    f"`sample_ids` {rule}: {why}",
                    argument="sample_ids",
                    rule=rule,
                )
            ledger = IdRows()
        keep = ledger.new_rows(ids)
        return (
            label[keep],
            pred[keep],
            None if weight is None else weight[keep],
            ids[keep],
            ledger,
        )

    update._streammetric_locked = True  # type: ignore[attr-defined]
    #: the ids counted and their rows, once an update had ``sample_ids`` (until ``reset()``)
    _id_rows: IdRows | None = None
    #: whether `streammetric.distributed.sync` gave it every rank's rows (until ``reset()``)
    _synced: bool = False
    #: whether the rows came from `load_state_dict` (which keeps no `sample_ids`)
    _loaded: bool = False

    def _update_state(
        self, state: State, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> None:
        """Fold one (label, pred, weight) triple into ``state``: by default, what `_row_terms`
        says each row adds (`_batch_terms` of a `BatchStats` of its own for a metric that
        declares `batch_stats`)."""
        if self.batch_stats:
            terms = self._batch_terms(BatchStats(label, pred, weight, (self,)))
        else:
            terms = self._row_terms(label, pred, weight)
        if terms is None:
            raise NotImplementedError(
                f"{type(self).__name__} defines neither _row_terms nor _update_state"
            )
        rows = pred.shape[0] if type(pred) is np.ndarray and pred.ndim else _num_rows(label, pred)
        fold(state, self._specs, terms, rows)

    def _row_terms(
        self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> Terms | None:
        """What each row of a batch adds to each state entry (`streammetric.metrics.state`),
        checked as ``update`` checks it (an invalid row raises `InvalidInputError`); None for
        a metric whose state is not a sum over its rows (then groups go through
        ``_update_state`` one by one). A metric that declares `batch_stats` defines
        `_batch_terms` instead."""
        return None

    def _batch_terms(self, batch: BatchStats) -> Terms | None:
        """`_row_terms` of ``batch`` (its ``labels``, ``preds`` and ``weights``). A metric that
        declares `batch_stats` defines this instead and reads them from ``batch``, which
        computes them once for every metric that reads it: a lone ``update()`` makes one
        for its metric, a composite's update and the engine one for all theirs."""
        return self._row_terms(batch.labels, batch.preds, batch.weights)

    def batch_terms(self, batch: BatchStats) -> Terms | None:
        """`row_terms` of a batch made by ``BatchStats.of`` for every metric that reads it
        (the engine's leaves), which share its statistics."""
        return self._batch_terms(batch)

    def _update_batches(self, batches: list[BatchStats]) -> None:
        """Fold batches made for a composite's metrics into the local state (``update``'s
        work, the statistics shared with the siblings), all or none of them."""
        with self._lock:
            terms = self._batches_terms(batches)
            if terms is not None:
                self._fold_batches(batches, terms)
                return
            before = self._merged(self._fresh_state(), self._local)  # its own fold: undone
            try:
                for batch in batches:
                    self._update_state(self._local, batch.labels, batch.preds, batch.weights)
            except BaseException:
                self._local = before
                raise

    def _copy_local(self) -> Any:
        """A copy of the local state: `_restore_local` puts it back (an update undone)."""
        with self._lock:
            return self._merged(self._fresh_state(), self._local)

    def _restore_local(self, local: Any) -> None:
        with self._lock:
            self._local = local

    def _batches_terms(self, batches: list[BatchStats]) -> list[Terms] | None:
        """Each batch's terms, checked (an invalid row raises before anything is folded);
        None for a metric with a fold of its own (``_update_state``)."""
        if type(self)._update_state is not EvalMetric._update_state:
            return None
        out = []
        for batch in batches:
            terms = self._batch_terms(batch)
            if terms is None:
                raise NotImplementedError(
                    f"{type(self).__name__} defines neither _row_terms nor _update_state"
                )
            out.append(terms)
        return out

    def _fold_batches(self, batches: list[BatchStats], terms: list[Terms]) -> None:
        """Fold `_batches_terms` into the local state (exact adds: nothing here refuses)."""
        with self._lock:
            for batch, one in zip(batches, terms, strict=True):
                fold(self._local, self._specs, one, _num_rows(batch.labels, batch.preds))

    def row_terms(
        self, labels: np.ndarray, preds: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> Terms | None:
        """`_row_terms` of one batch (arrays, checked as ``update`` checks them, sample
        weights too; `_batch_terms` of a `BatchStats` of its own for a metric that declares
        `batch_stats`): the engine folds them into every group's state at once
        (`streammetric.metrics.state.GroupedState`), from `batch_terms` of one batch for all
        its metrics."""
        if (
            sample_weight is not None
            or type(labels) is not np.ndarray
            or type(preds) is not np.ndarray
        ):
            ((labels, preds, sample_weight),) = as_pairs(labels, preds, sample_weight)
        if self.batch_stats:
            return self._batch_terms(BatchStats(labels, preds, sample_weight, (self,)))
        return self._row_terms(labels, preds, sample_weight)

    def sums_rows(self) -> bool:
        """Whether the state is a sum over rows (the class defines ``_row_terms`` or
        ``_batch_terms``)."""
        klass = type(self)
        return (
            klass._row_terms is not EvalMetric._row_terms
            or klass._batch_terms is not EvalMetric._batch_terms
        )

    def name_values(
        self, state: State, like: list[tuple[str, Any]] | None = None
    ) -> list[tuple[str, Any]]:
        """``(name, value)`` pairs of a state (one group's, say), as ``get_name_value``; with
        ``like`` (the pairs of the run's total state), each per-class value `widen`-ed to the
        classes of the run."""
        with self._lock:
            name, _ = self.get()
            pairs = _zip_name_value(name, self._compute(state))
        if like is None:
            return pairs
        return [(n, self.widen(v, w)) for (n, v), (_, w) in zip(pairs, like, strict=True)]

    def class_fill(self) -> float | None:
        """What a class without rows scores in this metric's per-class values or matrix
        (`widen`); None: its values have no class dimension."""
        return None

    def widen(self, value: Any, like: Any) -> Any:
        """One group's (or replicate's) ``value`` with the classes of ``like``, the run's value
        of the same name: a class this group has no row of scores `class_fill`, as it would
        with the run's classes as ``labels`` (scikit-learn's), so that every group and
        replicate has the run's classes. A value of no row at all (a replicate that drew none)
        is NaN for every class: no value, as a number's is."""
        fill = self.class_fill()
        if (
            fill is None
            or not isinstance(value, np.ndarray)
            or not isinstance(like, np.ndarray)
            or value.shape == like.shape
            or value.ndim != like.ndim
            or any(mine > theirs for mine, theirs in zip(value.shape, like.shape, strict=True))
        ):
            return value
        if not value.size:  # no row at all (an empty replicate): no value, not class_fill's
            return np.full(like.shape, np.nan)
        widths = [(0, theirs - mine) for mine, theirs in zip(value.shape, like.shape, strict=True)]
        return np.pad(value, widths, constant_values=fill)

    def may_note(self, state: State) -> bool:
        """Whether `value_notes` of a metric holding ``state`` may say anything (a cheap test,
        so that only those groups get a metric object for their notes): a value that is not a
        finite number. Metrics with notes about finite values extend it."""
        values = [value for _, value in self.name_values(state)]
        return any(isinstance(v, float) and not math.isfinite(v) for v in values)

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        """Every group's value at once (name -> float64 per group code), the bits
        `name_values` gives each group's state; None when this metric has no such shortcut
        (then each group's state is computed alone). The default covers the weighted means of
        the default state (``sum_metric`` over ``sum_weight`` or ``num_inst``) whose
        denominators are whole numbers (no sample weights)."""
        if type(self)._compute is not EvalMetric._compute:
            return None
        means = self._group_means(grouped)
        if means is None:
            return None
        name, _ = self.get()
        return {str(name): means}

    def group_arrays(
        self, grouped: GroupedState, like: list[tuple[str, Any]] | None = None
    ) -> dict[str, np.ndarray] | None:
        """Every group's values at once, per-class values and matrices too: name -> float64
        array, groups first (then the classes of a per-class value, the two of a matrix), each
        group's the bits of ``np.asarray(value, dtype=np.float64)`` of its `name_values` with
        ``like`` (the run's classes; None: those of ``grouped``'s total); None when this metric
        has no such shortcut. `group_values` by default (its values are numbers); a metric
        whose per-class values or matrices the engine's columns do not hold gives them here
        (the replicates of `streammetric.metrics.bootstrap` read them)."""
        return self.group_values(grouped)

    def _group_means(self, grouped: GroupedState) -> np.ndarray | None:
        """`EvalMetric._compute` of every group at once, when the denominators are whole."""
        if "sum_metric" not in self._specs:
            return None
        rows = grouped.whole("num_inst")
        denominators = grouped.whole("sum_weight") if "sum_weight" in self._specs else rows
        if rows is None or denominators is None:
            return None
        values = grouped.ratios("sum_metric", denominators)
        values[rows == 0] = np.nan
        return values

    def group_notes(self, grouped: GroupedState, values: dict[str, np.ndarray]) -> np.ndarray:
        """Which groups `may_note` (bool per group code), from `group_values`."""
        flags = np.zeros(grouped.size, dtype=bool)
        for array in values.values():
            flags |= ~np.isfinite(array)
        return flags

    def explanation(self) -> Any:
        """Why this metric's value differs between conventions (a cross-entropy made with
        ``explain=``: `streammetric.explain.Explanation`), or None."""
        return None

    def state_specs(self) -> dict[str, Spec]:
        """The declared state entries (name -> `Spec`)."""
        return dict(self._specs)

    def compute_state(self, state: State) -> Any:
        """The value of a state (one group's, say) as ``get()`` gives it."""
        with self._lock:
            return self._compute(state)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        """Rows ``update`` would reject, as a bool mask (``None``: all valid).

        Used by ``on_invalid="skip"`` to drop bad rows *before* updating, so that every metric
        sees the same clean rows. The default flags non-finite numbers; metrics with more rules
        (class ranges, probabilities) extend it.
        """
        return _nonfinite_rows(labels, preds)

    def _batch_invalid_rows(self, batch: BatchStats) -> np.ndarray | None:
        """`invalid_rows` of a batch that several metrics read (a composite's)."""
        return self.invalid_rows(batch.labels, batch.preds)

    def _compute(self, state: State) -> Any:
        """The value of a state (a float; a NumPy array for a metric of one value per class
        or a matrix); NaN when it has seen nothing."""
        if not state["num_inst"]:
            return math.nan
        if "sum_weight" in state:
            return state["sum_metric"].ratio(state["sum_weight"])
        return state["sum_metric"].ratio(state["num_inst"])

    @staticmethod
    def _weighted_terms(values: np.ndarray, weight: np.ndarray | None) -> Terms:
        """The terms of a weighted mean ``sum_i w_i v_i / sum_i w_i`` (``sum_metric``,
        ``sum_weight``, ``num_inst``) of per-sample ``values``."""
        if weight is None:
            return {"sum_metric": values, "sum_weight": ROWS, "num_inst": ROWS}
        return {"sum_metric": values * weight, "sum_weight": weight, "num_inst": ROWS}

    def _add_weighted(self, state: State, values: np.ndarray, weight: np.ndarray | None) -> None:
        """Fold per-sample ``values`` into ``sum_metric``/``sum_weight``/``num_inst`` exactly."""
        fold(state, self._specs, self._weighted_terms(values, weight), int(values.shape[0]))

    def update_dict(self, labels: dict[str, Any], preds: dict[str, Any]) -> EvalMetric:
        """Update from name -> array mappings, selected by ``label_names``/``output_names``."""
        for argument, given, names in (
            ("labels", labels, self.label_names),
            ("preds", preds, self.output_names),
        ):
            missing = [name for name in names or () if name not in given]
            if missing:
                rule = f"must have the names {names} ({'label_names' if argument == 'labels' else 'output_names'})"
                raise InvalidInputError.bad_argument(argument, rule, sorted(given))
        pred_list = (
            [preds[n] for n in self.output_names] if self.output_names else list(preds.values())
        )
        label_list = (
            [labels[n] for n in self.label_names] if self.label_names else list(labels.values())
        )
        return self.update(label_list, pred_list)

    def get(self) -> tuple[Any, Any]:
        """``(name, value)`` over what was seen since the last ``reset_local``."""
        return self.name, self._compute(self._local)

    def get_global(self) -> tuple[Any, Any]:
        """``(name, value)`` over everything since the last ``reset``."""
        return self.name, self._compute(self._global_state())

    def value_notes(self) -> list[ValueNote]:
        """Why the global value is inf or NaN (or, for a convention's guard, not the exact
        value): a list of `ValueNote`, empty for an ordinary finite value."""
        name, value = self.get_global()
        if not isinstance(value, float) or math.isfinite(value):
            return []
        return [self._nonfinite_note(str(name), value, self._global_state())]

    def _nonfinite_note(self, name: str, value: float, state: State) -> ValueNote:
        """The note of a NaN or infinite ``value`` (from `_nonfinite_reason` unless overridden)."""
        cause, reason = self._nonfinite_reason(state, value)
        return ValueNote(name, cause, outcome_of(value), (), fixed(reason))

    def _nonfinite_reason(self, state: State, value: float) -> tuple[str, str]:
        """(cause, reason) of a NaN or infinite value; subclasses that know more override."""
        if "num_inst" in state and not self._num_inst(state):
            return "no_rows", "no rows were counted"
        if math.isnan(value):
            return "undefined", "it is undefined for these rows"
        return "overflow", "a term is infinite or the sum exceeds the float range"

    def get_name_value(self) -> list[tuple[str, float]]:
        return _zip_name_value(*self.get())

    def get_global_name_value(self) -> list[tuple[str, float]]:
        return _zip_name_value(*self.get_global())

    def reset(self) -> None:
        """Forget everything (local and global), and the ids counted."""
        self._local = self._fresh_state()
        self._past = self._fresh_state()
        self._id_rows = None
        self._synced = False
        self._loaded = False

    def reset_local(self) -> None:
        """Start a new local window; the global state keeps what the old one saw (and the ids
        counted stay counted)."""
        self._past = self._merged(self._past, self._local)
        self._local = self._fresh_state()
        if self._id_rows is not None:
            self._id_rows.reset_local()

    def _global_state(self) -> State:
        if not self._has_global_stats:  # MXNet's has_global_stats=False: global = local
            return self._local
        return self._merged(self._past, self._local)

    @property
    def num_inst(self) -> int:
        return self._num_inst(self._local)

    @property
    def global_num_inst(self) -> int:
        return self._num_inst(self._global_state())

    @property
    def sum_metric(self) -> float:
        return self._sum_metric(self._local)

    @property
    def global_sum_metric(self) -> float:
        return self._sum_metric(self._global_state())

    def _num_inst(self, state: State) -> int:
        return int(state["num_inst"])

    def _sum_metric(self, state: State) -> float:
        if "sum_metric" in state:
            return float(state["sum_metric"].value)
        value = self._compute(state)  # sum_metric / num_inst == value, as MXNet's get()
        if np.ndim(value):
            raise ConfigError(
                f"metric {self.name!r} has a value per class (or a matrix), not MXNet's "
                "sum_metric / num_inst: read get()"
            )
        return value * self._num_inst(state) if self._num_inst(state) else 0.0

    # -- config, state, merge --------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable config; ``streammetric.create(config)`` rebuilds the metric."""
        config = dict(self._kwargs)
        config.update(
            metric=self.registered_name or type(self).__name__,
            name=self.name,
            output_names=self.output_names,
            label_names=self.label_names,
        )
        return config

    def state_dict(self) -> dict[str, Any]:
        """The exact state (local and past windows) as JSON-serialisable data."""
        return {
            "version": STATE_VERSION,
            "config": self._state_config(),
            "local": {n: _dump(k, self._local[n]) for n, k in self._kinds.items()},
            "past": {n: _dump(k, self._past[n]) for n, k in self._kinds.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> EvalMetric:
        """Restore a state written by :meth:`state_dict` (of a metric with the same config).

        Every field is checked first (types, counts >= 0, sums of terms >= 0 not negative,
        exact sums within float64 range, count arrays' shapes, the version and config); a bad
        one raises `StateError` naming it (``error.field``, e.g. ``"local.num_inst"``) and
        leaves the metric as it was.
        """
        self._staged_load(state)()
        self._loaded = True
        return self

    def _checked_state(self, data: Any, field: str) -> State:
        """One window of a state_dict (``local``, ``past``; a group's state in a partial's
        columns) loaded, every entry and their consistency checked (`StateError` naming
        ``field``)."""
        if not isinstance(data, dict):
            raise StateError.bad_field(field, "must be a mapping of state entries", data)
        for name in data:
            if name not in self._specs:
                raise StateError.bad_field(
                    f"{field}.{name}", f"is not a state entry of metric {self.name!r}", data[name]
                )
        loaded = {}
        for name, spec in self._specs.items():
            if name not in data:
                raise StateError(
                    f"`state` lacks state entry {name!r} in `{field}` for metric {self.name!r}",
                    field=f"{field}.{name}",
                    rule="is missing",
                )
            loaded[name] = _load(spec, data[name], f"{field}.{name}")
        problem = self._state_problem(loaded)
        if problem is not None:
            raise StateError.bad_field(field, f"{problem[0]} {problem[1]}", problem[2])
        return loaded

    def _staged_load(self, state: Any) -> Callable[[], None]:
        """Check ``state`` whole; return what installs it (so composites load all or nothing)."""
        if not isinstance(state, dict) or "version" not in state:
            raise StateError(
                f"`state` must be a state_dict of version {STATE_VERSION}, got {_short(state)}",
                field="version",
                rule="is missing",
            )
        if state.get("version") != STATE_VERSION or type(state.get("version")) is not int:
            raise StateError.bad_field(
                "version",
                f"must be {STATE_VERSION} (a state_dict of this version)",
                state.get("version"),
            )
        self._check_config(state.get("config"), "state")
        windows = [self._checked_state(state.get(window), window) for window in ("local", "past")]

        def install() -> None:
            with self._lock:
                self._local, self._past = windows

        return install

    def merge(self, other: EvalMetric) -> EvalMetric:
        """Add another metric's state (same config) into this one, exactly; returns ``self``.
        Metrics updated with ``sample_ids`` merge once per id (`_once_per_id`)."""
        self._check_partner(other, EvalMetric)
        other = self._once_per_id(other)
        local, past = other._snapshot()
        with self._lock:
            self._local = self._merged(self._local, local)
            self._past = self._merged(self._past, past)
        return self

    def _once_per_id(self, other: EvalMetric) -> EvalMetric:
        """What of ``other`` merges into this metric: ``other`` itself, unless either counted
        rows by ``sample_ids``; then a row of an id this metric counted is not counted again
        (as within one metric): ``other`` recounted from the rows it kept without them
        (`_recounted`), and the ids and rows of the rest join this metric's, so that a later
        update skips them too. A metric that counted rows without ids does not merge with one
        that counted by id (a `StateError`: its rows cannot be checked)."""
        mine, theirs = self._id_rows, other._id_rows
        if mine is None and theirs is None:
            return other
        for metric, ledger, who in ((self, mine, "this metric"), (other, theirs, "`other`")):
            if ledger is None and metric._holds_rows():
                raise StateError(
                    f"{who} counted rows without sample_ids, the other by sample_ids: its rows "
                    "cannot be checked for ids counted twice (give every update sample_ids, "
                    "or none)"
                )
        if theirs is None:  # nothing counted there
            return other
        with other._lock:
            windows = {"past": list(theirs.past), "local": list(theirs.local)}
        with self._lock:
            ledger = self._id_rows if self._id_rows is not None else IdRows()
            if ledger.kind is not None and theirs.kind not in (None, ledger.kind):
                raise StateError(
                    "`other` counted sample_ids of another kind than this metric "
                    "(integers and strings)"
                )
            counted = ledger.ids()
            again = False  # whether a row of ``other`` has an id counted here
            for window, rows in windows.items():
                for ids, label, pred, weight in rows:
                    keep = ~np.isin(ids, counted)
                    again = again or not keep.all()
                    ledger.add(
                        ids[keep],
                        label[keep],
                        pred[keep],
                        None if weight is None else weight[keep],
                        window=window,
                    )
            self._id_rows = ledger
        return other._recounted(counted) if again else other

    def _recounted(self, dropped: np.ndarray) -> EvalMetric:
        """A copy of this metric (keeping no ids) as it would be without the rows of the
        ``dropped`` ids: updated again from the rows it kept by id, window by window (exact,
        whatever the batching)."""
        ledger = self._id_rows
        assert ledger is not None
        out = self._fresh_copy()
        with self._lock:
            windows = (list(ledger.past), list(ledger.local))
        for window in windows:
            for ids, label, pred, weight in window:
                keep = ~np.isin(ids, dropped)
                if keep.any():
                    out.update(label[keep], pred[keep], None if weight is None else weight[keep])
            if window is windows[0]:
                out.reset_local()
        return out

    def _fresh_copy(self) -> EvalMetric:
        """A copy of this metric with nothing counted (its ids and rows not copied)."""
        memo: dict[int, Any] = {} if self._id_rows is None else {id(self._id_rows): None}
        out = copy.deepcopy(self, memo)
        out.reset()
        return out

    def _holds_rows(self) -> bool:
        """Whether this metric's state is other than a fresh one's (it counted rows)."""
        return bool(self._fresh_copy().state_dict() != self.state_dict())

    def _snapshot(self) -> tuple[State, State]:
        """Copies of the local and past states, taken under the lock (for ``merge``)."""
        with self._lock:
            fresh = self._fresh_state()
            return self._merged(fresh, self._local), self._merged(fresh, self._past)

    def _check_partner(self, other: Any, kind: type[EvalMetric]) -> None:
        """A `StateError` unless ``other`` is a ``kind`` of this metric's config, not itself."""
        if not isinstance(other, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise StateError(
                f"`other` must be {article} {kind.__name__}, got {type(other).__name__}"
            )
        if other is self:
            raise StateError(
                "`other` is this metric: merged into itself, its rows would count twice"
            )
        self._check_config(other._state_config(), "other")

    def _state_config(self) -> dict[str, Any]:
        """The config a state carries and merges and loads compare: `get_config()` (a metric
        made from a Python function has none: it names itself)."""
        return self.get_config()

    def _check_config(self, config: Any, what: str) -> None:
        own = self._state_config()
        if config == own:  # the usual case, without serialising both
            return
        mine = _canonical(own)
        if _canonical(config) != mine and _canonical(type(self)._upgraded(config)) != mine:
            field, theirs, ours = _first_difference(type(self)._upgraded(config), own)
            where = f"`{field}` is {_short(theirs, 60)}" if field else _short(config)
            raise StateError(
                f"`{what}` belongs to another metric than this {self.name!r}: its config's "
                f"{where}, this one's {_short(ours, 60)}",
                field=f"config.{field}" if field else "config",
                value=theirs,
            )

    @classmethod
    def _upgraded(cls, config: Any) -> Any:
        """A config written by an earlier version, as this one writes it: an argument added
        since takes its default (the old metric behaved so), a `retired_options` key with its
        old value is left out. Other configs are returned as they are."""
        if not isinstance(config, dict):
            return config
        out = {
            k: v
            for k, v in config.items()
            if k not in cls.retired_options or v != cls.retired_options[k]
        }
        try:
            parameters = inspect.signature(cls).parameters.values()
        except (TypeError, ValueError):  # pragma: no cover - a constructor without a signature
            return out
        for parameter in parameters:
            if parameter.name not in out and parameter.default is not parameter.empty:
                out[parameter.name] = parameter.default
        return out

    def copy(self) -> EvalMetric:
        return copy.deepcopy(self)

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def _repr_html_(self) -> str:
        """A compact table for notebooks: each output's name and global value."""
        from .._html import html_table

        return html_table(
            ["metric", "value"],
            [list(pair) for pair in self.get_global_name_value()],
            caption=type(self).__name__,
        )


_lock_methods(EvalMetric)


def _num_rows(label: Any, pred: Any) -> int:
    if type(pred) is np.ndarray and pred.ndim:
        return pred.shape[0]
    for array in (pred, label):
        shape = getattr(array, "shape", None)
        if shape:
            return int(shape[0])
    if np.ndim(pred) == 0:  # a 0-d array or a number: one row (as `as_pairs` weighs it)
        return 1
    return len(pred)


def _nonfinite_rows(*arrays: np.ndarray) -> np.ndarray | None:
    bad: np.ndarray | None = None
    for array in arrays:
        if array.dtype.kind == "f" and array.ndim:
            rows = ~np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
            bad = rows if bad is None else bad | rows
    return bad if bad is not None and bad.any() else None


def _zip_name_value(name: Any, value: Any) -> list[tuple[str, float]]:
    names = name if isinstance(name, list) else [name]
    values = value if isinstance(value, list) else [value]
    return list(zip(names, values, strict=True))


def _canonical(config: Any) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _first_difference(theirs: Any, ours: Any, at: str = "") -> tuple[str, Any, Any]:
    """The first place two configs differ, dotted (``"convention"``, ``"metrics[1].name"``;
    "" for the whole), with the two values there.

    >>> _first_difference({"metric": "ce", "convention": "keras"}, {"metric": "ce", "convention": "exact"})
    ('convention', 'keras', 'exact')
    >>> _first_difference({"metrics": [{"a": 1}, {"a": 2}]}, {"metrics": [{"a": 1}, {"a": 3}]})
    ('metrics[1].a', 2, 3)
    """
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            if _canonical(theirs.get(key)) != _canonical(ours.get(key)):
                return _first_difference(theirs.get(key), ours.get(key), f"{at}.{key}".lstrip("."))
    elif isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        for index, (a, b) in enumerate(zip(theirs, ours, strict=True)):
            if _canonical(a) != _canonical(b):
                return _first_difference(a, b, f"{at}[{index}]")
    return at, theirs, ours


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
