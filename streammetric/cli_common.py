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

import contextlib
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from ._exceptions import ConfigError, InvalidInputError, StateError, StreamMetricError
from ._files import special_kind, write_atomic, write_text
from ._json import dumps_indented, dumps_parts
from ._keys import key_text
from .engine.local import Job, Result
from .engine.result import class_label
from .functional.resample import DEFAULT_REPLICATES
from .io import ColumnSpec, ResolvedColumns
from .io.storage import parse_storage_options
from .metrics.specs import build_metrics, distinct_names, resolve_metric_name

if TYPE_CHECKING:  # imported where used: only --ci needs it
    from .metrics.bootstrap import Resampling

__all__ = [
    "EXIT_DATA",
    "EXIT_THRESHOLD",
    "EXIT_USAGE",
    "OUTPUT_PARAMS",
    "ProgressBar",
    "StreamMetricCommand",
    "check_bootstrap",
    "check_class_count",
    "check_output",
    "check_thresholds",
    "config_option",
    "emit",
    "format_metric",
    "format_value",
    "job_options",
    "make_job",
    "parse_class_names",
    "parse_thresholds",
    "render",
    "render_comparison",
    "resolve_thresholds",
    "split_columns",
    "storage_option",
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
        _STDOUT.broken = False
        try:
            with _terminate_as_interrupt():
                result = super().invoke(ctx)
        except BrokenPipeError:  # a write to stdout (click.echo) whose reader is gone
            stdout_closed()
            ctx.exit(EXIT_DATA)
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
        if _STDOUT.broken:  # the files asked for are written; no error line (`stdout_closed`)
            ctx.exit(EXIT_DATA)
        return result


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, systemd, docker, Kubernetes) ends a command as Ctrl-C does: a run
    with ``--checkpoint`` saves every finished unit first, then "interrupted", exit 130
    (``watch`` and ``--linger`` take both signals as a stop of their own while they wait)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stdout:
    """Whether the reader of the command's stdout went away (`stdout_closed`)."""

    broken = False


_STDOUT = _Stdout()


def stdout_closed() -> None:
    """The reader of stdout is gone (``| head``, ``| true``): a broken pipe. What is left to
    write there goes to /dev/null (so does Python's flush of stdout at exit, which would fail
    again), and the command goes on: the files it was asked for (``--report``, ``-o``,
    ``--textfile``, checkpoints) are still written. It then ends without an error line, with
    exit status 1, as click's and Python's own handling of a broken pipe do (3 if a threshold
    was crossed)."""
    _STDOUT.broken = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - no /dev/null
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a file descriptor (a caller's stream)
        pass
    finally:
        os.close(devnull)


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

    from .io.storage import is_uri

    if is_uri(path):
        return "outputs are local files (an object store's URI is read, not written)"
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


def check_distinct(inputs: Sequence[str], outputs: Sequence[tuple[str, str | None]]) -> None:
    """A usage error (before anything is read or written) when a file the command writes
    (``(option, path)`` pairs) is one it reads or another it writes: the result would replace
    the predictions, the checkpoint or the other output."""
    from .io.storage import is_uri

    def same(a: str, b: str) -> bool:
        if is_uri(a) or is_uri(b) or a == "-" or b == "-":
            return a == b
        try:
            return os.path.samefile(a, b)
        except OSError:  # one of them does not exist yet
            return os.path.realpath(a) == os.path.realpath(b)

    named = [(option, path) for option, path in outputs if path is not None]
    for i, (option, path) in enumerate(named):
        for other, other_path in named[:i]:
            if same(path, other_path):
                raise ConfigError(f"{other} and {option} name the same file {path}")
        for source in inputs:
            if same(path, source):
                raise ConfigError(f"{option} {path} is an input of this run: it would be replaced")


def output_format(fmt: str | None, output: str | None, formats: Sequence[str]) -> str:
    """``--format`` as given, else the one of ``formats`` that ``-o FILE``'s extension names
    (``result.json``: json), else ``table``."""
    if fmt is not None:
        return fmt
    suffix = os.path.splitext(output)[1].lower().lstrip(".") if output else ""
    return suffix if suffix in formats else "table"


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
        click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), help="Default: the one -o FILE's extension names (.json, .csv), else table."),
        click.option("--precision", type=click.IntRange(0, 17), default=DEFAULT_PRECISION, show_default=True, metavar="N", help="Significant digits of values in the table and log lines; 0: every digit. The default 6 resolves one part in a million and keeps columns narrow; json and csv are always exact."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the result here (atomically) instead of stdout."),
        click.option("--on-invalid", type=click.Choice(["raise", "skip"]), default="raise", show_default=True, help="Stop at the first bad row, or drop and count bad rows."),
        click.option("--strict", is_flag=True, default=False, help="Rows of probabilities that do not sum to 1 are invalid rows (an error, or skipped with --on-invalid skip)."),
        click.option("--checkpoint", type=click.Path(dir_okay=False), help="Resume from / save progress to this file."),
        click.option("--threads", type=click.IntRange(min=1), help="Worker threads (default: all cores)."),
        click.option("--class-names", "class_names", type=click.UNPROCESSED, metavar="NAMES|@FILE", help="Names of classes 0, 1, ...: comma-separated, or @FILE with one per line. Per-class values are keyed by them (table, json, csv, the Prometheus class labels)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def storage_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--storage-option KEY=VALUE`` (repeatable): options of the object store of URI paths."""
    return click.option(
        "--storage-option",
        "storage_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="For s3://, gs://, hdfs:// (and fsspec) paths: an option of the filesystem, e.g. endpoint_override=http://127.0.0.1:9000, region=eu-west-1, access_key=..., secret_key=..., anonymous=true; repeatable. Default: the standard environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_PROFILE, ...).",
    )(command)


def level_option(help: str, default: float | None = None) -> Callable[..., Any]:
    """``--ci LEVEL``: the intervals' confidence level (``eval``, ``compare``, ``report``)."""
    return click.option("--ci", "ci_level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=default, show_default=default is not None, metavar="LEVEL", help=help)  # fmt: skip


def replicates_option(help: str = "") -> Callable[..., Any]:
    """``--bootstrap N``: the bootstrap's replicates."""
    return click.option("--bootstrap", "replicates", type=click.IntRange(1, 100_000), metavar="N", help=f"Bootstrap replicates (default {DEFAULT_REPLICATES}){help}.")  # fmt: skip


def seed_option(default: int | None = None) -> Callable[..., Any]:
    """``--seed S``: the seed of the rows' bootstrap weights."""
    return click.option("--seed", type=click.IntRange(0, (1 << 64) - 1), default=default, metavar="S", help="Seed of the rows' bootstrap weights (default 0).")  # fmt: skip


def ci_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--ci LEVEL [--bootstrap N] [--seed S] [--id COL]``: bootstrap intervals."""
    options = [
        level_option("Confidence intervals at LEVEL (e.g. 0.95) for every metric and group: percentile bootstrap."),
        replicates_option(),
        seed_option(),
        click.option("--id", "id_column", metavar="COL", help="Column of row ids (integers or strings): a row's bootstrap weights follow its id, so any file layout gives the same intervals (default: file and row)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def resampling_of(params: dict[str, Any]) -> tuple[Resampling | None, str | None]:
    """The `Resampling` and id column of the ``ci_options`` (popped from ``params``)."""
    level, replicates, seed, ids = (
        params.pop(k) for k in ("ci_level", "replicates", "seed", "id_column")
    )
    if level is None:
        given = [
            o
            for o, v in (("--bootstrap", replicates), ("--seed", seed), ("--id", ids))
            if v is not None
        ]
        if given:
            raise ConfigError(
                f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --ci LEVEL"
            )
        return None, None
    from .metrics.bootstrap import Resampling

    resampling = Resampling(
        level, DEFAULT_REPLICATES if replicates is None else replicates, seed or 0
    )
    check_bootstrap(resampling, replicates is None)
    return resampling, ids


def check_bootstrap(resampling: Resampling, default: bool) -> None:
    """A usage error naming ``--bootstrap`` (``default``: not given) when its replicates are
    too few for a percentile interval at ``--ci`` (`check_replicates`)."""
    from .functional.resample import check_replicates

    what = "--bootstrap" if not default else "the default --bootstrap"
    check_replicates(resampling.level, resampling.replicates, f"--ci {resampling.level:g}: {what}")


def report_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--report FILE.html`` (``eval``, ``compare``): the run's HTML page beside its output."""
    return click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE.html", help="Also write a self-contained HTML report here (charts as inline SVG; no network).")(command)  # fmt: skip


def conventions_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--conventions all|none|NAME,...``: the CE family under other conventions too."""
    return click.option("--conventions", "explain", type=click.UNPROCESSED, metavar="all|none|NAME,...", help="Also compute the cross-entropy family under these conventions (all: every one; exact always), on the same rows in the same pass, and show them side by side with why each differs (table, json, --report). Default: none, or all with --report (unless resuming a --checkpoint saved without them).")(command)  # fmt: skip


def parse_conventions(value: Any) -> str | list[str] | None:
    """``--conventions``' value (or a config file's: a string or a list of names) as the
    metrics' ``explain=`` takes it (a `ConfigError` for an unknown convention).

    >>> parse_conventions("all"), parse_conventions("none"), parse_conventions("keras, torch")
    ('all', None, ['keras', 'torch'])
    >>> parse_conventions(["pytorch"])
    ['torch']
    """
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str) and value is not None:
        raise ConfigError(f"--conventions takes all, none or names, got {value!r}")
    if value is None or value.strip().lower() == "none":
        return None
    if value.strip().lower() == "all":
        return "all"
    names = list(split_columns(value))
    if not names:
        raise ConfigError(f"--conventions takes all, none or names, got {value!r}")
    from .conventions import get_convention

    return [get_convention(name).name for name in names]


def make_job(paths: list[str], params: dict[str, Any]) -> tuple[Job, Callable[[], Any]]:
    """The `Job` of the metric/column options (popped from ``params``) and its metric factory."""
    metric_specs = list(params.pop("metrics")) or ["ce"]
    from_logits, convention = params.pop("from_logits"), params.pop("convention")
    defaults: dict[str, Any] = {}
    if convention is not None:
        defaults["convention"] = convention
    if from_logits is not None:
        defaults["from_logits"] = from_logits
    explain = parse_conventions(params.pop("explain", None))
    if explain is not None:
        defaults["explain"] = explain
    # unknown metrics / options, a metric asked for twice: a usage error before reading
    metric_specs = distinct_names(metric_specs, defaults)
    pred_columns = split_columns(params.pop("preds"))
    by = split_columns(params.pop("by"))
    twice = sorted({column for column in by if by.count(column) > 1})
    if twice:
        raise ConfigError(f"--by names column {twice[0]!r} twice, got --by {','.join(by)}")
    resampling, ids = resampling_of(params) if "ci_level" in params else (None, None)
    storage_options = parse_storage_options(params.pop("storage_options", ()) or ())
    job = Job(
        paths=paths,
        metrics=metric_specs,
        columns=ColumnSpec(
            labels=params.pop("labels"),
            preds=(pred_columns[0] if len(pred_columns) == 1 else pred_columns) or None,
            weights=params.pop("weights"),
            by=by,
            from_logits=from_logits,
            ids=ids,
        ),
        on_invalid=params.pop("on_invalid"),
        strict=params.pop("strict"),
        metric_defaults=defaults,
        resampling=resampling,
        storage_options=storage_options,
    )
    return job, lambda: build_metrics(metric_specs, defaults)


# --- class names ---------------------------------------------------------------------------------


def parse_class_names(value: Any) -> tuple[str, ...] | None:
    """``--class-names``: ``"cat,dog"`` (names around commas stripped), ``@FILE`` (one name a
    line, blank lines skipped) or a TOML list -> the names of classes 0, 1, ...; an empty or
    repeated name is a usage error (`ConfigError`).

    >>> parse_class_names(" cat, dog ,bird"), parse_class_names(["cat", "dog"])
    (('cat', 'dog', 'bird'), ('cat', 'dog'))
    >>> parse_class_names("cat,,dog")
    Traceback (most recent call last):
    ...
    streammetric._exceptions.ConfigError: --class-names: name 2 of 3 is empty, got 'cat,,dog'
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not all(isinstance(name, str) for name in value):
            raise ConfigError(f"--class-names: a list of names must hold text, got {value!r}")
        names = [name.strip() for name in value]
        given = repr(value)
    elif isinstance(value, str) and value.startswith("@"):
        names, given = _class_names_file(value[1:]), value
    else:
        names, given = [name.strip() for name in str(value).split(",")], repr(value)
    if not names:
        raise ConfigError(f"--class-names: no names in {given}")
    for index, name in enumerate(names):
        if not name:
            raise ConfigError(
                f"--class-names: name {index + 1} of {len(names)} is empty, got {given}"
            )
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise ConfigError(
                f"--class-names: {name!r} names classes {seen[name]} and {index}; "
                "each class needs its own name"
            )
        seen[name] = index
    return tuple(names)


def _class_names_file(path: str) -> list[str]:
    special = special_kind(path)
    if special is not None:
        raise ConfigError(f"--class-names @{path}: {special}, not a file of names")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"--class-names @{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--class-names @{path}: not UTF-8 text") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def check_class_count(class_names: tuple[str, ...] | None, resolved: ResolvedColumns) -> None:
    """A usage error when predictions with one score per class (a list column, or several
    ``--preds`` columns) have another number of classes than ``class_names`` names."""
    width = resolved.pred_width if resolved.pred_kind != "scalar" else None
    if class_names is None or width is None or width < 2 or width == len(class_names):
        return
    raise ConfigError(
        f"--class-names gives {len(class_names)} names, but the predictions "
        f"`{', '.join(resolved.preds)}` have {width} scores a row (one per class); "
        "give one name per class, in class index order"
    )


# --- the result: rendering, thresholds, output ---------------------------------------------------


def parse_thresholds(values: tuple[str, ...], flag: str) -> list[tuple[str, float]]:
    """``("ce=0.5",)`` -> ``[("ce", 0.5)]``; anything but METRIC=VALUE is a usage error."""
    out = []
    for item in values:
        name, sep, number = item.rpartition("=")
        try:
            limit = float(number)
        except ValueError:
            name = ""
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not METRIC=VALUE", param_hint=flag)
        if math.isnan(limit):  # no value is above or below it
            raise click.BadParameter(f"{item!r}: the threshold is NaN", param_hint=flag)
        out.append((name, limit))
    return out


#: ``NAME[class=C]``: class C of a per-class metric (a threshold's name, a CSV column's)
_CLASS_SUFFIX = re.compile(r"\[class=([^\]]*)\]\Z")


def resolve_thresholds(
    thresholds: list[tuple[str, float]], job: Job, flag: str
) -> list[tuple[str, float]]:
    """Each threshold with the output name of the metric it names (as ``-m`` names it, e.g.
    ``ce`` or ``ce:convention=keras``, or as the results do, e.g. ``cross-entropy``), with its
    ``[class=C]`` suffix if it has one (class C of a per-class metric); a name that is none of
    the requested metrics, or a metric whose value is a matrix, is a usage error, before
    anything is read."""
    out = []
    values: dict[str, Any] | None = None
    for name, limit in thresholds:
        resolved = resolve_metric_name(name, job.metrics, job.metric_defaults)
        suffix = ""
        match = _CLASS_SUFFIX.search(name)
        if resolved is None and match is not None:
            base = name[: match.start()]
            resolved = resolve_metric_name(base, job.metrics, job.metric_defaults)
            suffix = match.group(0)
        if resolved is None:
            names = [str(n) for n in _requested_names(job)]
            raise ConfigError(
                f"{flag}: threshold names metric {name!r}, which is not requested; "
                f"the results will have {', '.join(names)}"
            )
        if values is None:
            values = _fresh_values(job)
        if getattr(values.get(resolved), "ndim", 0) >= 2:  # a matrix, as an empty metric says
            raise ConfigError(_matrix_threshold(flag, resolved))
        out.append((resolved + suffix, limit))
    return out


def _requested_names(job: Job) -> list[str]:
    return list(_fresh_values(job))


def _fresh_values(job: Job) -> dict[str, Any]:
    names, values = build_metrics(job.metrics, job.metric_defaults).get()
    return {str(n): v for n, v in zip(names, values, strict=True)}


def _matrix_threshold(flag: str, name: str) -> str:
    return (
        f"{flag}: {name} is a matrix (rows true class, columns predicted class); a threshold "
        "applies to a number, to every class of a per-class metric (NAME), or to one class "
        "(NAME[class=C])"
    )


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


def format_metric(value: Any, precision: int | None = None) -> str:
    """A metric value in a log line: a number as `format_value` writes it; per-class values
    as ``{class: value, ...}``, a matrix as its rows (true class) ``[[...], ...]``; counts
    (ints) as they are.

    >>> format_metric(0.5260055555555555, 3), format_metric({"cat": 0.5, "dog": float("nan")}, 3)
    ('0.526', '{cat: 0.500, dog: nan}')
    >>> format_metric([[3, 1], [0, 2]], 3)
    '[[3, 1], [0, 2]]'
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_cell(v, precision)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(format_metric(v, precision) for v in value) + "]"
    return _cell(value, precision)


def _cell(value: Any, precision: int | None) -> str:
    """One number of a per-class value or matrix: an int (a count) as it is, a float as
    `format_value` writes it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return format_value(value, precision)


def _class_cell(value: Any, bounds: Any, label: str, shown: int | None) -> str:
    """A class's cell of a per-class value: ``value [lower, upper]`` with its interval."""
    if label not in value:
        return ""
    text = _cell(value[label], shown)
    if bounds is not None and label in bounds["lower"]:
        lower, upper = (_cell(bounds[side][label], shown) for side in ("lower", "upper"))
        text += f" [{lower}, {upper}]"
    return text


def _kind(value: Any) -> str:
    """``number``, ``classes`` (per-class values: a mapping) or ``matrix`` (a list of rows)."""
    return (
        "classes" if isinstance(value, dict) else "matrix" if isinstance(value, list) else "number"
    )


#: A column of the result's rows: (header, metric name, what of its value: None for a number,
#: a class key, a matrix cell's (true class, predicted class) indices, or ``("lower",)`` /
#: ``("upper",)``: a bound of its interval, in csv).
#: (header, metric name, part, bound): part None (a number), a class key (per-class values)
#: or a (true, pred) cell (a matrix); bound None (the value) or "lower"/"upper" (csv)
Column = tuple[str, str, str | tuple[int, int] | None, str | None]


def _columns(
    result: dict[str, Any], class_names: Sequence[str] | None, *, expand: bool
) -> list[Column]:
    """The value columns. Numbers one column each; with ``expand`` (csv) per-class values one
    column per class (``NAME[class=C]``) and matrices one per cell
    (``NAME[true_class=T,pred_class=P]``), over the classes of every scope, each followed by
    its bounds (``NAME_lower``, ``NAME_lower[class=C]``, ...) when the result has intervals."""
    scopes = [result["metrics"], *(group["metrics"] for group in result.get("groups") or [])]
    bounded = result.get("intervals") or {}
    columns: list[Column] = []

    def add(header: str, name: str, part: str | tuple[int, int] | None, suffix: str) -> None:
        columns.append((f"{header}{suffix}", name, part, None))
        if expand and name in bounded:
            columns.extend((f"{header}_{side}{suffix}", name, part, side) for side in SIDES)

    for name, value in result["metrics"].items():
        kind = _kind(value)
        if kind == "number":
            add(name, name, None, "")
        elif not expand:
            continue
        elif kind == "classes":
            for key in _union(list(scope[name]) for scope in scopes):
                add(name, name, key, f"[class={key}]")
        else:
            height = max(len(scope[name]) for scope in scopes)
            width = max((len(row) for scope in scopes for row in scope[name]), default=0)
            for t in range(height):
                for p in range(width):
                    true, pred = class_label(t, class_names), class_label(p, class_names)
                    add(name, name, (t, p), f"[true_class={true},pred_class={pred}]")
    return columns


def _column_cell(
    scope: dict[str, Any], column: Column, shown: int | None, table: bool = False
) -> str:
    """A scope's (the result's or a group's) cell of ``column`` ("" where its value has no
    such class or cell, or no interval); with intervals, a number of the ``table`` is
    ``value [lower, upper]``."""
    _, name, part, side = column
    value = scope["metrics"][name]
    bounds = (scope.get("intervals") or {}).get(name)
    if side is not None:  # a bound (csv)
        if bounds is None:
            return ""
        value = bounds[side]
    if part is None:
        text = format_value(value, shown)
        if table and bounds is not None:
            lower, upper = (format_value(bounds[side], shown) for side in SIDES)
            text += f" [{lower}, {upper}]"
        return text
    if isinstance(part, str):
        return _cell(value[part], shown) if part in value else ""
    return _matrix_cell(value, part[0], part[1], shown)


#: the two bounds of an interval, as the JSON result names them
SIDES = ("lower", "upper")


def _union(key_lists: Iterable[list[str]]) -> list[str]:
    """The keys of every list, each once, in the order first seen."""
    return list(dict.fromkeys(key for keys in key_lists for key in keys))


def _matrix_cell(matrix: list[list[Any]], row: int, column: int, shown: int | None) -> str:
    inside = row < len(matrix) and column < len(matrix[row])
    return _cell(matrix[row][column], shown) if inside else ""


def _aligned(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Lines of an aligned table: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]


def render(
    result: dict[str, Any],
    fmt: str,
    precision: int | None = None,
    class_names: Sequence[str] | None = None,
) -> str:
    """`rendered`'s text, in one str."""
    return "".join(rendered(result, fmt, precision, class_names))


def rendered(
    result: dict[str, Any],
    fmt: str,
    precision: int | None = None,
    class_names: Sequence[str] | None = None,
) -> Iterable[str]:
    """The result as ``json``, ``csv`` or an aligned ``table``, in pieces. ``precision``
    (significant digits) applies to the table only: json and csv always hold the exact values.

    Per-class values and matrices (see `streammetric.engine.result`): json holds them as they
    are; csv has a column per class (``NAME[class=C]``) or matrix cell
    (``NAME[true_class=T,pred_class=P]``); the table shows the numbers first, then one table
    of the per-class values (a row per class, and per group with ``--by``) and one per matrix
    and scope (rows true class, columns predicted class). ``class_names`` label the matrices'
    classes (``result`` holds per-class values keyed by name already)."""
    if fmt == "json":  # a list of numbers (a matrix's row) on one line; each piece made when
        # it is written (a long table's text `_json.TABLE_ROWS` groups a piece)
        return dumps_parts(result, number_lists="inline")
    shown = precision if fmt == "table" else None
    columns = _columns(result, class_names, expand=fmt == "csv")
    groups = result.get("groups") or []
    by = list(groups[0]["key"]) if groups else []
    csv = fmt == "csv"
    # cells are text, or None for no value: an empty CSV field (a null key; a "" key is "")
    rows: list[list[str | None]] = [
        [
            "(all)" if by else "",
            *([None] * max(0, len(by) - 1)),
            str(result["rows"]),
            *(_column_cell(result, column, shown, fmt == "table") or None for column in columns),
        ]
    ]
    for group in groups:
        rows.append(
            [(None if v is None else str(v)) if csv else key_text(v) for v in group["key"].values()]
            + [str(group["rows"])]
            + [_column_cell(group, column, shown, fmt == "table") or None for column in columns]
        )
    header = [*(by or [""]), "rows", *(column[0] for column in columns)]
    if not by:
        header, rows = header[1:], [r[1:] for r in rows]
    if csv:
        return ["\n".join(",".join(map(_csv_field, row)) for row in [header, *rows])]
    lines = _aligned(header, [[cell or "" for cell in row] for row in rows], len(by))
    blocks = _vector_tables(result, by, shown, class_names)
    for block in blocks:
        lines += ["", *block]
    if result.get("conventions"):
        from .explain import Explanation

        for name, explained in result["conventions"].items():
            text = Explanation.from_dict(explained).to_text()
            lines += ["", f"{name} under each convention:", text]
    if result.get("invalid_rows"):
        lines += [""] if blocks else []
        lines.append(f"invalid rows skipped: {result['invalid_rows']}")
    return ["\n".join(lines)]


def _csv_field(cell: str | None) -> str:
    """A CSV field (RFC 4180): None empty, ``""`` for an empty string (readers such as
    pyarrow's and DuckDB's tell the two apart), quoted when it holds a comma, quote or line
    break (quotes doubled).

    >>> print(*[_csv_field(c) for c in (None, "", "a", "a,b", 'a"b')], sep="|")
    |""|a|"a,b"|"a""b"
    """
    if cell is None:
        return ""
    if cell and not any(c in cell for c in ',"\r\n'):
        return cell
    return '"' + cell.replace('"', '""') + '"'


def render_comparison(data: dict[str, Any], fmt: str, precision: int | None = None) -> str:
    """``streammetric compare``'s result (`streammetric.engine.compare.Comparison.to_dict`)
    as ``json`` (exact) or an aligned ``table``: a row per metric (and per group and metric
    with ``--by``): baseline, candidate, delta [lower, upper], p-value and test, with
    ``precision`` significant digits; then the paired and unpaired row counts."""
    if fmt == "json":
        return dumps_indented(data)

    def number(value: Any) -> str:
        return "" if value is None else format_value(value, precision)

    groups = data.get("groups") or []
    by = list(groups[0]["key"]) if groups else []
    scopes = [(["(all)", *[""] * (len(by) - 1)] if by else [], data)]
    scopes += [([key_text(v) for v in group["key"].values()], group) for group in groups]
    rows = []
    for key, scope in scopes:
        for name, entry in scope["metrics"].items():
            delta = f"{number(entry['delta'])} [{number(entry['lower'])}, {number(entry['upper'])}]"
            p = number(entry["p_value"])
            rows.append([*key, name, str(scope["rows"]), number(entry["baseline"]),
                         number(entry["candidate"]), delta, p, entry["test"]])  # fmt: skip
    header = [
        *by,
        "metric",
        "paired rows",
        "baseline",
        "candidate",
        "delta [lower, upper]",
        "p",
        "test",
    ]
    lines = _aligned(header, rows, len(by) + 1)
    ci = data["ci"]
    unpaired = data["unpaired"]
    lines += [
        "",
        f"{data['rows']} paired rows; unpaired: {unpaired['baseline']} baseline, "
        f"{unpaired['candidate']} candidate; interval: {ci['level']:g} paired bootstrap "
        f"({ci['replicates']} replicates, seed {ci['seed']})",
    ]
    return "\n".join(lines)


def _vector_tables(
    result: dict[str, Any], by: list[str], shown: int | None, class_names: Sequence[str] | None
) -> list[list[str]]:
    """The table's blocks after the numbers: the per-class values, then each matrix."""
    kinds = {name: _kind(value) for name, value in result["metrics"].items()}
    scopes: list[tuple[list[str], str, dict[str, Any], dict[str, Any]]] = [
        (
            ["(all)", *[""] * (len(by) - 1)] if by else [],
            " (all)" if by else "",
            result["metrics"],
            result.get("intervals") or {},
        )
    ]
    for group in result.get("groups") or []:
        key = [key_text(v) for v in group["key"].values()]
        where = " " + " ".join(f"{col}={value}" for col, value in zip(by, key, strict=True))
        scopes.append((key, where, group["metrics"], group.get("intervals") or {}))
    blocks = []
    per_class = [name for name, kind in kinds.items() if kind == "classes"]
    if per_class:
        rows = [
            [
                *key,
                label,
                *(_class_cell(m[n], bounds.get(n), label, shown) for n in per_class),
            ]
            for key, _, m, bounds in scopes
            for label in _union(list(m[n]) for n in per_class)
        ]
        blocks.append(_aligned([*by, "class", *per_class], rows, len(by) + 1))
    for name in (name for name, kind in kinds.items() if kind == "matrix"):
        for _, where, m, _ in scopes:
            matrix = m[name]
            width = max((len(row) for row in matrix), default=0)
            header = ["true\\pred", *(class_label(p, class_names) for p in range(width))]
            rows = [
                [
                    class_label(t, class_names),
                    *(_matrix_cell(matrix, t, p, shown) for p in range(width)),
                ]
                for t in range(len(matrix))
            ]
            title = f"{name}{where}: rows true class, columns predicted class"
            blocks.append([title, *_aligned(header, rows, 1)])
    return blocks


def check_thresholds(
    metrics: dict[str, Any], above: list[tuple[str, float]], below: list[tuple[str, float]]
) -> list[str]:
    """Messages for every crossed threshold (a NaN value crosses every threshold). A threshold
    on a per-class metric applies to each of its classes (``recall[class=cat] = 0.4 is below
    0.5``); ``NAME[class=C]`` to class C alone (its key in the result, or its index); one on a
    matrix is a usage error."""
    checked = {name: _threshold_values(metrics, name) for name, _ in above + below}
    crossed = []
    for name, limit in above:
        for label, value in checked[name]:
            if not value <= limit:
                crossed.append(f"{label} = {value!r} is above {limit!r}")
    for name, limit in below:
        for label, value in checked[name]:
            if not value >= limit:
                crossed.append(f"{label} = {value!r} is below {limit!r}")
    return crossed


def _threshold_values(metrics: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    """The (label, value) pairs a threshold on ``name`` checks."""
    if name in metrics:
        value = metrics[name]
        if isinstance(value, dict):
            return [(f"{name}[class={key}]", item) for key, item in value.items()]
        if isinstance(value, list):
            raise ConfigError(_matrix_threshold("threshold", name))
        return [(name, value)]
    match = _CLASS_SUFFIX.search(name)
    base = name[: match.start()] if match is not None else name
    if match is None or base not in metrics:
        raise ConfigError(
            f"threshold names metric {name!r}, but the result has {', '.join(metrics)}"
        )
    value, wanted = metrics[base], match.group(1)
    if not isinstance(value, dict):
        what = "a matrix" if isinstance(value, list) else "one value"
        raise ConfigError(
            f"threshold names class {wanted!r} of {base}, which has {what}, not a value per class"
        )
    keys = list(value)
    if wanted not in value and wanted.isdigit() and int(wanted) < len(keys):
        wanted = keys[int(wanted)]  # an index, where the classes have names
    if wanted not in value:
        raise ConfigError(
            f"threshold names class {match.group(1)!r} of {base}, which has classes "
            f"{', '.join(keys) or '(none)'}"
        )
    return [(f"{base}[class={wanted}]", value[wanted])]


def emit(
    result: Result,
    fmt: str,
    output: str | None,
    precision: int | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """The notes on stderr, then the rendered result on stdout or (atomically) in ``output``
    (a table with ``precision`` significant digits; per-class values keyed by
    ``class_names`` when given)."""
    for note in result.notes:
        click.echo(f"streammetric: note: {note}", err=True)
    data = result.json_data(class_names) if fmt == "json" else result.to_dict(class_names)
    put_text(rendered(data, fmt, precision, class_names), output)


def put_text(text: str | Iterable[str], output: str | None) -> None:
    """``text`` (or its pieces, one after another) and a newline, (atomically) in the file
    ``output`` or on stdout: encoded a piece at a time (`write_text`), not copied whole into
    one str, nor into ``text + "\\n"`` and its bytes."""
    if output:
        write_atomic(output, text, end="\n")
        return
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (replaced by a caller)
        click.echo(text if isinstance(text, str) else "".join(text), file=stream)
        return
    if _STDOUT.broken:
        return
    try:
        stream.flush()
        write_text(buffer, text, "\n", stream.encoding or "utf-8", stream.errors or "strict")
        buffer.flush()
    except BrokenPipeError:
        stdout_closed()


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
