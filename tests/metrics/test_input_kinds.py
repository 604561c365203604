"""Kinds of input beyond NumPy's own: the small floats of JAX and TensorFlow (``ml_dtypes``), ids
from any container, and ragged lists.

* bfloat16 (and the float8 / float6 / float4 types) of JAX, TensorFlow and torch give the bits
  of the float32 NumPy array of the same values (each is one exactly), as labels, preds and
  ``sample_weight``; a user-defined dtype with no exact widening is refused naming it.
* ``sample_ids``: one conversion (`streammetric.metrics._ids.as_ids`) for a metric's ``update``
  and `Bootstrap.update`: an id is the same id from a list, NumPy (unicode, bytes, object), a
  pandas Series, pyarrow, a TensorFlow string tensor (bytes as UTF-8); anything else is one
  line naming ``sample_ids``, the row of the first bad id and the rule.
* Ragged nested lists: one line naming the argument, the first row whose length differs, and
  its length (no NumPy message inside).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import streammetric as sm
from streammetric import InvalidInputError
from streammetric._tensors import as_numpy, standard_dtype
from streammetric.metrics._ids import as_ids

METRICS = ["ce", "acc", ["ce", "acc", "confusion_matrix"]]


def _data(rows: int = 24, classes: int = 3, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.random((rows, classes)) + 0.05
    return rng.integers(0, classes, rows), scores / scores.sum(axis=1, keepdims=True)


def _bits(metric: Any) -> str:
    return json.dumps(metric.state_dict(), sort_keys=True) + repr(metric.get_global())


class ArrayOnly:
    """An object NumPy reads only through ``__array__`` (e.g. an ``ml_dtypes`` array held by
    another library)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._array if dtype is None else self._array.astype(dtype)


# -- A. bfloat16 and the other small floats ------------------------------------------------------


def _ml_dtypes() -> Any:
    return pytest.importorskip("ml_dtypes", reason="ml_dtypes comes with jax, in the test extra")


@pytest.mark.parametrize("framework", ["jax", "tensorflow"])
@pytest.mark.parametrize("metric", [*METRICS, "mae"], ids=["ce", "acc", "composite", "mae"])
def test_jax_and_tensorflow_bfloat16_give_the_bits_of_float32(framework: str, metric: Any):
    """README: JAX and TensorFlow inputs, "bfloat16 is widened to float32, exactly": the state
    of the float32 NumPy array of the bfloat16 values, for preds, labels (regression) and
    weights."""
    ml_dtypes = _ml_dtypes()
    labels, probs = _data()
    regression = metric == "mae"
    if regression:
        probs = probs[:, 0] * 4
        labels = probs[::-1].copy()
    weights = np.linspace(0.5, 3.0, labels.shape[0])
    narrow = [a.astype(ml_dtypes.bfloat16) for a in (labels, probs, weights)]
    want_labels, want_probs, want_weights = [a.astype(np.float32) for a in narrow]
    if not regression:
        want_labels = labels
    if framework == "jax":
        jnp = pytest.importorskip("jax.numpy", reason="jax is in the test extra")

        def convert(a: np.ndarray) -> Any:
            return jnp.asarray(a)
    else:
        tf = pytest.importorskip("tensorflow", reason="tensorflow-cpu is in the test extra")

        def convert(a: np.ndarray) -> Any:
            return tf.constant(a)

    got_labels = convert(narrow[0]) if regression else convert(labels)
    got = sm.create(metric).update(got_labels, convert(narrow[1]))
    assert _bits(got) == _bits(sm.create(metric).update(want_labels, want_probs))
    weighted = sm.create(metric).update(got_labels, convert(narrow[1]), convert(narrow[2]))
    want = sm.create(metric).update(want_labels, want_probs, want_weights)
    assert _bits(weighted) == _bits(want)
    boot = sm.Bootstrap(sm.create(metric), replicates=20)
    boot.update(got_labels, convert(narrow[1]), sample_ids=np.arange(labels.shape[0]))
    ref = sm.Bootstrap(sm.create(metric), replicates=20)
    ref.update(want_labels, want_probs, sample_ids=np.arange(labels.shape[0]))
    assert repr(boot.get_interval()) == repr(ref.get_interval())


FLOATS = [
    "bfloat16",
    "float8_e3m4",
    "float8_e4m3",
    "float8_e4m3b11fnuz",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float6_e2m3fn",
    "float6_e3m2fn",
    "float4_e2m1fn",
]


@pytest.mark.parametrize("name", FLOATS)
def test_every_value_of_the_small_floats_widens_exactly(name: str):
    """Every bit pattern of each ``ml_dtypes`` float (all 2**16 of bfloat16) becomes the float32
    of its value: the float64 of each equal (NaN stays NaN), and back again the same bits. For
    bfloat16, independently of ml_dtypes' casts: its bits are float32's top 16."""
    ml_dtypes = _ml_dtypes()
    dtype = np.dtype(getattr(ml_dtypes, name, None) or pytest.skip(f"no {name} here"))
    unsigned = np.uint8 if dtype.itemsize == 1 else np.uint16
    bits = np.arange(1 << ml_dtypes.finfo(dtype).bits).astype(unsigned)  # float6: 64 of them
    every = bits.view(dtype)
    wide = as_numpy(ArrayOnly(every), "preds")  # a container of the dtype: widened
    assert wide.dtype == np.float32 and wide.shape == every.shape
    with np.errstate(invalid="ignore"):
        exact = every.astype(np.float64)
    nan = np.isnan(exact)
    assert np.array_equal(np.isnan(wide), nan)
    assert np.array_equal(wide[~nan].astype(np.float64), exact[~nan])
    back = wide[~nan].astype(dtype).view(unsigned)
    assert np.array_equal(back, bits[~nan])
    if name == "bfloat16":
        top = (bits.astype(np.uint32) << 16).view(np.float32)
        assert np.array_equal(wide.view(np.uint32), top.view(np.uint32))


def test_small_integers_widen_and_other_user_dtypes_are_refused():
    ml_dtypes = _ml_dtypes()
    int4 = np.arange(-8, 8).astype(ml_dtypes.int4)
    wide = as_numpy(ArrayOnly(int4), "labels")
    assert wide.dtype == np.int8 and wide.tolist() == list(range(-8, 8))
    uint4 = np.arange(16).astype(ml_dtypes.uint4)
    assert standard_dtype(uint4).dtype == np.uint8
    for name in ("bcomplex32", "complex32"):  # no exact float32: refused, naming it
        if not hasattr(ml_dtypes, name):
            continue
        odd = np.ones(3, dtype=np.complex64).astype(getattr(ml_dtypes, name))
        with pytest.raises(InvalidInputError, match=name) as info:
            as_numpy(ArrayOnly(odd), "preds")
        assert info.value.argument == "preds" and "\n" not in str(info.value)
    plain = np.zeros(3, np.float32)
    assert standard_dtype(plain) is plain  # NumPy's own: as it is


def test_torch_float8_gives_the_bits_of_float32():
    torch = pytest.importorskip("torch")
    labels, probs = _data()
    for dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2):
        narrow = torch.from_numpy(probs).to(dtype)
        want = narrow.float().numpy()
        got = sm.create("ce").update(torch.from_numpy(labels), narrow)
        assert _bits(got) == _bits(sm.create("ce").update(labels, want)), dtype


# -- B. ids from any container -------------------------------------------------------------------


def _string_containers(ids: list[str]) -> dict[str, Any]:
    """The same string ids in every container that holds strings."""
    out: dict[str, Any] = {
        "list": list(ids),
        "tuple": tuple(ids),
        "numpy unicode": np.array(ids),
        "numpy bytes": np.array([i.encode() for i in ids]),
        "object str": np.array(ids, dtype=object),
        "object bytes": np.array([i.encode() for i in ids], dtype=object),
    }
    pd = pytest.importorskip("pandas")
    out["pandas"] = pd.Series(ids)
    out["pandas object"] = pd.Series(ids, dtype=object)
    out["pandas category"] = pd.Series(ids, dtype="category")
    pa = pytest.importorskip("pyarrow")
    out["pyarrow"] = pa.array(ids)
    out["pyarrow dictionary"] = pa.array(ids).dictionary_encode()
    tf = pytest.importorskip("tensorflow", reason="tensorflow-cpu is in the test extra")
    out["tensorflow"] = tf.constant(ids)
    return out


IDS = ["img-3", "img-1", "é-2", "img-3", "img-10", "img-1"]  # rows 3 and 5 repeat rows 0 and 1


def test_string_ids_are_one_id_whatever_holds_them():
    """A metric counts each id once and `Bootstrap` hashes it the same, from every container:
    the bits of the NumPy unicode array's."""
    labels, probs = _data(rows=len(IDS))
    want = sm.create("acc").update(labels, probs, sample_ids=np.array(IDS))
    assert want.num_inst == 4
    boot_want = sm.Bootstrap(sm.create("acc"), replicates=50, seed=3)
    boot_want.update(labels, probs, sample_ids=np.array(IDS))
    for what, ids in _string_containers(IDS).items():
        converted = as_ids(ids, len(IDS))
        assert converted.dtype.kind == "U" and converted.tolist() == IDS, what
        metric = sm.create("acc").update(labels, probs, sample_ids=ids)
        assert _bits(metric) == _bits(want), what
        boot = sm.Bootstrap(sm.create("acc"), replicates=50, seed=3)
        boot.update(labels, probs, sample_ids=ids)
        assert repr(boot.get_interval()) == repr(boot_want.get_interval()), what


def test_an_id_from_one_container_is_counted_once_in_another():
    pd = pytest.importorskip("pandas")
    tf = pytest.importorskip("tensorflow", reason="tensorflow-cpu is in the test extra")
    labels, probs = _data(rows=6)
    metric = sm.create("acc")
    metric.update(labels[:2], probs[:2], sample_ids=pd.Series(["a", "b"]))
    metric.update(labels[2:4], probs[2:4], sample_ids=np.array(["b", "c"], dtype=object))
    metric.update(labels[4:], probs[4:], sample_ids=tf.constant(["c", "d"]))
    assert metric.num_inst == 4  # b and c came again
    keep = [0, 1, 3, 5]
    assert _bits(metric) == _bits(sm.create("acc").update(labels[keep], probs[keep]))


def test_ranks_compare_ids_of_one_dtype_whatever_held_them():
    """`streammetric.distributed` compares every rank's ids with ``np.isin``: ids of one kind
    from different containers are one canonical dtype, so a repeat is found."""
    pd = pytest.importorskip("pandas")
    from streammetric.distributed import _dropped_here

    labels, probs = _data(rows=3)
    low = sm.create("acc").update(labels, probs, sample_ids=pd.Series(["a", "b", "c"]))
    high = sm.create("acc").update(labels, probs, sample_ids=np.array([b"c", b"d", b"e"]))
    headers = [{"ids": m._id_rows.ids()} for m in (low, high)]
    assert {h["ids"].dtype.kind for h in headers} == {"U"}
    assert _dropped_here(headers, 1).tolist() == ["c"]
    ints = [
        sm.create("acc").update(labels, probs, sample_ids=ids)
        for ids in (np.array([1, 2, 3], np.int32), np.array([3, 4, 5], dtype=object))
    ]
    headers = [{"ids": m._id_rows.ids()} for m in ints]
    assert all(h["ids"].dtype == np.int64 for h in headers)
    assert _dropped_here(headers, 1).tolist() == [3]


def test_integer_ids_are_int64_and_bootstrap_keeps_uint64_beyond_it():
    from streammetric.functional.resample import hash_ids

    for ids in ([5, 6, 7], np.array([5, 6, 7], np.uint8), np.array([5, 6, 7], dtype=object)):
        converted = as_ids(ids, 3)
        assert converted.dtype == np.int64 and converted.tolist() == [5, 6, 7]
    big = np.array([1, 2**63 + 5, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(InvalidInputError, match="must fit in int64") as info:
        as_ids(big, 3)
    assert info.value.row == 1
    wide = as_ids(big, 3, beyond_int64=True)
    assert np.array_equal(hash_ids(wide, 9), hash_ids(big, 9))  # Bootstrap's hashes as before
    labels, probs = _data(rows=3)
    sm.Bootstrap(sm.create("acc"), replicates=5).update(labels, probs, sample_ids=big)


BAD_IDS = [
    # (ids, row, words in the message)
    ([1.5, 2.5, 3.5, 4.5, 5.5, 6.5], 0, "must be an integer or a string, got 1.5"),
    (["a", "b", 3, "d", "e", "f"], 2, "row 2 must be a string (str), as row 0 is, got 3"),
    (["a", "b", "c", None, "e", "f"], 3, "got None"),
    ([1, 2, 3, 4, "5", 6], 4, "must be an integer, as row 0 is, got '5'"),
    (np.array(["a", None, "c", "d", "e", "f"], dtype=object), 1, "got None"),
    (np.array(["a", b"b", "c", "d", "e", "f"], dtype=object), 1, "got b'b'"),
    ([b"a", b"b", b"\xff", b"d", b"e", b"f"], 2, "must be UTF-8 text when bytes"),
    (["a", "b", "c", "d\x00", "e", "f"], 3, "must not end with a NUL"),
    ([1, 2, 3, 2**64, 5, 6], 3, "must fit in int64"),
    ([[1, 2], [3], [4], [5], [6], [7]], 1, "row 1 must have 2 values, as row 0 has"),
]


@pytest.mark.parametrize(("ids", "row", "words"), BAD_IDS)
@pytest.mark.parametrize("target", ["metric", "bootstrap"])
def test_bad_ids_name_the_row_and_the_rule(target: str, ids: Any, row: int, words: str):
    labels, probs = _data(rows=6)
    metric: Any = sm.create("acc") if target == "metric" else sm.Bootstrap(sm.create("acc"))
    with pytest.raises(InvalidInputError) as info:
        metric.update(labels, probs, sample_ids=ids)
    error = info.value
    assert error.argument == "sample_ids" and error.row == row and error.rule, str(error)
    assert words in str(error) and str(error).startswith(f"`sample_ids` row {row} ")
    assert "\n" not in str(error)


def test_bad_id_containers_name_the_dtype_and_are_refused_alike():
    pd = pytest.importorskip("pandas")
    tf = pytest.importorskip("tensorflow", reason="tensorflow-cpu is in the test extra")
    labels, probs = _data(rows=3)
    cases = [
        (np.array([1.0, 2.0, 3.0]), "dtype float64"),
        (tf.constant([1.0, 2.0, 3.0]), "dtype float32"),
        (np.array([True, False, True]), "dtype bool"),
        (pd.Series(["a", None, "c"]), "row 1"),
        (np.ones((3, 1), dtype=np.int64), "shape (3, 1)"),
    ]
    for ids, words in cases:
        said = []
        for metric in (sm.create("acc"), sm.Bootstrap(sm.create("acc"))):
            with pytest.raises(InvalidInputError) as info:
                metric.update(labels, probs, sample_ids=ids)
            assert info.value.argument == "sample_ids" and words in str(info.value), info.value
            said.append(str(info.value))
        assert said[0] == said[1]  # one conversion: one message
    assert str(info.value).startswith("`sample_ids` must be one id per row")


# -- C. ragged lists -----------------------------------------------------------------------------

RAGGED = [
    # (preds, row, value, words)
    ([[0.1, 0.9], [0.5], [0.2, 0.8]], 1, 1, "`preds` row 1 must have 2 values, as row 0 has"),
    ([[0.1, 0.9], [0.5, 0.5], [0.2, 0.7, 0.1]], 2, 3, "row 2 must have 2 values"),
    ([[0.1, 0.9], [0.5, 0.5], 0.3], 2, 0.3, "row 2 must have 2 values, as row 0 has"),
    ([[[0.1], [0.9]], [[0.5], [0.5, 0.1]], [[0.2], [0.8]]], (1, 1), 2, "row (1, 1) must have 1"),
]


@pytest.mark.parametrize(("preds", "row", "value", "words"), RAGGED)
@pytest.mark.parametrize("metric", ["ce", "acc", "mae", ["ce", "acc"]], ids=str)
def test_ragged_preds_are_the_librarys_own_line(
    metric: Any, preds: list[Any], row: Any, value: Any, words: str
):
    labels = [0, 1, 1] if metric != "mae" else [0.5, 0.5, 0.5]
    with pytest.raises(InvalidInputError) as info:
        sm.create(metric).update(labels, preds)
    error = info.value
    assert (error.argument, error.row, error.value) == ("preds", row, value)
    assert "ragged" in error.rule and words in str(error), str(error)
    assert "\n" not in str(error) and "inhomogeneous" not in str(error)


def test_ragged_labels_and_the_functional_regressions():
    with pytest.raises(InvalidInputError, match=r"`labels` row 2 must have 1 value, as row 0"):
        sm.create("mae").update([[1.0], [2.0], [3.0, 4.0]], [1.0, 2.0, 3.0])
    from streammetric.functional import mean_absolute_error

    with pytest.raises(InvalidInputError) as info:
        mean_absolute_error([1.0, 2.0], [[1.0], [2.0, 3.0]])
    assert (info.value.argument, info.value.row, info.value.value) == ("preds", 1, 2)
    assert "inhomogeneous" not in str(info.value)
