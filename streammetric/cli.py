"""The ``streammetric`` command: ``eval``, ``watch``, ``explain`` and ``metrics``.

This module is the click group and each command's wiring; the shared options, ``--config``, exit
codes and result output are in :mod:`streammetric.cli_common`, the live export (``--serve``,
``--push``, ``--textfile``) in :mod:`streammetric.cli_export`.

Exit codes: 0 ok, 1 data/runtime error, 2 usage error, 3 a --fail-above/--fail-below threshold
was crossed. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from . import _guard
from ._exceptions import ConfigError, InvalidInputError
from .cli_common import (
    EXIT_DATA,
    EXIT_THRESHOLD,
    OUTPUT_PARAMS,
    ProgressBar,
    StreamMetricCommand,
    check_bootstrap,
    check_class_count,
    check_distinct,
    check_output,
    check_thresholds,
    ci_options,
    config_option,
    conventions_option,
    emit,
    format_metric,
    job_options,
    level_option,
    make_job,
    output_format,
    parse_class_names,
    parse_thresholds,
    put_text,
    render,
    render_comparison,
    replicates_option,
    report_option,
    resolve_thresholds,
    seed_option,
    split_columns,
    storage_option,
)
from .cli_export import ExportOptions, LiveExport, UnitFeeder, export_options
from .engine.signals import StopSignal

if TYPE_CHECKING:
    from .engine.local import RunStart

__all__ = ["check_thresholds", "main", "render", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="streammetric")
def main() -> None:
    """Exact, reproducible evaluation metrics over prediction files."""


@main.command("eval", cls=StreamMetricCommand)
@click.argument("paths", nargs=-1, required=True)
@job_options
@conventions_option
@storage_option
@ci_options
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
@report_option
@config_option("eval")
def eval_command(
    paths: tuple[str, ...],
    report_path: str | None,
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
    if scheduler is not None:
        from .engine.dask import check_scheduler_address

        check_scheduler_address(scheduler)

    above, below = (
        parse_thresholds(tuple(fail_above), "--fail-above"),
        parse_thresholds(tuple(fail_below), "--fail-below"),
    )
    class_names = parse_class_names(params.pop("class_names"))
    live = LiveExport(ExportOptions.from_params(params), class_names)
    fmt, precision, output, checkpoint, threads = (params.pop(k) for k in OUTPUT_PARAMS)
    check_output(output)
    fmt = output_format(fmt, output, ("json", "csv"))
    check_report(report_path)
    outputs = [("-o", output), ("--report", report_path), ("--checkpoint", checkpoint)]
    check_distinct(paths, [*outputs, ("--textfile", live.options.textfile)])
    if report_path is not None and params.get("explain") is None:
        params["explain"] = "all"  # the report sets the conventions side by side ...
        if checkpoint is not None:  # ... unless the run resumed did not keep them
            from .engine.checkpoint import saved_metric_defaults

            saved = saved_metric_defaults(checkpoint)
            if saved is not None:
                params["explain"] = saved.get("explain")
    job, new_metrics = make_job(list(paths), params)
    above = resolve_thresholds(above, job, "--fail-above")
    below = resolve_thresholds(below, job, "--fail-below")
    live.check(new_metrics, job.columns.by)
    feeder = UnitFeeder(live) if live.options.enabled else None
    show = sys.stderr.isatty() if progress is None else progress

    def on_start(start: RunStart) -> None:
        check_class_count(class_names, start.resolved)  # before anything is read
        if feeder is not None:
            feeder.on_start(start)

    live.open()
    try:
        hooks = {
            "checkpoint": checkpoint,
            "on_start": None if feeder is None and class_names is None else on_start,
            "on_merge": None if feeder is None else feeder.on_merge,
        }
        with ProgressBar(show) as bar:
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
        emit(result, fmt, output, precision, class_names)
        if report_path is not None:
            from .report import result_html, write_report

            write_report(
                report_path, result_html(result, command=_command_line(), class_names=class_names)
            )
        live.set_result(result)
        live.flush(final=True)
        with StopSignal() as stop:
            live.linger(stop)
    finally:
        live.close()
    crossed = check_thresholds(result.named_metrics(class_names), above, below)
    if crossed:
        click.echo(f"streammetric: threshold crossed: {'; '.join(crossed)}", err=True)
        sys.exit(EXIT_THRESHOLD)


@main.command("compare", cls=StreamMetricCommand)
@click.argument("paths", nargs=-1, required=True, metavar="BASELINE [CANDIDATE]")
@click.option(
    "--on",
    "on",
    metavar="COL",
    help="Id column that pairs the rows of the two files, in any order (default: id).",
)
@click.option(
    "--baseline-preds",
    metavar="COL",
    help="One file: the baseline's prediction column (--preds: the candidate's); rows pair by position.",
)
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    help="METRIC[:key=value,...]; repeatable (default: ce).",
)
@click.option("--labels", help="Label column (default: first of label, labels, y, y_true, target).")
@click.option("--preds", help="Prediction column(s) (of the candidate in single-file mode).")
@click.option(
    "--weights",
    help="Sample-weight column (McNemar's test is then not defined: bootstrap p-values).",
)
@click.option(
    "--by", help="Group-by columns, comma-separated; each metric is compared per group too."
)
@click.option(
    "--from-logits/--from-probs",
    "from_logits",
    default=None,
    help="Predictions are logits (default: auto).",
)
@click.option("--convention", help="Cross-entropy convention for the CE family.")
@level_option("Level of the deltas' paired bootstrap intervals.", default=0.95)
@replicates_option()
@seed_option(default=0)
@click.option(
    "--strict",
    is_flag=True,
    default=False,
    help="A row without a pair on the other side is an error naming file, column and row.",
)
@click.option(
    "--fail-if-worse",
    multiple=True,
    metavar="METRIC=MARGIN",
    help="Exit 3 if the candidate is significantly worse by more than MARGIN (the delta's interval beyond it); repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    help="Default: json if -o FILE ends in .json, else table.",
)
@click.option(
    "--precision",
    type=click.IntRange(0, 17),
    default=6,
    show_default=True,
    metavar="N",
    help="Significant digits in the table; json is exact.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the result here (atomically) instead of stdout.",
)
@click.option(
    "--on-invalid",
    type=click.Choice(["raise", "skip"]),
    default="raise",
    show_default=True,
    help="Stop at the first bad row, or drop and count bad rows (each side its own).",
)
@click.option("--threads", type=click.IntRange(min=1), help="Worker threads (default: all cores).")
@report_option
def compare_command(
    paths: tuple[str, ...],
    report_path: str | None,
    on: str | None,
    baseline_preds: str | None,
    fail_if_worse: tuple[str, ...],
    fmt: str | None,
    precision: int,
    output: str | None,
    threads: int | None,
    **params: Any,
) -> None:
    """Compare a candidate's predictions with a baseline's, row by row (paired).

    Two files: rows pair by the id column --on (default id), in any order. One file: its
    --baseline-preds and --preds columns, rows paired by position. Per metric: each side's
    value (over all of its own rows: the value `eval` gives that side), the delta
    candidate - baseline, its paired bootstrap interval at --ci (both sides resampled with the
    same weights per row id) and a p-value: McNemar's exact test for accuracy and top-k
    accuracy (paired rows only, without --weights), else the paired bootstrap's. Rows without a
    pair are counted (unpaired); an id repeated within a side is an error.
    """
    import dataclasses

    from .engine.compare import compare, fail_messages
    from .engine.compare import higher_is_better as directions
    from .metrics.specs import build_metrics, resolve_metric_name

    if len(paths) > 2:
        raise ConfigError(f"compare takes BASELINE [CANDIDATE], got {len(paths)} paths")
    single = len(paths) == 1
    if single and (baseline_preds is None or params["preds"] is None):
        raise ConfigError("compare PATH (one file) needs --baseline-preds COL and --preds COL")
    if single and on is not None:
        raise ConfigError("--on pairs rows of two files; one file's rows pair by position")
    check_output(output)
    fmt = output_format(fmt, output, ("json",))
    check_report(report_path)
    check_distinct(paths, [("-o", output), ("--report", report_path)])
    checks = parse_thresholds(tuple(fail_if_worse), "--fail-if-worse")
    level, replicates, seed, strict = (
        params.pop(k) for k in ("ci_level", "replicates", "seed", "strict")
    )
    from .functional.resample import DEFAULT_REPLICATES
    from .metrics.bootstrap import Resampling

    resampling = Resampling(level, replicates or DEFAULT_REPLICATES, seed)
    check_bootstrap(resampling, replicates is None)
    base_params = {**params, "strict": False}
    if baseline_preds is not None:
        base_params["preds"] = baseline_preds
    column = on or "id"
    ids = None if single else column
    jobs = []
    for path, side in ((paths[0], base_params), (paths[-1], {**params, "strict": False})):
        job, _ = make_job([path], dict(side))
        job = dataclasses.replace(
            job, resampling=resampling, columns=dataclasses.replace(job.columns, ids=ids)
        )
        jobs.append(job)
    baseline, candidate = jobs
    resolved_checks = []
    direction = directions(build_metrics(baseline.metrics, baseline.metric_defaults))
    for name, margin in checks:  # a usage error before anything is read
        resolved = resolve_metric_name(name, baseline.metrics, baseline.metric_defaults)
        if resolved is None:
            raise ConfigError(
                f"--fail-if-worse: {name!r} is not a requested metric; the results will have "
                f"{', '.join(direction)}"
            )
        resolved_checks.append((resolved, margin))
        if direction.get(resolved) is None:
            raise ConfigError(
                f"--fail-if-worse: {resolved} has no better direction (neither higher nor lower is better)"
            )
    if single:
        column = f"{baseline_preds} / {params['preds']}"
    comparison = compare(baseline, candidate, column=column, strict=strict, threads=threads)
    for note in comparison.notes:
        click.echo(f"streammetric: note: {note}", err=True)
    put_text(render_comparison(comparison.to_dict(), fmt, precision), output)
    if report_path is not None:
        from .report import comparison_html, write_report

        write_report(report_path, comparison_html(comparison, command=_command_line()))
    crossed = fail_messages(comparison, resolved_checks)
    if crossed:
        click.echo(f"streammetric: candidate fails --fail-if-worse: {'; '.join(crossed)}", err=True)
        sys.exit(EXIT_THRESHOLD)


@main.command("report", cls=StreamMetricCommand)
@click.argument("state", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.html",
    help="Write the HTML report here (atomically).",
)
@level_option(
    "Interval level, for a checkpoint of a run with --ci (default: the run's).", default=0.95
)
@replicates_option(", for a checkpoint of a run with --ci")
@click.option("--class-names", help="Class names in class index order, comma-separated.")
@click.pass_context
def report_command(
    ctx: click.Context,
    state: str,
    output: str,
    ci_level: float,
    replicates: int | None,
    class_names: str | None,
) -> None:
    """Write the HTML report of a saved STATE without reading the data again: a checkpoint
    (eval --checkpoint FILE: every chart, intervals if the run had --ci) or a JSON result
    (eval --format json -o FILE: values, groups and matrices; no curves). --ci and
    --bootstrap apply to a checkpoint of a run with --ci; a JSON result's intervals are its
    run's."""
    from .functional.resample import DEFAULT_REPLICATES
    from .metrics.bootstrap import Resampling
    from .report import result_html, write_report
    from .report.state import load_result

    check_output(output)
    check_distinct([state], [("-o", output)])
    given = tuple(
        option
        for option, name in (("--ci", "ci_level"), ("--bootstrap", "replicates"))
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
    )
    check_bootstrap(Resampling(ci_level, replicates or DEFAULT_REPLICATES), replicates is None)
    level = ci_level if "--ci" in given else None  # else the run's (a checkpoint keeps it)
    result = load_result(state, level=level, replicates=replicates, interval_options=given)
    names = parse_class_names(class_names)
    write_report(output, result_html(result, command=_command_line(), class_names=names))


def check_report(path: str | None) -> None:
    """A usage error unless ``--report FILE`` can be written (before anything is read)."""
    from .cli_common import unwritable

    why = None if path is None else unwritable(path)
    if why is not None:
        raise ConfigError(f"--report {path}: {why}")


def _command_line() -> str:
    """The command as run, for the report's header (arguments quoted as a shell would)."""
    import shlex

    return " ".join(["streammetric", *map(shlex.quote, sys.argv[1:])])


def _watched(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """DIR: an existing directory, or a URI (an object store's prefix)."""
    from .io.storage import is_uri

    if is_uri(value):
        return value
    return str(click.Path(exists=True, file_okay=False).convert(value, param, ctx))


@main.command("watch", cls=StreamMetricCommand)
@click.argument("directory", callback=_watched)
@job_options
@storage_option
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
@config_option("watch")
def watch_command(directory: str, interval: float, once: bool, **params: Any) -> None:
    """Follow DIR and evaluate each complete new file exactly once (Ctrl-C/SIGTERM: stop).

    DIR is a directory, or a prefix of an object store (s3://bucket/incoming/), whose objects
    are complete as soon as they are listed.

    Files whose names start with . or _ or end in .tmp are skipped (write there, then rename);
    a file counts once its footer is written and its size stable. One line per file on stderr;
    at exit, the merged result in --format. With --once, exit 1 if a complete file failed.
    """
    from .engine.watch import FileReport, Watcher, follow

    class_names = parse_class_names(params.pop("class_names"))
    live = LiveExport(ExportOptions.from_params(params), class_names)
    fmt, precision, output, checkpoint, threads = (params.pop(k) for k in OUTPUT_PARAMS)
    check_output(output)
    fmt = output_format(fmt, output, ("json", "csv"))
    outputs = [("-o", output), ("--checkpoint", checkpoint)]
    check_distinct([], [*outputs, ("--textfile", live.options.textfile)])
    job, new_metrics = make_job([directory], params)
    live.check(new_metrics, job.columns.by)

    def log(message: str) -> None:
        click.echo(f"streammetric: watch: {message}", err=True)

    def on_file(report: FileReport) -> None:
        if report.resolved is not None:
            check_class_count(class_names, report.resolved)
        metrics = report.result.named_metrics(class_names)  # checks the names' number
        live.add(report.partial, file_end=True)
        values = ", ".join(f"{k}={format_metric(v, precision)}" for k, v in metrics.items())
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
            emit(watcher.result(), fmt, output, precision, class_names)
            live.flush(final=True)
            live.linger(stop)
    finally:
        live.close()
    if once and watcher.failed:
        log(
            f"{len(watcher.failed)} file(s) could not be evaluated: {', '.join(sorted(watcher.failed))}"
        )
        sys.exit(EXIT_DATA)


@main.command("explain", cls=StreamMetricCommand)
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
@storage_option
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
    storage_options: tuple[str, ...],
) -> None:
    """Every convention's cross-entropy side by side for the same data, and why they differ."""
    import numpy as np

    from .engine.partial import batch_weights
    from .explain import explain
    from .io import ColumnSpec, iter_unit, plan, resolve_units
    from .io.storage import parse_storage_options, use_storage_options

    use_storage_options(parse_storage_options(storage_options))
    pred_columns = split_columns(preds)
    spec = ColumnSpec(
        labels=labels,
        preds=(pred_columns[0] if len(pred_columns) == 1 else pred_columns) or None,
        weights=weights,
        from_logits=from_logits,
    )
    input_notes: list[str] = []
    units = plan(list(paths), spec, notes=input_notes)
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
                    f"{unit.display_path}: more than --max-rows {max_rows} rows; explain a sample of the data, or run `streammetric eval --conventions all` (any size, one pass)"
                )
            label_parts.append(batch.labels)
            pred_parts.append(batch.preds)
            checked = batch_weights(batch, resolved)  # with its file, column and row
            if checked is not None:
                weight_parts.append(checked)
    if not rows:
        raise InvalidInputError(f"no rows to explain in {', '.join(paths)}")
    for note in [*input_notes, *resolved.notes]:
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


@main.command("metrics", cls=StreamMetricCommand)
def metrics_command() -> None:
    """List metrics, their aliases, and the cross-entropy conventions."""
    from ._metric_table import METRICS
    from .conventions import list_conventions

    for row in METRICS:
        click.echo(f"{row.name:24s} {', '.join(row.aliases)}".rstrip())
    click.echo("")
    click.echo("conventions: " + ", ".join(list_conventions()))


def run() -> None:
    """The process entry point (the ``streammetric`` script, ``python -m streammetric.cli``).

    Runs `main`; then, when the command left nothing running (no other thread, no child
    process, no Dask), flushes stdout and stderr and ends the process with ``os._exit``: the
    interpreter's teardown, which frees every module (~35 ms once pyarrow is loaded), is
    skipped. Every file the command writes (``-o``, checkpoints, ``--textfile``) is closed and
    renamed into place before `main` returns. Otherwise, or if a stream cannot be flushed, the
    process exits the usual way.

    A file truncated or rewritten in place while it is read (its pages mapped in memory) ends
    the process with one line naming it and exit code 1, instead of the shell's "Bus error"
    (`streammetric._guard`)."""
    _guard.install(EXIT_DATA, "streammetric: error: ")
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        click.echo(str(code), err=True)
        code = 1
    if _nothing_left_running():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)
        os._exit(code or 0)
    sys.exit(code)


def _nothing_left_running() -> bool:
    if threading.active_count() > 1 or "distributed" in sys.modules:
        return False
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is None or not multiprocessing.active_children()


if __name__ == "__main__":  # pragma: no cover
    run()
