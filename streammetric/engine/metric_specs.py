"""Metric specs from the command line: ``NAME[:key=value,...]``, built into one composite.

>>> parse_metric_spec("top_k_accuracy:top_k=5")
{'metric': 'top_k_accuracy', 'top_k': 5}
>>> parse_metric_spec("mae:name=l1")
{'metric': 'mae', 'name': 'l1'}
"""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

from .._exceptions import ConfigError
from ..metrics import CompositeEvalMetric, EvalMetric, create
from ..metrics.registry import _lookup

__all__ = ["build_metrics", "parse_metric_spec"]


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_metric_spec(spec: str) -> dict[str, Any]:
    """``"name:k=v,k2=v2"`` -> ``{"metric": name, k: v, ...}`` (values parsed as JSON scalars)."""
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise ConfigError(
            f"metric spec {spec!r} has no metric name (expected NAME[:key=value,...])"
        )
    config: dict[str, Any] = {"metric": name.strip()}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"metric spec {spec!r}: {item!r} is not key=value")
        config[key.strip()] = _value(value.strip())
    return config


def _accepts(klass: type[EvalMetric], keyword: str) -> bool:
    return keyword in inspect.signature(klass.__init__).parameters


def _with_defaults(spec: Any, defaults: dict[str, Any]) -> Any:
    if isinstance(spec, EvalMetric) or not defaults:
        return spec
    config = parse_metric_spec(spec) if isinstance(spec, str) else dict(spec)
    klass = _lookup(str(config["metric"]))
    for key, value in defaults.items():
        if key not in config and _accepts(klass, key):
            config[key] = value
    return config


def build_metrics(specs: list[Any], defaults: dict[str, Any] | None = None) -> CompositeEvalMetric:
    """One composite of fresh metrics; ``defaults`` (e.g. convention) go where they are accepted."""
    metrics = []
    for spec in specs:
        spec = _with_defaults(spec, defaults or {})
        if isinstance(spec, str):
            spec = parse_metric_spec(spec)
        if isinstance(spec, EvalMetric):  # a fresh, empty copy of a configured instance
            spec = copy.deepcopy(spec)
            spec.reset()
        metrics.append(create(spec))
    return CompositeEvalMetric(metrics)
