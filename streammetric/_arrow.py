"""Arrow arrays as NumPy without importing pandas (shared by `io` and `functional`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["as_numpy"]


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
