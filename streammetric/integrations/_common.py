"""What the framework integrations share: making the metric, moving tensors to the host,
syncing across processes, and the values to log."""

from __future__ import annotations

import json
from typing import Any

from ..metrics import create
from ..metrics.base import EvalMetric
from ..metrics.registry import CompositeEvalMetric
from ..metrics.specs import distinct_names, output_names


def make_metric(metrics: Any) -> EvalMetric:
    """A fresh metric from ``metrics``: a name, a list of names or configs (a composite), a
    config dict, or an `EvalMetric` (copied, so the caller's instance is left alone).

    Every value gets a log name of its own. Requested metrics that would share one (``ce`` and
    ``{"metric": "ce", "convention": "keras"}`` are both ``cross-entropy``) are renamed as the
    command line renames them (`streammetric.metrics.specs.distinct_names`):
    ``cross-entropy[convention=exact]`` and ``cross-entropy[convention=keras]``. A metric
    requested twice, a ``name=`` that another metric has, and an `EvalMetric` instance (which
    keeps its name) whose name another metric has are refused (`ConfigError`).

    >>> make_metric(["ce", {"metric": "ce", "convention": "keras"}]).get()[0]
    ['cross-entropy[convention=exact]', 'cross-entropy[convention=keras]']
    """
    if isinstance(metrics, EvalMetric):
        metric = _fresh(metrics)
    else:
        metric = create(metrics)
    names = output_names(metric)
    if len(set(names)) == len(names):
        return metric
    return create([_fresh(spec) for spec in distinct_names(_flat_specs(metrics))])


def _flat_specs(metrics: Any) -> list[Any]:
    """The metrics that ``metrics`` requests, composites opened (their order kept), each a name,
    a config dict or an `EvalMetric` instance (a callable becomes its `CustomMetric`)."""
    if isinstance(metrics, str) and metrics.lstrip().startswith(("{", "[")):
        metrics = json.loads(metrics)  # `create` has parsed it already
    if isinstance(metrics, (list, tuple)):
        return [spec for item in metrics for spec in _flat_specs(item)]
    if isinstance(metrics, CompositeEvalMetric):
        return [spec for item in metrics.metrics for spec in _flat_specs(item)]
    if isinstance(metrics, dict) and isinstance(create(metrics), CompositeEvalMetric):
        return [spec for item in metrics.get("metrics") or [] for spec in _flat_specs(item)]
    if callable(metrics) and not isinstance(metrics, (str, EvalMetric)):
        return [create(metrics)]
    return [metrics]


def _fresh(spec: Any) -> Any:
    """``spec`` for `create`: an instance copied and emptied (the caller's is left alone)."""
    if isinstance(spec, EvalMetric):
        spec = spec.copy()
        spec.reset()
    return spec


def to_host(value: Any) -> Any:
    """A tensor detached from autograd on the CPU (what `EvalMetric.update` reads); anything
    else as it is. Containers (lists, tuples) keep their shape: ``update`` pairs their items."""
    if isinstance(value, (list, tuple)):
        return type(value)(to_host(v) for v in value)
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu()
    return value


def sync(metric: EvalMetric, world_size: int, group: Any = None) -> None:
    """Merge every process's state into ``metric`` (on every process) when there are several:
    `streammetric.distributed.sync` over ``torch.distributed``. Imported only then, so a single
    process needs neither it nor torch.distributed."""
    if world_size > 1:
        from ..distributed import sync as sync_states

        sync_states(metric, group=group)


def scalars(metric: EvalMetric, prefix: str = "") -> dict[str, float]:
    """``{prefix + name: value}`` of ``metric.get()``, as Python floats; a vector value (a
    metric of one value per class, say) gives ``name/0``, ``name/1``, ... Values that are not
    numbers (None) are left out: a logger takes numbers only."""
    out: dict[str, float] = {}
    for name, value in metric.get_name_value():
        _add(out, f"{prefix}{name}", value)
    return out


def _add(out: dict[str, float], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, (int, float)) or (
        hasattr(value, "__float__") and getattr(value, "shape", ()) == ()
    ):
        out[name] = float(value)
        return
    try:
        items = list(value)
    except TypeError:
        return
    for i, item in enumerate(items):
        _add(out, f"{name}/{i}", item)
