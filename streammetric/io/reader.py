"""Units of work and reading them: `plan`, `read_unit` / `iter_unit` and `fingerprint`.

A unit is a Parquet row group, an Arrow IPC record batch, a whole Arrow IPC stream (a file or
stdin, read sequentially), or rows of an in-memory input (`streammetric.io.memory`). ``plan`` expands paths into `Unit`s and checks the columns of every
input up front; ``read_unit`` / ``iter_unit`` turn a unit into `Batch`es of NumPy arrays. Each
read opens its own file handle and reads only the needed columns of one row group (``iter_unit``:
in slices of `slice_rows` rows), so units of one file can be read concurrently from a thread
pool with memory bounded by about one row group (one slice) per thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from streammetric._arrow import array_of, as_numpy, from_numpy
from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.io import storage
from streammetric.io.columns import (
    ColumnSpec,
    ColumnValues,
    ResolvedColumns,
    list_values,
    resolve,
    scalar_values,
    stacked_values,
)
from streammetric.io.sources import (
    STDIN,
    PartitionValue,
    UnitKind,
    _arrow_error,
    _file_schema,
    _full_schema,
    _ipc_layout,
    _parquet_footer,
    _partition_type,
    _resolve_sources,
    _sources,
    _stat_key,
    _stdin_reader,
    ipc_stream_end,
    map_file,
    open_remote,
    open_source,
)


@dataclass(frozen=True)
class Unit:
    """One unit of work: a Parquet row group, an IPC record batch, a whole IPC stream, or
    rows of an in-memory input (kind ``"memory"``, `streammetric.io.memory`).

    ``index`` is the row group / record batch index (``None`` for a stream; an in-memory
    Table's units: their first row); ``num_rows`` is ``None`` for a stream; ``row_offset`` is
    the file row of the unit's first row. ``source`` is an in-memory input's `MemorySource`
    (``path`` is then its name, ``<table>``): not compared, not in `to_dict`.

    >>> unit = Unit("preds.parquet", "parquet", 3, 1000, 3000, (("split", "test"),))
    >>> unit.key, Unit.from_dict(json.loads(json.dumps(unit.to_dict()))) == unit
    ('preds.parquet#rg3', True)
    """

    path: str
    kind: UnitKind
    index: int | None
    num_rows: int | None
    row_offset: int = 0
    partitions: tuple[tuple[str, PartitionValue], ...] = ()
    source: Any = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """Stable identifier for checkpoints, e.g. ``"data/a.parquet#rg3"``."""
        suffix = {"parquet": "rg", "ipc_file": "batch", "memory": "rows"}.get(self.kind)
        if suffix is None or self.index is None:
            return f"{self.path}#stream"
        return f"{self.path}#{suffix}{self.index}"

    @property
    def sequential(self) -> bool:
        """True for a stream, which must be read with `iter_unit`."""
        return self.kind == "ipc_stream" or (self.kind == "memory" and self.index is None)

    @property
    def display_path(self) -> str:
        """The path as error messages show it."""
        return "<stdin>" if self.path == STDIN else self.path

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; `Unit.from_dict` inverts it."""
        if self.source is not None:
            raise ConfigError(f"{self.display_path}: an in-memory input cannot be sent elsewhere")
        return {
            "path": self.path,
            "kind": self.kind,
            "index": self.index,
            "num_rows": self.num_rows,
            "row_offset": self.row_offset,
            "partitions": [list(item) for item in self.partitions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        """Rebuild a unit from `to_dict` output."""
        partitions = tuple((str(key), value) for key, value in data.get("partitions", ()))
        return cls(**{**data, "partitions": partitions})


class Batch(NamedTuple):
    """Rows of one unit (or one record batch of a stream) as NumPy arrays.

    Rows dropped by ``on_invalid="skip"`` are absent from every array; ``invalid`` marks them
    among the rows read (``None`` when none were dropped). ``groups`` maps each group-by column
    to an Arrow array (hive partition columns are dictionary-encoded): pass it to
    `streammetric.io.group_codes` for integer group ids and keys.
    """

    labels: np.ndarray
    preds: np.ndarray
    weights: np.ndarray | None
    groups: dict[str, pa.Array] | None
    num_rows: int
    unit: Unit
    row_offset: int
    invalid: np.ndarray | None = None
    invalid_count: int = 0
    first_invalid_reason: str | None = None
    ids: pa.Array | None = None  # the id column's values (`ColumnSpec.ids`), kept rows only

    def source_rows(self) -> np.ndarray:
        """File row number of every kept row, for error messages about values."""
        if self.invalid is None:
            return np.arange(self.row_offset, self.row_offset + self.num_rows)
        return self.row_offset + np.flatnonzero(~self.invalid)


# --------------------------------------------------------------------------- planning


def _stream_end_note(path: str) -> str | None:
    """A note when an IPC stream file lacks its end-of-stream marker; an error when bytes
    follow the marker (they would be dropped)."""
    end, batches = ipc_stream_end(path)
    if end == "no_eos":
        return (
            f"{path}: the Arrow IPC stream ends after {batches} record batches without its "
            "end-of-stream marker (its writer may have died or still be writing): only those "
            "batches are evaluated"
        )
    if end == "trailing":
        raise InvalidInputError(
            f"{path}: bytes follow the end-of-stream marker of the Arrow IPC stream (two "
            "streams in one file?); they would not be read"
        )
    return None  # complete, or cut inside a message: reading it says where


def _units_of(
    path: str, kind: UnitKind, partitions: tuple, notes: list[str] | None = None
) -> list[Unit]:
    if path == STDIN or kind == "ipc_stream":
        note = None if path == STDIN else _stream_end_note(path)
        if note is not None and notes is not None:
            notes.append(note)
        return [Unit(path, "ipc_stream", None, None, 0, partitions)]
    if kind == "parquet":
        metadata = _parquet_footer(*_stat_key(path))[0]
        counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    else:
        counts = list(_ipc_layout(path, kind, *_stat_key(path)[1:])[1] or ())
    offsets = np.cumsum([0, *counts]).tolist()
    # a row group / batch without rows is no unit: a file of empty row groups is read as one
    # of no row groups (nothing to read, and its columns are not compared)
    return [Unit(path, kind, i, n, offsets[i], partitions) for i, n in enumerate(counts) if n]


def plan(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    spec: ColumnSpec | None = None,
    *,
    notes: list[str] | None = None,
) -> list[Unit]:
    """Expand ``paths`` (files, directories, ``-`` for stdin) into units of work.

    Directories are walked recursively (``.``/``_``-prefixed and ``*.tmp`` entries skipped,
    ``key=value`` directories become columns); files are sorted by path. Every input's columns
    are checked against ``spec`` now, so a bad column fails before any data is read.
    ``notes`` (when given) gets a line for each input that is read other than one might expect:
    a special file skipped in a directory, an IPC stream without its end-of-stream marker.
    """
    sources = _sources(paths, notes)
    _resolve_sources(sources, spec or ColumnSpec())
    return [unit for path, kind, parts in sources for unit in _units_of(path, kind, parts, notes)]


def resolve_paths(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], spec: ColumnSpec | None = None
) -> ResolvedColumns | None:
    """The column resolution of the inputs `plan` expands ``paths`` into, even when they hold
    no units (files without row groups)."""
    return _resolve_sources(_sources(paths), spec or ColumnSpec())


def resolve_units(
    units: Sequence[Unit], spec: ColumnSpec | None = None, widths: Mapping[str, int] | None = None
) -> ResolvedColumns | None:
    """The column resolution shared by every unit's file (``None`` when there are no units),
    with the run's list widths (`with_list_widths`; ``widths``: those known already)."""
    sources = dict.fromkeys((unit.path, unit.kind, unit.partitions) for unit in units)
    resolved = _resolve_sources(list(sources), spec or ColumnSpec())
    return None if resolved is None else with_list_widths(resolved, units, widths)


def with_list_widths(
    resolved: ResolvedColumns, units: Sequence[Unit], known: Mapping[str, int] | None = None
) -> ResolvedColumns:
    """``resolved`` with the width of its lists of any length (predictions, soft labels) set
    to the length of the run's first list (its first non-null one, in unit order), so that a
    list of another length is a ragged row in whichever batch, row group or file it is: the
    class count does not change silently between them. Only the first rows are read (the first
    slice with a list, usually). A stream (stdin, an IPC stream) is not read ahead: from one
    on, lengths are checked per batch, as the most common length. ``known``: widths fixed
    before (``label_width``, ``pred_width``: a `watch`'s first file's), the run's then."""
    wanted = {}
    if resolved.pred_kind == "list" and resolved.pred_width is None:
        wanted["pred_width"] = resolved.preds[0]
    if resolved.label_kind == "dense" and resolved.label_width is None:
        wanted["label_width"] = resolved.labels
    found: dict[str, Any] = {k: v for k, v in (known or {}).items() if k in wanted}
    for unit in units if len(found) < len(wanted) else ():
        if unit.sequential:
            break
        for data, _ in iter_arrow(unit, resolved):
            for width, name in wanted.items():
                if width not in found and (length := _first_length(_column(data, name, unit))):
                    found[width] = length
            if len(found) == len(wanted):
                return dataclasses.replace(resolved, **found)
    return dataclasses.replace(resolved, **found) if found else resolved


def _first_length(array: pa.Array) -> int | None:
    """The length of the first non-null list of a list column (None: none)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_fixed_size_list(array.type):
        return int(array.type.list_size) if len(array) > array.null_count else None
    lengths = np.diff(as_numpy(array.offsets))
    if array.null_count:
        lengths = lengths[array.is_valid().to_numpy(zero_copy_only=False)]
    return int(lengths[0]) if lengths.shape[0] else None


def fingerprint(units: Sequence[Unit]) -> str:
    """SHA-256 of the inputs (absolute paths, sizes, mtimes, unit counts) for checkpoints."""
    import hashlib  # lazy: only checkpoints and Dask task keys need it (~4 ms of start-up)

    items = [[path, *item] for path, item in file_items(units).items()]
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def file_items(units: Sequence[Unit]) -> dict[str, list[Any]]:
    """Each input file's identity, by its absolute path (or URI), in path order: its kind, size
    and mtime (an object's ETag, when the store has one), units and rows."""
    files: dict[str, list[Any]] = {}
    for unit in units:
        if unit.kind == "memory":  # no name, size or mtime says which data it holds
            raise ConfigError(f"{unit.display_path}: an in-memory input has no fingerprint")
        entry = files.setdefault(unit.path, [unit.kind, 0, 0])
        entry[1] += 1
        entry[2] += unit.num_rows or 0
    items: dict[str, list[Any]] = {}
    for path, (kind, count, rows) in sorted(files.items()):
        if storage.is_uri(path):  # the ETag when the store has one, else size and mtime
            items[path] = [kind, *storage.object_identity(path), count, rows]
            continue
        stat = [] if path == STDIN else list(_stat_key(path)[1:])
        items[file_key(path)] = [kind, *stat, count, rows]
    return items


def file_signature(path: str) -> list[int]:
    """What says which bytes a file (or object) holds without reading it: its size and mtime
    (ns; an object's as its store gives them), as the plan saw them."""
    return list(_stat_key(path)[1:])


def file_key(path: str) -> str:
    """An input file's key in `file_items`: its absolute path (a URI and stdin as they are)."""
    return path if path == STDIN or storage.is_uri(path) else os.path.abspath(path)


# --------------------------------------------------------------------------- reading


def _check_policy(on_invalid: str) -> None:
    if on_invalid not in ("raise", "skip"):
        raise ConfigError(f"`on_invalid` must be 'raise' or 'skip', got {on_invalid!r}")


def _columns_for(unit: Unit, columns: ResolvedColumns | ColumnSpec) -> ResolvedColumns:
    if isinstance(columns, ResolvedColumns):
        return columns
    if unit.source is not None:
        return resolve(unit.source.schema, columns, unit.display_path)
    return resolve(_full_schema(unit.path, unit.kind, unit.partitions), columns, unit.display_path)


def _where(unit: Unit) -> str:
    what = "row group" if unit.kind == "parquet" else "record batch"
    last = unit.row_offset + (unit.num_rows or 0) - 1
    return f"{unit.display_path}: {what} {unit.index} (rows {unit.row_offset}-{last})"


def same_column_chunks(first: Unit, second: Unit, column: str) -> bool:
    """Whether two local Parquet row groups store ``column`` as the same bytes (its pages,
    encoded and compressed, with their headers) with the same type and rows: then they hold
    the same values, row for row. False for other units (objects, IPC, in-memory inputs,
    stdin) and a column a file does not have.

    Reading the chunks costs a copy from the page cache (into buffers each thread keeps, so
    that no new memory is touched per chunk), far less than decoding them
    (`streammetric.engine.compare` tells so that two files' id columns agree)."""
    one, other = _chunk_place(first, column), _chunk_place(second, column)
    if one is None or other is None or one[0] != other[0]:
        return False
    size = one[2]
    buffers = getattr(_chunk_buffers, "pair", None)
    if buffers is None or len(buffers[0]) < size:
        buffers = _chunk_buffers.pair = (bytearray(size), bytearray(size))
    views = []
    for (_, path, _, start), buffer in zip((one, other), buffers, strict=True):
        view = memoryview(buffer)[:size]
        try:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                if os.preadv(descriptor, [view], start) != size:
                    return False
            finally:
                os.close(descriptor)
        except OSError:
            return False
        views.append(np.frombuffer(view, dtype=np.uint8))
    return bool(np.array_equal(views[0], views[1]))


_chunk_buffers = threading.local()


def _chunk_place(unit: Unit, column: str) -> tuple[str, str, int, int] | None:
    """A Parquet row group's chunk of ``column``: a description of its type and rows, the
    file, and the chunk's size and first byte; None if not a local row group with it."""
    if unit.kind != "parquet" or unit.index is None or unit.path == STDIN:
        return None
    if storage.is_uri(unit.path):
        return None
    metadata, schema = _parquet_footer(*_stat_key(unit.path))
    if column not in schema.names:
        return None
    group = metadata.row_group(unit.index)
    chunk = _column_chunk(group, column)
    if chunk is None:
        return None
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and 0 < chunk.dictionary_page_offset < start:
        start = chunk.dictionary_page_offset
    described = (
        f"{schema.field(column).type}|{chunk.physical_type}|{chunk.compression}|"
        f"{chunk.num_values}|{group.num_rows}|{chunk.total_compressed_size}"
    )
    return described, unit.path, chunk.total_compressed_size, start


def _column_chunk(group: Any, column: str) -> Any:
    """Row group ``group``'s chunk (Parquet metadata) of ``column``, or None."""
    for position in range(group.num_columns):
        chunk = group.column(position)
        if chunk.path_in_schema == column:
            return chunk
    return None


#: a string column's dictionary page (compressed) from which Parquet's pages presumably fell
#: back to plain encoding (writers cap it at 1 MiB uncompressed)
BIG_DICTIONARY_PAGE = 1 << 18


def _dictionary_pays(metadata: Any, unit: Unit, name: str) -> bool:
    """Whether to read the string column ``name`` of the unit's row group with its dictionary
    (each distinct value decoded once): not when its pages are plain, none or some of them
    (no dictionary page, or a big one: presumably the writer's dictionary filled up and the
    later pages fell back), since Arrow then builds the dictionary by hashing every value of
    those pages, ~4x slower than reading the strings as they are (100,000 distinct strings in
    4M rows: 0.58 s against 0.15 s); the group index's C table then hashes them faster."""
    chunk = _column_chunk(metadata.row_group(unit.index), name)
    if chunk is None:
        return True
    if not chunk.has_dictionary_page:
        return False
    start, end = chunk.dictionary_page_offset, chunk.data_page_offset
    return not (start and 0 < start < end and end - start >= BIG_DICTIONARY_PAGE)


def _open_parquet(
    unit: Unit, resolved: ResolvedColumns, in_place: bool = True
) -> tuple[Any, list[str]]:
    """The unit's file (to be closed) and the needed columns it has. A string group-by column
    is read with its dictionary (few distinct values: each decoded once, and the keys made
    from the dictionary), unless it is the one group-by column and its pages are plain
    (`_dictionary_pays`)."""
    metadata, schema = _parquet_footer(*_stat_key(unit.path))
    wanted = [name for name in resolved.columns if name in schema.names]
    alone = len(resolved.by) == 1
    dictionary = [
        name
        for name in resolved.by
        if name in wanted
        and pa.types.is_string(schema.field(name).type)
        and (not alone or _dictionary_pays(metadata, unit, name))
    ]
    source: Any = None  # an object's file or a local file's map, closed with the ParquetFile
    remote = storage.is_uri(unit.path)
    if remote:  # an object: its column chunks fetched in few requests (pre_buffer)
        source = open_remote(unit.path)
    elif in_place:  # pages read in place: 3-4% less time than read into memory
        with contextlib.suppress(pa.ArrowException, OSError):  # else (some FUSE mounts) read
            source = map_file(unit.path, unit.display_path)
    parquet_file = pq.ParquetFile(
        unit.path if source is None else source,
        metadata=metadata,
        pre_buffer=remote,
        memory_map=False,
        read_dictionary=dictionary,
        page_checksum_verification=True,
    )
    return (parquet_file if source is None else _Closing(parquet_file, source)), wanted


class _Closing:
    """A ParquetFile over an object's file or a local file's map, which closing closes too."""

    def __init__(self, parquet_file: pq.ParquetFile, source: Any) -> None:
        self.parquet_file, self.source = parquet_file, source

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parquet_file, name)

    def __enter__(self) -> pq.ParquetFile:
        return self.parquet_file

    def __exit__(self, *exc: object) -> None:
        try:
            self.parquet_file.close()
        finally:
            self.source.close()


def _read_arrow(
    unit: Unit, resolved: ResolvedColumns, in_place: bool = True
) -> pa.Table | pa.RecordBatch:
    """The needed columns of one row group / record batch."""
    try:
        if unit.kind == "parquet":
            parquet_file, wanted = _open_parquet(unit, resolved, in_place)
            with parquet_file:
                return parquet_file.read_row_group(unit.index, columns=wanted, use_threads=False)
        schema = _ipc_layout(unit.path, unit.kind, *_stat_key(unit.path)[1:])[0]
        fields = sorted(schema.get_field_index(n) for n in resolved.columns if n in schema.names)
        options = ipc.IpcReadOptions(included_fields=fields or None, use_threads=False)
        opened = open_source(unit.path, unit.display_path, in_place)
        with opened as source:
            return ipc.open_file(source, options=options).get_batch(unit.index)
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(_where(unit), exc) from exc


def slice_rows(resolved: ResolvedColumns) -> int:
    """Rows per batch when a row group is read in slices: about 2 MiB of predictions (4096 to
    32768 rows). Decoding a row group slice by slice is up to 13% faster than in one piece
    (``scripts/bench.py`` measures both; presumably the values stay in the core's cache), and
    the metrics then read each slice soon after it is decoded."""
    width = resolved.pred_width or 32
    return max(4096, min(32768, (1 << 19) // width))


def _parquet_batches(
    unit: Unit, resolved: ResolvedColumns, in_place: bool = True
) -> Iterator[pa.RecordBatch]:
    """The needed columns of one row group, in slices of `slice_rows` rows."""
    try:
        parquet_file, wanted = _open_parquet(unit, resolved, in_place)
        with parquet_file:
            yield from parquet_file.iter_batches(
                batch_size=slice_rows(resolved),
                row_groups=[unit.index],
                columns=wanted,
                use_threads=False,
            )
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(_where(unit), exc) from exc


def _column(data: pa.Table | pa.RecordBatch, name: str, unit: Unit) -> pa.Array:
    """One column as a single Arrow array; partition columns are built dictionary-encoded."""
    if name in data.schema.names:
        column = data.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        return column
    value = dict(unit.partitions)[name]
    if value is None:
        return pa.nulls(data.num_rows)
    dictionary = array_of([value], _partition_type(value))
    indices = from_numpy(np.zeros(data.num_rows, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _check_shape(array: pa.Array, name: str, *, is_list: bool, unit: Unit) -> None:
    base = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if pa.types.is_nested(base) != is_list:
        expected = "a list column" if is_list else "a scalar column"
        raise InvalidInputError(
            f"{unit.display_path}: column `{name}`: type {array.type} differs from the first "
            f"file (expected {expected})"
        )


def _convert(data: pa.Table | pa.RecordBatch, unit: Unit, cols: ResolvedColumns) -> list[Any]:
    """Labels, preds and (optional) weights as `ColumnValues`."""
    label_array = _column(data, cols.labels, unit)
    _check_shape(label_array, cols.labels, is_list=cols.label_kind == "dense", unit=unit)
    if cols.label_kind == "dense":
        labels = list_values(label_array, name=cols.labels, role="labels", width=cols.label_width)
    else:
        dtype = "int64" if cols.label_kind == "sparse" else "float"
        labels = scalar_values(label_array, name=cols.labels, role="labels", dtype=dtype)
    arrays = {name: _column(data, name, unit) for name in cols.preds}
    for name, array in arrays.items():
        _check_shape(array, name, is_list=cols.pred_kind == "list", unit=unit)
    preds: ColumnValues
    if cols.pred_kind == "columns":
        preds = stacked_values(arrays, role="predictions")
    elif cols.pred_kind == "list":
        (name, array), *_ = arrays.items()
        preds = list_values(array, name=name, role="predictions", width=cols.pred_width)
    else:
        (name, array), *_ = arrays.items()
        base = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
        dtype = "int64" if pa.types.is_integer(base) else "float"
        preds = scalar_values(array, name=name, role="predictions", dtype=dtype)
    weights = None
    if cols.weights is not None:
        weight_array = _column(data, cols.weights, unit)
        weights = scalar_values(weight_array, name=cols.weights, role="weights", dtype="float64")
    return [labels, preds, weights]


def _make_batch(
    data: pa.Table | pa.RecordBatch,
    unit: Unit,
    cols: ResolvedColumns,
    *,
    row_offset: int,
    on_invalid: str,
) -> Batch:
    """Convert Arrow data to a `Batch`, raising on or dropping structurally invalid rows."""
    labels, preds, weights = _convert(data, unit, cols)
    groups = {name: _column(data, name, unit) for name in cols.by} if cols.by else None
    ids = _column(data, cols.ids, unit) if cols.ids else None
    missing = None  # rows without an id
    if ids is not None and ids.null_count:
        null = ids.is_null().to_numpy(zero_copy_only=False)
        assert cols.ids is not None
        missing = ColumnValues(
            null, null, (int(np.argmax(null)), cols.ids, "a row id must not be null")
        )
    parts: list[ColumnValues] = [p for p in (labels, preds, weights, missing) if p is not None]
    flagged = [part for part in parts if part.first_invalid is not None]
    label_values, pred_values = labels.values, preds.values
    weight_values = None if weights is None else weights.values
    invalid, reason, num_rows = None, None, data.num_rows
    if flagged:
        row, name, rule = min(
            (part.first_invalid for part in flagged if part.first_invalid is not None),
            key=lambda item: item[0],
        )
        reason = f"{unit.display_path}: column `{name}`, row {row_offset + row}: {rule}"
        if on_invalid == "raise":
            raise InvalidInputError(
                reason, path=unit.display_path, column=name, row=row_offset + row, rule=rule
            )
        invalid = np.logical_or.reduce(
            [part.invalid for part in flagged if part.invalid is not None]
        )
        keep = ~invalid
        label_values, pred_values = label_values[keep], pred_values[keep]
        weight_values = None if weight_values is None else weight_values[keep]
        if groups is not None:
            groups = {key: array.filter(from_numpy(keep)) for key, array in groups.items()}
        if ids is not None:
            ids = ids.filter(from_numpy(keep))
        num_rows = int(keep.sum())
    return Batch(
        label_values,
        pred_values,
        weight_values,
        groups,
        num_rows,
        unit,
        row_offset,
        invalid,
        data.num_rows - num_rows,
        reason,
        ids,
    )


def read_unit(
    unit: Unit, columns: ResolvedColumns | ColumnSpec, *, on_invalid: str = "raise"
) -> Batch:
    """Read one Parquet row group or IPC record batch (only the needed columns).

    ``on_invalid="raise"`` raises `InvalidInputError` at the first null or ragged row;
    ``"skip"`` drops such rows and reports them in ``Batch.invalid``. Thread-safe.
    """
    _check_policy(on_invalid)
    if unit.sequential or unit.kind == "memory":
        raise ConfigError(
            f"{unit.key}: a stream or in-memory input is read sequentially, use iter_unit()"
        )
    resolved = _columns_for(unit, columns)
    data = _read_arrow(unit, resolved)
    return _make_batch(data, unit, resolved, row_offset=unit.row_offset, on_invalid=on_invalid)


def _open_stream(unit: Unit, resolved: ResolvedColumns | ColumnSpec, in_place: bool = True) -> Any:
    if unit.path == STDIN:
        return _stdin_reader(take=True)
    schema = _file_schema(unit.path, unit.kind)
    wanted = resolved.columns if isinstance(resolved, ResolvedColumns) else schema.names
    fields = sorted(schema.get_field_index(name) for name in wanted if name in schema.names)
    options = ipc.IpcReadOptions(included_fields=fields or None, use_threads=False)
    try:
        source = open_source(unit.path, unit.display_path, in_place)
        return ipc.open_stream(source, options=options)
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(f"{unit.path}: cannot read Arrow IPC stream", exc) from exc


def iter_arrow(
    unit: Unit, columns: ResolvedColumns | ColumnSpec, *, in_place: bool = True
) -> Iterator[tuple[pa.Table | pa.RecordBatch, int]]:
    """The Arrow data of a unit with the file row of its first row: slices of a row group (see
    `slice_rows`), the record batch of an IPC file, each record batch of a stream. `make_batch`
    turns each into a `Batch`. A local file is read through a memory map (`map_file`) unless
    ``in_place`` is False (then into memory: a file rewritten in place while read is an error,
    not SIGBUS)."""
    if unit.kind == "memory":
        resolved = _columns_for(unit, columns)
        yield from unit.source.batches(unit, resolved.columns, slice_rows(resolved))
        return
    if unit.kind == "parquet":
        row_offset = unit.row_offset
        for record_batch in _parquet_batches(unit, _columns_for(unit, columns), in_place):
            yield record_batch, row_offset
            row_offset += record_batch.num_rows
        return
    if not unit.sequential:
        yield _read_arrow(unit, _columns_for(unit, columns), in_place), unit.row_offset
        return
    reader = _open_stream(unit, columns, in_place)
    row_offset = 0
    while True:
        try:
            record_batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            where = f"{unit.display_path}: record batch after row {row_offset}"
            raise _arrow_error(where, exc) from exc
        yield record_batch, row_offset
        row_offset += record_batch.num_rows


def make_batch(
    data: pa.Table | pa.RecordBatch,
    unit: Unit,
    columns: ResolvedColumns | ColumnSpec,
    *,
    row_offset: int,
    on_invalid: str = "raise",
) -> Batch:
    """A `Batch` of Arrow data from `iter_arrow` (see `read_unit` for ``on_invalid``)."""
    _check_policy(on_invalid)
    resolved = _columns_for(unit, columns)
    return _make_batch(data, unit, resolved, row_offset=row_offset, on_invalid=on_invalid)


def iter_unit(
    unit: Unit, columns: ResolvedColumns | ColumnSpec, *, on_invalid: str = "raise"
) -> Iterator[Batch]:
    """Yield the batches of a unit (see `iter_arrow`)."""
    _check_policy(on_invalid)
    resolved = _columns_for(unit, columns)
    for data, row_offset in iter_arrow(unit, resolved):
        yield _make_batch(data, unit, resolved, row_offset=row_offset, on_invalid=on_invalid)
