"""Tensors in: torch tensors, DLPack and ``__array__`` objects give the bits NumPy input gives.

Every comparison is of the metric's exact state (``state_dict()``, JSON) and of ``get()``: an
update from a tensor must leave the state an update from the NumPy array of the same values
leaves, for cross-entropy, accuracy and a composite of both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any, ClassVar

import numpy as np
import pytest

import streammetric as sm
from streammetric import InvalidInputError
from streammetric._tensors import as_numpy, is_array_object

torch = pytest.importorskip("torch")

METRICS = ["ce", "acc", ["ce", "acc", "top_k_accuracy"]]


class DLPackOnly:
    """Memory offered only through the DLPack protocol (``__dlpack__`` and
    ``__dlpack_device__``), the way array libraries offer theirs: a NumPy array's, passed on."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._array.__dlpack_device__()


class ArrayOnly:
    """An object NumPy reads only through ``__array__``."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._array if dtype is None else self._array.astype(dtype)


def _data(dtype: Any = np.float32, rows: int = 37, classes: int = 5) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(7)
    scores = rng.random((rows, classes)) + 0.05
    probs = (scores / scores.sum(axis=1, keepdims=True)).astype(dtype)
    labels = rng.integers(0, classes, rows)
    return labels, probs


def _state(metric: Any, labels: Any, preds: Any) -> tuple[str, str]:
    m = sm.create(metric)
    m.update(labels, preds)
    return json.dumps(m.state_dict(), sort_keys=True), repr(m.get())


@pytest.mark.parametrize("metric", METRICS, ids=["ce", "acc", "composite"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_tensors_give_the_bits_of_numpy(metric: Any, dtype: Any):
    labels, probs = _data(dtype)
    want = _state(metric, labels, probs)
    t_labels, t_probs = torch.from_numpy(labels.copy()), torch.from_numpy(probs.copy())
    assert _state(metric, t_labels, t_probs) == want
    # requires_grad (a leaf that autograd tracks), and the result of an op on it
    grad = torch.from_numpy(probs.copy()).requires_grad_(True)
    assert _state(metric, t_labels, grad) == want
    assert _state(metric, t_labels, grad * 1) == want
    # int32 labels, and non-contiguous views: a transpose, and every other column of a wider one
    assert _state(metric, t_labels.to(torch.int32), t_probs) == want
    transposed = torch.from_numpy(np.ascontiguousarray(probs.T)).t()
    assert not transposed.is_contiguous()
    assert _state(metric, t_labels, transposed) == want
    wide = torch.zeros((probs.shape[0], 2 * probs.shape[1]), dtype=t_probs.dtype)
    wide[:, ::2] = t_probs
    assert not wide[:, ::2].is_contiguous()
    assert _state(metric, t_labels, wide[:, ::2]) == want
    # lists of tensors pair element-wise, as lists of NumPy arrays do
    halves = [slice(0, 20), slice(20, None)]
    listed = _state(metric, [labels[h] for h in halves], [probs[h] for h in halves])
    assert _state(metric, [t_labels[h] for h in halves], [t_probs[h] for h in halves]) == listed


@pytest.mark.parametrize("metric", METRICS, ids=["ce", "acc", "composite"])
def test_dlpack_only_and_array_only_objects_give_the_bits_of_numpy(metric: Any):
    labels, probs = _data()
    want = _state(metric, labels, probs)
    assert _state(metric, DLPackOnly(labels), DLPackOnly(probs)) == want
    assert _state(metric, ArrayOnly(labels), ArrayOnly(probs)) == want
    assert _state(metric, [DLPackOnly(labels)], [ArrayOnly(probs)]) == want


def test_cpu_memory_is_read_in_place_not_copied_nor_element_by_element():
    _, probs = _data()
    tensor = torch.from_numpy(probs)
    assert np.shares_memory(as_numpy(tensor), probs)
    assert np.shares_memory(as_numpy(tensor.requires_grad_(True)), probs)
    assert np.shares_memory(as_numpy(DLPackOnly(probs)), probs)
    assert np.shares_memory(as_numpy(ArrayOnly(probs)), probs)
    view = torch.from_numpy(probs).t()  # strides kept: a view, not a contiguous copy
    assert np.shares_memory(as_numpy(view), probs)
    assert as_numpy(view).strides == probs.T.strides


def test_zero_d_and_regression_inputs():
    assert as_numpy(torch.tensor(0.25)).shape == ()
    assert as_numpy(torch.tensor(0.25)).dtype == np.float32
    want = sm.create("mae").update(np.array(1.0), np.array(1.75, np.float32)).state_dict()
    got = sm.create("mae").update(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.75))
    assert got.state_dict() == want
    y, p = np.linspace(0, 1, 11), np.linspace(0.1, 1.3, 11)
    for name in ("mae", "mse", "rmse"):
        want = sm.create(name).update(y, p).state_dict()
        assert sm.create(name).update(torch.from_numpy(y), torch.from_numpy(p)).state_dict() == want


def test_bfloat16_is_widened_exactly_and_bool_and_half_keep_their_dtype():
    values = torch.tensor([0.1, 0.5, 3.0], dtype=torch.bfloat16)
    out = as_numpy(values)
    assert out.dtype == np.float32
    assert out.tolist() == values.float().tolist()
    assert as_numpy(torch.tensor([True, False])).dtype == np.bool_
    assert as_numpy(torch.tensor([0.5], dtype=torch.float16)).dtype == np.float16


def test_functional_api_and_bootstrap_take_tensors():
    labels, probs = _data(np.float64)
    from streammetric.functional import cross_entropy

    want = cross_entropy(labels, probs)
    assert cross_entropy(torch.from_numpy(labels), torch.from_numpy(probs)) == want
    boot = sm.Bootstrap(sm.create("acc"), replicates=20)
    boot.update(torch.from_numpy(labels), torch.from_numpy(probs), sample_ids=torch.arange(37))
    ref = sm.Bootstrap(sm.create("acc"), replicates=20)
    ref.update(labels, probs, sample_ids=np.arange(37))
    assert repr(boot.get_interval()) == repr(ref.get_interval())


class DeviceMemory:
    """Memory on a GPU (``__cuda_array_interface__``), which the CPU cannot read."""

    __cuda_array_interface__: ClassVar[dict[str, Any]] = {
        "shape": (3,),
        "typestr": "<f4",
        "data": (0, False),
        "version": 3,
    }


class DeviceDLPack:
    """DLPack memory on CUDA device 0, without ``__array__``."""

    def __dlpack__(self, **kwargs: Any) -> Any:
        raise BufferError("not on the CPU")

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)


@pytest.mark.parametrize("value", [DeviceMemory(), DeviceDLPack()], ids=["cai", "dlpack"])
def test_device_memory_without_a_copier_is_one_clear_error(value: Any, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # CuPy absent: `import cupy` fails
    with pytest.raises(InvalidInputError) as info:
        sm.create("mae").update(np.zeros(3), value)
    assert info.value.argument == "preds"
    assert "cupy" in str(info.value) and "\n" not in str(info.value)


def test_tensors_that_hold_no_values_are_one_clear_error():
    with pytest.raises(InvalidInputError, match="meta") as info:
        sm.create("mae").update(torch.zeros(3, device="meta"), np.zeros(3))
    assert info.value.argument == "labels"
    with pytest.raises(InvalidInputError, match="dense"):
        sm.create("mae").update(np.zeros(3), torch.zeros(3).to_sparse())


def test_what_counts_as_one_array():
    assert is_array_object(torch.zeros(2)) and is_array_object(DLPackOnly(np.zeros(2)))
    assert is_array_object(ArrayOnly(np.zeros(2))) and is_array_object(DeviceMemory())
    assert not any(is_array_object(v) for v in (1, 0.5, "a", [1, 2], np.float32(1)))


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="this machine has no CUDA: no CUDA tensors"
)
def test_cuda_tensors_are_copied_once_and_give_the_bits_of_numpy():  # pragma: no cover
    labels, probs = _data()
    for metric in METRICS:
        want = _state(metric, labels, probs)
        got = _state(metric, torch.from_numpy(labels).cuda(), torch.from_numpy(probs).cuda())
        assert got == want


def test_numpy_updates_do_not_import_any_framework():
    code = """
        import sys
        import numpy as np
        import streammetric as sm
        import streammetric.distributed  # torch only once sync is called
        m = sm.create(["ce", "acc"])
        m.update(np.array([0, 1]), np.array([[0.3, 0.7], [0.6, 0.4]]))
        m.update([0, 1], [[0.3, 0.7], [0.6, 0.4]])
        sm.create("mae").update([1.0], [2.0])
        print(sorted(f for f in ("torch", "tensorflow", "jax", "cupy", "mxnet") if f in sys.modules))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["[]"]


@pytest.mark.parametrize("metric", METRICS, ids=["ce", "acc", "composite"])
def test_jax_arrays_give_the_bits_of_numpy(metric: Any):
    """JAX arrays (real ones, on JAX's CPU backend) go in through DLPack: the same bits as
    NumPy, read without a copy; JAX's default int32 labels too."""
    jnp = pytest.importorskip("jax.numpy", reason="jax is in the test extra")
    labels, probs = _data()
    want = _state(metric, labels, probs)
    j_labels, j_probs = jnp.asarray(labels.astype(np.int32)), jnp.asarray(probs)
    assert _state(metric, j_labels, j_probs) == want
    assert _state(metric, j_labels, j_probs.T.T) == want  # a derived array
    converted = as_numpy(j_probs)
    assert converted.dtype == np.float32 and np.array_equal(converted, probs)
    assert np.shares_memory(converted, np.asarray(j_probs))  # a view of JAX's buffer


@pytest.mark.parametrize("metric", METRICS, ids=["ce", "acc", "composite"])
def test_tensorflow_tensors_give_the_bits_of_numpy(metric: Any):
    """Real TensorFlow eager tensors and variables (CPU): the same bits as NumPy."""
    tf = pytest.importorskip("tensorflow", reason="tensorflow-cpu is in the test extra")
    labels, probs = _data()
    want = _state(metric, labels, probs)
    assert _state(metric, tf.constant(labels), tf.constant(probs)) == want
    assert _state(metric, tf.constant(labels.astype(np.int32)), tf.Variable(probs)) == want
    transposed = tf.transpose(tf.constant(np.ascontiguousarray(probs.T)))
    assert _state(metric, tf.constant(labels), transposed) == want
