"""Follow a directory and evaluate every complete new prediction file exactly once.

`Watcher.poll` scans the directory (``os.scandir``, its files only, not subdirectories) and
evaluates each new file once it is complete: names starting with ``.`` or ``_`` and ending in
``.tmp`` are skipped (write there, then rename into place); a Parquet or Arrow IPC file must have
its footer (an IPC stream: whole messages, then its end-of-stream marker) and the same size and mtime as at the
previous poll (``once``: as before the footer check). Each file is evaluated by ``run_job`` and
its exact state merged into the running total, in name order within a poll. A file that fails
(unreadable, bad values, columns unlike the first file's) is reported once and re-checked when
its size, mtime or ctime change; a finished file that changes later is reported, not re-counted.

With a checkpoint, the merged state and the finished files (name, size, mtime) are written
atomically after every file, so a restart (even after ``kill -9``) neither loses nor
double-counts a file, and the final result equals one ``eval`` of all the files.

The directory may be a prefix of an object store (``s3://bucket/incoming/``): its objects are
listed at each poll, and an object is complete as soon as it is listed (uploads are atomic).

`follow` runs the polling loop until SIGTERM/SIGINT (`StopSignal`) or, with ``once``, one scan.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .._exceptions import InvalidInputError, StateError, StreamMetricError
from .._files import special_kind
from ..io import ResolvedColumns, storage
from ..io.sources import _remote_head, describe_difference, ipc_stream_end
from ..metrics import EvalMetric, create
from .checkpoint import Checkpoint
from .local import Job, Result, RunStart, run_job
from .partial import Partial
from .signals import StopSignal

__all__ = ["FileReport", "StopSignal", "Watcher", "follow"]

_DATA_SUFFIXES = (".parquet", ".parq", ".pq", ".arrow", ".arrows", ".feather", ".ipc")
Signature = tuple[int, int]  # (size, mtime_ns)


@dataclasses.dataclass(frozen=True)
class FileReport:
    """One evaluated file: its own result, its exact state, the running totals after it, and
    its columns."""

    name: str
    result: Result
    partial: Partial
    total_rows: int
    total_files: int
    #: the file's columns as resolved (None: the file had no rows to resolve them from)
    resolved: ResolvedColumns | None = None


def _skipped(name: str) -> bool:
    return name.startswith((".", "_")) or name.endswith(".tmp")


_MAGIC = (b"PAR1", b"PARE", b"ARROW1", b"\xff\xff\xff\xff")


def _complete(path: str, size: int, *, data_name: bool) -> bool | None:
    """True when the file's footer is there, False while it is not, None: not a data file.

    ``data_name``: the name has a data suffix, so a file too short to show its format yet is
    still being written (any other name is looked at again at the next poll).
    """
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(max(0, size - 8))
        tail = handle.read(8)
    if not any(head.startswith(magic) for magic in _MAGIC):
        starting = any(magic.startswith(head) for magic in _MAGIC)
        return False if starting and data_name else None
    if size < 12:
        return False
    try:
        if head.startswith((b"PAR1", b"PARE")):
            if tail[-4:] != head[:4]:
                return False
            pq.read_metadata(path)
        elif head.startswith(b"ARROW1"):
            if tail[-6:] != b"ARROW1":
                return False
            with pa.OSFile(path) as source:  # read, not mapped (as every read of `watch`)
                ipc.open_file(source).schema  # noqa: B018 - parses the footer
        else:  # the messages' framing: a batch's body may end like the end-of-stream marker
            end = ipc_stream_end(path, in_place=False)[0]
            return end in ("complete", "trailing")  # trailing: eval says
    except (pa.ArrowException, OSError):
        return False
    return True


def _columns_identity(resolved: ResolvedColumns) -> dict[str, Any]:
    fields = dataclasses.fields(resolved)
    data = {f.name: getattr(resolved, f.name) for f in fields if f.compare}
    return dict(json.loads(json.dumps(data)))


class Watcher:
    """The state of one ``watch``: finished files, the exact total, failures, files in progress.

    ``on_start(new_metrics, by, restored)`` runs once the metric configs are known (first file,
    or the checkpoint); ``on_file(report)`` after each file, before it is checkpointed (so
    an exception there leaves the file to be evaluated again); ``log`` gets one-line messages.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        job: Job,
        *,
        threads: int | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        on_start: Callable[[Callable[[], EvalMetric], tuple[str, ...], Partial | None], None]
        | None = None,
        on_file: Callable[[FileReport], None] | None = None,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.directory = os.fspath(directory)
        self.job = job
        if job.storage_options:  # for a prefix of an object store
            storage.use_storage_options(job.storage_options)
        self.threads = threads
        self.on_start, self.on_file, self.log = on_start, on_file, log
        self.files: dict[str, Signature] = {}  # finished
        self.failed: dict[str, tuple[int, int, int]] = {}  # name -> (size, mtime, ctime) tried
        self.incomplete: set[str] = set()
        self.notes: list[str] = []
        self.total: Partial | None = None
        self._seen: dict[str, Signature] = {}
        self._warned: set[tuple[str, Signature]] = set()
        self._special: set[str] = set()  # FIFOs, sockets, devices: skipped (reading one blocks)
        self._columns: dict[str, Any] | None = None
        self._metric_config: Any = None
        self._saver = None
        if checkpoint is not None:
            identity: dict[str, Any] = {
                "watch": self.directory.rstrip("/")
                if storage.is_uri(self.directory)
                else os.path.realpath(self.directory),
                "metrics": job.metrics,
                "columns": repr(job.columns),
                "on_invalid": job.on_invalid,
                "metric_defaults": job.metric_defaults,
            }
            if job.strict:  # as eval's (`Job.settings`): checkpoints without it keep theirs
                identity["strict"] = True
            self._saver = Checkpoint(checkpoint, identity)

    # -- state -----------------------------------------------------------------------------------
    def restore(self) -> None:
        """Load the checkpoint, if there is one (its files count as finished)."""
        data = None if self._saver is None else self._saver.read()
        if data is None:
            return
        assert self._saver is not None
        extra = data.get("extra")
        try:
            if not isinstance(extra, dict):
                raise TypeError
            self._begin(extra["metric_config"], extra["columns"], list(extra.get("notes", [])))
            files = {
                str(name): (int(size), int(mtime)) for name, (size, mtime) in extra["files"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError):
            raise StateError.bad_field(
                "extra",
                "must hold watch's metric_config, columns and files (name: [size, mtime])",
                extra,
                what="checkpoint",
                path=str(self._saver.path),
            ) from None
        assert self.total is not None
        self._saver.load_partial(self.total, data)
        self.files = files
        if self.on_start is not None:
            self.on_start(self._new_metrics, self.job.columns.by, self.total)

    def _new_metrics(self) -> EvalMetric:
        return create(copy.deepcopy(self._metric_config))

    def _begin(self, metric_config: Any, columns: dict[str, Any] | None, notes: list[str]) -> None:
        self._metric_config, self._columns, self.notes = metric_config, columns, notes
        self.total = Partial(self._new_metrics)

    def _save(self) -> None:
        if self._saver is None or self.total is None:
            return
        extra = {
            "files": {name: list(sig) for name, sig in sorted(self.files.items())},
            "metric_config": self._metric_config,
            "columns": self._columns,
            "notes": self.notes,
        }
        self._saver.save(self.total, set(self.files), force=True, extra=extra)

    def result(self) -> Result:
        """The merged result of every finished file (``rows`` 0 and NaN values before any)."""
        total = self.total
        if total is None:
            from ..metrics.specs import build_metrics

            total = Partial(lambda: build_metrics(self.job.metrics, self.job.metric_defaults))
        by = self.job.columns.by
        return total.result(list(self.notes), grouped=bool(by), by=by)

    # -- polling ---------------------------------------------------------------------------------
    def poll(self, *, once: bool = False, stop: Callable[[], bool] = lambda: False) -> int:
        """Evaluate the files that became complete; returns how many were evaluated."""
        if storage.is_uri(self.directory):
            return self._poll_objects(stop)
        ready = []
        present = set()
        with os.scandir(self.directory) as entries:
            found = sorted((e for e in entries if not _skipped(e.name)), key=lambda e: e.name)
        for entry in found:
            try:
                if not entry.is_file():
                    special = None if entry.is_dir() else special_kind(entry.path)
                    if special is not None and entry.name not in self._special:
                        self._special.add(entry.name)  # said once
                        self.log(f"{entry.name}: skipped: {special} is not a data file")
                    continue
                present.add(entry.name)
                if self._ready(entry.name, entry.path, once=once):
                    ready.append(entry)
            except OSError:  # vanished or unreadable right now: look again next time
                continue
        for name in list(self._seen):
            if name not in present:
                self._seen.pop(name)
                self.failed.pop(name, None)
                self.incomplete.discard(name)
        evaluated = 0
        for entry in ready:
            if stop():
                break
            evaluated += self._evaluate(entry.name, entry.path)
        return evaluated

    def _poll_objects(self, stop: Callable[[], bool]) -> int:
        """`poll` of a prefix of an object store: its objects (not those under deeper prefixes).
        An object appears whole (a PUT or a multipart upload is atomic): it is ready when its
        first bytes say it is a Parquet or Arrow IPC file (or its name has a data suffix)."""
        import pyarrow.fs as pafs

        fs, inner = storage.filesystem(self.directory)
        try:
            infos = fs.get_file_info(pafs.FileSelector(inner, recursive=False))
        except (pa.ArrowException, OSError) as exc:
            raise storage.storage_error(self.directory, exc) from None
        objects = sorted(
            (info.base_name, info)
            for info in infos
            if info.type == pafs.FileType.File and not _skipped(info.base_name)
        )
        ready = []
        for name, info in objects:
            signature = (int(info.size or 0), int(info.mtime_ns or 0))
            uri = storage.join(self.directory, inner, info.path)
            self._seen[name] = signature
            if name in self.files:
                if signature != self.files[name] and (name, signature) not in self._warned:
                    self._warned.add((name, signature))
                    self.log(f"{name}: changed after it was evaluated; not evaluated again")
                continue
            if self.failed.get(name) == (*signature, 0):
                continue
            data_name = name.lower().endswith(_DATA_SUFFIXES)
            if not data_name:
                try:
                    head = _remote_head(uri)
                except StreamMetricError:
                    continue  # vanished or unreadable right now: look again next time
                if not any(head.startswith(magic) for magic in _MAGIC):
                    continue  # not a data file: ignored, as `eval PREFIX` ignores it
            storage.remember(uri, *signature)
            ready.append((name, uri, signature))
        present = {name for name, _ in objects}
        for name in list(self._seen):
            if name not in present:
                self._seen.pop(name)
                self.failed.pop(name, None)
        evaluated = 0
        for name, uri, signature in ready:
            if stop():
                break
            evaluated += self._evaluate(name, uri, (*signature, 0))
        return evaluated

    def _ready(self, name: str, path: str, *, once: bool) -> bool:
        stat = os.stat(path)
        signature = (stat.st_size, stat.st_mtime_ns)
        previous, self._seen[name] = self._seen.get(name), signature
        if name in self.files:
            if signature != self.files[name] and (name, signature) not in self._warned:
                self._warned.add((name, signature))
                self.log(f"{name}: changed after it was evaluated; not evaluated again")
            return False
        if self.failed.get(name) == (*signature, stat.st_ctime_ns):
            return False
        data_name = name.lower().endswith(_DATA_SUFFIXES)
        complete = _complete(path, stat.st_size, data_name=data_name)
        if complete is None and not data_name:
            return False  # not a data file: ignored, as `eval DIR` ignores it
        after = os.stat(path)
        stable = (after.st_size, after.st_mtime_ns) == signature and (once or previous == signature)
        if complete is False or not stable:
            self.incomplete.add(name)
            return False
        self.incomplete.discard(name)
        return True

    def _evaluate(self, name: str, path: str, tried: tuple[int, int, int] | None = None) -> int:
        if tried is None:
            stat = os.stat(path)
            tried = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        started: list[RunStart] = []
        try:
            known = {  # the first file's list widths: another length is a ragged row, as in eval
                width: self._columns[width]
                for width in ("label_width", "pred_width")
                if self._columns is not None and self._columns.get(width) is not None
            }
            job = dataclasses.replace(self.job, paths=[path], list_widths=known, in_place=False)
            result = run_job(job, threads=self.threads, on_start=self._check_columns(started))
        except (StreamMetricError, OSError) as exc:
            self.failed[name] = tried
            message = str(exc) if isinstance(exc, StreamMetricError) else f"{exc.strerror or exc}"
            message = message.removeprefix(f"{path}: ")  # the file is named once, below
            self.log(f"{name}: not evaluated: {message} (tried again when the file changes)")
            return 0
        self.failed.pop(name, None)
        start = started[0]
        # a file without rows adds none and sets no columns for the files after it
        columns = _columns_identity(start.resolved) if start.units else None
        if self.total is None:
            config = start.new_metrics().get_config()
            self._begin(config, columns, list(start.resolved.notes))
            if self.on_start is not None:
                self.on_start(self._new_metrics, start.resolved.by, None)
        elif self._columns is None and columns is not None:
            self._columns, self.notes = columns, list(start.resolved.notes)
        assert self.total is not None and result.partial is not None
        report = FileReport(
            name,
            result,
            result.partial,
            self.total.rows + result.partial.rows,
            len(self.files) + 1,
            start.resolved if start.units else None,
        )
        if self.on_file is not None:
            self.on_file(report)
        self.total.merge(result.partial)
        self.files[name] = tried[:2]
        self._save()
        return 1

    def _check_columns(self, started: list[RunStart]) -> Callable[[RunStart], None]:
        def check(start: RunStart) -> None:
            started.append(start)
            if self._columns is None or not start.units:  # no rows: nothing to compare
                return
            columns = _columns_identity(start.resolved)
            for width in ("label_width", "pred_width"):  # not known to a checkpoint of an
                if self._columns.get(width) is None:  # earlier version, or from a stream
                    self._columns[width] = columns.get(width)
            if columns != self._columns:
                name = next(k for k in columns if columns[k] != self._columns.get(k))
                difference = describe_difference(name, columns[name], self._columns.get(name))
                raise InvalidInputError(
                    f"{start.units[0].display_path}: columns differ from the files before: "
                    f"{difference}"
                )

        return check


def follow(
    watcher: Watcher,
    stop: StopSignal,
    *,
    interval: float,
    once: bool = False,
    after_poll: Callable[[], None] | None = None,
) -> None:
    """Restore ``watcher``, then poll it every ``interval`` seconds until ``stop`` (or once).

    A signal ends the loop after the file being evaluated, so the state stays exact.
    """
    watcher.restore()
    while True:
        watcher.poll(once=once, stop=stop.is_set)
        if after_poll is not None:
            after_poll()
        if once or stop.is_set() or stop.wait(interval):
            return
