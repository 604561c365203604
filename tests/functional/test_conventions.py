"""Conventions as data: golden vectors, seed figures, registry, user conventions, references."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import log_loss

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.conventions import (
    CONVENTIONS,
    Convention,
    get_convention,
    list_conventions,
    register_convention,
    unregister_convention,
)
from streammetric.functional.losses import binary_cross_entropy, cross_entropy, perplexity
from tests.conftest import golden_vectors

BUILTINS = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]
RTOL = {"float64": 1e-12, "float32": 2e-7}


@pytest.fixture
def registry_snapshot():
    before = list_conventions()
    yield
    for name in list_conventions():
        if name not in before:
            unregister_convention(name)


# --- golden vectors from the real frameworks ---------------------------------------------------


def _run_vector(vector: dict) -> np.ndarray:
    dtype = np.dtype(vector["dtype"])
    y_pred = np.asarray(vector["y_pred"], dtype=dtype)
    y_true = np.asarray(vector["y_true"])
    kwargs = dict(vector["kwargs"])
    call, convention = vector["call"], vector["convention"]
    if call == "cross_entropy":
        if y_true.ndim == y_pred.ndim:
            y_true = y_true.astype(dtype)
        kwargs.setdefault("reduction", "none")
        return np.asarray(cross_entropy(y_true, y_pred, convention=convention, **kwargs))
    if call == "binary_cross_entropy":
        kwargs.setdefault("reduction", "none")
        return np.asarray(
            binary_cross_entropy(y_true.astype(dtype), y_pred, convention=convention, **kwargs)
        )
    if call == "metric:ce":  # mx.metric.CrossEntropy().get(): mean of -log(p[y] + 1e-12)
        return np.asarray(cross_entropy(y_true, y_pred, convention=convention, **kwargs))
    if call == "metric:perplexity":
        return np.asarray(perplexity(y_true, y_pred, convention=convention, **kwargs))
    raise AssertionError(f"unknown call {call!r}")


@pytest.mark.parametrize("vector", golden_vectors(), ids=lambda v: v["id"])
def test_golden_vector(vector: dict) -> None:
    got = _run_vector(vector)
    expected = np.asarray(vector["expected"], dtype=np.float64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=RTOL[vector["dtype"]], atol=0)


def test_golden_file_covers_every_framework() -> None:
    assert {v["convention"] for v in golden_vectors()} == set(BUILTINS) - {"exact"}


# --- seed figures -----------------------------------------------------------------------------

F32 = np.float32
DOC_TRUE = [[0, 1, 0], [0, 0, 1]]
DOC_PRED = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
BCE_TRUE = [[0, 1], [0, 1]]
BCE_PRED = [[0.05, 0.95], [0.8, 0.2]]


def test_seed_keras_hard_miss_float64_mean() -> None:
    value = cross_entropy([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]], convention="keras")
    assert value == pytest.approx(8.059047875479163, rel=1e-12)
    sparse = cross_entropy([1, 0], [[0.0, 1.0], [0.0, 1.0]], convention="keras")
    assert sparse == pytest.approx(8.059047875479163, rel=1e-12)


def test_seed_tf_keras_binary_hard_miss() -> None:
    value = binary_cross_entropy([[1, 1, 1]], [[1.0, 1.0, 0.0]], convention="tf_keras")
    assert value == pytest.approx(5.141649490132791, rel=1e-12)


def test_seed_keras_categorical_doc_mean_float32() -> None:
    value = cross_entropy(np.array(DOC_TRUE, F32), np.array(DOC_PRED, F32), convention="keras")
    assert value == pytest.approx(1.1769392, rel=1e-7)


def test_seed_tf_keras_binary_doc_mean_float32() -> None:
    value = binary_cross_entropy(
        np.array(BCE_TRUE, F32), np.array(BCE_PRED, F32), convention="tf_keras"
    )
    assert value == pytest.approx(0.8303653, rel=1e-7)


def test_seed_keras_unnormalised_and_from_logits_float32() -> None:
    y_true, scores = np.array([[0, 1]], F32), np.array([[5.0, 7.0]], F32)
    assert cross_entropy(y_true, scores, convention="keras") == pytest.approx(0.5389965, rel=2e-7)
    logits = cross_entropy(y_true, scores, convention="keras", from_logits=True)
    assert logits == pytest.approx(0.12692805, rel=2e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_binary_from_logits_is_pytorchs_formula_exact_keeps_the_accurate_one(dtype) -> None:
    """PyTorch computes ``(1 - y) x - log_sigmoid(x)``: a confident right logit costs 0 there
    (``x = -30, y = 0``), where the softplus form (exact, keras) keeps 9.4e-14."""
    import torch

    x = np.array([-30.0, 25.0, -17.3, 40.0, -40.0, 36.5, 0.3, -2.0], dtype)
    for y in (np.array([0, 1, 0, 1, 0, 1, 1, 0], dtype), np.linspace(0, 1, 8).astype(dtype)):
        got = binary_cross_entropy(y, x, from_logits=True, convention="torch", reduction="none")
        want = torch.nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(x), torch.from_numpy(y), reduction="none"
        ).numpy()
        np.testing.assert_allclose(got, want, rtol=RTOL[np.dtype(dtype).name], atol=0)
        assert (got == 0).tolist() == (want == 0).tolist()
    exact = binary_cross_entropy(np.zeros(1, dtype), np.array([-30.0], dtype), from_logits=True)
    assert exact == pytest.approx(9.357622968839299e-14, rel=1e-6)


def test_torch_mean_over_zero_class_weight_with_label_smoothing_is_nan_as_pytorchs() -> None:
    import torch

    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], F32)
    y, w = np.array([2, 2]), np.array([1.0, 1.0, 0.0], F32)
    want = torch.nn.functional.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(y), weight=torch.from_numpy(w), label_smoothing=0.2
    )
    assert math.isnan(float(want))
    got = cross_entropy(
        y, x, from_logits=True, convention="torch", class_weight=w, label_smoothing=0.2
    )
    assert math.isnan(got)  # the smoothing term over a weight of 0 was inf


@pytest.mark.parametrize("convention", ["keras", "tf_keras"])
def test_keras_class_indices_with_label_smoothing_are_the_smoothed_one_hot_targets(convention):
    """Keras' sparse loss has no smoothing: its users smooth one-hot targets, renormalised
    before the clip (the sparse rule renormalises after it: 1.2304170 for this row)."""
    for dtype in (np.float32, np.float64):
        scores = np.array([[5.0, 7.0, 0.0], [0.2, 0.3, 0.5]], dtype)
        sparse = cross_entropy([1, 2], scores, convention=convention, label_smoothing=0.1)
        one_hot = np.eye(3, dtype=dtype)[[1, 2]]
        dense = cross_entropy(one_hot, scores, convention=convention, label_smoothing=0.1)
        assert sparse == pytest.approx(dense, rel=RTOL[np.dtype(dtype).name])
    keras_value = 1.0695157  # keras.losses.categorical_crossentropy([[0,1,0]], [[5,7,0]], 0.1)
    row = cross_entropy(
        [1], np.array([[5.0, 7.0, 0.0]], F32), convention="keras", label_smoothing=0.1
    )
    assert row == pytest.approx(keras_value, rel=2e-7)


def test_keras_float16_log_softmax_is_tensorflows_in_float32_rounded_to_float16() -> None:
    """TensorFlow's (sparse_)softmax_cross_entropy_with_logits widens float16 to float32 and
    rounds the loss back: Keras 3.15 (TF 2.21) gives these bits (in float16 it was 0.0019512
    for the first logits row, and -0.0 for the first probabilities row)."""
    f16 = np.float16
    logits = np.array([[8.0, 1.0, 0.5, -2.0], [0.1, 0.2, 0.3, -0.4]], f16)
    keras_logits = [0.0015096664428710938, 1.869140625]
    for y_true in ([0, 3], np.eye(4, dtype=f16)[[0, 3]]):
        got = cross_entropy(y_true, logits, from_logits=True, convention="keras", reduction="none")
        assert got.tolist() == keras_logits
    probs = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], f16)
    got = cross_entropy([0, 1], probs, convention="keras", reduction="none")
    assert got.tolist() == [2.384185791015625e-07, 1.2041015625]


def test_seed_keras_binary_from_logits_float32() -> None:
    values = binary_cross_entropy(
        np.array([[0.0], [1.0]], F32),
        np.array([[0.2], [0.7]], F32),
        from_logits=True,
        convention="keras",
        reduction="none",
    )
    np.testing.assert_allclose(values, [0.79813886, 0.40318602], rtol=2e-7)


def test_seed_mxnet_cross_entropy_metric_float32() -> None:
    preds = np.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]], F32)
    value = cross_entropy(np.array([0, 1, 1]), preds, convention="mxnet")
    assert value == pytest.approx(0.5715994834899902, rel=2e-7)


_AGREEMENT = """
import json, os
import numpy as np
import keras
from streammetric.functional.losses import cross_entropy
rng = np.random.default_rng(3)
out = {}
for k, alpha in ((10, 1.0), (10, 0.1), (5, 1.0), (16, 0.3), (100, 1.0)):
    probs = rng.dirichlet(np.full(k, alpha), 4000).astype(np.float32)
    labels = rng.integers(0, k, 4000)
    theirs = np.asarray(keras.losses.sparse_categorical_crossentropy(labels, probs), np.float64)
    ours = cross_entropy(labels, probs, convention="keras", reduction="none")
    out[f"{k} {alpha}"] = [
        float(np.mean(ours == theirs)),
        float(np.max(np.abs(ours - theirs))),
        float(abs(ours.mean() - theirs.mean()) / theirs.mean()),
    ]
print(json.dumps(out))
"""


def test_keras_class_indices_agree_with_keras_on_tensorflow() -> None:
    """The keras rule for class indices (renormalised after the guard: TF's log-softmax of the
    clipped logs) against Keras 3 on TensorFlow itself, on random rows: most rows bit-identical
    (the rest 1-2 float32 ulps apart: TF's own log, exp and order of summation), means to 1e-8.
    In a fresh interpreter: Keras picks its backend once, at import."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", _AGREEMENT], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for case, (identical, largest, means) in json.loads(run.stdout.splitlines()[-1]).items():
        assert identical > 0.6, case  # 73-89% here
        assert largest < 4e-6, case
        assert means < 1e-8, case


def test_keras_sparse_renormalises_after_clipping() -> None:
    scores = np.array([[5.0, 7.0]], F32)
    sparse = cross_entropy([1], scores, convention="keras")
    dense = cross_entropy(np.array([[0, 1]], F32), scores, convention="keras")
    assert sparse == pytest.approx(0.6931472, rel=2e-7)
    assert dense == pytest.approx(0.5389965, rel=2e-7)


# --- registry ------------------------------------------------------------------------------------


def test_builtins_are_registered_in_order() -> None:
    assert list_conventions()[:6] == BUILTINS
    assert all(CONVENTIONS[name].name == name for name in BUILTINS)
    with pytest.raises(TypeError):
        CONVENTIONS["mine"] = CONVENTIONS["exact"]  # type: ignore[index]


@pytest.mark.parametrize(
    "alias, name",
    [
        ("pytorch", "torch"),
        ("scikit-learn", "sklearn"),
        ("tf.keras", "tf_keras"),
        ("Keras", "keras"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert get_convention(alias) is CONVENTIONS[name]


def test_unknown_convention_names_the_name_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_convention("tensorflow2")
    assert str(info.value) == (
        "unknown convention 'tensorflow2'; known conventions: " + ", ".join(list_conventions())
    )
    with pytest.raises(ConfigError, match="must be a name or a Convention, got int 3"):
        get_convention(3)  # type: ignore[arg-type]


def test_conventions_are_frozen_and_validated() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONVENTIONS["keras"].eps = 1e-3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="`guard` of convention 'x' must be one of none, clip"):
        Convention(name="x", description="", guard="clamp")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"`eps` of convention 'x' must be in \[0, 0.5\), got 0.7"
    ):
        Convention(name="x", description="", eps=0.7)
    with pytest.raises(ConfigError, match="`renormalize_sparse` of convention 'x' must be one of"):
        Convention(name="x", description="", renormalize_sparse="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`log_floor` of convention 'x' must be finite and <= 0"):
        Convention(name="x", description="", log_floor=5.0)


def test_register_and_unregister(registry_snapshot) -> None:
    mine = Convention(name="mine", description="clip at 1e-4", eps=1e-4, guard="clip")
    assert register_convention(mine) is mine
    assert get_convention("mine") is mine and "mine" in CONVENTIONS
    with pytest.raises(ConfigError, match="convention 'mine' is already registered"):
        register_convention(mine)
    register_convention(mine.replace(eps=1e-3), replace=True)
    assert get_convention("mine").eps == 1e-3
    with pytest.raises(ConfigError, match="convention 'keras' is built in and cannot be replaced"):
        register_convention(CONVENTIONS["keras"].replace(eps=1e-3), replace=True)
    unregister_convention("mine")
    assert "mine" not in CONVENTIONS
    with pytest.raises(ConfigError, match="'exact' is built in and cannot be removed"):
        unregister_convention("exact")


def test_builtin_rules_are_the_documented_facts() -> None:
    keras, tf_keras, torch = CONVENTIONS["keras"], CONVENTIONS["tf_keras"], CONVENTIONS["torch"]
    mxnet, sklearn = CONVENTIONS["mxnet"], CONVENTIONS["sklearn"]
    assert (keras.eps, keras.guard, keras.binary_guard) == (1e-7, "clip", "clip")
    assert (keras.renormalize_dense, keras.renormalize_sparse) == ("before", "after")
    assert tf_keras.binary_guard == "clip_add" and tf_keras.guard == "clip"
    assert (torch.guard, torch.binary_guard, torch.log_floor) == ("none", "log_clamp", -100.0)
    assert (mxnet.eps, mxnet.guard, mxnet.perplexity_guard, mxnet.perplexity_eps) == (
        1e-12,
        "add",
        "floor",
        1e-10,
    )
    assert (sklearn.eps, sklearn.guard, sklearn.out_of_range) == ("machine", "clip", "invalid")
    assert CONVENTIONS["exact"].dtype == "float64"
    assert all(CONVENTIONS[name].dtype == "input" for name in BUILTINS[1:])


def test_compute_dtype_and_eps() -> None:
    keras, exact = CONVENTIONS["keras"], CONVENTIONS["exact"]
    assert keras.compute_dtype(np.float32) == np.float32
    assert keras.compute_dtype(np.int64) == np.float64
    assert exact.compute_dtype(np.float32) == np.float64
    assert float(keras.eps_for(np.float32)) == 1.0000000116860974e-07
    assert float(1 - keras.eps_for(np.float32)) == 1 - 2.0**-23
    assert float(CONVENTIONS["sklearn"].eps_for(np.float32)) == float(np.finfo(np.float32).eps)
    assert float(CONVENTIONS["mxnet"].eps_for(np.float64, kind="perplexity")) == 1e-10


# --- "the same wrong prediction, per convention" (CONVENTIONS.md) -------------------------------


@pytest.mark.parametrize(
    "convention, dtype, binary, expected, rel",
    [
        ("exact", np.float64, False, math.inf, 0),
        ("keras", np.float32, False, 16.118095, 1e-7),
        ("keras", np.float64, False, 16.11809565, 1e-9),
        ("tf_keras", np.float32, True, 15.424949, 1e-7),
        ("torch", np.float32, True, 100.0, 0),
        ("torch", np.float32, False, math.inf, 0),
        ("mxnet", np.float32, False, 27.631021, 1e-7),
        ("sklearn", np.float64, False, 36.043653, 1e-7),
        ("sklearn", np.float32, False, 15.942385, 1e-7),
    ],
)
def test_hard_miss_table(convention, dtype, binary, expected, rel) -> None:
    if binary:
        value = binary_cross_entropy([1.0], np.array([0.0], dtype), convention=convention)
    else:
        value = cross_entropy([0], np.array([[0.0, 1.0]], dtype), convention=convention)
    assert value == pytest.approx(expected, rel=rel)


def test_mxnet_perplexity_term_of_a_hard_miss() -> None:
    value = perplexity([0], np.array([[0.0, 1.0]], np.float32), convention="mxnet")
    assert math.log(value) == pytest.approx(23.025851, rel=1e-7)


# --- sklearn against scikit-learn itself ---------------------------------------------------------


def _random_probabilities(rng, rows, classes, dtype):
    probs = rng.dirichlet([0.3] * classes, rows)
    probs[:3] = np.eye(classes)[rng.integers(0, classes, 3)]  # exact 0s and 1s
    probs[3, :] = 0
    probs[3, 0] = 1.0 - 1e-20  # rounds to 1 in float64 and float32
    return probs.astype(dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sklearn_convention_matches_log_loss(dtype, rtol, seed) -> None:
    rng = np.random.default_rng(seed)
    probs = _random_probabilities(rng, 300, 4, dtype)
    labels = rng.integers(0, 4, 300)
    weights = rng.uniform(0.1, 3.0, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = log_loss(labels, probs, labels=range(4), sample_weight=weights)
    got = cross_entropy(labels, probs, convention="sklearn", sample_weight=weights)
    assert got == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-7)])
def test_sklearn_convention_matches_log_loss_per_sample(dtype, rtol) -> None:
    rng = np.random.default_rng(5)
    probs = _random_probabilities(rng, 40, 3, dtype)
    labels = rng.integers(0, 3, 40)
    per_sample = cross_entropy(labels, probs, convention="sklearn", reduction="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = [
            log_loss([y], p[None], labels=range(3)) for y, p in zip(labels, probs, strict=True)
        ]
    np.testing.assert_allclose(per_sample, expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-7)])
def test_sklearn_binary_convention_matches_log_loss(dtype, rtol) -> None:
    rng = np.random.default_rng(6)
    extremes = [0.0, 1.0, 1e-30, 1e-17, 1e-8, 1 - 1e-8, 1 - 2**-53, 0.5]
    probs = np.concatenate([rng.uniform(0, 1, 40), extremes]).astype(dtype)
    labels = rng.integers(0, 2, len(probs))
    per_sample = binary_cross_entropy(
        labels.astype(dtype), probs, convention="sklearn", reduction="none"
    )
    expected = [log_loss([y], probs[i : i + 1], labels=[0, 1]) for i, y in enumerate(labels)]
    np.testing.assert_allclose(per_sample, expected, rtol=rtol, atol=0)


def test_sklearn_rejects_what_log_loss_rejects() -> None:
    for bad in ([[1.2, -0.2]], [[np.nan, 1.0]]):
        with pytest.raises(ValueError):
            log_loss([0], bad, labels=[0, 1])
        with pytest.raises(InvalidInputError, match="under convention 'sklearn'"):
            cross_entropy([0], bad, convention="sklearn")


# --- user-defined conventions ---------------------------------------------------------------------


def test_user_convention_clip_float32_renormalise_never() -> None:
    mine = Convention(
        name="clip4", description="clip at 1e-4, float32", eps=1e-4, guard="clip", dtype="float32"
    )
    probs = np.array([[0.0, 1.0], [0.3, 0.9]])
    values = cross_entropy([0, 1], probs, convention=mine, reduction="none")
    eps = np.float32(1e-4)
    expected = -np.log(np.clip(probs.astype(np.float32), eps, 1 - eps))[[0, 1], [0, 1]]
    np.testing.assert_array_equal(values, expected.astype(np.float64))


def test_user_convention_renormalise_before_versus_after() -> None:
    before = Convention(
        name="b", description="", eps=1e-3, guard="clip", renormalize_sparse="before"
    )
    after = before.replace(name="a", renormalize_sparse="after")
    scores = np.array([[0.0, 2.0, 2.0]])
    assert cross_entropy([0], scores, convention=before) == pytest.approx(-math.log(1e-3))
    expected_after = -(math.log(1e-3) - math.log(1e-3 + 2 * (1 - 1e-3)))
    assert cross_entropy([0], scores, convention=after) == pytest.approx(expected_after)


@pytest.mark.parametrize(
    "guard, expected",
    [
        ("floor", -math.log(0.01)),
        ("add", -math.log(0.01)),
        ("clip_add", -math.log(0.02)),
        ("log_clamp", 3.0),
        ("none", math.inf),
    ],
)
def test_user_convention_guards(guard: str, expected: float) -> None:
    mine = Convention(name="g", description="", eps=0.01, guard=guard, log_floor=-3.0)  # type: ignore[arg-type]
    assert cross_entropy([0], [[0.0, 1.0]], convention=mine) == pytest.approx(expected)


def test_user_convention_by_name_after_registering(registry_snapshot) -> None:
    floor = Convention(
        name="floor_1e-3", description="", eps=1e-3, guard="floor", binary_guard="floor"
    )
    register_convention(floor)
    value = binary_cross_entropy([1.0], [0.0], convention="floor_1e-3")
    assert value == pytest.approx(-math.log(1e-3))
