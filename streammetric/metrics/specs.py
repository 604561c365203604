"""Metric specs (the command line's ``NAME[:key=value,...]``, configs, instances), built into
one composite, each under a distinct name (the CLI, the engine and the integrations use them).

>>> parse_metric_spec("top_k_accuracy:top_k=5")
{'metric': 'top_k_accuracy', 'top_k': 5}
>>> parse_metric_spec("mae:name=l1")
{'metric': 'mae', 'name': 'l1'}
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from collections.abc import Sequence
from typing import Any

from .._exceptions import ConfigError
from .base import EvalMetric
from .registry import CompositeEvalMetric, _lookup, create

__all__ = [
    "build_metrics",
    "distinct_names",
    "output_names",
    "parse_metric_spec",
    "resolve_metric_name",
]


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if lowered in ("inf", "+inf", "-inf"):  # (JSON spells them Infinity, -Infinity)
        return -math.inf if lowered == "-inf" else math.inf
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
        if key.strip() in config:
            raise ConfigError(f"metric spec {spec!r}: {key.strip()!r} is given twice")
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
    return CompositeEvalMetric(metrics=metrics)


def _build_one(spec: Any, defaults: dict[str, Any]) -> EvalMetric:
    """The metric of one spec (as `build_metrics` builds it; an instance as it is)."""
    if isinstance(spec, EvalMetric):
        return spec
    spec = _with_defaults(spec, defaults)
    return create(parse_metric_spec(spec) if isinstance(spec, str) else spec)


def _spec_text(spec: Any, keys: Sequence[str] = ()) -> str:
    """A requested metric as the user gave it: a spec or config as it is, an instance as its
    class with the options ``keys`` (those that tell it from another: ``CrossEntropy(convention=
    'keras')``)."""
    if isinstance(spec, EvalMetric):
        settings = _settings(spec)
        options = ", ".join(f"{k}={settings[k]!r}" for k in keys if k in settings)
        return f"{type(spec).__name__}({options})"
    return repr(spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True, default=str))


def _option_text(value: Any) -> str:
    """An option's value in a metric's distinct name: None as ``none`` (as ``-m`` spells it:
    ``precision:average=none``), a string as it is, anything else as JSON."""
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def output_names(metric: EvalMetric) -> list[str]:
    """The names of ``metric``'s values, as ``get()`` gives them (a composite's, in order)."""
    names, _ = metric.get()
    return [str(n) for n in (names if isinstance(names, list) else [names])]


def distinct_names(specs: list[Any], defaults: dict[str, Any] | None = None) -> list[Any]:
    """The metric specs, each with a distinct output name (the name in results, thresholds,
    checkpoints and Prometheus), or a `ConfigError` for a metric requested twice.

    A metric's output name is its ``get()`` name (``cross-entropy`` for ``ce``). When several
    requested metrics would share one, each that has no ``name=`` of its own is renamed
    ``NAME[key=value,...]`` with the options that tell them apart (their values after the
    defaults, keys sorted); a spec then becomes a config dict with ``name``. Metrics whose
    settings are all the same are one metric asked for twice, and a ``name=`` that another
    metric has: both refused. Specs whose names are distinct are returned as they are.

    >>> distinct_names(["ce", "ce:convention=keras", "acc"])  # doctest: +NORMALIZE_WHITESPACE
    [{'metric': 'ce', 'name': 'cross-entropy[convention=exact]'},
     {'metric': 'ce', 'convention': 'keras', 'name': 'cross-entropy[convention=keras]'}, 'acc']
    """
    defaults = defaults or {}
    built = [_build_one(s, defaults) for s in specs]
    names = [output_names(m) for m in built]
    by_name: dict[str, list[int]] = {}
    for index, metric_names in enumerate(names):
        for name in metric_names:
            if index in by_name.get(name, ()):
                raise ConfigError(
                    f"metric {_spec_text(specs[index])} gives two of its values the name "
                    f"{name!r}: one would hide the other in the results"
                )
            by_name.setdefault(name, []).append(index)
    out = list(specs)
    for name, indices in by_name.items():
        if len(indices) < 2:
            continue
        configs = [_settings(built[i]) for i in indices]
        for a in range(len(indices)):
            for b in range(a):
                if configs[a] == configs[b]:
                    raise ConfigError(
                        f"metrics {_spec_text(specs[indices[b]])} and "
                        f"{_spec_text(specs[indices[a]])} are the same metric ({name}) "
                        "requested twice; drop one (or give one a name=)"
                    )
        keys = sorted(
            {k for c in configs for k in c if any(k not in d or d[k] != c[k] for d in configs)}
        )
        fixed = [i for i in indices if _user_named(specs[i]) or isinstance(specs[i], EvalMetric)]
        if fixed:
            other = next(i for i in indices if i != fixed[0])
            first, second = specs[min(fixed[0], other)], specs[max(fixed[0], other)]
            raise ConfigError(
                f"metrics {_spec_text(first, keys)} and {_spec_text(second, keys)} would "
                f"both be named {name!r} in the results (a metric given as an instance keeps "
                "its name); give one another name="
            )
        for i, config in zip(indices, configs, strict=True):
            suffix = ",".join(f"{k}={_option_text(config[k])}" for k in keys if k in config)
            base = str(built[i].get_config().get("name", name))
            spec = specs[i]
            named = parse_metric_spec(spec) if isinstance(spec, str) else dict(spec)
            named["name"] = f"{base}[{suffix}]"
            out[i] = named
    final: dict[str, int] = {}
    for index, spec in enumerate(out):
        for name in output_names(_build_one(spec, defaults)):
            if not name.strip():
                raise ConfigError(
                    f"metric {_spec_text(specs[index])} would have an empty name in the results; "
                    "give it a name= with a character"
                )
            if name in final:
                raise ConfigError(
                    f"metrics {_spec_text(specs[final[name]])} and {_spec_text(specs[index])} "
                    f"would both be named {name!r} in the results; give one another name="
                )
            final[name] = index
    return out


def _settings(metric: EvalMetric) -> dict[str, Any]:
    """A metric's config without its name: what it computes (None values too: ``average=None``
    is one value per class, not an unset option)."""
    try:
        config = metric.get_config()
    except ConfigError:  # e.g. a custom metric wrapping a function: no config to compare
        return {"id": id(metric)}
    return {k: v for k, v in config.items() if k != "name"}


def _user_named(spec: Any) -> bool:
    if isinstance(spec, str):
        return "name" in parse_metric_spec(spec)
    return isinstance(spec, dict) and "name" in spec


def resolve_metric_name(
    name: str, specs: list[Any], defaults: dict[str, Any] | None = None
) -> str | None:
    """The output name of the metric that ``name`` means among ``specs`` (as `distinct_names`
    returned them): an output name itself, or a metric spec as ``-m`` takes it (``ce``,
    ``ce:convention=keras``) that builds a requested metric; None if it names none of them.

    >>> specs = distinct_names(["ce", "ce:convention=keras"])
    >>> resolve_metric_name("ce:convention=keras", specs), resolve_metric_name("ce", specs)
    ('cross-entropy[convention=keras]', 'cross-entropy[convention=exact]')
    >>> resolve_metric_name("acc", specs) is None
    True
    """
    defaults = defaults or {}
    metrics = [_build_one(s, defaults) for s in specs]
    for metric in metrics:
        if name in output_names(metric):
            return name
    try:
        wanted = _build_one(name, defaults)
    except ConfigError:  # not a metric spec (or not a valid one): it names no metric
        return None
    settings = _settings(wanted)
    for metric in metrics:
        if _settings(metric) == settings and len(output_names(metric)) == 1:
            return output_names(metric)[0]
    return None
