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
                                                (bfloat16, which NumPy lacks, is widened to
                                                float32: exactly)
a ``tf.Tensor`` (eager)                         ``.numpy()`` (TensorFlow copies device memory
                                                to the host once)
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
same bits as an update from the NumPy array with that memory.

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

__all__ = ["as_numpy", "is_array_object"]

#: DLPack device types whose memory the CPU reads: kDLCPU, kDLCUDAHost, kDLCUDAManaged, kDLROCMHost
_HOST_DEVICES = frozenset({1, 3, 13, 11})


def as_numpy(value: Any, name: str = "input") -> np.ndarray:
    """``value`` as a NumPy array (see the module's table); an input that cannot be read says so
    in one line (`InvalidInputError` naming ``name``)."""
    if isinstance(value, np.ndarray):
        return value
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _from_torch(value, name)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, getattr(tf, "Tensor", ())):
        return _converted(value, name, "TensorFlow tensor", lambda v: np.asarray(v.numpy()))
    if hasattr(value, "asnumpy"):  # MXNet NDArray
        return _converted(value, name, "MXNet NDArray", lambda v: np.asarray(v.asnumpy()))
    kind = type(value)
    if kind.__module__.startswith("pyarrow"):  # before DLPack: nulls are refused, not NaN
        return _arrow_to_numpy(value, name)
    if hasattr(value, "to_numpy"):  # pandas Series / DataFrame
        return np.asarray(value.to_numpy())
    if hasattr(kind, "__dlpack__") or hasattr(value, "__cuda_array_interface__"):
        return _from_protocols(value, name)
    if hasattr(value, "numpy") and callable(value.numpy):  # other eager tensors
        return _converted(value, name, kind.__name__, lambda v: np.asarray(v.numpy()))
    return _plain(value, name)


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
    if str(tensor.dtype) == "torch.bfloat16":  # NumPy has no bfloat16; float32 holds each exactly
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


def _converted(value: Any, name: str, what: str, convert: Any) -> np.ndarray:
    try:
        array = convert(value)
    except (TypeError, RuntimeError, ValueError, AttributeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError.bad_argument(
            name, f"must be convertible to a NumPy array ({message})", what
        ) from None
    return _checked(array, name)


def _plain(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(
            f"`{name}` must be a rectangular array, got ragged {type(value).__name__}: {exc}",
            argument=name,
        ) from exc
    except TypeError as exc:  # an __array__ that refuses (e.g. device memory)
        raise InvalidInputError.bad_argument(
            name, f"must be convertible to a NumPy array ({exc})", type(value).__name__
        ) from None
    return _checked(array, name)


def _checked(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == object:
        raise InvalidInputError(
            f"`{name}` must be numeric, got an array of Python objects (ragged or mixed types)",
            argument=name,
        )
    return array
