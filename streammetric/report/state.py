"""The `Result` of a saved state, for ``streammetric report STATE``: a checkpoint (``eval
--checkpoint FILE``: the exact merged states, so every chart of the live run, and intervals when
the run had ``--ci``) or a JSON result (``eval --format json -o FILE``: its values only, so no
reliability diagram or ROC/PR curves). The data is never read again.

A JSON result is checked against the layout `Result.to_dict` writes before anything is read
from it (`check_json_result`): a field that breaks it is one `ResultFileError` naming the file,
the field, the rule and the value, e.g. ``r.json: JSON result field `groups[0].rows` must be an
int >= 0 (a count), got -4``."""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from .._exceptions import ConfigError, StateError
from .._files import read_text
from ..engine.result import ClassValues, Result

__all__ = ["ResultFileError", "check_json_result", "load_result"]


#: how a checkpoint's text begins (`streammetric.engine.checkpoint`)
_CHECKPOINT_HEADS = ('{"format": "streammetric checkpoint"', '{"version": 1, "identity": ')


def load_result(
    path: str | os.PathLike[str],
    *,
    level: float | None = None,
    replicates: int | None = None,
    interval_options: tuple[str, ...] = (),
) -> Result:
    """The result a checkpoint's states give (intervals at ``level`` with ``replicates``
    bootstrap replicates when the run kept bucket states, i.e. had ``--ci``; None: the run's,
    or 0.95 and 1,000 for a checkpoint that does not say), or the one a
    JSON result holds. ``interval_options``: the options that set ``level`` and
    ``replicates`` given on the command line (``("--ci",)``): a `ConfigError` where they
    cannot apply (a JSON result holds its run's intervals; a checkpoint of a run without
    ``--ci`` has no bucket states), rather than leaving them unused."""
    text = read_text(path, "STATE")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _not_json(os.fspath(path), text, exc) from None
    except ValueError as exc:
        raise ConfigError(
            f"{os.fspath(path)}: not a checkpoint or JSON result (not JSON: {exc})"
        ) from None
    given = " and ".join(interval_options)
    if isinstance(data, dict) and "partial" in data and "identity" in data:
        identity = data["identity"]
        if given and isinstance(identity, dict) and identity.get("resampling") is None:
            raise ConfigError(
                f"{given}: {os.fspath(path)} is the checkpoint of a run without --ci: it has "
                "no bootstrap states to make intervals of"
            )
        return _from_checkpoint(os.fspath(path), data, level, replicates)
    if given and isinstance(data, dict) and "metrics" in data and "rows" in data:
        raise ConfigError(
            f"{given}: {os.fspath(path)} is a JSON result, whose intervals (if any) are its "
            f"run's as saved; {given} {'applies' if ' and ' not in given else 'apply'} to a "
            "checkpoint (eval --ci ... --checkpoint FILE)"
        )
    if isinstance(data, dict) and "unpaired" in data and "metrics" in data:
        raise ConfigError(
            f"{os.fspath(path)}: a comparison (compare --format json), not a result: "
            "compare --report FILE.html writes a comparison's page"
        )
    if isinstance(data, dict) and "metrics" in data and "rows" in data:
        check_json_result(data, os.fspath(path))
        return _from_json(data)
    raise ConfigError(
        f"{os.fspath(path)}: not a streammetric checkpoint (eval --checkpoint) or JSON result "
        "(eval --format json)"
    )


def _not_json(path: str, text: str, exc: json.JSONDecodeError) -> ConfigError:
    """The error of a STATE that is not JSON (a usage error, as any file that is not a
    state), saying what it is when that can be told: a checkpoint or JSON text cut short
    (its text ends inside the JSON: a copy or write that did not finish), or a checkpoint's
    beginning followed by what is not JSON (corrupt)."""
    body = text.rstrip()
    cut = exc.pos >= len(body) or exc.msg.startswith("Unterminated string")
    checkpoint = text.startswith(_CHECKPOINT_HEADS)
    where = f"{exc.msg}: line {exc.lineno} column {exc.colno}, char {exc.pos}"
    if cut and body.startswith("{"):
        what = "checkpoint" if checkpoint else "file"
        return ConfigError(
            f"{path}: {what} is truncated (not JSON: its text ends after "
            f"{len(text.encode())} bytes, inside the JSON; {where}): a copy or write that did "
            "not finish"
        )
    if checkpoint:
        return ConfigError(f"{path}: checkpoint is corrupt (not JSON: {where})")
    return ConfigError(f"{path}: not a checkpoint or JSON result (not JSON: {exc})")


def _from_checkpoint(
    path: str, data: dict[str, Any], level: float | None, replicates: int | None
) -> Result:
    from ..engine.checkpoint import content_digest
    from ..engine.partial import Partial
    from ..metrics.specs import build_metrics

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

    def bad(field: str, rule: str, value: Any) -> StateError:
        return StateError.bad_field(field, rule, value, what="checkpoint", path=path)

    specs, defaults = identity["metrics"], identity.get("metric_defaults") or {}
    if not isinstance(defaults, dict):
        raise bad("identity.metric_defaults", "must be an object of metric options", defaults)
    by = _by_columns(identity.get("columns", ""))
    if by is None:
        rule = "must name the --by columns as by=('column', ...)"
        raise bad("identity.columns", rule, identity.get("columns"))
    done = data.get("done") or []
    if not isinstance(done, list):
        raise bad("done", "must be a list of unit keys (strings)", done)
    resampling = identity.get("resampling")
    seed = resampling.get("seed") if isinstance(resampling, dict) else 0
    if type(seed) is not int or seed < 0:
        raise bad("identity.resampling.seed", "must be an int >= 0", seed)
    partial = Partial(lambda: build_metrics(specs, defaults))
    try:
        partial.load_json(data["partial"])
    except StateError as exc:
        raise exc.within("partial", what="checkpoint", path=path) from None
    notes = [f"from the checkpoint {path} ({len(done)} units evaluated)"]
    if isinstance(resampling, dict):  # the group keys end with the row's bucket
        from ..engine.intervals import result_with_intervals
        from ..functional.resample import DEFAULT_REPLICATES
        from ..metrics.bootstrap import Resampling

        saved = data.get("ci")
        ran: dict[str, Any] = saved if isinstance(saved, dict) else {}  # the run's (if saved)
        try:  # the run's level and replicates unless others are asked for
            header = Resampling(
                level if level is not None else ran.get("level", 0.95),
                replicates or ran.get("replicates", DEFAULT_REPLICATES),
                seed,
            )
        except ConfigError as exc:
            raise bad("ci", str(exc), ran) from None
        return result_with_intervals(partial, notes, by, header)
    return partial.result(notes, grouped=bool(by), by=by)


def _by_columns(columns: Any) -> tuple[str, ...] | None:
    """The ``--by`` columns a checkpoint's identity names (its ``columns``, the repr of the
    run's `ColumnSpec`: ``ColumnSpec(..., by=('a', 'b'), ...)``; none without ``by=``), or
    None when they are not a tuple of names."""
    text = str(columns)
    if "by=" not in text:
        return ()
    try:  # the repr's keywords, not a pattern: a column's name may hold "(", ")" or ","
        call = ast.parse(text, mode="eval").body
        given = {k.arg: k.value for k in call.keywords} if isinstance(call, ast.Call) else {}
        names = ast.literal_eval(given["by"]) if "by" in given else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
        return None
    return names


def _from_json(data: dict[str, Any]) -> Result:
    """The result a JSON result holds (`check_json_result` passed): per-class values, and
    per-class bounds of intervals, as `ClassValues` again (so that class names key them)."""

    def values(metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: ClassValues(v) if isinstance(v, dict) else v for k, v in metrics.items()}

    def bounds(intervals: dict[str, Any]) -> dict[str, Any]:
        return {name: values(ends) for name, ends in intervals.items()}

    def group(given: dict[str, Any]) -> dict[str, Any]:
        out = {**given, "metrics": values(given["metrics"])}
        if given.get("intervals") is None:
            out.pop("intervals", None)
        else:
            out["intervals"] = bounds(given["intervals"])
        return out

    groups = data.get("groups")
    if groups is not None:
        groups = [group(g) for g in groups]
    result = Result(data["rows"], data.get("invalid_rows", 0), values(data["metrics"]), groups)
    conventions = data.get("conventions")
    if conventions is not None:
        from ..explain import Explanation

        result.conventions = {n: Explanation.from_dict(e) for n, e in conventions.items()}
    if data.get("ci") is not None:
        result.ci, result.intervals = data["ci"], bounds(data.get("intervals") or {})
    return result


# -- the layout of a JSON result ----------------------------------------------------------------


class ResultFileError(StateError):
    """A JSON result (``eval --format json -o FILE``) that breaks the layout `Result.to_dict`
    writes: a `StateError` with its fields (``path``, ``field``, ``rule``, ``value``; the field
    dotted, e.g. ``"groups[0].key"``), as a checkpoint's bad field is (exit 1)."""


#: a problem of a JSON result: the field, its rule and the value (`_MISSING`: there is none)
Problem = tuple[str, str, Any]
_MISSING: Any = object()

_COUNT = "must be an int >= 0 (a count)"
_NUMBER = "a number or null"
_PER_CLASS = "a per-class object {class: number}"
_MATRIX = "a matrix (a list of rows of numbers, all of one length)"
_VALUE = f"must be {_NUMBER}, {_PER_CLASS} or {_MATRIX}"


def check_json_result(data: dict[str, Any], path: str) -> None:
    """Refuse a JSON result whose content is not what `Result.to_dict` writes (and the page
    reads): ``rows`` (and ``invalid_rows``, if there) counts; ``metrics`` an object of metric
    values, each a number or null (NaN and infinity are JSON ``NaN``/``Infinity``), a per-class
    object ``{class: number}`` or a matrix (rows of numbers of one length); ``groups``, if there,
    a list of ``{key: {column: text, number, bool or null}, rows, metrics}`` (and
    ``intervals``); ``ci`` ``{level in (0, 1), replicates >= 1, seed >= 0, method}``;
    ``intervals`` ``{name: {lower, upper}}``, each bound of the kind of the metric's value;
    ``conventions`` explain's objects (with ``exact``). The first field that breaks its rule is
    one `ResultFileError` naming ``path``, the field, the rule and the value."""
    for field, rule, value in _problems(data):
        if value is _MISSING:
            raise ResultFileError(
                f"{path}: JSON result field `{field}` is missing: it {rule}",
                path=path,
                field=field,
                rule=rule,
            )
        raise ResultFileError.bad_field(field, rule, value, what="JSON result", path=path)


def _problems(data: dict[str, Any]) -> Iterator[Problem]:
    """The problems of a JSON result, in the order of its fields (a field's parts are checked
    only when the field has its type)."""
    yield from _count(data["rows"], "rows")
    if "invalid_rows" in data:
        yield from _count(data["invalid_rows"], "invalid_rows")
    yield from _metrics(data["metrics"], "metrics")
    groups = data.get("groups")
    if groups is not None:
        if not isinstance(groups, list):
            yield "groups", "must be a list of groups {key, rows, metrics}", groups
            return
        for index, group in enumerate(groups):
            yield from _group(group, f"groups[{index}]")
    ci = data.get("ci")
    if ci is not None:
        yield from _ci(ci)
    if data.get("intervals") is not None:
        yield from _intervals(data["intervals"], "intervals", data["metrics"])
    if data.get("conventions") is not None:
        yield from _conventions(data["conventions"])


def _is_number(value: Any) -> bool:
    """A number as JSON holds one (NaN and infinities too), or null; not true/false."""
    return value is None or type(value) is int or type(value) is float


def _count(value: Any, field: str) -> Iterator[Problem]:
    if type(value) is not int or value < 0:
        yield field, _COUNT, value


def _kind(value: Any) -> str:
    """What a metric value is: `_NUMBER`, `_PER_CLASS` or `_MATRIX` (as far as its type says)."""
    if isinstance(value, dict):
        return _PER_CLASS
    return _MATRIX if isinstance(value, list) else _NUMBER


def _value(value: Any, field: str) -> Iterator[Problem]:
    """A metric value (or an interval's bound) in its JSON form (`json_value`)."""
    if _is_number(value):
        return
    if isinstance(value, dict):
        for label, item in value.items():
            if not _is_number(item):
                yield f"{field}.{label}", f"must be {_NUMBER} (a per-class value)", item
                return
    elif isinstance(value, list):
        for i, row in enumerate(value):
            if not isinstance(row, list):
                yield f"{field}[{i}]", "must be a list of numbers (a row of a matrix)", row
                return
            if len(row) != len(value[0]):
                rule = f"must be a row of {len(value[0])} numbers, as row 0 is (a matrix)"
                yield f"{field}[{i}]", rule, row
                return
            for j, cell in enumerate(row):
                if not _is_number(cell):
                    yield f"{field}[{i}][{j}]", f"must be {_NUMBER} (a cell of a matrix)", cell
                    return
    else:
        yield field, _VALUE, value


def _object_of(
    data: Any, field: str, rule: str, item: Callable[[Any, str], Iterator[Problem]]
) -> Iterator[Problem]:
    """An object (``rule`` else) whose every value holds ``item``'s rules."""
    if not isinstance(data, dict):
        yield field, rule, data
        return
    for key, value in data.items():
        yield from item(value, f"{field}.{key}")


def _metrics(metrics: Any, field: str) -> Iterator[Problem]:
    return _object_of(metrics, field, "must be an object {metric name: value}", _value)


def _group(group: Any, field: str) -> Iterator[Problem]:
    if not isinstance(group, dict):
        yield field, "must be an object {key, rows, metrics}", group
        return
    key = group.get("key", _MISSING)
    if not isinstance(key, dict):
        yield f"{field}.key", "must be an object {column: value}", key
        return
    for column, value in key.items():
        if value is not None and type(value) not in (str, int, float, bool):
            rule = "must be text, a number, true, false or null (a --by column's value)"
            yield f"{field}.key.{column}", rule, value
    yield from _count(group.get("rows", _MISSING), f"{field}.rows")
    metrics = group.get("metrics", _MISSING)
    yield from _metrics(metrics, f"{field}.metrics")
    if group.get("intervals") is not None:
        yield from _intervals(group["intervals"], f"{field}.intervals", metrics)


def _ci(ci: Any) -> Iterator[Problem]:
    if not isinstance(ci, dict):
        yield "ci", "must be an object {level, replicates, seed, method}", ci
        return
    yield from _fields(
        ci,
        "ci",
        {
            "level": (
                lambda v: type(v) in (int, float) and 0 < v < 1,
                "must be a number in (0, 1)",
            ),
            "replicates": (lambda v: type(v) is int and v >= 1, "must be an int >= 1"),
            "seed": (lambda v: type(v) is int and v >= 0, "must be an int >= 0"),
            "method": (lambda v: type(v) is str, "must be text"),
        },
    )


def _intervals(intervals: Any, field: str, metrics: Any) -> Iterator[Problem]:
    """``{name: {"lower": bound, "upper": bound}}``, each bound of the kind of the metric's
    value in ``metrics`` (a per-class value has per-class bounds, a matrix matrices)."""
    if not isinstance(intervals, dict):
        yield field, "must be an object {metric name: {lower, upper}}", intervals
        return
    for name, ends in intervals.items():
        if not isinstance(ends, dict):
            yield f"{field}.{name}", "must be an object {lower, upper}", ends
            continue
        known = isinstance(metrics, dict) and name in metrics
        kind = _kind(metrics[name]) if known else None
        bad = False
        for side in ("lower", "upper"):
            bound = ends.get(side, _MISSING)
            if bound is _MISSING or (kind is not None and _kind(bound) != kind):
                rule = _VALUE if kind is None else f"must be {kind}, as the metric's value is"
                yield f"{field}.{name}.{side}", rule, bound
                bad = True
                continue
            problems = list(_value(bound, f"{field}.{name}.{side}"))
            bad = bad or bool(problems)
            yield from problems
        if not bad and _kind(ends["lower"]) == _kind(ends["upper"]):
            yield from _ordered(ends["lower"], ends["upper"], f"{field}.{name}")


def _ordered(lower: Any, upper: Any, field: str) -> Iterator[Problem]:
    """An interval's ends (numbers, per-class objects or matrices, each checked) in order:
    ``lower <= upper`` wherever both are numbers (not null or NaN)."""
    if isinstance(lower, dict) and isinstance(upper, dict):
        for label, low in lower.items():
            if label in upper:
                yield from _ordered(low, upper[label], f"{field}.{label}")
        return
    if isinstance(lower, list) and isinstance(upper, list):
        for i, (low_row, high_row) in enumerate(zip(lower, upper, strict=False)):
            for j, (low, high) in enumerate(zip(low_row, high_row, strict=False)):
                yield from _ordered(low, high, f"{field}[{i}][{j}]")
        return
    if _is_number(lower) and _is_number(upper) and lower is not None and upper is not None:
        if lower > upper:  # False with a NaN
            rule = "must have lower <= upper (an interval's ends)"
            yield field, rule, {"lower": lower, "upper": upper}


_TEXT: tuple[Callable[[Any], bool], str] = (lambda v: type(v) is str, "must be text")


def _conventions(conventions: Any) -> Iterator[Problem]:
    """Explain's objects (`Explanation.to_dict`), one per cross-entropy metric."""
    if not isinstance(conventions, dict):
        yield "conventions", "must be an object {metric name: explanation}", conventions
        return
    for name, entry in conventions.items():
        field = f"conventions.{name}"
        if not isinstance(entry, dict):
            rule = "must be an object {kind, from_logits, rows, diagnostics, conventions}"
            yield field, rule, entry
            continue
        yield from _fields(
            entry,
            field,
            {"kind": _TEXT, "from_logits": (lambda v: type(v) is bool, "must be true or false")},
        )
        yield from _count(entry.get("rows", _MISSING), f"{field}.rows")
        yield from _diagnostics(entry.get("diagnostics", _MISSING), f"{field}.diagnostics")
        results = entry.get("conventions", _MISSING)
        if not isinstance(results, dict) or "exact" not in results:
            rule = "must be an object {convention: result} with `exact`"
            yield f"{field}.conventions", rule, results
            continue
        for convention, result in results.items():
            at = f"{field}.conventions.{convention}"
            if not isinstance(result, dict):
                rule = (
                    "must be an object {display_name, value, error, dtype, sentence, diagnostics}"
                )
                yield at, rule, result
                continue
            yield from _fields(
                result,
                at,
                {
                    "display_name": _TEXT,
                    "value": (_is_number, f"must be {_NUMBER}"),
                    "error": (lambda v: v is None or type(v) is str, "must be text or null"),
                    "dtype": _TEXT,
                    "sentence": _TEXT,
                },
            )
            yield from _diagnostics(result.get("diagnostics", _MISSING), f"{at}.diagnostics")


def _diagnostics(counts: Any, field: str) -> Iterator[Problem]:
    return _object_of(counts, field, "must be an object {name: count}", _count)


def _fields(
    data: dict[str, Any], field: str, rules: dict[str, tuple[Callable[[Any], bool], str]]
) -> Iterator[Problem]:
    """Each field of ``data`` named in ``rules`` (each there) against its predicate and rule."""
    for key, (holds, rule) in rules.items():
        value = data.get(key, _MISSING)
        if value is _MISSING or not holds(value):
            yield f"{field}.{key}", rule, value
