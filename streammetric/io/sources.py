"""Input discovery: path expansion, format sniffing, hive partitions, footer caches and stdin.

`_sources` expands files, directories (walked recursively; ``key=value`` directories become
partition columns) and ``-`` into ``(path, kind, partitions)``, the format coming from the magic
bytes. Parquet footers and Arrow IPC layouts are cached per ``(path, size, mtime)``; stdin is
opened once and shared by planning (its schema) and reading (its batches). `_resolve_sources`
checks that every input has the same columns.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from streammetric import _guard
from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric._files import special_kind
from streammetric.io import storage
from streammetric.io.columns import ColumnSpec, ResolvedColumns, resolve

UnitKind = Literal["parquet", "ipc_file", "ipc_stream", "memory"]
PartitionValue = int | str | None
STDIN = "-"
_HIDDEN_PREFIXES = (".", "_")
_DATA_SUFFIXES = (".parquet", ".parq", ".pq", ".arrow", ".arrows", ".feather", ".ipc")
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INTEGER = re.compile(r"-?[0-9]+\Z")


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _arrow_error(where: str, exc: BaseException) -> InvalidInputError:
    return InvalidInputError(f"{where}: {_one_line(exc)}")


def _is_hidden(name: str) -> bool:
    return name.startswith(_HIDDEN_PREFIXES) or name.endswith(".tmp")


def _sniff(path: str, *, strict: bool) -> UnitKind | None:
    """The format from the magic bytes; ``None`` (or an error when ``strict``) if unknown."""
    if storage.is_uri(path):
        head = _remote_head(path)
    else:
        try:
            with open(path, "rb") as handle:
                head = handle.read(8)
        except OSError as exc:
            raise _arrow_error(f"{path}: cannot read file", exc) from exc
    if head.startswith((b"PAR1", b"PARE")):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "ipc_file"
    if head.startswith(b"\xff\xff\xff\xff"):
        return "ipc_stream"
    if strict:
        found = "the file is empty" if not head else f"starts with {head[:4]!r}"
        raise InvalidInputError(f"{path}: not a Parquet or Arrow IPC file ({found})")
    return None


def _remote_head(uri: str) -> bytes:
    fs, inner = storage.filesystem(uri)
    try:
        with fs.open_input_stream(inner) as handle:
            return bytes(handle.read(8))
    except (pa.ArrowException, OSError) as exc:
        raise storage.storage_error(uri, exc) from None


def open_remote(uri: str) -> Any:
    """A random-access pyarrow file of an object (to be closed)."""
    fs, inner = storage.filesystem(uri)
    try:
        return fs.open_input_file(inner)
    except (pa.ArrowException, OSError) as exc:
        raise storage.storage_error(uri, exc) from None


def _remote_sources(given: str) -> list[tuple[str, dict[str, str | None]]]:
    """The objects of a URI (an object, or every object under a prefix with its raw hive
    partition values), their sizes and mtimes remembered."""
    import pyarrow.fs as pafs

    fs, inner = storage.filesystem(given)
    try:
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.File:
            storage.remember(given, int(info.size or 0), int(info.mtime_ns or 0))
            return [(given, {})]
        if info.type != pafs.FileType.Directory:
            bucket = inner.split("/", 1)[0]
            if isinstance(fs, pafs.S3FileSystem | pafs.GcsFileSystem) and bucket:
                # a missing bucket says so when listed
                fs.get_file_info(pafs.FileSelector(bucket, recursive=False))
            raise InvalidInputError(
                f"{given}: no such object or prefix", path=given, rule="must exist"
            )
        infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    except (pa.ArrowException, OSError) as exc:
        raise storage.storage_error(given, exc) from None
    root = inner.rstrip("/")
    found: list[tuple[str, dict[str, str | None]]] = []
    for item in infos:
        if item.type != pafs.FileType.File:
            continue
        segments = item.path[len(root) + 1 :].split("/")
        if any(_is_hidden(segment) for segment in segments):
            continue
        raw: dict[str, str | None] = {}
        for segment in segments[:-1]:
            key, equals, value = segment.partition("=")
            if equals:
                raw[key] = None if value == _HIVE_NULL else unquote(value)
        uri = storage.join(given, inner, item.path)
        storage.remember(uri, int(item.size or 0), int(item.mtime_ns or 0))
        found.append((uri, raw))
    return found


def _walk(root: str) -> Iterator[tuple[str, dict[str, str | None]]]:
    """Data files under ``root`` with their raw hive partition values."""
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not _is_hidden(name)]
        relative = os.path.relpath(directory, root)
        raw: dict[str, str | None] = {}
        for segment in [] if relative == os.curdir else relative.split(os.sep):
            key, equals, value = segment.partition("=")
            if equals:
                raw[key] = None if value == _HIVE_NULL else unquote(value)
        for name in filenames:
            if not _is_hidden(name):
                yield os.path.join(directory, name), raw


def _typed(raw_by_file: dict[str, dict[str, str | None]]) -> dict[str, tuple]:
    """Type partition values like pyarrow's hive inference: int32 if every value parses."""
    values: dict[str, list[str]] = {}
    for raw in raw_by_file.values():
        for key, value in raw.items():
            values.setdefault(key, []).extend([] if value is None else [value])
    integer = {
        key: all(_INTEGER.match(v) and -(2**31) <= int(v) < 2**31 for v in found)
        for key, found in values.items()
    }
    return {
        path: tuple(
            (key, value if value is None or not integer[key] else int(value))
            for key, value in raw.items()
        )
        for path, raw in raw_by_file.items()
    }


def _sources(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    notes: list[str] | None = None,
) -> list[tuple]:
    """Expand paths into ``(path, kind, partitions)`` sorted by path (deduplicated), stdin last.

    A special file (FIFO, socket, device) given as a path is refused; one found in a directory
    is skipped, and ``notes`` gets a line naming it.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    given_paths = [os.fspath(path) for path in paths]
    if not given_paths:
        raise ConfigError("no input paths given")
    raw_by_file: dict[str, dict[str, str | None]] = {}
    kinds: dict[str, UnitKind] = {}
    for given in given_paths:
        if given == STDIN:
            continue
        if storage.is_uri(given):
            remote = _remote_sources(given)
            found = 0
            for path, raw in remote:  # an object given itself must be data
                strict = path == given or path.lower().endswith(_DATA_SUFFIXES)
                kind = _sniff(path, strict=strict)
                if kind is not None:
                    kinds[path], raw_by_file[path], found = kind, raw, found + 1
            if not found:
                raise InvalidInputError(
                    f"{given}: no Parquet or Arrow IPC objects under this prefix"
                )
            continue
        if os.path.isdir(given):
            found = 0
            for path, raw in _walk(given):
                special = special_kind(path)
                if special is not None:
                    if notes is not None:
                        notes.append(f"{path}: skipped: {special} is not a data file")
                    continue
                kind = _sniff(path, strict=path.lower().endswith(_DATA_SUFFIXES))
                if kind is not None:
                    kinds[path], raw_by_file[path], found = kind, raw, found + 1
            if not found:
                raise InvalidInputError(f"{given}: no Parquet or Arrow IPC files in directory")
        elif (special := special_kind(given)) is not None:
            raise InvalidInputError(
                f"{given}: {special}, not a regular file (reading it could wait forever); give "
                "a Parquet or Arrow IPC file, or pipe an Arrow IPC stream to -"
            )
        elif os.path.exists(given):
            kinds.setdefault(given, _sniff(given, strict=True) or "parquet")
            raw_by_file.setdefault(given, {})
        else:
            raise InvalidInputError(f"{given}: no such file or directory", path=given)
    partitions = _typed(raw_by_file)
    by_absolute: dict[str, str] = {}
    for path in sorted(kinds):
        by_absolute.setdefault(path if storage.is_uri(path) else os.path.abspath(path), path)
    sources = [(path, kinds[path], partitions[path]) for path in sorted(by_absolute.values())]
    if STDIN in given_paths:
        sources.append((STDIN, "ipc_stream", ()))
    return sources


def _partition_type(value: PartitionValue) -> pa.DataType:
    if value is None:
        return pa.null()
    return pa.int32() if isinstance(value, int) else pa.string()


@functools.lru_cache(maxsize=64)
def _parquet_footer(path: str, size: int, mtime_ns: int) -> tuple[pq.FileMetaData, pa.Schema]:
    try:
        if storage.is_uri(path):
            with open_remote(path) as source, pq.ParquetFile(source, pre_buffer=False) as remote:
                return remote.metadata, remote.schema_arrow
        with pq.ParquetFile(path, pre_buffer=False, memory_map=False) as parquet_file:
            return parquet_file.metadata, parquet_file.schema_arrow
    except InvalidInputError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(f"{path}: cannot read Parquet footer", exc) from exc


@functools.lru_cache(maxsize=64)
def _ipc_layout(
    path: str, kind: str, size: int, mtime_ns: int
) -> tuple[pa.Schema, tuple[int, ...] | None]:
    """Schema and per-batch row counts (``None`` for a stream) of an IPC file."""
    try:
        with open_source(path) as source:
            if kind == "ipc_stream":
                return ipc.open_stream(source).schema, None
            schema = ipc.open_file(source).schema
            # Row counts need a decoded batch: decode one small column only.
            scalar = [i for i, f in enumerate(schema) if not pa.types.is_nested(f.type)]
            options = ipc.IpcReadOptions(included_fields=scalar[:1] or [0], use_threads=False)
            reader = ipc.open_file(source, options=options)
            counts = tuple(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            return schema, counts
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(f"{path}: cannot read Arrow IPC file", exc) from exc


StreamEnd = Literal["complete", "no_eos", "partial", "trailing"]


def ipc_stream_end(path: str, in_place: bool = True) -> tuple[StreamEnd, int]:
    """How an Arrow IPC stream file ends, by walking its messages' framing (continuation
    marker, metadata length, body length), and how many record batches it holds whole.

    ``complete``: the end-of-stream marker follows the last whole message and ends the file;
    ``no_eos``: the file ends right after a whole message (a writer still writing, or one that
    died); ``partial``: it ends inside a message; ``trailing``: bytes follow the marker (the
    reader would stop at the marker and drop them). Only the last 8 bytes looking like the
    marker says nothing: a record batch's body can end with those bytes. ``in_place``: a local
    file is mapped, else read (`open_source`).
    """
    batches = 0
    try:
        with open_source(path, in_place=in_place) as source:
            size = source.size()
            reader = ipc.MessageReader.open_stream(source)
            while True:
                before = source.tell()
                try:
                    message = reader.read_next_message()
                except StopIteration:
                    break
                batches += message.type == "record batch"
            if before == size:
                return "no_eos", batches
            source.seek(before)
            marker = source.read(min(8, size - before))
    except (pa.ArrowException, OSError):
        return "partial", batches
    if marker in (b"\xff\xff\xff\xff\x00\x00\x00\x00", b"\x00\x00\x00\x00"):
        return ("complete" if before + len(marker) == size else "trailing"), batches
    return "partial", batches


def map_file(path: str, name: str | None = None) -> pa.MemoryMappedFile:
    """``pa.memory_map(path)`` (its pages read in place, without a copy), its address range
    recorded with the file's ``name`` (default ``path``): the ``streammetric`` command names
    the file in one line, instead of dying of SIGBUS, when the file is truncated or rewritten in
    place while mapped (`streammetric._guard`)."""
    mapped = pa.memory_map(path)
    size = mapped.size()
    if size:
        _guard.watch(mapped.read_buffer(1).address, size, name or path)
        mapped.seek(0)
    return mapped


def open_source(path: str, name: str | None = None, in_place: bool = True) -> Any:
    """An object's file (`open_remote`), a local file's map (`map_file`) or, not ``in_place``,
    the local file read into memory as it is read; to be closed."""
    if storage.is_uri(path):
        return open_remote(path)
    return map_file(path, name) if in_place else pa.OSFile(path)


def _stat_key(path: str) -> tuple[str, int, int]:
    if storage.is_uri(path):
        return (path, *storage.remote_info(path)[:2])
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise _arrow_error(f"{path}: cannot read file", exc) from exc
    return path, stat.st_size, stat.st_mtime_ns


_stdin_lock = threading.Lock()
_stdin_state: dict[str, Any] = {}


class _Digesting:
    """A binary reader that keeps the SHA-256 and the count of the bytes read from it (bytes
    only peeked at are not read), so that a checkpoint can say which stdin it consumed."""

    def __init__(self, raw: Any) -> None:
        import hashlib  # lazy: only stdin needs it here (as `fingerprint`)

        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        self.count += len(data)
        return data

    def peek(self, size: int = 0) -> bytes:
        return self._raw.peek(size)

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:  # stdin is not ours to close
        pass


def stdin_digest(*, drain: bool = False) -> dict[str, Any] | None:
    """``{"bytes": n, "sha256": hex}`` of the bytes of stdin read so far (None before stdin was
    opened). ``drain``: first read the rest of the stream, as evaluating it would (to compare
    stdin with what a checkpoint consumed without evaluating it again)."""
    if drain:
        reader = _stdin_reader(take=True)
        while True:
            try:
                reader.read_next_batch()
            except StopIteration:
                break
            except (pa.ArrowException, OSError) as exc:
                raise _arrow_error("<stdin>: cannot read Arrow IPC stream", exc) from exc
    with _stdin_lock:
        source = _stdin_state.get("digest")
        if source is None:
            return None
        return {"bytes": source.count, "sha256": source.sha256.hexdigest()}


def _stdin_reader(*, take: bool) -> Any:
    """The stream reader over ``sys.stdin.buffer``, opened once (its schema is read by plan)."""
    given = sys.stdin.buffer
    with _stdin_lock:
        if _stdin_state.get("buffer") is not given:
            buffer: Any = given if hasattr(given, "peek") else io.BufferedReader(given)
            buffer = digest = _Digesting(buffer)
            head = buffer.peek(8)[:8]
            if not head:
                raise InvalidInputError("<stdin>: empty input, expected an Arrow IPC stream")
            if head.startswith(b"PAR1"):
                raise InvalidInputError(
                    "<stdin>: Parquet cannot be read from stdin (it needs a seekable file); "
                    "pass a path, or pipe an Arrow IPC stream"
                )
            if head.startswith(b"ARROW1"):  # file format: a stream follows the 8-byte magic
                buffer.read(8)
            tracker = _EndTracker(buffer)
            try:
                reader = ipc.open_stream(tracker)
            except (pa.ArrowException, OSError) as exc:
                raise _arrow_error("<stdin>: cannot read Arrow IPC stream", exc) from exc
            _stdin_state.clear()
            _stdin_state.update(
                buffer=given, reader=reader, taken=False, tracker=tracker, digest=digest
            )
        if take and _stdin_state["taken"]:
            raise InvalidInputError("<stdin>: the stream was already read")
        _stdin_state["taken"] = _stdin_state["taken"] or take
        return _stdin_state["reader"]


class _EndTracker(io.RawIOBase):
    """Reads through to ``source`` and remembers whether the last read found no more input:
    the stream reader's last read is the end-of-stream marker's length when the marker is
    there, and an empty read when the input ends without it."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source
        self.at_end = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self.source.read(-1 if size is None else size)
        self.at_end = not data and size != 0
        return bytes(data)


def stdin_end_note() -> str | None:
    """After stdin's stream was read: a note when it ended without its end-of-stream marker
    (the writer died, or closed the pipe without finishing the stream)."""
    with _stdin_lock:
        tracker = _stdin_state.get("tracker")
        if tracker is None or not _stdin_state.get("taken") or not tracker.at_end:
            return None
    return (
        "<stdin>: the Arrow IPC stream ended without its end-of-stream marker (its writer may "
        "have died): only the record batches read whole are evaluated"
    )


def _file_schema(path: str, kind: UnitKind) -> pa.Schema:
    if path == STDIN:
        return _stdin_reader(take=False).schema
    if kind == "parquet":
        return _parquet_footer(*_stat_key(path))[1]
    return _ipc_layout(path, kind, *_stat_key(path)[1:])[0]


def _full_schema(path: str, kind: UnitKind, partitions: tuple) -> pa.Schema:
    """The file schema plus the hive partition columns it lacks."""
    schema = _file_schema(path, kind)
    for key, value in partitions:
        if key not in schema.names:
            schema = schema.append(pa.field(key, _partition_type(value)))
    return schema


def _file_rows(path: str, kind: UnitKind) -> int | None:
    """Rows of a Parquet or IPC file (``None``: a stream, unknown until read)."""
    if path == STDIN or kind == "ipc_stream":
        return None
    if kind == "parquet":
        return int(_parquet_footer(*_stat_key(path))[0].num_rows)
    return sum(_ipc_layout(path, kind, *_stat_key(path)[1:])[1] or ())


_KINDS = {
    "sparse": "integer class indices",
    "dense": "lists of floats (soft targets)",
    "binary": "floats (binary labels)",
    "list": "one list column",
    "scalar": "one number per row",
    "columns": "several columns",
}


def _phrase(name: str, value: Any) -> str:
    """A `ResolvedColumns` field's value in the user's terms."""
    if name in ("label_width", "pred_width"):
        return "lists of any length" if value is None else f"lists of {value} values"
    if name in ("label_kind", "pred_kind"):
        return _KINDS.get(value, str(value))
    if name == "from_logits":
        return "logits" if value else "probabilities"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ", ".join(f"`{item}`" for item in value) or "none"
    return f"`{value}`"


_ROLES = {
    "labels": "the label column is",
    "label_kind": "labels are",
    "label_width": "labels are",
    "preds": "the prediction columns are",
    "pred_kind": "predictions are",
    "pred_width": "predictions are",
    "weights": "the weight column is",
    "by": "the group-by columns are",
    "from_logits": "predictions are",
}


def describe_difference(name: str, here: Any, there: Any) -> str:
    """One `ResolvedColumns` field that differs between two inputs, in the user's terms.

    >>> describe_difference("pred_width", 5, None)
    'predictions are lists of 5 values here and lists of any length there'
    """
    role = _ROLES.get(name, f"{name} is")
    return f"{role} {_phrase(name, here)} here and {_phrase(name, there)} there"


def _resolve_sources(
    sources: Sequence[tuple[str, UnitKind, tuple]], spec: ColumnSpec
) -> ResolvedColumns | None:
    """The columns shared by every input. A file without rows contributes none, so it is not
    compared (unless every input is empty). Integer and float widths may differ between
    inputs: every value is converted exactly, and the sums are exact."""
    nonempty = [source for source in sources if _file_rows(*source[:2]) != 0]
    resolved: ResolvedColumns | None = None
    first = ""
    for path, kind, partitions in nonempty or sources:
        shown = "<stdin>" if path == STDIN else path
        current = resolve(_full_schema(path, kind, partitions), spec, shown)
        _check_partitions(path, kind, partitions, current)
        if resolved is None:
            resolved, first = current, shown
        elif current != resolved:
            raise columns_differ(shown, current, first, resolved)
    return resolved


def columns_differ(
    where: str, current: ResolvedColumns, first: str, resolved: ResolvedColumns
) -> InvalidInputError:
    """The error of an input (``where``) whose columns resolve otherwise than the first's:
    one line naming the first field that differs."""
    name, here, there = next(
        (item.name, getattr(current, item.name), getattr(resolved, item.name))
        for item in dataclasses.fields(current)
        if getattr(current, item.name) != getattr(resolved, item.name)
    )
    return InvalidInputError(
        f"{where}: columns differ from {first}: {describe_difference(name, here, there)} "
        "(every input must have the same columns, of the same kinds; integer and float widths "
        "may differ)",
        path=where,
    )


def _check_partitions(
    path: str, kind: UnitKind, partitions: tuple, resolved: ResolvedColumns
) -> None:
    """A column read from the file and named by a hive directory too: refused (which one?)."""
    if not partitions:
        return
    names = _file_schema(path, kind).names
    for key, value in partitions:
        if key in names and key in resolved.columns:
            shown = _HIVE_NULL if value is None else value
            raise InvalidInputError(
                f"{path}: column `{key}` is in the file and in the hive partition directory "
                f"`{key}={shown}` above it, so its value is ambiguous (rename one of them)"
            )
