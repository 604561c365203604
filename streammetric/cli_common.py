"""What the ``streammetric`` commands share: options, ``--config``, exit codes, result output.

`job_options`/`make_job`: the metric, column and output options of ``eval`` and ``watch`` and the
`Job` they define. `config_option`: ``--config FILE``, whose TOML table sets the defaults.
`StreamMetricCommand`: errors as one line on stderr and the exit code. `render`, `emit`,
`check_thresholds`: the result as ``table``/``json``/``csv`` (stdout or an atomic ``--output``)
and the ``--fail-above``/``--fail-below`` checks. Tables and log lines show ``--precision``
significant digits (`format_value`); JSON and CSV always hold the exact values (``repr``).

Exit codes: 0 ok, 1 data/runtime error, 2 usage error, 3 a --fail-above/--fail-below threshold
was crossed. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError
from ._files import special_kind, write_atomic
from ._json import dumps_indented
from .engine.local import Job, Result
from .engine.metric_specs import build_metrics, distinct_names, resolve_metric_name
from .io import ColumnSpec

__all__ = [
    "EXIT_DATA",
    "EXIT_THRESHOLD",
    "EXIT_USAGE",
    "OUTPUT_PARAMS",
    "ProgressBar",
    "StreamMetricCommand",
    "check_output",
    "check_thresholds",
    "config_option",
    "emit",
    "format_value",
    "job_options",
    "make_job",
    "parse_thresholds",
    "render",
    "resolve_thresholds",
    "split_columns",
    "unwritable",
]

EXIT_DATA, EXIT_USAGE, EXIT_THRESHOLD = 1, 2, 3

#: The `job_options` that `make_job` leaves in ``params``, in the order the commands unpack them.
OUTPUT_PARAMS = ("fmt", "precision", "output", "checkpoint", "threads")

#: Significant digits of values in tables and log lines unless ``--precision`` says otherwise.
DEFAULT_PRECISION = 6


class StreamMetricCommand(click.Command):
    """Turns streammetric errors into one line and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"streammetric: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except (InvalidInputError, StateError, StreamMetricError) as exc:
            click.echo(f"streammetric: error: {exc}", err=True)
            ctx.exit(EXIT_DATA)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"streammetric: error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(EXIT_DATA)
        except KeyboardInterrupt:
            click.echo("streammetric: interrupted", err=True)
            ctx.exit(130)


# --- --config ------------------------------------------------------------------------------------


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    special = special_kind(path)
    if special is not None:  # reading a FIFO would block
        raise click.BadParameter(f"{path}: {special}, not a config file", param_hint="--config")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise click.BadParameter(
            f"{path}: cannot read config ({exc.strerror})", param_hint="--config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{path}: not valid TOML ({exc})", param_hint="--config") from None
    except UnicodeDecodeError as exc:  # a binary file: TOML is UTF-8 text
        raise click.BadParameter(
            f"{path}: not valid TOML (not UTF-8 text: byte {exc.start} is {exc.object[exc.start]:#04x})",
            param_hint="--config",
        ) from None


def _config_callback(
    section: str,
) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """Eager --config: the file's [section] table becomes the defaults; the command line wins."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        table = _load_toml(value).get(section)
        if not isinstance(table, dict):
            raise click.BadParameter(f"{value}: no [{section}] table", param_hint="--config")
        # keys mirror the long flags (format, on-invalid, metric or metrics, ...)
        known: dict[str, str] = {}
        for p in ctx.command.params:
            if p.name and p.name != "config":
                known[p.name] = p.name
                for opt in getattr(p, "opts", []):
                    if opt.startswith("--"):
                        known[opt[2:].replace("-", "_")] = p.name
        defaults: dict[str, Any] = {}
        for key, item in table.items():
            name = known.get(key.replace("-", "_"))
            if name is None:
                raise click.BadParameter(
                    f"{value}: unknown key {key!r} in [{section}]", param_hint="--config"
                )
            defaults[name] = item
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        return value

    return callback


def config_option(section: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE``: the file's ``[section]`` table sets the defaults of the other options."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=_config_callback(section),
        help=f"TOML file whose [{section}] table sets defaults for these options.",
    )


# --- the options of eval and watch ---------------------------------------------------------------


def unwritable(path: str) -> str | None:
    """Why a file cannot be written at ``path`` (its directory is missing or refuses a new
    file: a temporary file is created there and removed), or None if it can. Checked before
    anything is read, so that a long run does not end in losing its result."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"no directory {directory}"
    try:
        fd, probe = tempfile.mkstemp(prefix=".streammetric-probe.", suffix=".tmp", dir=directory)
    except OSError as exc:
        return f"cannot create a file in {directory} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None


def check_output(output: str | None) -> None:
    """A usage error unless ``-o FILE`` can be written (see `unwritable`)."""
    why = None if output is None else unwritable(output)
    if why is not None:
        raise ConfigError(f"-o/--output {output}: {why}")


def split_columns(value: str | None) -> tuple[str, ...]:
    """``"a, b,"`` -> ``("a", "b")``."""
    return tuple(c.strip() for c in (value or "").split(",") if c.strip())


def job_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The metric, column and output options shared by ``eval`` and ``watch``."""
    options = [
        click.option("-m", "--metric", "metrics", multiple=True, help="METRIC[:key=value,...]; repeatable (default: ce)."),
        click.option("--labels", help="Label column (default: first of label, labels, y, y_true, target)."),
        click.option("--preds", help="Prediction column, or several scalar columns as names/glob (p_*), comma-separated."),
        click.option("--weights", help="Sample-weight column."),
        click.option("--by", help="Group-by columns, comma-separated; each metric is computed per group too."),
        click.option("--from-logits/--from-probs", "from_logits", default=None, help="Predictions are logits (default: auto, from a `logits` column)."),
        click.option("--convention", help="Cross-entropy convention for the CE family: exact, keras, tf_keras, torch, mxnet, sklearn."),
        click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True),
        click.option("--precision", type=click.IntRange(0, 17), default=DEFAULT_PRECISION, show_default=True, metavar="N", help="Significant digits of values in the table and log lines; 0: every digit. The default 6 resolves one part in a million and keeps columns narrow; json and csv are always exact."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the result here (atomically) instead of stdout."),
        click.option("--on-invalid", type=click.Choice(["raise", "skip"]), default="raise", show_default=True, help="Stop at the first bad row, or drop and count bad rows."),
        click.option("--strict", is_flag=True, default=False, help="Rows of probabilities that do not sum to 1 are invalid rows (an error, or skipped with --on-invalid skip)."),
        click.option("--checkpoint", type=click.Path(dir_okay=False), help="Resume from / save progress to this file."),
        click.option("--threads", type=click.IntRange(min=1), help="Worker threads (default: all cores)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def make_job(paths: list[str], params: dict[str, Any]) -> tuple[Job, Callable[[], Any]]:
    """The `Job` of the metric/column options (popped from ``params``) and its metric factory."""
    metric_specs = list(params.pop("metrics")) or ["ce"]
    from_logits, convention = params.pop("from_logits"), params.pop("convention")
    defaults: dict[str, Any] = {}
    if convention is not None:
        defaults["convention"] = convention
    if from_logits is not None:
        defaults["from_logits"] = from_logits
    # unknown metrics / options, a metric asked for twice: a usage error before reading
    metric_specs = distinct_names(metric_specs, defaults)
    pred_columns = split_columns(params.pop("preds"))
    by = split_columns(params.pop("by"))
    twice = sorted({column for column in by if by.count(column) > 1})
    if twice:
        raise ConfigError(f"--by names column {twice[0]!r} twice, got --by {','.join(by)}")
    job = Job(
        paths=paths,
        metrics=metric_specs,
        columns=ColumnSpec(
            labels=params.pop("labels"),
            preds=(pred_columns[0] if len(pred_columns) == 1 else pred_columns) or None,
            weights=params.pop("weights"),
            by=by,
            from_logits=from_logits,
        ),
        on_invalid=params.pop("on_invalid"),
        strict=params.pop("strict"),
        metric_defaults=defaults,
    )
    return job, lambda: build_metrics(metric_specs, defaults)


# --- the result: rendering, thresholds, output ---------------------------------------------------


def parse_thresholds(values: tuple[str, ...], flag: str) -> list[tuple[str, float]]:
    """``("ce=0.5",)`` -> ``[("ce", 0.5)]``; anything but METRIC=VALUE is a usage error."""
    out = []
    for item in values:
        name, sep, number = item.rpartition("=")
        try:
            out.append((name, float(number)))
        except ValueError:
            name = ""
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not METRIC=VALUE", param_hint=flag)
    return out


def resolve_thresholds(
    thresholds: list[tuple[str, float]], job: Job, flag: str
) -> list[tuple[str, float]]:
    """Each threshold with the output name of the metric it names (as ``-m`` names it, e.g.
    ``ce`` or ``ce:convention=keras``, or as the results do, e.g. ``cross-entropy``); a name
    that is none of the requested metrics is a usage error, before anything is read."""
    out = []
    for name, limit in thresholds:
        resolved = resolve_metric_name(name, job.metrics, job.metric_defaults)
        if resolved is None:
            names = [str(n) for n in _requested_names(job)]
            raise ConfigError(
                f"{flag}: threshold names metric {name!r}, which is not requested; "
                f"the results will have {', '.join(names)}"
            )
        out.append((resolved, limit))
    return out


def _requested_names(job: Job) -> list[str]:
    names, _ = build_metrics(job.metrics, job.metric_defaults).get()
    return [str(n) for n in names]


def format_value(value: float, precision: int | None = None) -> str:
    """A metric value as printed: ``nan``/``inf``/``-inf`` if not finite; otherwise ``repr``
    (exact: it reads back as the same float) or, with ``precision`` N > 0, N significant digits
    as ``%#g`` writes them: an exponent for values below 1e-4 or from 10**N, and trailing zeros
    kept (but no bare trailing point), so values of one magnitude have one width and line up.

    >>> format_value(0.5260055555555555), format_value(0.5260055555555555, 6)
    ('0.5260055555555555', '0.526006')
    >>> format_value(0.73115, 6), format_value(1.0, 6), format_value(123456789.0, 6)
    ('0.731150', '1.00000', '1.23457e+08')
    >>> format_value(2.5e-09, 3), format_value(-0.000123456, 3), format_value(42.0, 1)
    ('2.50e-09', '-0.000123', '4e+01')
    >>> format_value(float("inf"), 6), format_value(float("nan"), 6)
    ('inf', 'nan')
    """
    if not math.isfinite(value):
        return str(value)
    if not precision:
        return repr(value)
    return f"{value:#.{precision}g}".replace(".e", "e").rstrip(".")


def render(result: dict[str, Any], fmt: str, precision: int | None = None) -> str:
    """The result as ``json``, ``csv`` or an aligned ``table``. ``precision`` (significant
    digits) applies to the table only: json and csv always hold the exact values."""
    if fmt == "json":
        return dumps_indented(result)
    shown = precision if fmt == "table" else None
    names = list(result["metrics"])
    groups = result.get("groups") or []
    by = list(groups[0]["key"]) if groups else []
    rows: list[list[str]] = [
        [
            "(all)" if by else "",
            *([""] * max(0, len(by) - 1)),
            str(result["rows"]),
            *(format_value(result["metrics"][n], shown) for n in names),
        ]
    ]
    for group in groups:
        rows.append(
            [str(v) for v in group["key"].values()]
            + [str(group["rows"])]
            + [format_value(group["metrics"][n], shown) for n in names]
        )
    header = [*(by or [""]), "rows", *names]
    if not by:
        header, rows = header[1:], [r[1:] for r in rows]
    if fmt == "csv":
        import csv

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < len(by) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    if result.get("invalid_rows"):
        lines.append(f"invalid rows skipped: {result['invalid_rows']}")
    return "\n".join(lines)


def check_thresholds(
    metrics: dict[str, float], above: list[tuple[str, float]], below: list[tuple[str, float]]
) -> list[str]:
    """Messages for every crossed threshold (a NaN value crosses every threshold)."""
    crossed = []
    for name, _ in above + below:
        if name not in metrics:
            raise ConfigError(
                f"threshold names metric {name!r}, but the result has {', '.join(metrics)}"
            )
    for name, limit in above:
        if not metrics[name] <= limit:
            crossed.append(f"{name} = {metrics[name]!r} is above {limit!r}")
    for name, limit in below:
        if not metrics[name] >= limit:
            crossed.append(f"{name} = {metrics[name]!r} is below {limit!r}")
    return crossed


def emit(result: Result, fmt: str, output: str | None, precision: int | None = None) -> None:
    """The notes on stderr, then the rendered result on stdout or (atomically) in ``output``
    (a table with ``precision`` significant digits)."""
    for note in result.notes:
        click.echo(f"streammetric: note: {note}", err=True)
    text = render(result.to_dict(), fmt, precision)
    if output:
        write_atomic(output, text + "\n")
    else:
        click.echo(text)


class ProgressBar:
    """A tqdm bar over rows on stderr, or nothing."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if not self.show:
            return None
        from tqdm import tqdm

        self.bar = tqdm(unit=" rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        return self.bar.update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
