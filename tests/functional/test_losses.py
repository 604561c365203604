"""Cross-entropy functional core: exact properties, reductions, weights, errors, diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import log_expit, logsumexp, softmax, xlog1py, xlogy

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.conventions import Convention, list_conventions
from streammetric.functional.losses import (
    DIAGNOSTIC_KEYS,
    LossTerms,
    _binary_cross_entropy_update,
    _cross_entropy_update,
    _perplexity_update,
    binary_cross_entropy,
    cross_entropy,
    perplexity,
)

BUILTINS = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]
F32 = np.float32


# --- exact: properties (hypothesis) -------------------------------------------------------------


@st.composite
def logit_batches(draw: st.DrawFn, bound: float = 1e4) -> tuple[np.ndarray, np.ndarray]:
    rows = draw(st.integers(1, 8))
    classes = draw(st.integers(1, 6))
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False)
    logits = draw(hnp.arrays(np.float64, (rows, classes), elements=elements))
    labels = draw(hnp.arrays(np.int64, (rows,), elements=st.integers(0, classes - 1)))
    return labels, logits


@settings(max_examples=200, deadline=None)
@given(logit_batches())
def test_exact_from_logits_is_stable_and_matches_logsumexp(batch: tuple) -> None:
    labels, logits = batch
    values = cross_entropy(labels, logits, from_logits=True, reduction="none")
    reference = logsumexp(logits, axis=-1) - logits[np.arange(len(labels)), labels]
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    atol = 8 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(logits))))
    np.testing.assert_allclose(values, reference, rtol=1e-12, atol=atol)


@settings(max_examples=200, deadline=None)
@given(logit_batches(bound=30.0))
def test_from_logits_agrees_with_softmax_probabilities(batch: tuple) -> None:
    labels, logits = batch
    from_logits = cross_entropy(labels, logits, from_logits=True, reduction="none")
    from_probs = cross_entropy(labels, softmax(logits, axis=-1), reduction="none")
    np.testing.assert_allclose(from_probs, from_logits, rtol=1e-9, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e4, 1e4)),
    st.data(),
)
def test_exact_binary_from_logits_matches_log_expit(
    logits: np.ndarray, data: st.DataObject
) -> None:
    targets = data.draw(hnp.arrays(np.float64, logits.shape, elements=st.floats(0, 1)))
    values = binary_cross_entropy(targets, logits, from_logits=True, reduction="none")
    reference = -(targets * log_expit(logits) + (1 - targets) * log_expit(-logits))
    assert np.all(np.isfinite(values)) and np.all(values >= -1e-12)
    atol = 8 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(logits))))
    np.testing.assert_allclose(values, reference, rtol=1e-12, atol=atol)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(0, 1)),
    st.data(),
)
def test_exact_binary_from_probabilities_matches_xlogy(
    probs: np.ndarray, data: st.DataObject
) -> None:
    targets = data.draw(hnp.arrays(np.float64, probs.shape, elements=st.sampled_from([0.0, 1.0])))
    values = binary_cross_entropy(targets, probs, reduction="none")
    np.testing.assert_allclose(
        values, -(xlogy(targets, probs) + xlog1py(1 - targets, -probs)), rtol=1e-14
    )


@settings(max_examples=100, deadline=None)
@given(
    convention=st.sampled_from(BUILTINS),
    dtype=st.sampled_from([np.float32, np.float64]),
    from_logits=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**32 - 1),
    split=st.integers(0, 12),
)
def test_per_sample_values_do_not_depend_on_chunking(
    convention: str, dtype: type, from_logits: bool, smoothing: float, seed: int, split: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 3, (12, 4)) if from_logits else rng.dirichlet([0.3] * 4, 12)
    scores = scores.astype(dtype)
    labels = rng.integers(0, 4, 12)
    kwargs = {"convention": convention, "from_logits": from_logits, "reduction": "none"}
    whole = cross_entropy(labels, scores, label_smoothing=smoothing, **kwargs)
    parts = [
        cross_entropy(labels[:split], scores[:split], label_smoothing=smoothing, **kwargs),
        cross_entropy(labels[split:], scores[split:], label_smoothing=smoothing, **kwargs),
    ]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    binary_scores = scores[:, :2] if from_logits else scores[:, :2] / 1.5
    targets = (labels[:, None] > np.array([1, 2])).astype(dtype)
    whole = binary_cross_entropy(targets, binary_scores, **kwargs)
    parts = [
        binary_cross_entropy(targets[:split], binary_scores[:split], **kwargs),
        binary_cross_entropy(targets[split:], binary_scores[split:], **kwargs),
    ]
    np.testing.assert_array_equal(whole, np.concatenate(parts))


def test_exact_sparse_and_one_hot_agree_bitwise() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([0.5] * 5, 50)
    labels = rng.integers(0, 5, 50)
    dense = cross_entropy(np.eye(5)[labels], probs, reduction="none")
    np.testing.assert_array_equal(cross_entropy(labels, probs, reduction="none"), dense)


def test_exact_true_class_probability_zero_gives_inf() -> None:
    assert cross_entropy([0], [[0.0, 1.0]]) == math.inf
    assert binary_cross_entropy([1.0], [0.0]) == math.inf
    assert binary_cross_entropy([0.0], [0.0]) == 0.0


# --- framework dtypes ----------------------------------------------------------------------------


def test_keras_float32_arithmetic_matches_a_float32_formula_bitwise() -> None:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([0.4] * 3, 40).astype(F32)
    targets = np.eye(3, dtype=F32)[rng.integers(0, 3, 40)]
    eps = F32(1e-7)
    renormalised = probs / probs.sum(axis=-1, keepdims=True)
    expected = -np.sum(targets * np.log(np.clip(renormalised, eps, 1 - eps)), axis=-1)
    got = cross_entropy(targets, probs, convention="keras", reduction="none")
    assert expected.dtype == F32 and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected.astype(np.float64))


def test_keras_class_index_rule_is_a_float32_formula_bitwise() -> None:
    """Keras' rule for class indices, TF's log-softmax of the clipped logs, as the ratios to the
    row's largest value, added as a tree of vector lanes does: the row padded to a power of two,
    halved until one value is left ([a, b, c] -> (a + c) + b), not from left to right."""
    from streammetric.functional._ce_core import halving_sum

    tiny = F32(2.0**-24)
    row = np.array([[tiny, 1, tiny]], F32)
    assert halving_sum(row)[0] == 1 + 2 * tiny != np.sum(row, axis=-1)[0]
    rng = np.random.default_rng(4)
    for k in (3, 10, 37):
        probs = rng.dirichlet([0.3] * k, 50).astype(F32)
        labels = rng.integers(0, k, 50)
        g = np.clip(probs, F32(1e-7), F32(1 - 1e-7))
        top = g.max(axis=-1)
        expected = np.log(halving_sum(g / top[:, None])) - (
            np.log(g[np.arange(50), labels]) - np.log(top)
        )
        got = cross_entropy(labels, probs, convention="keras", reduction="none")
        assert expected.dtype == F32
        np.testing.assert_array_equal(got, expected.astype(np.float64))


def test_exact_computes_float32_input_in_float64() -> None:
    probs = np.array([[0.3, 0.7]], F32)
    assert cross_entropy([1], probs) == -math.log(float(probs[0, 1]))


def test_torch_binary_clamps_logs_at_minus_100() -> None:
    rng = np.random.default_rng(2)
    probs = np.concatenate([rng.uniform(0, 1, 30), [0.0, 1.0, 1e-50, 1 - 1e-17]])
    targets = rng.integers(0, 2, len(probs)).astype(float)
    with np.errstate(divide="ignore"):
        log_pos, log_neg = np.log(probs), np.log1p(-probs)
    expected = (targets - 1) * np.maximum(log_neg, -100) - targets * np.maximum(log_pos, -100)
    got = binary_cross_entropy(targets, probs, convention="torch", reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_mxnet_adds_its_epsilon_so_p_above_one_gives_a_negative_loss() -> None:
    assert cross_entropy([0], [[1.5, 0.0]], convention="mxnet") == pytest.approx(-math.log(1.5))
    assert cross_entropy([0], [[0.0, 1.0]], convention="mxnet") == pytest.approx(27.631021115928547)


# --- reductions, weights, ignore_index, label smoothing, axis ---------------------------------------

LOGITS = np.array([[2, 1, 0.1], [0.5, 2.5, 0.3], [1, 1, 1], [0.2, -1, 3]])
LABELS = np.array([0, 1, 2, 1])


def test_reductions() -> None:
    per_sample = cross_entropy(LABELS, LOGITS, from_logits=True, reduction="none")
    weights = np.array([1.0, 2.0, 0.5, 3.0])
    kwargs = {"from_logits": True, "sample_weight": weights}
    assert cross_entropy(LABELS, LOGITS, reduction="sum", **kwargs) == pytest.approx(
        np.sum(weights * per_sample), rel=1e-15
    )
    assert cross_entropy(LABELS, LOGITS, reduction="mean", **kwargs) == pytest.approx(
        np.average(per_sample, weights=weights), rel=1e-15
    )
    assert cross_entropy(LABELS, LOGITS, reduction="sum_over_batch_size", **kwargs) == (
        pytest.approx(np.sum(weights * per_sample) / 4, rel=1e-15)
    )
    np.testing.assert_array_equal(
        cross_entropy(LABELS, LOGITS, reduction="none", **kwargs), weights * per_sample
    )


def _torch_reference(labels, logits, weight, smoothing, ignore):
    """PyTorch's cross_entropy(..., weight, label_smoothing, ignore_index, 'mean') in numpy."""
    log_probs = logits - logsumexp(logits, axis=-1, keepdims=True)
    keep = labels != ignore
    safe = np.where(keep, labels, 0)
    nll = -log_probs[np.arange(len(labels)), safe] * weight[safe]
    smooth = -(log_probs * weight).sum(axis=-1)
    total = (1 - smoothing) * nll[keep].sum() + smoothing / logits.shape[1] * smooth[keep].sum()
    return total / weight[safe][keep].sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore", [None, 1])
def test_class_weight_mean_divides_by_the_target_weights(smoothing, ignore) -> None:
    weight = np.array([1.0, 2.0, 3.0])
    value = cross_entropy(
        LABELS,
        LOGITS,
        from_logits=True,
        class_weight=weight,
        label_smoothing=smoothing,
        ignore_index=ignore,
        convention="torch",
    )
    assert value == pytest.approx(_torch_reference(LABELS, LOGITS, weight, smoothing, ignore))


def test_ignore_index_rows_are_zero_and_excluded() -> None:
    labels = np.array([0, -100, 2, -100])
    values = cross_entropy(labels, LOGITS, from_logits=True, ignore_index=-100, reduction="none")
    assert values[1] == 0 and values[3] == 0
    mean = cross_entropy(labels, LOGITS, from_logits=True, ignore_index=-100)
    assert mean == pytest.approx((values[0] + values[2]) / 2)
    per_batch = cross_entropy(
        labels, LOGITS, from_logits=True, ignore_index=-100, reduction="sum_over_batch_size"
    )
    assert per_batch == pytest.approx(mean)
    all_ignored = cross_entropy([-100, -100], LOGITS[:2], from_logits=True, ignore_index=-100)
    assert math.isnan(all_ignored)  # PyTorch's mean: 0 / 0
    keras_mean = cross_entropy(
        [-100, -100],
        LOGITS[:2],
        from_logits=True,
        ignore_index=-100,
        reduction="sum_over_batch_size",
    )
    assert keras_mean == 0.0  # Keras' divide_no_nan (SparseCategoricalCrossentropy(ignore_class))


def test_label_smoothing_sparse_equals_dense_smoothed_targets() -> None:
    dense_targets = np.eye(3)[LABELS] * 0.9 + 0.1 / 3
    dense = cross_entropy(dense_targets, LOGITS, from_logits=True, reduction="none")
    sparse = cross_entropy(LABELS, LOGITS, from_logits=True, label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(sparse, dense, rtol=1e-14)


def test_class_axis_can_be_moved() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 3, 5))  # (batch, classes, positions), torch layout
    labels = rng.integers(0, 3, (2, 5))
    values = cross_entropy(labels, logits, from_logits=True, axis=1, reduction="none")
    moved = np.moveaxis(logits, 1, -1)
    assert values.shape == (2, 5)
    expected = logsumexp(moved, axis=-1) - np.take_along_axis(moved, labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(values, expected, rtol=1e-14)


def test_binary_per_sample_value_is_the_mean_over_the_last_axis() -> None:
    targets = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.8]])
    per_element = -(xlogy(targets, probs) + xlog1py(1 - targets, -probs))
    values = binary_cross_entropy(targets, probs, reduction="none")
    np.testing.assert_allclose(values, per_element.mean(axis=-1), rtol=1e-15)


def test_binary_pos_weight_multiplies_the_positive_term() -> None:
    targets, probs = np.array([1.0, 0.0]), np.array([0.25, 0.25])
    values = binary_cross_entropy(targets, probs, pos_weight=3.0, reduction="none")
    np.testing.assert_allclose(values, [-3 * math.log(0.25), -math.log(0.75)], rtol=1e-15)


def test_perplexity_mxnet_floor_and_ignore() -> None:
    preds = np.array([[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]], F32)
    assert perplexity([0, 1, 1], preds, convention="mxnet") == pytest.approx(1.7710976285155853)
    hard = perplexity([0], np.array([[0.0, 1.0]]), convention="mxnet")
    assert hard == pytest.approx(1e10)  # -log(max(1e-10, 0)) = 23.025851
    ignored = perplexity([0, 1, 1], preds, convention="mxnet", ignore_index=1)
    assert ignored == pytest.approx(1 / 0.3, rel=1e-6)
    assert perplexity([1], [[0.5, 0.5]]) == pytest.approx(2.0)


def test_inputs_with_asnumpy_or_numpy_methods() -> None:
    class FakeNDArray:
        def __init__(self, data):
            self.data = np.asarray(data)

        def asnumpy(self):
            return self.data

    value = cross_entropy(FakeNDArray([1]), FakeNDArray([[0.5, 0.5]]))
    assert value == pytest.approx(math.log(2))


# --- update helpers and diagnostics -----------------------------------------------------------------


def test_loss_terms_interface() -> None:
    terms = _cross_entropy_update(
        [0, 1, 5], np.array([[0.5, 0.5], [0.2, 0.8], [0.5, 0.5]]), class_weight=[1.0, 3.0]
    )
    assert isinstance(terms, LossTerms)
    assert terms.numerator.dtype == np.float64 and terms.denominator.dtype == np.float64
    np.testing.assert_array_equal(terms.invalid, [False, False, True])
    np.testing.assert_allclose(terms.numerator, [math.log(2), -3 * math.log(0.8), 0.0])
    np.testing.assert_array_equal(terms.denominator, [1.0, 3.0, 0.0])
    assert str(terms.invalid_reason) == "`labels` row 2 must be a class index in [0, 2), got 5"
    assert (terms.invalid_reason.argument, terms.invalid_reason.row) == ("labels", 2)
    assert tuple(terms.diagnostics) == DIAGNOSTIC_KEYS
    assert terms.diagnostics["num_invalid"] == 1
    assert all(type(count) is int for count in terms.diagnostics.values())


def test_diagnostics_counts() -> None:
    probs = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.55], [-1.0, 2.0], [np.nan, 0.5], [0.3, 0.7]])
    labels = [1, 1, 0, 0, 0, -1]
    terms = _cross_entropy_update(labels, probs, convention="keras", ignore_index=-1)
    assert terms.diagnostics == {
        "num_true_prob_zero": 1,
        "num_true_prob_one": 1,
        "num_guarded": 6,  # rows 0, 1, 3: both values clipped, all enter the log-softmax
        "num_not_normalized": 1,
        "num_out_of_range": 2,
        "num_nonfinite": 1,
        "num_looks_like_logits": 1,
        "num_ignored": 1,
        "num_invalid": 0,
    }
    exact = _cross_entropy_update(labels, probs, ignore_index=-1)
    assert exact.diagnostics["num_invalid"] == 2 and exact.diagnostics["num_guarded"] == 0
    assert str(exact.invalid_reason) == (
        "`preds` row 3 must hold probabilities in [0, 1] under convention 'exact', got -1.0"
    )


def test_binary_diagnostics_and_perplexity_terms() -> None:
    terms = _binary_cross_entropy_update([1.0, 0.0, 1.0], [0.0, 0.0, 0.7], convention="torch")
    assert terms.diagnostics["num_true_prob_zero"] == 1
    assert terms.diagnostics["num_true_prob_one"] == 1
    assert terms.diagnostics["num_guarded"] == 1
    np.testing.assert_allclose(terms.numerator, [100.0, 0.0, -math.log(0.7)])
    perplexity_terms = _perplexity_update([0], [[0.0, 1.0]], convention="mxnet")
    assert perplexity_terms.numerator[0] == pytest.approx(23.025850929940457)


# --- bad input -----------------------------------------------------------------------------------

BAD_INPUTS = [
    (
        lambda: cross_entropy([0, 1], [[0.5, 0.5]] * 3),
        InvalidInputError,
        "`labels` and `preds` must have the same number of rows, got 2 and 3",
    ),
    (
        lambda: cross_entropy([0], [0.5, 0.5]),
        InvalidInputError,
        "`preds` must have a class axis (at least 2 dimensions), got shape (2,)",
    ),
    (
        lambda: cross_entropy([[0, 1, 0]], [[0.5, 0.5]]),
        InvalidInputError,
        "`labels` must have shape (1,) (class indices) or (1, 2) (one-hot/soft targets)",
    ),
    (
        lambda: cross_entropy([1.5], [[0.5, 0.5]]),
        InvalidInputError,
        "`labels` row 0 must be a class index in [0, 2), got 1.5",
    ),
    (
        lambda: cross_entropy([0], [[1.5, 0.5]]),
        InvalidInputError,
        "`preds` row 0 must hold probabilities in [0, 1] under convention 'exact', got 1.5",
    ),
    (
        lambda: cross_entropy([0, 0], [[0.5, 0.5], [np.nan, 0.5]], convention="sklearn"),
        InvalidInputError,
        "`preds` row 1 must hold probabilities in [0, 1] under convention 'sklearn', got nan",
    ),
    (
        lambda: cross_entropy([0], [[np.inf, 0.5]], from_logits=True),
        InvalidInputError,
        "`preds` row 0 must hold finite logits under convention 'exact', got inf",
    ),
    (
        lambda: binary_cross_entropy([1.0], [1.2], convention="torch"),
        InvalidInputError,
        "`preds` row 0 must hold probabilities in [0, 1] under convention 'torch', got 1.2",
    ),
    (
        lambda: binary_cross_entropy([2.0], [0.5], convention="keras"),
        InvalidInputError,
        "`labels` row 0 must hold binary targets in [0, 1], got 2.0",
    ),
    (
        lambda: cross_entropy([[1.2, 0.0]], [[0.5, 0.5]]),
        InvalidInputError,
        "`labels` row 0 must hold target probabilities in [0, 1], got 1.2",
    ),
    (
        lambda: cross_entropy([0], [[0.5, 0.5]], reduction="avg"),
        ConfigError,
        "`reduction` must be one of none, sum, mean, sum_over_batch_size, got 'avg'",
    ),
    (
        lambda: cross_entropy([0], [[0.5, 0.5]], label_smoothing=1.5),
        ConfigError,
        "`label_smoothing` must be in [0, 1], got 1.5",
    ),
    (
        lambda: cross_entropy([0], [[0.5, 0.5]], class_weight=[1.0]),
        InvalidInputError,
        "`class_weight` must have one entry per class (2), got shape (1,)",
    ),
    (
        lambda: cross_entropy([0], [[0.5, 0.5]], class_weight=[1.0, -2.0]),
        InvalidInputError,
        "`class_weight` must be finite and >= 0, got -2.0",
    ),
    (
        lambda: cross_entropy([[0.0, 1.0]], [[0.5, 0.5]], ignore_index=-100),
        ConfigError,
        "`ignore_index` applies to class-index targets only",
    ),
    (
        lambda: cross_entropy([0, 1], [[0.5, 0.5]] * 2, sample_weight=[1.0]),
        InvalidInputError,
        "`sample_weight` must have shape (2,) or (2,), got (1,)",
    ),
    (
        lambda: cross_entropy([0, 1], [[0.5, 0.5]] * 2, sample_weight=[1.0, np.nan]),
        InvalidInputError,
        "`sample_weight` row 1 must be finite, got nan",
    ),
    (
        lambda: cross_entropy([0], [[0.5, 0.5]], axis=2),
        ConfigError,
        "`axis` must be in [-2, 1] for `preds` of shape (1, 2), got 2",
    ),
    (
        lambda: cross_entropy(["a"], [[0.5, 0.5]]),
        InvalidInputError,
        "`labels` must be numeric, got dtype <U1",
    ),
    (
        lambda: cross_entropy([0], [[0.5, 0.5]], convention="kears"),
        ConfigError,
        "unknown convention 'kears'; known conventions: exact, keras, tf_keras, torch, mxnet",
    ),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS, ids=[m for *_, m in BAD_INPUTS])
def test_bad_input_is_named_in_one_line(call, error, message) -> None:
    with pytest.raises(error) as info:
        call()
    text = str(info.value)
    assert message in text
    assert "\n" not in text and "{" not in text  # one line, every f-string formatted


@pytest.mark.parametrize("convention", BUILTINS)
def test_labels_out_of_range_are_invalid_under_every_convention(convention: str) -> None:
    with pytest.raises(InvalidInputError, match=r"`labels` row 1 must be a class index .*got 3"):
        cross_entropy([0, 3], [[0.2, 0.3, 0.5]] * 2, convention=convention)
    with pytest.raises(InvalidInputError, match=r"`labels` row 0 must be a class index .*got -1"):
        cross_entropy([-1], [[0.2, 0.3, 0.5]], convention=convention, from_logits=True)


@pytest.mark.parametrize("convention", list_conventions()[:6])
def test_empty_batch(convention: str) -> None:
    assert math.isnan(cross_entropy(np.zeros(0, int), np.zeros((0, 3)), convention=convention))
    assert cross_entropy(np.zeros(0, int), np.zeros((0, 3)), reduction="sum") == 0.0


# --- the fast path for clean class-index batches gives the general path's bits -------------------


def _fast_and_general(labels, probs, convention, **options):
    from streammetric.conventions import get_convention
    from streammetric.functional.losses import _fast_sparse_terms, _general_terms

    conv = get_convention(convention)
    fast = _fast_sparse_terms(
        labels,
        probs,
        conv,
        options.get("class_weight"),
        None,
        -1,
        options.get("kind", "categorical"),
    )
    general = _general_terms(
        labels,
        probs,
        conv,
        False,
        0.0,
        options.get("class_weight"),
        None,
        -1,
        options.get("kind", "categorical"),
    )
    return fast, general


@pytest.mark.parametrize("convention", ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["categorical", "perplexity"])
@pytest.mark.parametrize("n", [71, 2000])  # the last rows are read apart from the rest
@pytest.mark.parametrize("k", [7, 130])  # keras' log-softmax: column by column, row by row
def test_fast_path_equals_general_path(convention, dtype, kind, n, k):
    from streammetric.functional._ce_fast import float32_logs_agree

    if convention in ("keras", "tf_keras") and dtype == np.float32 and not float32_logs_agree():
        pytest.skip("NumPy's float32 log is not its AVX2/AVX-512 one here")
    rng = np.random.default_rng(3)
    probs = rng.random((n, k)).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[:50] = rng.random((50, k)).astype(dtype)  # not normalised, some look like scores
    probs[50:60] = 0
    probs[50:60, 0] = 1  # p = 1 for class 0, p = 0 elsewhere
    tol = np.sqrt(np.finfo(dtype).eps)
    probs[60:70, 1] += dtype(tol) * np.array(
        [1 - 1e-3, 1, 1 + 1e-3] * 3 + [1], dtype=dtype
    )  # sums on the edge
    labels = rng.integers(0, k, n)
    weights = rng.random(k) + 0.5
    for class_weight in (None, weights):
        fast, general = _fast_and_general(
            labels, probs, convention, class_weight=class_weight, kind=kind
        )
        assert fast is not None
        assert fast.numerator.tobytes() == general.numerator.tobytes()
        assert fast.denominator.tobytes() == general.denominator.tobytes()
        assert fast.diagnostics == general.diagnostics
        assert list(fast.diagnostics) == list(DIAGNOSTIC_KEYS)
        assert (fast.row_diagnostics() == general.row_diagnostics()).all()
        assert (
            fast.diagnostics["num_true_prob_zero"] > 0
            and fast.diagnostics["num_not_normalized"] >= 50
        )


#: user conventions: every guard with keras' log-softmax after it, and the float32 policy
AFTER_CONVENTIONS = [
    Convention("after_none", "", renormalize_sparse="after", dtype="input"),
    Convention("after_add", "", eps=1e-3, guard="add", renormalize_sparse="after"),
    Convention("after_clip_add", "", eps=1e-3, guard="clip_add", renormalize_sparse="after"),
    Convention(
        "after_floor", "", eps=0.05, guard="floor", renormalize_sparse="after", dtype="input"
    ),
    Convention("after_clamp", "", guard="log_clamp", log_floor=-4.0, renormalize_sparse="after"),
    Convention("float32_clip", "", eps=1e-3, guard="clip", dtype="float32"),
]


@pytest.mark.parametrize("conv", AFTER_CONVENTIONS, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("class_ranks", [False, True])
def test_fast_path_equals_general_path_under_user_conventions(conv, dtype, class_ranks):
    from streammetric.functional._ce_fast import _fast_sparse_terms, float32_logs_agree
    from streammetric.functional.losses import _general_terms

    rng = np.random.default_rng(11)
    probs = rng.random((300, 9)).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[::7] *= dtype(0.01)  # small values for the guards, rows far from summing to 1
    probs[5] = 0
    probs[5, 3] = 1
    labels = rng.integers(0, 9, 300).astype(np.int32)
    weights = rng.random(9) + 0.5
    for class_weight in (None, weights):
        fast = _fast_sparse_terms(
            labels, probs, conv, class_weight, None, 1, "categorical", class_ranks
        )
        general = _general_terms(
            labels, probs, conv, False, 0.0, class_weight, None, 1, "categorical"
        )
        compute = conv.compute_dtype(dtype)
        if compute.itemsize < np.dtype(dtype).itemsize:
            assert fast is None
            continue
        if conv.renormalize_sparse == "after" and (
            conv.guard == "log_clamp" or (compute == np.float32 and not float32_logs_agree())
        ):
            assert fast is None
            continue
        assert fast is not None
        assert fast.numerator.tobytes() == general.numerator.tobytes()
        assert fast.denominator.tobytes() == general.denominator.tobytes()
        assert fast.diagnostics == general.diagnostics
        assert (fast.row_diagnostics() == general.row_diagnostics()).all()
        assert (fast.ranks is not None) == class_ranks


def test_fast_path_counts_rows_on_a_tolerance_edge_as_the_general_path():
    tol = 2.0**-26  # sqrt(eps) of float64, exactly: these rows' sums are within rounding of it
    probs = np.array(
        [[0.5, 0.5 + tol], [0.5, 0.5 + tol + 2**-50], [0.5, 0.5 - tol - 2**-50], [0.25, 0.75]]
    )
    fast, general = _fast_and_general(np.array([0, 1, 0, 1]), probs, "exact")
    assert fast is not None
    assert fast.diagnostics == general.diagnostics
    assert fast.diagnostics["num_not_normalized"] == 2


@pytest.mark.parametrize(
    ("labels", "probs"),
    [
        (np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]])),  # NaN
        (np.array([0, 1]), np.array([[1.5, -0.5], [0.5, 0.5]])),  # out of range
        (np.array([0, 2]), np.array([[0.5, 0.5], [0.5, 0.5]])),  # label out of range
        (np.array([0.0, 1.0]), np.array([[0.5, 0.5], [0.5, 0.5]])),  # float labels
    ],
)
def test_fast_path_declines_dirty_batches(labels, probs):
    fast, _ = _fast_and_general(labels, probs, "torch")
    assert fast is None
