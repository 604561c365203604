"""`EvalMetric.value_notes`: why a value is inf or NaN, or not the exact value."""

from __future__ import annotations

import numpy as np
import pytest

import streammetric as sm
from streammetric.metrics import create


def texts(metric) -> list[str]:
    return [note.text() for note in metric.value_notes()]


def test_a_finite_exact_value_has_no_note():
    metric = create("ce").update(np.array([0, 1]), np.array([[0.6, 0.4], [0.2, 0.8]]))
    assert metric.value_notes() == []
    assert create(["ce", "acc"]).update(np.array([0]), np.array([[0.9, 0.1]])).value_notes() == []


def test_binary_p_zero_names_the_label_and_torch_clamp_is_a_guard_note():
    labels, preds = np.array([1.0, 0.0]), np.array([0.0, 0.3])
    (note,) = sm.metrics.BinaryCrossEntropy().update(labels, preds).value_notes()
    assert note.cause == "p_zero" and note.counts == (1,)
    assert note.text().startswith(
        "binary-cross-entropy is inf: 1 row gives probability 0 to its true label, and the "
        "exact convention takes log(p) with no guard, so its loss is inf"
    )
    torch = sm.metrics.BinaryCrossEntropy(convention="torch").update(labels, preds)
    assert texts(torch) == [
        "binary-cross-entropy differs from the exact value: the torch convention clamps each "
        "log at -100, which changed 1 value, and 1 row gives probability 0 to its true label "
        "(inf under the exact convention); `streammetric explain FILE` compares the conventions "
        "on a file"
    ]


def test_perplexity_overflow_and_nan_inputs_under_a_computing_convention():
    perplexity = sm.metrics.Perplexity(from_logits=True)
    perplexity.update(np.array([0]), np.array([[-800.0, 800.0]]))
    assert texts(perplexity) == [
        "perplexity is inf: the mean cross-entropy exceeds 709.78, whose exp overflows"
    ]
    keras = sm.metrics.CrossEntropy(convention="keras")
    keras.update(np.array([1, 0]), np.array([[0.5, np.nan], [0.2, 0.8]]))
    assert texts(keras)[0] == (
        "cross-entropy is nan: 1 prediction value is NaN or inf "
        "(the keras convention does not reject them)"
    )


@pytest.mark.parametrize(
    ("spec", "labels", "preds", "reason"),
    [
        ("pearsonr", [1.0, 1.0], [0.5, 0.7], "the labels are constant (variance 0)"),
        ("pearsonr", [1.0, 2.0], [0.5, 0.5], "the predictions are constant (variance 0)"),
        ("pearsonr", [1.0], [0.5], "it needs at least 2 rows"),
        ("auc", [1, 1], [0.5, 0.7], "no negative rows were seen (it needs both classes)"),
        ("pcc", [1, 1], [[0.5, 0.7], [0.1, 0.9]], "every row has the same true class"),
        ("mae", None, None, "no rows were counted"),
    ],
)
def test_nan_reasons(spec, labels, preds, reason):
    metric = create(spec)
    if labels is not None:
        metric.update(np.array(labels), np.array(preds))
    (note,) = metric.value_notes()
    assert note.text() == f"{metric.name} is nan: {reason}"
