"""The Dask engine: the local engine's units of work on a Dask cluster, merged exactly on the client.

The client plans the job (file footers only) and submits tasks of units (a Parquet row group or
an IPC record batch each): the units and the job description, never the data. A task is one unit
when a checkpoint or a live export needs every unit's state, else a run of consecutive units (a
few tasks per worker thread: `tasks_of`). Each worker reads its units itself and returns their
exact state as plain JSON-able data (`Partial.to_json`). The client merges the states as they
complete; merging is exact, so the result is the same bits as the local engine's whatever the
worker count, task sizes, completion order, retries or lost workers. Tasks are keyed by job and
units, and a unit is merged at most once. Checkpoints are the local engine's (same
format, same identity), so a run interrupted on one engine resumes on the other.

Paths are opened by the workers as given: on a remote cluster use absolute paths that every worker
can read (a shared filesystem), or URIs (``s3://...``): each worker opens the objects of its units
itself, with the job's storage options (sent with the job) and its own environment's credentials.
``-`` (stdin) is read on the client.

>>> # run_job_dask(Job(["preds/"], ["ce", "acc"]), workers=4).to_dict() == run_job(job).to_dict()
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError, StreamMetricError
from ..io import STDIN, ColumnSpec, ResolvedColumns, Unit, file_signature
from ..io.storage import storage_options, use_storage_options
from .local import Evaluator, Job, JobRun, ProgressHook, Result, RunStart
from .partial import Partial

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["bench_dask", "check_scheduler_address", "local_cluster", "quiet_logs", "run_job_dask"]

_NOISY = ("distributed", "tornado")  # loggers `quiet_logs` mutes
#: Seconds to wait for a `scheduler` to answer before giving up (Dask's default is 30).
CONNECT_TIMEOUT_SECONDS = 10
_ADDRESS = re.compile(
    r"(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})\Z"
)
#: Tasks per worker thread when units share tasks (`tasks_of`): a few, so that a slow worker's
#: last task is a small part of the run.
TASKS_PER_SLOT = 2
#: Units a task holds at most (`tasks_of`).
MAX_UNITS_PER_TASK = 16
MergeHook = Callable[[Partial], None]
StartHook = Callable[[RunStart], None]


def run_job_dask(
    job: Job,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    retries: int = 2,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: ProgressHook | None = None,
    on_merge: MergeHook | None = None,
    on_start: StartHook | None = None,
) -> Result:
    """Evaluate ``job`` on a Dask cluster; the result is bit-identical to `run_job`'s.

    ``scheduler`` is an address (``"tcp://10.0.0.5:8786"``); without it a local cluster of
    ``workers`` processes (default: one per core) on 127.0.0.1 is started and closed at the end.
    A task that raises is retried ``retries`` times; data errors are not retried (the first bad
    row in file order is reported, as with one thread). The hooks are `run_job`'s.
    """
    _check_options(scheduler, workers, threads_per_worker, retries)
    if job.tables:  # their data is in this process only
        raise ConfigError(
            "the Dask engine reads files; evaluate an in-memory input with the local engine "
            "(streammetric.evaluate), or write it to Parquet files first"
        )
    _import_distributed()
    run = JobRun(job, checkpoint, progress, on_merge, on_start)
    for unit in run.pending:
        if unit.path == STDIN:  # only the client can read its stdin
            run.finish(unit, run.evaluator.unit_partial(unit))
    remote = [unit for unit in run.pending if unit.path != STDIN]
    if remote:
        with run.save_finished(), _client(scheduler, workers, threads_per_worker) as client:
            _run_tasks(client, run, job, remote, retries)
    return run.result()


def _unit_state(
    job: Job, resolved: ResolvedColumns, where: str, units: list[dict[str, Any]]
) -> Any:
    """Worker side: the exact state of one or more units (in plan order, evaluated into one
    partial) as plain data, or the first unit's data error (never retried; the error itself,
    pickled, so its fields come back)."""
    try:
        use_storage_options(job.storage_options)  # the worker opens the objects itself
        evaluator = Evaluator(job, resolved, where)
        partial = None
        for sent in units:
            unit = Unit.from_dict({k: v for k, v in sent.items() if k != "signature"})
            _check_same_file(unit.path, sent.get("signature"))
            partial = evaluator.unit_partial(unit, into=partial)
        assert partial is not None
        return {"state": partial.to_json()}
    except StreamMetricError as exc:
        return {"error": exc}


def _check_same_file(path: str, planned: list[int] | None) -> None:
    """Worker side: a `StreamMetricError` unless the file at ``path`` is the one the client
    planned (`file_signature`: size and mtime). A worker in another working directory (a
    relative path), on another filesystem or store, or after the file changed would read other
    rows under the plan's unit, without a word."""
    if planned is None:
        return
    here = file_signature(path)
    if here != planned:
        raise StreamMetricError(
            f"{path}: the file a Dask worker reads is not the one the client planned (size and "
            f"mtime {here} here, {planned} at the client): workers must see the client's files "
            "(absolute paths on a shared filesystem, the same object store)"
        )


def _error_of(payload: dict[str, Any]) -> StreamMetricError | None:
    error = payload.get("error")
    return error if isinstance(error, StreamMetricError) else None


def _partial_of(run: JobRun, units: Sequence[Unit], payload: dict[str, Any]) -> Partial:
    part = Partial(run.evaluator.new_metrics, unit_key=units[0].key if len(units) == 1 else None)
    part.load_json(payload["state"])
    return part


def tasks_of(units: Sequence[Unit], slots: int, each: bool) -> list[list[Unit]]:
    """The units in tasks: one each when ``each`` (a checkpoint or live export reads every
    unit's state), else runs of consecutive units, ``TASKS_PER_SLOT`` tasks per worker thread
    (``slots``; 0: unknown, one unit each) and at most ``MAX_UNITS_PER_TASK`` units a task.
    Each task's state crosses the network and is merged on the client once: with 100,000
    groups a state is ~100,000 entries whatever the unit's rows, so a task of several units
    costs one state, not one per unit; the cap keeps what a retry or a lost worker redoes,
    and the steps of the progress, small."""
    if each or slots <= 0 or not units:
        return [[unit] for unit in units]
    count = max(TASKS_PER_SLOT * slots, -(-len(units) // MAX_UNITS_PER_TASK))
    count = min(len(units), count)
    bounds = [len(units) * i // count for i in range(count + 1)]
    return [list(units[a:b]) for a, b in itertools.pairwise(bounds)]


def _task_key(run: JobRun, units: Sequence[Unit]) -> str:
    """Same job and units, same key: Dask never runs a task twice for one result."""
    text = json.dumps([run.identity, [unit.key for unit in units]], default=str, sort_keys=True)
    return f"streammetric-unit-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _run_tasks(client: Client, run: JobRun, job: Job, units: Sequence[Unit], retries: int) -> None:
    """Submit the units in tasks (`tasks_of`), merge the states as they come; units and
    tasks are in plan order."""
    from distributed import CancelledError, KilledWorker, as_completed

    if not job.storage_options:  # the workers open the objects with the client's options
        job = dataclasses.replace(job, storage_options=storage_options())
    task = functools.partial(_unit_state, job, run.resolved, run.units[0].display_path)
    slots = sum(client.nthreads().values())
    tasks = tasks_of(units, slots, run.merges_each_unit)
    position = {_task_key(run, batch): i for i, batch in enumerate(tasks)}
    signatures = {  # each file's size and mtime as planned, checked where it is read
        unit.path: file_signature(unit.path) for unit in units if unit.path != STDIN
    }
    futures = [
        client.submit(
            task,
            [{**unit.to_dict(), "signature": signatures.get(unit.path)} for unit in batch],
            key=key,
            retries=retries,
        )
        for key, batch in zip(position, tasks, strict=True)
    ]
    try:
        for future, payload in as_completed(futures, loop=client.loop, with_results=True):
            if isinstance(payload, BaseException):  # cancelled, e.g. the scheduler was lost
                raise payload
            batch = tasks[position[future.key]]
            error = _error_of(payload)
            if error is not None:
                before = range(position[future.key])
                unmerged = [futures[i] for i in before if tasks[i][0].key not in run.done]
                raise _first_error(client, unmerged) or error
            if len(batch) == 1:
                run.finish(batch[0], _partial_of(run, batch, payload))
            elif batch[0].key not in run.done:
                run.absorb_units(batch, _partial_of(run, batch, payload))
            future.release()
    except (KilledWorker, CancelledError) as exc:
        first_line = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise StreamMetricError(f"dask: {type(exc).__name__}: {first_line}") from None
    finally:
        client.cancel([future for future in futures if not future.done()])


def _first_error(client: Client, earlier: list[Future[Any]]) -> StreamMetricError | None:
    """The first data error among the units before a failed one: the same on every run."""
    for payload in client.gather(earlier):
        error = _error_of(payload)
        if error is not None:
            return error
    return None


def check_scheduler_address(scheduler: str) -> None:
    """A `ConfigError` unless ``scheduler`` is ``[PROTOCOL://]HOST:PORT`` (PROTOCOL tcp, tls,
    ws, wss or ucx; an IPv6 HOST in brackets; PORT in 0..65535), before any connection.

    >>> check_scheduler_address("tcp://10.0.0.5:8786"), check_scheduler_address("[::1]:8786")
    (None, None)
    >>> check_scheduler_address("garbage")
    Traceback (most recent call last):
    ...
    streammetric._exceptions.ConfigError: `scheduler` must be [PROTOCOL://]HOST:PORT (e.g. tcp://10.0.0.5:8786), got 'garbage'
    """
    match = _ADDRESS.match(str(scheduler))
    if match is None or int(match.group(1)) > 65535:
        raise ConfigError(
            f"`scheduler` must be [PROTOCOL://]HOST:PORT (e.g. tcp://10.0.0.5:8786), got {scheduler!r}"
        )


def _check_options(
    scheduler: str | None, workers: int | None, threads_per_worker: int, retries: int
) -> None:
    if scheduler is not None:
        check_scheduler_address(scheduler)
    if scheduler is not None and workers is not None:
        raise ConfigError(
            f"`workers` sizes the local cluster started without `scheduler`, got workers={workers} and scheduler={scheduler!r}"
        )
    for name, value, least in (
        ("workers", workers, 1),
        ("threads_per_worker", threads_per_worker, 1),
        ("retries", retries, 0),
    ):
        if value is not None and (not isinstance(value, int) or value < least):
            raise ConfigError(f"`{name}` must be an integer >= {least}, got {value!r}")


def _import_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the dask engine needs dask.distributed: install streammetric[dask]"
        ) from None


@contextmanager
def quiet_logs(level: int = logging.CRITICAL) -> Iterator[None]:
    """Mute Dask's (and its Tornado loop's) log records, e.g. tracebacks of a lost connection,
    while a command line reports the error itself in one line."""
    _import_distributed()  # distributed configures its loggers on import
    names = {"distributed", "tornado", *logging.root.manager.loggerDict}
    loggers = [logging.getLogger(n) for n in sorted(names) if n.split(".")[0] in _NOISY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, before in zip(loggers, levels, strict=True):
            logger.setLevel(before)


def local_cluster(workers: int, threads_per_worker: int = 1, *, processes: bool = True) -> Any:
    """A `LocalCluster` on 127.0.0.1: no dashboard, its HTTP endpoints on a free loopback port.
    Interrupted while it starts (Ctrl-C, SIGTERM), what started is closed here, quietly:
    Dask's own exit hook would try again and print a traceback (a worker still starting fails
    its close)."""
    from distributed import LocalCluster
    from distributed.deploy.spec import SpecCluster

    known = getattr(SpecCluster, "_instances", ())  # the clusters Dask's exit hook closes
    before = set(known)
    try:
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            protocol="tcp://",  # also in-process: messages are serialised as on a real cluster
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):  # the unstarted workers' tasks' last words
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        for cluster in set(known) - before:
            cluster.shutdown_on_close = False  # (the exit hook skips it)
            with contextlib.suppress(Exception):
                cluster.close(timeout=CONNECT_TIMEOUT_SECONDS)
        raise


@contextmanager
def _client(
    scheduler: str | None, workers: int | None, threads_per_worker: int
) -> Iterator[Client]:
    """A client of ``scheduler``, or of a local process cluster closed on exit."""
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, ValueError) as exc:
            detail = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise StreamMetricError(
                f"cannot connect to the Dask scheduler at {scheduler}: {detail}"
            ) from None
        with client:
            yield client
        return
    with (
        local_cluster(workers or os.cpu_count() or 1, threads_per_worker) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def bench_dask(
    paths: Sequence[str], metrics: Sequence[Any], *, workers: Sequence[int] = (1, 2), **columns: Any
) -> dict[int, float]:
    """Seconds per evaluation on a local process cluster of each size (cluster start excluded).

    ``columns`` are `ColumnSpec` fields (``labels="y", preds="pred"``). Every size must give the
    same bits, or this raises.
    """
    job = Job(paths=list(paths), metrics=list(metrics), columns=ColumnSpec(**columns))
    timings: dict[int, float] = {}
    outputs: set[str] = set()
    for size in workers:
        with local_cluster(size) as cluster:
            run_job_dask(job, scheduler=cluster.scheduler_address)  # warm the workers up
            start = time.perf_counter()
            result = run_job_dask(job, scheduler=cluster.scheduler_address)
            timings[size] = time.perf_counter() - start
        outputs.add(json.dumps(result.to_dict()))
    if len(outputs) != 1:
        raise StreamMetricError(f"results differ between worker counts {list(workers)}")
    return timings
