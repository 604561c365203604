"""Arrays of other frameworks as NumPy arrays: one conversion per batch, never element by element.

`as_numpy` is the one place where a framework's object becomes a NumPy array. It tries, in this
order (the first that fits wins):

==============================================  ===============================================
the input                                       what it becomes
==============================================  ===============================================
``numpy.ndarray``                               itself
a ``torch.Tensor`` (any device, dtype, grad)    ``detach()``; a tensor off the CPU is copied to
                                                the host once (``.cpu()``); then ``.numpy()``:
                                                a view of the CPU memory, strides and all
                                                (bfloat16 and float8, which NumPy lacks, are
                                                widened to float32: exactly)
a ``tf.Tensor`` (eager)                         ``.numpy()`` (TensorFlow copies device memory
                                                to the host once; string tensors: arrays of
                                                bytes, for `as_numpy` ``objects=True`` only)
an MXNet ``NDArray``                            ``.asnumpy()``
anything with ``__dlpack__`` whose              ``np.from_dlpack``: a view of the memory, no
``__dlpack_device__`` is the CPU (JAX arrays,   copy
NumPy-compatible array libraries)
device memory with ``__dlpack__`` or            ``__array__`` when the object has it (its own
``__cuda_array_interface__`` (JAX on a GPU,     copy to the host, once), else CuPy's
CuPy, Numba, ...)                               ``cupy.asnumpy`` when CuPy is installed, else
                                                an `InvalidInputError` saying so
pyarrow arrays, chunked arrays, tables          as ``streammetric`` reads Arrow columns
pandas Series / DataFrames                      ``.to_numpy()``
anything with ``__array__`` or                  ``np.asarray``
``__array_interface__``, lists, numbers
==============================================  ===============================================

The result has the values and dtype of the input's memory, so an update from a tensor gives the
same bits as an update from the NumPy array with that memory. One exception: the small types of
``ml_dtypes`` (what JAX and TensorFlow give NumPy for bfloat16, float8_*, float6_*, float4_*,
int4, ...), which NumPy's own functions do not compute with, are widened to float32 (the
floats) or int8 / uint8 (the integers), exactly: each of their values is one of the wider
type's (`standard_dtype`), whatever the container (a NumPy array of such a dtype too; the
metrics' fast path of plain NumPy arrays leaves those to `as_numpy`).

Ragged nested lists are refused naming the first row whose length differs (`ragged_error`).

No framework is imported to recognise its objects: a torch tensor can only exist once torch is
imported, so ``sys.modules`` says whether to ask ``isinstance(value, torch.Tensor)`` at all, and
the protocols (``__dlpack__``, ``__array__``, ...) are looked up on the object. The one import
made for an input is CuPy's, for device memory that only CuPy can copy (it is what the object is).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._exceptions import InvalidInputError

__all__ = ["as_numpy", "is_array_object", "ragged_error", "standard_dtype"]

#: DLPack device types whose memory the CPU reads: kDLCPU, kDLCUDAHost, kDLCUDAManaged, kDLROCMHost
_HOST_DEVICES = frozenset({1, 3, 13, 11})
#: torch's floats that NumPy lacks and float32 holds exactly (at most 8 exponent bits, 7
#: mantissa bits): widened by ``.float()`` before ``.numpy()``
_TORCH_WIDENED = frozenset(
    {
        "torch.bfloat16",
        "torch.float8_e4m3fn",
        "torch.float8_e4m3fnuz",
        "torch.float8_e5m2",
        "torch.float8_e5m2fnuz",
        "torch.float8_e8m0fnu",
    }
)


def as_numpy(value: Any, name: str = "input", *, objects: bool = False) -> np.ndarray:
    """``value`` as a NumPy array (see the module's table); an input that cannot be read says so
    in one line (`InvalidInputError` naming ``name``). An array of Python objects (strings of a
    TensorFlow tensor, a list of mixed types) is refused unless ``objects`` (ids, which
    `streammetric.metrics._ids.as_ids` checks item by item)."""
    if isinstance(value, np.ndarray):
        return value if value.dtype.isbuiltin != 2 else standard_dtype(value, name)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _from_torch(value, name)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, getattr(tf, "Tensor", ())):
        return _converted(
            value, name, "TensorFlow tensor", lambda v: np.asarray(v.numpy()), objects
        )
    if hasattr(value, "asnumpy"):  # MXNet NDArray
        return _converted(value, name, "MXNet NDArray", lambda v: np.asarray(v.asnumpy()))
    kind = type(value)
    if kind.__module__.startswith("pyarrow"):  # before DLPack: nulls are refused, not NaN
        return _arrow_to_numpy(value, name)
    if hasattr(value, "to_numpy"):  # pandas Series / DataFrame
        array = np.asarray(value.to_numpy())
        return array if array.dtype.isbuiltin != 2 else standard_dtype(array, name)
    if hasattr(kind, "__dlpack__") or hasattr(value, "__cuda_array_interface__"):
        return _from_protocols(value, name)
    if hasattr(value, "numpy") and callable(value.numpy):  # other eager tensors
        return _converted(value, name, kind.__name__, lambda v: np.asarray(v.numpy()), objects)
    return _plain(value, name, objects)


def standard_dtype(array: np.ndarray, name: str = "input") -> np.ndarray:
    """``array`` in a dtype NumPy computes with: a dtype of ``ml_dtypes`` (JAX's and
    TensorFlow's bfloat16, float8_*, float6_*, float4_*, int4, ...) widened to float32 (a float
    type) or int8 / uint8 (an integer type), exactly (each of its values is one of the wider
    type's: float32 has at least its mantissa bits and its exponents, subnormals included);
    another array as it is. A user-defined dtype that has no such exact widening (e.g.
    ``bcomplex32``) is refused naming it. (NumPy's own dtypes are not user-defined: one
    attribute read, ``dtype.isbuiltin``, tells them apart.)"""
    dtype = array.dtype
    if dtype.isbuiltin != 2:  # NumPy's own dtypes (1), structured ones (0): as they are
        return array
    wider = _exact_widening(dtype)
    if wider is None:
        raise InvalidInputError.bad_argument(
            name,
            "must be numeric in a dtype NumPy computes with, or one that widens exactly to "
            "float32 / int8 / uint8",
            dtype,
        )
    return array.astype(wider)


def _exact_widening(dtype: np.dtype) -> type[np.generic] | None:
    """The NumPy type that holds every value of the ``ml_dtypes`` type ``dtype``, exactly."""
    ml_dtypes = sys.modules.get("ml_dtypes")  # an array of its dtype: it is imported
    if ml_dtypes is None or not dtype.type.__module__.startswith("ml_dtypes"):
        return None
    if dtype.kind == "c" or "complex" in dtype.name:  # its finfo is its parts': not a float
        return None
    try:
        info = ml_dtypes.finfo(dtype)
    except (TypeError, ValueError, KeyError):
        info = None
    if info is not None:  # float32: 23 mantissa bits, exponents -126..127, subnormals to 2**-149
        exact = info.nmant <= 23 and info.maxexp <= 128 and info.minexp - info.nmant >= -149
        return np.float32 if exact else None
    try:
        ints = ml_dtypes.iinfo(dtype)
    except (TypeError, ValueError, KeyError):
        return None
    if ints.min >= 0 and ints.max <= 255:
        return np.uint8
    if ints.min >= -128 and ints.max <= 127:
        return np.int8
    return None


def ragged_error(value: Any, name: str, exc: BaseException | None = None) -> InvalidInputError:
    """The error of nested lists NumPy finds ragged (``np.asarray`` raised ``exc``): the first
    row (in row order; a tuple of indices below the first axis) whose length is not the one of
    row 0 at that depth, e.g. ``"`preds` row 1 must have 2 values, as row 0 has (not ragged),
    got 1"``. Its ``value`` is the row's length (the row itself when it is a number where row
    0 has values, or values where row 0 has a number).

    >>> str(ragged_error([[0.1, 0.9], [0.5]], "preds"))
    '`preds` row 1 must have 2 values, as row 0 has (not ragged), got 1'
    """
    found = _first_ragged(value, _first_lengths(value), ())
    if found is None:  # not nested lists: NumPy's reason, its first line
        reason = str(exc).splitlines()[0] if exc is not None and str(exc) else "ragged"
        return InvalidInputError(
            f"`{name}` must be a rectangular array, got {type(value).__name__}: {reason}",
            argument=name,
            rule="must be a rectangular array",
        )
    path, item, got, want = found
    row: int | tuple[int, ...] = path[0] if len(path) == 1 else path
    reference: int | tuple[int, ...] = 0 if len(path) == 1 else (0,) * len(path)
    if want is None:
        rule = f"must be one value, as row {reference} is (not ragged)"
        return InvalidInputError.bad_row(name, row, rule, item)
    values = "value" if want == 1 else "values"
    rule = f"must have {want} {values}, as row {reference} has (not ragged)"
    return InvalidInputError.bad_row(name, row, rule, item if got is None else got)


def _length(item: Any) -> int | None:
    """The number of values of ``item`` (a list, tuple or array of >= 1 dimension), else None."""
    if isinstance(item, (list, tuple)):
        return len(item)
    if isinstance(item, (str, bytes, np.generic)):
        return None
    try:
        shape = np.shape(item)
    except Exception:  # an object NumPy cannot read: one value
        return None
    return int(shape[0]) if shape else None


def _first_lengths(value: Any) -> list[int | None]:
    """The lengths along the first values: ``[len(v), len(v[0]), len(v[0][0]), ...]``."""
    lengths: list[int | None] = []
    while True:
        length = _length(value)
        lengths.append(length)
        if not length:
            return lengths
        value = value[0]


def _first_ragged(
    value: Any, lengths: list[int | None], path: tuple[int, ...]
) -> tuple[tuple[int, ...], Any, int | None, int | None] | None:
    """The first ``(path, item, its length, the length wanted)`` whose length is not row 0's
    at its depth, in row order; None when every length agrees."""
    for index in range(lengths[0] or 0):
        item = value[index]
        got = _length(item)
        want = lengths[1] if len(lengths) > 1 else None
        if got != want:
            return (*path, index), item, got, want
        if got:
            found = _first_ragged(item, lengths[1:], (*path, index))
            if found is not None:
                return found
    return None


def is_array_object(item: Any) -> bool:
    """Whether ``item`` is one array (of any framework), not a number, string or list: MXNet-style
    lists of arrays pair element-wise, a list of numbers is one array."""
    if isinstance(item, np.ndarray):
        return True
    if isinstance(item, (list, tuple, int, float, bool, np.generic, str, bytes)):
        return False
    kind = type(item)
    return any(
        hasattr(kind, attribute)
        for attribute in ("__array__", "__array_interface__", "__dlpack__", "asnumpy", "numpy")
    ) or hasattr(item, "__cuda_array_interface__")


def _from_torch(tensor: Any, name: str) -> np.ndarray:
    """A torch tensor's values: detached, on the host (one copy if it is elsewhere), as NumPy."""
    tensor = tensor.detach()
    if tensor.layout != sys.modules["torch"].strided:
        raise InvalidInputError.bad_argument(
            name, "must be a dense tensor (call .to_dense() first)", f"{tensor.layout} tensor"
        )
    device = tensor.device.type
    if device == "meta":
        raise InvalidInputError.bad_argument(
            name, "must hold values (a tensor on the meta device has none)", "a meta tensor"
        )
    if device != "cpu":
        tensor = tensor.cpu()  # the one copy to the host
    if tensor.is_conj() or tensor.is_neg():
        tensor = tensor.resolve_conj().resolve_neg()
    if str(tensor.dtype) in _TORCH_WIDENED:  # NumPy lacks them; float32 holds each exactly
        tensor = tensor.float()
    return _converted(tensor, name, "torch tensor", lambda t: t.numpy())


def _from_protocols(value: Any, name: str) -> np.ndarray:
    """An object of the array protocols: DLPack memory the CPU reads as a view, device memory
    copied to the host once (by the object's own ``__array__``, or by CuPy)."""
    kind = type(value)
    device = _dlpack_device(value)
    if hasattr(kind, "__dlpack__") and device is not None and device in _HOST_DEVICES:
        try:
            return np.from_dlpack(value)
        except (BufferError, TypeError, RuntimeError, ValueError) as exc:
            if not hasattr(kind, "__array__"):  # e.g. a dtype NumPy lacks
                raise InvalidInputError.bad_argument(
                    name, f"must be readable through DLPack ({exc})", kind.__name__
                ) from None
    if hasattr(kind, "__array__") and not hasattr(value, "__cuda_array_interface__"):
        return _plain(value, name)
    if kind.__module__.split(".")[0] == "cupy":
        return _converted(value, name, "CuPy array", lambda v: v.get())
    if hasattr(value, "__cuda_array_interface__") or device is not None:
        try:
            import cupy  # device memory: only its owner, or CuPy, can copy it to the host
        except ImportError:
            raise InvalidInputError.bad_argument(
                name,
                "is GPU memory that only CuPy can copy to the host here: install cupy, or pass "
                "host memory (e.g. .cpu() / .get() first)",
                kind.__name__,
            ) from None
        return _converted(value, name, kind.__name__, lambda v: cupy.asnumpy(cupy.asarray(v)))
    return _plain(value, name)


def _arrow_to_numpy(value: Any, name: str) -> np.ndarray:
    import pyarrow as pa

    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return np.column_stack([_arrow_to_numpy(c, name) for c in value.columns])
    if (
        pa.types.is_list(value.type)
        or pa.types.is_large_list(value.type)
        or pa.types.is_fixed_size_list(value.type)
    ):
        return as_numpy(value.to_pylist(), name)
    if value.null_count:
        raise InvalidInputError(
            f"`{name}` must not contain nulls, got {value.null_count} null(s)", argument=name
        )
    return value.to_numpy(zero_copy_only=False)


def _dlpack_device(value: Any) -> int | None:
    """The DLPack device type of ``value`` (1: the CPU), None when it does not say."""
    method = getattr(value, "__dlpack_device__", None)
    if method is None:
        return None
    try:
        return int(method()[0])
    except Exception:  # a device the object cannot name: treat as unknown
        return None


def _converted(value: Any, name: str, what: str, convert: Any, objects: bool = False) -> np.ndarray:
    try:
        array = convert(value)
    except (TypeError, RuntimeError, ValueError, AttributeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError.bad_argument(
            name, f"must be convertible to a NumPy array ({message})", what
        ) from None
    return _checked(array, name, objects)


def _plain(value: Any, name: str, objects: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ragged_error(value, name, exc) from None
    except TypeError as exc:  # an __array__ that refuses (e.g. device memory)
        raise InvalidInputError.bad_argument(
            name, f"must be convertible to a NumPy array ({exc})", type(value).__name__
        ) from None
    return _checked(array, name, objects)


def _checked(array: np.ndarray, name: str, objects: bool = False) -> np.ndarray:
    if array.dtype.isbuiltin == 2:
        return standard_dtype(array, name)
    if array.dtype == object and not objects:
        raise InvalidInputError(
            f"`{name}` must be numeric, got an array of Python objects (ragged or mixed types)",
            argument=name,
        )
    return array
