"""The ``streammetric`` command: ``eval``, ``explain``, ``metrics`` (and ``watch`` with exporting).

Exit codes: 0 ok, 1 data/runtime error, 2 usage error, 3 a --fail-above/--fail-below threshold
was crossed. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError

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


def _split_columns(value: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (value or "").split(",") if c.strip())


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


@main.command("eval", cls=_Command)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    help="METRIC[:key=value,...]; repeatable (default: ce).",
)
@click.option("--labels", help="Label column (default: first of label, labels, y, y_true, target).")
@click.option(
    "--preds",
    help="Prediction column, or several scalar columns as names/glob (p_*), comma-separated.",
)
@click.option("--weights", help="Sample-weight column.")
@click.option(
    "--by", help="Group-by columns, comma-separated; each metric is computed per group too."
)
@click.option(
    "--from-logits/--from-probs",
    "from_logits",
    default=None,
    help="Predictions are logits (default: auto, from a `logits` column).",
)
@click.option(
    "--convention",
    help="Cross-entropy convention for the CE family: exact, keras, tf_keras, torch, mxnet, sklearn.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
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
    help="Stop at the first bad row, or drop and count bad rows.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    help="Resume from / save progress to this file.",
)
@click.option("--threads", type=click.IntRange(min=1), help="Worker threads (default: all cores).")
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
    metrics: tuple[str, ...],
    labels: str | None,
    preds: str | None,
    weights: str | None,
    by: str | None,
    from_logits: bool | None,
    convention: str | None,
    fmt: str,
    output: str | None,
    on_invalid: str,
    checkpoint: str | None,
    threads: int | None,
    fail_above: tuple[str, ...],
    fail_below: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Evaluate prediction files (Parquet, Arrow IPC, directories, - for an IPC stream on stdin)."""
    from .engine import Job, run_job
    from .engine.metric_specs import build_metrics
    from .io import ColumnSpec

    above, below = (
        _thresholds(tuple(fail_above), "--fail-above"),
        _thresholds(tuple(fail_below), "--fail-below"),
    )
    metric_specs = list(metrics) or ["ce"]
    defaults: dict[str, Any] = {}
    if convention is not None:
        defaults["convention"] = convention
    if from_logits is not None:
        defaults["from_logits"] = from_logits
    build_metrics(metric_specs, defaults)  # unknown metrics / options: a usage error before reading
    pred_columns = _split_columns(preds)
    job = Job(
        paths=list(paths),
        metrics=metric_specs,
        columns=ColumnSpec(
            labels=labels,
            preds=(pred_columns[0] if len(pred_columns) == 1 else pred_columns) or None,
            weights=weights,
            by=_split_columns(by),
            from_logits=from_logits,
        ),
        on_invalid=on_invalid,
        metric_defaults=defaults,
    )
    show = sys.stderr.isatty() if progress is None else progress
    with _progress_bar(show) as bar:
        result = run_job(job, threads=threads, checkpoint=checkpoint, progress=bar)
    for note in result.notes:
        click.echo(f"streammetric: note: {note}", err=True)
    text = render(result.to_dict(), fmt)
    if output:
        _write_atomic(Path(output), text + "\n")
    else:
        click.echo(text)
    crossed = check_thresholds(result.metrics, above, below)
    if crossed:
        click.echo(f"streammetric: threshold crossed: {'; '.join(crossed)}", err=True)
        sys.exit(EXIT_THRESHOLD)


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


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", dir=path.parent if str(path.parent) else "."
    )
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    pred_columns = _split_columns(preds)
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
