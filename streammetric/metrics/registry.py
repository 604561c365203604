"""Creating metrics by name, list, config or function: ``create``, ``register``, ``alias``.

>>> create("mae").name
'mae'
>>> create(["mae", "rmse"]).get()
(['mae', 'rmse'], [nan, nan])
>>> create('{"metric": "mse", "name": "squared"}').name
'squared'
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .. import _metric_table
from .._exceptions import ConfigError, InvalidInputError, StateError
from ._inputs import as_pairs
from .base import _COUNTED, EvalMetric, State, ValueNote, _short
from .batch import BatchStats
from .state import Terms

__all__ = [
    "CompositeEvalMetric",
    "CustomMetric",
    "alias",
    "create",
    "list_metrics",
    "np_metric",
    "register",
]

_REGISTRY: dict[str, type[EvalMetric]] = {}
_ALIASES: dict[str, str] = {}  # alias -> canonical registered name
M = TypeVar("M", bound=type[EvalMetric])

#: the module of `streammetric.metrics` that registers each built-in name and alias (from the
#: generated table): importing it registers its metrics
_MODULE_OF = {
    name: row.module for row in _metric_table.METRICS for name in (row.name, *row.aliases)
}


def _load_builtins(name: str | None = None) -> None:
    """Import the module that registers the built-in ``name``; every module for another name or
    None (before the metrics are listed or a user's metric is registered, which may replace a
    built-in one)."""
    modules = [_MODULE_OF[name]] if name in _MODULE_OF else sorted(set(_MODULE_OF.values()))
    for module in modules:
        importlib.import_module(f"{__package__}.{module}")


def _is_builtin(klass: type) -> bool:
    return klass.__module__.rpartition(".")[0] == __package__


def register(klass: M) -> M:
    """Class decorator: make a metric class known to :func:`create` by its lower-case name."""
    if not _is_builtin(klass):
        _load_builtins()
    key = klass.__name__.lower()
    _REGISTRY[key] = klass
    klass.registered_name = key
    return klass


def alias(*names: str) -> Callable[[M], M]:
    """Class decorator (put above ``@register``... or below: order does not matter)."""

    def decorate(klass: M) -> M:
        if not _is_builtin(klass):
            _load_builtins()
        for name in names:
            _ALIASES[name.lower()] = klass.__name__.lower()
        return klass

    return decorate


def _lookup(name: str) -> type[EvalMetric]:
    key = name.lower()
    if _ALIASES.get(key, key) not in _REGISTRY:
        _load_builtins(key)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        known = ", ".join(sorted(set(_REGISTRY) | set(_ALIASES)))
        raise ConfigError(f"unknown metric {name!r}; known metrics: {known}")
    return _REGISTRY[key]


def list_metrics() -> dict[str, list[str]]:
    """Registered metric names mapped to their aliases."""
    _load_builtins()
    out: dict[str, list[str]] = {name: [] for name in sorted(_REGISTRY)}
    for alias_name, target in sorted(_ALIASES.items()):
        if alias_name != target:
            out[target].append(alias_name)
    return out


def create(metric: Any, *args: Any, **kwargs: Any) -> EvalMetric:
    """Create a metric from a name, list, config dict, JSON string, instance or callable."""
    if isinstance(metric, EvalMetric):
        return metric
    if isinstance(metric, str) and metric.lstrip().startswith(("{", "[")):
        try:
            metric = json.loads(metric)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"`metric` JSON does not parse: {exc}") from exc
    if isinstance(metric, (list, tuple)):
        return CompositeEvalMetric(metrics=[create(m, *args, **kwargs) for m in metric])
    if isinstance(metric, dict):
        config = dict(metric)
        if "metric" not in config:
            raise ConfigError(f"a metric config needs a 'metric' key, got {_short(config)}")
        klass = _lookup(str(config.pop("metric")))
        for key, value in klass.retired_options.items():  # a config of an earlier version
            if key in config and config[key] == value:
                del config[key]
        if klass is CompositeEvalMetric:
            config["metrics"] = [create(c) for c in config.get("metrics", [])]
        config.update(kwargs)
        return _construct(klass, args, config)
    if isinstance(metric, str):
        return _construct(_lookup(metric), args, kwargs)
    if callable(metric):
        return _construct(CustomMetric, (metric, *args), kwargs)  # MXNet's order: feval first
    raise ConfigError(
        f"`metric` must be a name, list, config, JSON string, EvalMetric or callable, got {type(metric).__name__}"
    )


def _construct(
    klass: type[EvalMetric], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> EvalMetric:
    try:
        return klass(*args, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for metric {klass.__name__}: {exc}") from exc


@register
@alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns lists of names and values (as MXNet).

    Parameters
    ----------
    metrics : list, optional
        The metrics: instances, or anything `create` takes (names, configs). None: none yet
        (`add` adds more).
    name : str, default "composite"
        The composite's own name (``get()`` reports its metrics' names).
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = CompositeEvalMetric(["mae", "mse"])
    >>> m.update([np.array([2.5, 0.0, 2, 8])], [np.array([3, -0.5, 2, 7])]).get()
    (['mae', 'mse'], [0.5, 0.375])
    """

    mxnet_positional = ("metrics", "name", "output_names", "label_names")

    def __init__(
        self,
        *,
        metrics: list[Any] | None = None,
        name: str = "composite",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        self.metrics: list[EvalMetric] = [create(m) for m in (metrics or [])]
        super().__init__(name, output_names=output_names, label_names=label_names)

    def _init_states(self) -> None:
        pass  # the children hold the state

    def add(self, metric: Any) -> None:
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        try:
            return self.metrics[index]
        except IndexError:
            raise ConfigError(
                f"metric index {index} is out of range 0..{len(self.metrics) - 1}"
            ) from None

    def update(
        self, labels: Any, preds: Any, sample_weight: Any = None, *, sample_ids: Any = None
    ) -> CompositeEvalMetric:
        """Update every metric, in order, with one `BatchStats` per (label, pred, weight)
        triple for all of them: e.g. ``ce`` computes its terms and the true classes' ranks for
        ``acc`` in one pass, ``nll_loss`` reads ``ce``'s terms. A metric with an ``update`` of
        its own (`CustomMetric`, `Loss`, a composite) is updated with the arguments as they are.
        ``sample_ids``: as `EvalMetric.update`'s, for every metric at once (the composite
        keeps the ids and rows, its metrics none)."""
        if (sample_ids is not None or self._id_rows is not None) and sample_ids is not _COUNTED:
            self._update_once_per_id(labels, preds, sample_weight, sample_ids)
            return self
        batches: list[BatchStats] | None = None
        whole: list[EvalMetric] = []  # updated as they update themselves
        folds: list[tuple[EvalMetric, list[Terms]]] = []
        for metric in self.metrics:  # every metric's terms first: a batch refused adds nothing
            terms = None
            if type(metric).update is EvalMetric.update:
                if batches is None:
                    batches = [
                        BatchStats(label, pred, weight, self.metrics)
                        for label, pred, weight in as_pairs(labels, preds, sample_weight)
                    ]
                terms = metric._batches_terms(batches)
            if terms is None:
                whole.append(metric)
            else:
                folds.append((metric, terms))
        undo = [(metric, metric._copy_local()) for metric in whole] if whole else []
        try:
            for metric in whole:
                if type(metric).update is not EvalMetric.update:  # a composite's too
                    metric.update(labels, preds, sample_weight)
                else:  # a fold of its own
                    assert batches is not None
                    metric._update_batches(batches)
        except BaseException:
            for metric, local in undo:  # what the others added is taken back
                metric._restore_local(local)
            raise
        for metric, terms in folds:
            assert batches is not None
            metric._fold_batches(batches, terms)
        return self

    def update_dict(self, labels: dict[str, Any], preds: dict[str, Any]) -> CompositeEvalMetric:
        if self.label_names is not None:
            labels = {k: v for k, v in labels.items() if k in self.label_names}
        if self.output_names is not None:
            preds = {k: v for k, v in preds.items() if k in self.output_names}
        for metric in self.metrics:
            metric.update_dict(labels, preds)
        return self

    def reset(self) -> None:
        for metric in self.metrics:
            metric.reset()
        self._id_rows = None
        self._synced = False

    def _copy_local(self) -> Any:
        return [metric._copy_local() for metric in self.metrics]

    def _restore_local(self, local: Any) -> None:
        for metric, one in zip(self.metrics, local, strict=True):
            metric._restore_local(one)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return self._batch_invalid_rows(BatchStats(labels, preds, None, self.metrics))

    def _batch_invalid_rows(self, batch: BatchStats) -> np.ndarray | None:
        bad: np.ndarray | None = None
        for metric in self.metrics:  # e.g. ce and nll_loss compute their terms once
            rows = metric._batch_invalid_rows(batch)
            if rows is not None:
                bad = rows if bad is None else bad | rows
        return bad

    def reset_local(self) -> None:
        for metric in self.metrics:
            metric.reset_local()
        if self._id_rows is not None:
            self._id_rows.reset_local()

    def _collect(self, attr: str) -> tuple[list[Any], list[Any]]:
        names: list[Any] = []
        values: list[Any] = []
        for metric in self.metrics:
            name, value = getattr(metric, attr)()
            names.extend(name if isinstance(name, list) else [name])
            values.extend(value if isinstance(value, list) else [value])
        return names, values

    def get(self) -> tuple[Any, Any]:
        return self._collect("get")

    def value_notes(self) -> list[ValueNote]:
        """The notes of every metric, in order."""
        return [note for metric in self.metrics for note in metric.value_notes()]

    def get_global(self) -> tuple[Any, Any]:
        return self._collect("get_global")

    @property
    def num_inst(self) -> int:
        return sum(m.num_inst for m in self.metrics)

    @property
    def global_num_inst(self) -> int:
        return sum(m.global_num_inst for m in self.metrics)

    @property
    def sum_metric(self) -> float:
        return math.fsum(m.sum_metric for m in self.metrics)

    @property
    def global_sum_metric(self) -> float:
        return math.fsum(m.global_sum_metric for m in self.metrics)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["metrics"] = [m.get_config() for m in self.metrics]
        return config

    def _state_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["metrics"] = [m._state_config() for m in self.metrics]  # a custom one names itself
        return config

    @classmethod
    def _upgraded(cls, config: Any) -> Any:
        out = super()._upgraded(config)
        if isinstance(out, dict) and isinstance(out.get("metrics"), list):
            out["metrics"] = [
                _lookup(str(child["metric"]))._upgraded(child)
                if isinstance(child, dict) and "metric" in child
                else child
                for child in out["metrics"]
            ]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "config": self._state_config(),
            "metrics": [m.state_dict() for m in self.metrics],
        }

    def _staged_load(self, state: Any) -> Callable[[], None]:
        """Every child's state checked before any is installed (all or nothing)."""
        if not isinstance(state, dict):
            raise StateError(f"`state` must be a composite's state_dict, got {_short(state)}")
        if state.get("version") != 1 or type(state.get("version")) is not int:
            raise StateError.bad_field("version", "must be 1", state.get("version"))
        self._check_config(state.get("config"), "state")
        children = state.get("metrics")
        if not isinstance(children, list) or len(children) != len(self.metrics):
            rule = f"must be a list of {len(self.metrics)} states, one per metric"
            raise StateError.bad_field("metrics", rule, children)
        installs = []
        for index, (metric, child) in enumerate(zip(self.metrics, children, strict=True)):
            try:
                installs.append(metric._staged_load(child))
            except StateError as exc:
                raise exc.within(f"metrics[{index}]", what="`state`") from None

        def install() -> None:
            with self._lock:
                for each in installs:
                    each()

        return install

    def merge(self, other: EvalMetric) -> CompositeEvalMetric:
        self._check_partner(other, CompositeEvalMetric)
        assert isinstance(other, CompositeEvalMetric)
        counted = self._once_per_id(other)  # (the ids are the composite's, not its children's)
        assert isinstance(counted, CompositeEvalMetric)
        other = counted
        with self._lock:  # each child's merge takes the other child's lock, then its own
            for mine, theirs in zip(self.metrics, other.metrics, strict=True):
                mine.merge(theirs)
        return self


@register
@alias("custom")
class CustomMetric(EvalMetric):
    """A metric from a function ``feval(label, pred) -> value`` or ``-> (sum, count)``.

    As MXNet's CustomMetric: each (label, pred) pair contributes the returned value with count 1,
    or the returned ``(sum_metric, num_inst)``. The values are summed exactly. The function
    sees whole pairs, so ``sample_weight`` is refused (weigh inside the function instead).

    Parameters
    ----------
    feval : callable
        ``feval(label, pred)`` of one NumPy pair: a value (counted once) or ``(sum, count)``.
    name : str, optional
        The name ``get()`` reports the value under; None: the function's ``__name__``
        (``custom(<lambda>)`` for a lambda).
    allow_extra_outputs : bool, default False
        MXNet's argument: the labels and predictions may be lists of different lengths (the
        pairs are taken up to the shorter), instead of an error.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = CustomMetric(lambda label, pred: float(np.abs(label - pred).sum()), name="l1")
    >>> m.update([np.array([1.0, 2.0])], [np.array([1.5, 2.0])]).get()
    ('l1', 0.5)
    """

    mxnet_positional = ("feval", "name", "allow_extra_outputs", "output_names", "label_names")

    def __init__(
        self,
        *,
        feval: Callable[..., Any],
        name: str | None = None,
        allow_extra_outputs: bool = False,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        if name is None:
            name = getattr(feval, "__name__", "custom")
            if name.find("<") != -1:
                name = f"custom({name})"
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            allow_extra_outputs=allow_extra_outputs,
        )

    def _init_states(self) -> None:
        self._add_state("sum_metric", "sum", nonnegative=False)  # the function's values
        self._add_state("num_inst", "count")

    def update(
        self, labels: Any, preds: Any, sample_weight: Any = None, *, sample_ids: Any = None
    ) -> CustomMetric:
        if sample_weight is not None:  # the function sees whole pairs: weights would be lost
            rule = "is not taken by a custom metric (its function sees whole batches)"
            raise InvalidInputError(
                f"`sample_weight` {rule}: {self.name!r}", argument="sample_weight", rule=rule
            )
        if not self._allow_extra_outputs:
            super().update(labels, preds, sample_weight, sample_ids=sample_ids)
            return self
        if sample_ids is not None:
            rule = "is not taken with allow_extra_outputs=True (the pairs are not rows)"
            raise InvalidInputError(f"`sample_ids` {rule}", argument="sample_ids", rule=rule)
        for label, pred in zip(labels, preds, strict=False):
            self._update_state(self._local, np.asarray(label), np.asarray(pred), None)
        return self

    def _update_state(
        self, state: State, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> None:
        result = self._feval(label, pred)
        total, count = result if isinstance(result, tuple) and len(result) == 2 else (result, 1)
        rule = "must return a number or (sum, int count >= 0)"
        try:
            total = float(total)  # a number, or a NumPy scalar or 0-d array
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"custom metric {self.name!r} {rule}, got {result!r}", rule=rule, value=result
            ) from None
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise InvalidInputError(
                f"custom metric {self.name!r} {rule}, got count {count!r}", rule=rule, value=count
            )
        state["sum_metric"].add_float(total)
        state["num_inst"] += int(count)

    def get_config(self) -> dict[str, Any]:
        raise ConfigError(
            f"custom metric {self.name!r} wraps a Python function and has no JSON config"
        )

    def merge(self, other: EvalMetric) -> CustomMetric:
        if isinstance(other, CustomMetric) and other._feval is not self._feval:
            raise StateError("`other` must be a CustomMetric wrapping the same function")
        return super().merge(other)  # type: ignore[return-value]

    def _state_config(self) -> dict[str, Any]:
        return {"metric": "custom", "name": self.name}


def np_metric(
    numpy_feval: Callable[..., Any], name: str | None = None, allow_extra_outputs: bool = False
) -> CustomMetric:
    """Wrap a NumPy function ``f(label, pred)`` as a :class:`CustomMetric` (MXNet's ``mx.metric.np``).

    >>> def mean_abs(label, pred):
    ...     return np.abs(label - pred).mean()
    >>> np_metric(mean_abs).update([np.array([1.0])], [np.array([3.0])]).get()
    ('mean_abs', 2.0)
    """

    def feval(label: np.ndarray, pred: np.ndarray) -> Any:
        return numpy_feval(label, pred)

    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval=feval, name=name, allow_extra_outputs=allow_extra_outputs)
