"""The `Result` of a saved state, for ``streammetric report STATE``: a checkpoint (``eval
--checkpoint FILE``: the exact merged states, so every chart of the live run, and intervals when
the run had ``--ci``) or a JSON result (``eval --format json -o FILE``: its values only, so no
reliability diagram or ROC/PR curves). The data is never read again."""

from __future__ import annotations

import ast
import json
import os
import re
from typing import Any

from .._exceptions import ConfigError, StateError
from .._files import read_text
from ..engine.result import ClassValues, Result

__all__ = ["load_result"]

_BY = re.compile(r"\bby=(\([^)]*\))")


def load_result(
    path: str | os.PathLike[str], *, level: float = 0.95, replicates: int | None = None
) -> Result:
    """The result a checkpoint's states give (intervals at ``level`` with ``replicates``
    bootstrap replicates when the run kept bucket states, i.e. had ``--ci``), or the one a
    JSON result holds."""
    text = read_text(path, "STATE")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{os.fspath(path)}: not a checkpoint or JSON result (not JSON: {exc})"
        ) from None
    if isinstance(data, dict) and "partial" in data and "identity" in data:
        return _from_checkpoint(os.fspath(path), data, level, replicates)
    if isinstance(data, dict) and "metrics" in data and "rows" in data:
        return _from_json(data)
    raise ConfigError(
        f"{os.fspath(path)}: not a streammetric checkpoint (eval --checkpoint) or JSON result "
        "(eval --format json)"
    )


def _from_checkpoint(
    path: str, data: dict[str, Any], level: float, replicates: int | None
) -> Result:
    from ..engine.checkpoint import content_digest
    from ..engine.metric_specs import build_metrics
    from ..engine.partial import Partial

    content = {key: value for key, value in data.items() if key != "digest"}
    if "digest" in data and data["digest"] != content_digest(content):
        raise StateError(
            f"{path}: checkpoint is corrupt (its content does not match its digest)",
            path=path,
            field="digest",
        )
    identity = data["identity"]
    if not isinstance(identity, dict) or not isinstance(identity.get("metrics"), list):
        raise StateError(f"{path}: checkpoint has no metrics in its identity", path=path)
    specs, defaults = identity["metrics"], identity.get("metric_defaults") or {}
    match = _BY.search(str(identity.get("columns", "")))
    by: tuple[str, ...] = tuple(ast.literal_eval(match.group(1))) if match else ()
    partial = Partial(lambda: build_metrics(specs, defaults))
    try:
        partial.load_json(data["partial"])
    except StateError as exc:
        raise exc.within("partial", what="checkpoint", path=path) from None
    notes = [f"from the checkpoint {path} ({len(data.get('done') or [])} units evaluated)"]
    resampling = identity.get("resampling")
    if isinstance(resampling, dict):  # the group keys end with the row's bucket
        from ..engine.intervals import result_with_intervals
        from ..functional.resample import DEFAULT_REPLICATES
        from ..metrics.bootstrap import Resampling

        header = Resampling(level, replicates or DEFAULT_REPLICATES, int(resampling["seed"]))
        return result_with_intervals(partial, notes, by, header)
    return partial.result(notes, grouped=bool(by), by=by)


def _from_json(data: dict[str, Any]) -> Result:
    def values(metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: ClassValues(v) if isinstance(v, dict) else v for k, v in metrics.items()}

    groups = data.get("groups")
    if groups is not None:
        groups = [{**g, "metrics": values(g.get("metrics") or {})} for g in groups]
    result = Result(
        int(data["rows"]), int(data.get("invalid_rows", 0)), values(data["metrics"]), groups
    )
    conventions = data.get("conventions")
    if isinstance(conventions, dict):
        from ..explain import Explanation

        result.conventions = {n: Explanation.from_dict(e) for n, e in conventions.items()}
    if data.get("ci") is not None:
        result.ci, result.intervals = data["ci"], data.get("intervals") or {}
    return result
