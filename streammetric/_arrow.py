"""Arrow arrays to and from NumPy and Python without importing pandas (shared by `io`,
`engine` and `functional`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["array_of", "as_numpy", "codes_numpy", "from_numpy"]


def as_numpy(array: pa.Array) -> np.ndarray:
    """A NumPy view of a numeric Arrow array without nulls (zero-copy), else a converted copy.

    ``pa.Array.to_numpy`` imports pandas (~300 modules, ~0.3 s) on first use, a fixed cost on
    every ``streammetric eval`` process; a view of the data buffer needs nothing.

    >>> import pyarrow as pa
    >>> as_numpy(pa.array([1.5, 2.5], type=pa.float32()).slice(1)).tolist()
    [2.5]
    """
    kind = array.type
    if not array.null_count and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        dtype = np.dtype(kind.to_pandas_dtype())
        buffer = array.buffers()[1]
        if buffer is None:  # an empty array
            return np.empty(0, dtype=dtype)
        return np.frombuffer(
            buffer, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
        )
    return array.to_numpy(zero_copy_only=False)


def array_of(values: list[Any], kind: pa.DataType) -> pa.Array:
    """``pa.array(values, kind)`` of Python ints (``kind`` an integer type) or strings
    (``pa.string()``), built from buffers: ``pa.array`` imports pandas (~0.3 s, once per
    process) whatever it is given, which at 100,000 groups was a fifth of a run. A value that
    does not fit (an int out of range, a string that is not UTF-8-encodable) raises
    ``ValueError``/``OverflowError``, as ``pa.array`` would raise.

    >>> array_of(["a", "bé"], pa.string()).to_pylist(), array_of([1, -2], pa.int32()).to_pylist()
    (['a', 'bé'], [1, -2])
    """
    if pa.types.is_integer(kind):
        return from_numpy(np.array(values, dtype=np.dtype(kind.to_pandas_dtype())))
    if kind == pa.string():
        encoded = [value.encode() for value in values]  # UnicodeEncodeError is a ValueError
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        if offsets[-1] >= 2**31:
            raise OverflowError("strings of more than 2 GiB in all")
        buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
        return pa.Array.from_buffers(kind, len(values), buffers)
    raise TypeError(f"array_of builds ints and strings, not {kind}")


def from_numpy(data: np.ndarray) -> pa.Array:
    """A 1-D NumPy array of ints, floats or bools as an Arrow array (sharing the memory of
    ints and floats), without importing pandas (``pa.array`` of it would).

    >>> from_numpy(np.arange(3, dtype=np.int32)).to_pylist(), from_numpy(np.arange(9) > 6).to_pylist()[6:]
    ([0, 1, 2], [False, True, True])
    """
    if data.dtype == np.bool_:  # Arrow packs booleans into bits
        packed = np.packbits(data, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(data), [None, pa.py_buffer(packed)])
    data = np.ascontiguousarray(data)
    kind = pa.from_numpy_dtype(data.dtype)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def codes_numpy(codes: pa.Array, missing: int = -1) -> np.ndarray:
    """An int32 Arrow array (``pyarrow.compute.index_in``'s) as int64 NumPy, nulls as
    ``missing``, without importing pandas (``fill_null`` and ``to_numpy`` of an array with
    nulls would).

    >>> import pyarrow.compute as pc
    >>> codes_numpy(pc.index_in(pa.array(["b", "x", "a"]), value_set=pa.array(["a", "b"]))).tolist()
    [1, -1, 0]
    """
    assert codes.type == pa.int32(), codes.type
    n = len(codes)
    if not n:
        return np.empty(0, dtype=np.int64)
    out = np.frombuffer(codes.buffers()[1], dtype=np.int32, count=n, offset=codes.offset * 4)
    out = out.astype(np.int64)
    if codes.null_count:
        bitmap = np.frombuffer(codes.buffers()[0], dtype=np.uint8)
        valid = np.unpackbits(bitmap, bitorder="little")[codes.offset : codes.offset + n]
        out[valid == 0] = missing
    return out
