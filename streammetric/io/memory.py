"""In-memory inputs: Arrow tables, record batch readers, pandas, polars, DuckDB results.

`memory_units` turns what a notebook holds into `Unit`s of kind ``"memory"`` that the engine
reads like the others (`streammetric.io.iter_arrow`, then `make_batch`):

* data already in memory (a ``pyarrow.Table`` or ``RecordBatch``, a pandas DataFrame, a polars
  DataFrame) becomes a Table without copying the numbers (pandas columns of Python objects,
  e.g. lists of probabilities, are converted: ``pa.Table.from_pandas(df, preserve_index=False)``
  builds them), split into units of `UNIT_ROWS` rows evaluated on the thread pool, read in
  slices that are views of its buffers;
* a stream (a ``pyarrow.RecordBatchReader``, a DuckDB relation, anything else exporting the
  Arrow C stream interface ``__arrow_c_stream__``) is one sequential unit read batch by batch
  as it comes: a reader can be read once, so a second evaluation of the same reader is refused.

Error messages name the input ``<table>`` (``<table 0>``, ``<table 1>``, ... for several)
where a file's path would be, and rows by their place in it (0-based, in the order given).
Columns of Arrow's view types (polars' strings are ``string_view``) are cast to their plain
types (``large_string``, ``large_binary``, ``large_list``), which copies those columns only.

>>> import pyarrow as pa
>>> table = pa.table({"label": [0, 1], "probs": [[0.9, 0.1], [0.2, 0.8]]})
>>> is_in_memory(table), is_in_memory("preds.parquet")
(True, False)
>>> [unit.key for unit in memory_units([table])]
['<table>#rows0']
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from streammetric._exceptions import ConfigError, InvalidInputError

#: rows of an in-memory Table per unit of work (a unit is what a thread evaluates at once)
UNIT_ROWS = 1 << 20

#: readers already read by an evaluation (a reader yields its batches once)
_read_readers: weakref.WeakSet[Any] = weakref.WeakSet()
_read_lock = threading.Lock()


def _pandas_frame(obj: Any) -> bool:
    pandas = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
    return pandas is not None and isinstance(obj, pandas.DataFrame)


def _polars_frame(obj: Any) -> bool:
    polars = sys.modules.get("polars")
    return polars is not None and isinstance(obj, polars.DataFrame)


def is_in_memory(obj: Any) -> bool:
    """Whether ``obj`` is an in-memory input rather than a path."""
    if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        return False
    return (
        isinstance(obj, (pa.Table, pa.RecordBatch, pa.RecordBatchReader))
        or _pandas_frame(obj)
        or hasattr(obj, "__arrow_c_stream__")
    )


def _kind_of(obj: Any) -> str:
    """The input's kind as an error message names it."""
    module = type(obj).__module__.split(".")[0]
    return f"{module}.{type(obj).__name__}"


def _plain_type(arrow_type: pa.DataType) -> pa.DataType:
    """Arrow's view types as the plain types the readers handle; any other type as it is."""
    types = pa.types
    if getattr(types, "is_string_view", None) is None:  # pyarrow < 16: no view types
        return arrow_type
    if types.is_string_view(arrow_type):
        return pa.large_string()
    if types.is_binary_view(arrow_type):
        return pa.large_binary()
    if types.is_list_view(arrow_type) or types.is_large_list_view(arrow_type):
        return pa.large_list(arrow_type.value_field.with_type(_plain_type(arrow_type.value_type)))
    if types.is_dictionary(arrow_type):
        value = _plain_type(arrow_type.value_type)
        if value != arrow_type.value_type:
            return pa.dictionary(arrow_type.index_type, value, arrow_type.ordered)
    if types.is_list(arrow_type) or types.is_large_list(arrow_type):
        value = _plain_type(arrow_type.value_type)
        if value != arrow_type.value_type:
            field = arrow_type.value_field.with_type(value)
            return pa.list_(field) if types.is_list(arrow_type) else pa.large_list(field)
    return arrow_type


class MemorySource:
    """One in-memory input: a Table (read as often as needed) or a stream (read once).

    ``schema`` is what columns are resolved against (view types as their plain types).
    """

    def __init__(self, obj: Any, name: str) -> None:
        self.name = name
        self.table: pa.Table | None = None
        self.reader: pa.RecordBatchReader | None = None
        #: the object given, when it is a reader that must not be read twice
        self._given_reader: Any = None
        try:
            if isinstance(obj, pa.Table):
                self.table = obj
            elif isinstance(obj, pa.RecordBatch):
                self.table = pa.Table.from_batches([obj])
            elif _pandas_frame(obj):
                self.table = pa.Table.from_pandas(obj, preserve_index=False)
            elif _polars_frame(obj):  # in memory already: its chunks, not copied
                has_stream = hasattr(obj, "__arrow_c_stream__")  # polars < 1.0: to_arrow()
                self.table = pa.table(obj) if has_stream else obj.to_arrow()
            elif isinstance(obj, pa.RecordBatchReader):
                self._given_reader = obj
                self.reader = obj
            elif hasattr(obj, "__arrow_c_stream__"):
                if not hasattr(pa.RecordBatchReader, "from_stream"):
                    raise ConfigError(
                        f"{name}: reading a {_kind_of(obj)} through the Arrow C stream "
                        f"interface needs pyarrow >= 15 (found {pa.__version__})"
                    )
                self.reader = pa.RecordBatchReader.from_stream(obj)
            else:
                raise ConfigError(
                    f"{name}: a {_kind_of(obj)} is not an input (give a path, a pyarrow Table, "
                    "RecordBatch or RecordBatchReader, a pandas or polars DataFrame, or an "
                    "object with __arrow_c_stream__)"
                )
        except (pa.ArrowException, TypeError, ValueError) as exc:
            if isinstance(exc, (ConfigError, InvalidInputError)):
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInputError(
                f"{name}: cannot read the {_kind_of(obj)} as Arrow data: {text}", path=name
            ) from None
        if self._given_reader is not None and self._given_reader in _read_readers:
            raise ConfigError(
                f"{name}: this RecordBatchReader was already read by an earlier evaluation (a "
                "reader yields its batches once); pass a new reader, or a pyarrow Table "
                "(reader.read_all()) to evaluate the same data again"
            )
        data = self.table if self.table is not None else self.reader
        assert data is not None
        self.schema = pa.schema([field.with_type(_plain_type(field.type)) for field in data.schema])
        self._taken = False

    @property
    def num_rows(self) -> int | None:
        """Rows of a Table; ``None`` for a stream (unknown until read)."""
        return None if self.table is None else self.table.num_rows

    def units(self) -> list[Any]:
        from streammetric.io.reader import Unit

        if self.table is None:
            return [Unit(self.name, "memory", None, None, 0, source=self)]
        rows = self.table.num_rows
        return [
            Unit(self.name, "memory", start, min(UNIT_ROWS, rows - start), start, source=self)
            for start in range(0, rows, UNIT_ROWS)
        ]

    def batches(self, unit: Any, columns: Sequence[str], slice_rows: int) -> Iterator[Any]:
        """The unit's record batches (the needed ``columns`` only) with the row of their
        first row: slices of the Table, or of the stream's batches, of at most ``slice_rows``
        rows (views of their buffers: what a slice's conversion allocates stays bounded, as
        for a file's row group)."""
        if self.table is not None:
            part = self.table.slice(unit.row_offset, unit.num_rows).select(list(columns))
            row = unit.row_offset
            for batch in part.to_batches(max_chunksize=slice_rows):
                if batch.num_rows:
                    yield self._plain(batch), row
                    row += batch.num_rows
            return
        reader = self._take()
        row = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InvalidInputError(
                    f"{self.name}: record batch after row {row}: {text}", path=self.name
                ) from None
            batch = self._plain(batch)
            for start in range(0, batch.num_rows, slice_rows):  # views: a bounded conversion
                yield batch.slice(start, slice_rows), row + start
            row += batch.num_rows

    def _take(self) -> pa.RecordBatchReader:
        with _read_lock:
            given = self._given_reader
            if self._taken or (given is not None and given in _read_readers):
                raise ConfigError(
                    f"{self.name}: this RecordBatchReader was already read by an earlier "
                    "evaluation (a reader yields its batches once); pass a new reader, or a "
                    "pyarrow Table (reader.read_all()) to evaluate the same data again"
                )
            self._taken = True
            if given is not None:
                try:
                    _read_readers.add(given)
                except TypeError:  # not weakly referable: only this source knows
                    pass
        assert self.reader is not None
        return self.reader

    def _plain(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with its view-typed columns cast to their plain types (copies of those
        columns only: the others are the batch's own arrays)."""
        if all(field.type == self.schema.field(field.name).type for field in batch.schema):
            return batch
        arrays = [
            column
            if column.type == self.schema.field(name).type
            else column.cast(self.schema.field(name).type)
            for name, column in zip(batch.schema.names, batch.columns, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def memory_sources(objects: Sequence[Any]) -> list[MemorySource]:
    """One `MemorySource` per in-memory input, named ``<table>`` (``<table N>`` for several)."""
    if not objects:
        raise ConfigError("no input given")
    names = ["<table>"] if len(objects) == 1 else [f"<table {i}>" for i in range(len(objects))]
    return [MemorySource(obj, name) for obj, name in zip(objects, names, strict=True)]


def memory_units(objects: Sequence[Any]) -> list[Any]:
    """The units of in-memory inputs, in the order given (see the module docstring)."""
    return [unit for source in memory_sources(objects) for unit in source.units()]


def resolve_memory(sources: Sequence[MemorySource], spec: Any) -> Any:
    """The columns shared by every in-memory input (as `resolve_units` for files: an input
    without rows is not compared, unless every one is empty)."""
    from streammetric.io.columns import resolve
    from streammetric.io.sources import columns_differ

    nonempty = [source for source in sources if source.num_rows != 0]
    resolved = None
    first = ""
    for source in nonempty or sources:
        current = resolve(source.schema, spec, source.name)
        if resolved is None:
            resolved, first = current, source.name
        elif current != resolved:
            raise columns_differ(source.name, current, first, resolved)
    if resolved is None:
        return None
    from streammetric.io.reader import with_list_widths

    return with_list_widths(resolved, [unit for source in sources for unit in source.units()])
