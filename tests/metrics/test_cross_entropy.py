"""The cross-entropy family as metric objects: the functional form is the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

import streammetric as sm
from streammetric.conventions import list_conventions
from streammetric.functional.losses import (
    DIAGNOSTIC_KEYS,
    binary_cross_entropy,
    cross_entropy,
    perplexity,
)
from tests.helpers.harness import check_metric

rng = np.random.default_rng(11)
N, K = 300, 6
LABELS = rng.integers(0, K, N)
LOGITS = rng.normal(scale=2.0, size=(N, K))
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)).astype(np.float32)
WEIGHTS = rng.random(N)
BINARY_Y = rng.integers(0, 2, (N, 3)).astype(np.float64)
BINARY_P = rng.random((N, 3)).astype(np.float32)


@pytest.mark.parametrize("convention", list_conventions())
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_equals_the_functional_form(convention, weighted):
    w = WEIGHTS if weighted else None
    check_metric(
        lambda: sm.CrossEntropy(convention=convention),
        LABELS,
        PROBS,
        weights=w,
        reference=lambda y, p, w: cross_entropy(y, p, convention=convention, sample_weight=w),
        rtol=0,  # the same exact sums: the same bits
    )


@pytest.mark.parametrize("convention", ["exact", "keras", "torch"])
def test_from_logits_and_class_weights(convention):
    cw = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]
    check_metric(
        lambda: sm.CrossEntropy(convention=convention, from_logits=True, class_weight=cw),
        LABELS,
        LOGITS,
        reference=lambda y, p, w: cross_entropy(
            y, p, convention=convention, from_logits=True, class_weight=cw
        ),
        rtol=0,
    )


@pytest.mark.parametrize("convention", list_conventions())
def test_binary_cross_entropy(convention):
    check_metric(
        lambda: sm.BinaryCrossEntropy(convention=convention),
        BINARY_Y,
        BINARY_P,
        weights=WEIGHTS,
        reference=lambda y, p, w: binary_cross_entropy(
            y, p, convention=convention, sample_weight=w
        ),
        rtol=0,
    )


def test_perplexity_with_ignore_label():
    labels = LABELS.copy()
    labels[::7] = -1
    value = check_metric(
        lambda: sm.Perplexity(ignore_label=-1, convention="mxnet"),
        labels,
        PROBS,
        reference=lambda y, p, w: perplexity(y, p, convention="mxnet", ignore_index=-1),
        rtol=0,
    )[0]
    kept = labels != -1
    expected = math.exp(
        np.mean(
            -np.log(
                np.maximum(
                    1e-10, PROBS[kept][np.arange(kept.sum()), labels[kept]].astype(np.float64)
                )
            )
        )
    )
    assert value == pytest.approx(expected, rel=2e-7)
    assert sm.Perplexity(ignore_label=-1).update(labels, PROBS).num_inst == int(kept.sum())


def test_golden_metric_vectors(golden):
    for vector in (v for v in golden if v["call"].startswith("metric:")):
        metric = sm.create(vector["call"].split(":")[1], convention=vector["convention"])
        preds = np.asarray(vector["y_pred"], dtype=vector["dtype"])
        value = metric.update([np.asarray(vector["y_true"])], [preds]).get()[1]
        assert value == pytest.approx(vector["expected"], rel=2e-7), vector["id"]


def test_create_by_mxnet_names_and_convention():
    assert sm.create("ce", convention="mxnet").name == "cross-entropy"
    assert sm.create("nll_loss").name == "nll-loss"
    assert sm.create("bce").name == "binary-cross-entropy"
    labels, preds = np.array([1, 0]), np.array([[0.0, 1.0], [0.0, 1.0]])
    assert sm.create("ce", convention="keras").update(labels, preds).get()[1] == 8.059047875479163
    assert sm.create("ce", convention="sklearn").update(labels, preds).get()[1] == pytest.approx(
        18.021826694558577, rel=1e-15
    )
    assert sm.create("ce").update(labels, preds).get()[1] == math.inf


def test_mxnet_eps_argument_is_the_added_epsilon():
    labels, preds = np.array([0]), np.array([[0.0, 1.0]])
    assert sm.CrossEntropy(eps=1e-5).update(labels, preds).get()[1] == pytest.approx(
        -math.log(1e-5)
    )
    assert sm.CrossEntropy(1e-12, convention="mxnet").update(labels, preds).get()[
        1
    ] == pytest.approx(27.631021115928547)


def test_diagnostics_count_per_update_and_globally():
    m = sm.CrossEntropy(convention="keras")
    m.update(np.array([1, 0]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    first = m.last_diagnostics
    assert first["num_true_prob_zero"] == 1 and first["num_true_prob_one"] == 1
    m.reset_local()
    m.update(np.array([0]), np.array([[5.0, 7.0]]))  # not probabilities: looks like logits
    assert m.last_diagnostics["num_looks_like_logits"] == 1
    total = m.diagnostics()
    assert total["num_true_prob_zero"] == 1 and total["num_looks_like_logits"] == 1
    assert m.diagnostics("local")["num_true_prob_zero"] == 0
    assert set(DIAGNOSTIC_KEYS) <= set(total)


def test_bad_input_raise_and_skip():
    labels = np.array([0, 1, 2])
    preds = np.array([[0.5, 0.5, 0.0], [0.2, np.nan, 0.8], [0.1, 0.1, 0.8]])
    with pytest.raises(
        sm.InvalidInputError,
        match=r"row 1 must hold probabilities in \[0, 1\] under convention 'exact', got nan",
    ):
        sm.CrossEntropy().update(labels, preds)
    skipping = sm.CrossEntropy(on_invalid="skip").update(labels, preds)
    clean = sm.CrossEntropy().update(labels[[0, 2]], preds[[0, 2]])
    assert skipping.get() == clean.get() and skipping.diagnostics()["num_invalid_skipped"] == 1
    assert skipping.invalid_rows(labels, preds).tolist() == [False, True, False]
    with pytest.raises(sm.InvalidInputError, match=r"class index in \[0, 3\), got 5"):
        sm.CrossEntropy(convention="keras").update(np.array([0, 5]), preds[:2, :3] * 0 + 0.3)
    with pytest.raises(sm.ConfigError, match="unknown convention"):
        sm.CrossEntropy(convention="nope")
    with pytest.raises(sm.ConfigError, match="`on_invalid` must be 'raise' or 'skip'"):
        sm.CrossEntropy(on_invalid="maybe")


def test_config_round_trip_keeps_the_convention():
    m = sm.CrossEntropy(
        convention="torch", from_logits=True, class_weight=np.array([1.0, 2.0]), label_smoothing=0.1
    )
    clone = sm.create(m.get_config())
    assert clone.get_config() == m.get_config() and clone.convention.name == "torch"
