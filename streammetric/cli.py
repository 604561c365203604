"""The ``streammetric`` command: ``eval``, ``explain``, ``metrics`` (and ``watch`` with exporting).

Exit codes: 0 ok, 1 data/runtime error, 2 usage error, 3 a --fail-above/--fail-below threshold
was crossed. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import click

from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError
from .cli_export import (
    ExportOptions,
    LiveExport,
    UnitFeeder,
    export_options,
    job_options,
    make_job,
    split_columns,
)
from .engine.checkpoint import write_atomic
from .engine.local import Result
from .engine.watch import StopSignal

EXIT_DATA, EXIT_USAGE, EXIT_THRESHOLD = 1, 2, 3


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise click.BadParameter(
            f"{path}: cannot read config ({exc.strerror})", param_hint="--config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{path}: not valid TOML ({exc})", param_hint="--config") from None


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


class _Command(click.Command):
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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="streammetric")
def main() -> None:
    """Exact, reproducible evaluation metrics over prediction files."""


def _thresholds(values: tuple[str, ...], flag: str) -> list[tuple[str, float]]:
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


def _format_value(value: float) -> str:
    return repr(value) if math.isfinite(value) else str(value)


def render(result: dict[str, Any], fmt: str) -> str:
    """The result as ``json``, ``csv`` or an aligned ``table``."""
    if fmt == "json":
        return json.dumps(result, indent=2, allow_nan=True)
    names = list(result["metrics"])
    groups = result.get("groups") or []
    by = list(groups[0]["key"]) if groups else []
    rows: list[list[str]] = [
        [
            "(all)" if by else "",
            *([""] * max(0, len(by) - 1)),
            str(result["rows"]),
            *(_format_value(result["metrics"][n]) for n in names),
        ]
    ]
    for group in groups:
        rows.append(
            [str(v) for v in group["key"].values()]
            + [str(group["rows"])]
            + [_format_value(group["metrics"][n]) for n in names]
        )
    header = [*(by or [""]), "rows", *names]
    if not by:
        header, rows = header[1:], [r[1:] for r in rows]
    if fmt == "csv":
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


def _emit(result: Result, fmt: str, output: str | None) -> None:
    for note in result.notes:
        click.echo(f"streammetric: note: {note}", err=True)
    text = render(result.to_dict(), fmt)
    if output:
        write_atomic(output, text + "\n")
    else:
        click.echo(text)


@main.command("eval", cls=_Command)
@click.argument("paths", nargs=-1, required=True)
@job_options
@click.option(
    "--fail-above", multiple=True, help="METRIC=VALUE: exit 3 if the metric is above VALUE."
)
@click.option(
    "--fail-below", multiple=True, help="METRIC=VALUE: exit 3 if the metric is below VALUE."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@export_options
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: a thread pool here; dask: the same units on a Dask cluster.",
)
@click.option(
    "--scheduler", help="Dask scheduler address (tcp://HOST:PORT); default: a LocalCluster."
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="LocalCluster worker processes (default: cores)."
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_config_callback("eval"),
    help="TOML file whose [eval] table sets defaults for these options.",
)
def eval_command(
    paths: tuple[str, ...],
    fail_above: tuple[str, ...],
    fail_below: tuple[str, ...],
    progress: bool | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    **params: Any,
) -> None:
    """Evaluate prediction files (Parquet, Arrow IPC, directories, - for an IPC stream on stdin)."""
    from .engine.local import run_job

    if engine == "local" and (scheduler is not None or workers is not None):
        raise ConfigError("--scheduler and --workers need --engine dask, got --engine local")

    above, below = (
        _thresholds(tuple(fail_above), "--fail-above"),
        _thresholds(tuple(fail_below), "--fail-below"),
    )
    live = LiveExport(ExportOptions.from_params(params))
    fmt, output, checkpoint, threads = (params.pop(k) for k in _OUTPUT_PARAMS)
    job, new_metrics = make_job(list(paths), params)
    live.check(new_metrics, job.columns.by)
    feeder = UnitFeeder(live) if live.options.enabled else None
    show = sys.stderr.isatty() if progress is None else progress
    live.open()
    try:
        hooks = {
            "checkpoint": checkpoint,
            "on_start": None if feeder is None else feeder.on_start,
            "on_merge": None if feeder is None else feeder.on_merge,
        }
        with _progress_bar(show) as bar:
            if engine == "dask":
                from .engine.dask import quiet_logs, run_job_dask

                with quiet_logs():
                    result = run_job_dask(
                        job,
                        scheduler=scheduler,
                        workers=workers,
                        threads_per_worker=threads or 1,
                        progress=bar,
                        **hooks,
                    )
            else:
                result = run_job(job, threads=threads, progress=bar, **hooks)
        _emit(result, fmt, output)
        live.flush(final=True)
        with StopSignal() as stop:
            live.linger(stop)
    finally:
        live.close()
    crossed = check_thresholds(result.metrics, above, below)
    if crossed:
        click.echo(f"streammetric: threshold crossed: {'; '.join(crossed)}", err=True)
        sys.exit(EXIT_THRESHOLD)


_OUTPUT_PARAMS = ("fmt", "output", "checkpoint", "threads")


@main.command("watch", cls=_Command)
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@job_options
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between two scans of DIR.",
)
@click.option("--once", is_flag=True, help="Evaluate the complete files there now, then exit.")
@export_options
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_config_callback("watch"),
    help="TOML file whose [watch] table sets defaults for these options.",
)
def watch_command(directory: str, interval: float, once: bool, **params: Any) -> None:
    """Follow DIR and evaluate each complete new file exactly once (Ctrl-C/SIGTERM: stop).

    Files whose names start with . or _ or end in .tmp are skipped (write there, then rename);
    a file counts once its footer is written and its size stable. One line per file on stderr;
    at exit, the merged result in --format. With --once, exit 1 if a complete file failed.
    """
    from .engine.watch import FileReport, Watcher, follow

    live = LiveExport(ExportOptions.from_params(params))
    fmt, output, checkpoint, threads = (params.pop(k) for k in _OUTPUT_PARAMS)
    job, new_metrics = make_job([directory], params)
    live.check(new_metrics, job.columns.by)

    def log(message: str) -> None:
        click.echo(f"streammetric: watch: {message}", err=True)

    def on_file(report: FileReport) -> None:
        live.add(report.partial, file_end=True)
        values = ", ".join(f"{k}={_format_value(v)}" for k, v in report.result.metrics.items())
        log(
            f"{report.name}: {report.result.rows} rows ({report.result.invalid_rows} invalid), "
            f"{values}; total {report.total_rows} rows in {report.total_files} file(s)"
        )

    live.open()
    try:
        with StopSignal() as stop:
            watcher = Watcher(
                directory, job, threads=threads, checkpoint=checkpoint,
                on_start=live.start, on_file=on_file, log=log,
            )  # fmt: skip
            after_poll = functools.partial(live.flush, final=False)
            follow(watcher, stop, interval=interval, once=once, after_poll=after_poll)
            for name in sorted(watcher.incomplete):
                log(f"{name}: not complete yet; left for a later run")
            _emit(watcher.result(), fmt, output)
            live.flush(final=True)
            live.linger(stop)
    finally:
        live.close()
    if once and watcher.failed:
        log(
            f"{len(watcher.failed)} file(s) could not be evaluated: {', '.join(sorted(watcher.failed))}"
        )
        sys.exit(EXIT_DATA)


class _progress_bar:
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


@main.command("explain", cls=_Command)
@click.argument("paths", nargs=-1, required=True)
@click.option("--labels", help="Label column (default: first of label, labels, y, y_true, target).")
@click.option("--preds", help="Prediction column(s); names or a glob, comma-separated.")
@click.option("--weights", help="Sample-weight column.")
@click.option(
    "--from-logits/--from-probs",
    "from_logits",
    default=None,
    help="Predictions are logits (default: auto).",
)
@click.option("--label-smoothing", type=float, default=0.0, show_default=True)
@click.option(
    "-c",
    "--convention",
    "conventions",
    multiple=True,
    help="Only these conventions (repeatable; default: all).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=10_000_000,
    show_default=True,
    help="Refuse inputs with more rows (explain holds them in memory).",
)
def explain_command(
    paths: tuple[str, ...],
    labels: str | None,
    preds: str | None,
    weights: str | None,
    from_logits: bool | None,
    label_smoothing: float,
    conventions: tuple[str, ...],
    fmt: str,
    max_rows: int,
) -> None:
    """Every convention's cross-entropy side by side for the same data, and why they differ."""
    import numpy as np

    from .explain import explain
    from .io import ColumnSpec, iter_unit, plan, resolve_units

    pred_columns = split_columns(preds)
    spec = ColumnSpec(
        labels=labels,
        preds=(pred_columns[0] if len(pred_columns) == 1 else pred_columns) or None,
        weights=weights,
        from_logits=from_logits,
    )
    units = plan(list(paths), spec)
    resolved = resolve_units(units, spec)
    if resolved is None:
        raise InvalidInputError(f"no rows to explain in {', '.join(paths)}")
    label_parts, pred_parts, weight_parts = [], [], []
    rows = 0
    for unit in units:
        for batch in iter_unit(unit, resolved):
            rows += batch.num_rows
            if rows > max_rows:
                raise InvalidInputError(
                    f"{unit.display_path}: more than --max-rows {max_rows} rows; explain a sample of the data"
                )
            label_parts.append(batch.labels)
            pred_parts.append(batch.preds)
            if batch.weights is not None:
                weight_parts.append(batch.weights)
    for note in resolved.notes:
        click.echo(f"streammetric: note: {note}", err=True)
    explanation = explain(
        np.concatenate(label_parts),
        np.concatenate(pred_parts),
        from_logits=resolved.from_logits,
        sample_weight=np.concatenate(weight_parts) if weight_parts else None,
        label_smoothing=label_smoothing,
        conventions=list(conventions) or None,
    )
    click.echo(
        json.dumps(explanation.to_dict(), indent=2) if fmt == "json" else explanation.to_text()
    )


@main.command("metrics", cls=_Command)
def metrics_command() -> None:
    """List metrics, their aliases, and the cross-entropy conventions."""
    from .conventions import list_conventions
    from .metrics import list_metrics

    for name, aliases in list_metrics().items():
        click.echo(f"{name:24s} {', '.join(aliases)}")
    click.echo("")
    click.echo("conventions: " + ", ".join(list_conventions()))


if __name__ == "__main__":  # pragma: no cover
    main()
