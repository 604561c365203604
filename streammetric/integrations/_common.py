"""What the framework integrations share: making the metric, moving tensors to the host,
syncing across processes, and the values to log."""

from __future__ import annotations

from typing import Any

from ..metrics.base import EvalMetric


def make_metric(metrics: Any) -> EvalMetric:
    """A fresh metric from ``metrics``: a name, a list of names or configs (a composite), a
    config dict, or an `EvalMetric` (copied, so the caller's instance is left alone)."""
    from ..metrics import create

    if isinstance(metrics, EvalMetric):
        metric = metrics.copy()
        metric.reset()
        return metric
    return create(metrics)


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
