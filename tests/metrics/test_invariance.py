"""Every registered metric, found by introspection: the same bits under any chunking and order.

Hypothesis draws the chunk boundaries and the row permutation; the value after feeding the
chunks must be the same float64 bits as after one update with all rows, and merging one metric
per chunk must give the same bits too.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streammetric as sm
from tests.helpers.harness import flat_values, same_bits

rng = np.random.default_rng(5)
N, K = 64, 4
CLASS_LABELS = rng.integers(0, K, N)
PROBS = rng.dirichlet(np.ones(K), N)
BINARY_LABELS = rng.integers(0, 2, N).astype(np.float64)
BINARY_PROBS = rng.random(N)
TARGETS = rng.normal(size=N)
OUTPUTS = TARGETS + rng.normal(size=N)

# data kind per metric; a metric missing here fails the completeness test below
DATA = {
    "accuracy": (CLASS_LABELS, PROBS),
    "topkaccuracy": (CLASS_LABELS, PROBS),
    "f1": (BINARY_LABELS, BINARY_PROBS),
    "mcc": (BINARY_LABELS, BINARY_PROBS),
    "precision": (BINARY_LABELS, BINARY_PROBS),
    "recall": (BINARY_LABELS, BINARY_PROBS),
    "fbeta": (BINARY_LABELS, BINARY_PROBS),
    "confusionmatrix": (CLASS_LABELS, PROBS),
    "pcc": (CLASS_LABELS, PROBS),
    "crossentropy": (CLASS_LABELS, PROBS),
    "negativeloglikelihood": (CLASS_LABELS, PROBS),
    "perplexity": (CLASS_LABELS, PROBS),
    "binarycrossentropy": (BINARY_LABELS, BINARY_PROBS),
    "ece": (CLASS_LABELS, PROBS),
    "brier": (BINARY_LABELS, BINARY_PROBS),
    "auc": (BINARY_LABELS, BINARY_PROBS),
    "mae": (TARGETS, OUTPUTS),
    "mse": (TARGETS, OUTPUTS),
    "rmse": (TARGETS, OUTPUTS),
    "msle": (BINARY_LABELS, BINARY_PROBS),  # values > -1
    "pearsoncorrelation": (TARGETS, OUTPUTS),
    "loss": (TARGETS, OUTPUTS),
    "torch": (TARGETS, OUTPUTS),
    "caffe": (TARGETS, OUTPUTS),
}
SKIP = {"compositeevalmetric", "custommetric"}  # containers / user functions: tested elsewhere
# MXNet 1.x's "macro" (its default) averaged per-batch values; ours must not depend on batches
KWARGS = {
    "topkaccuracy": {"top_k": 2},
    "pearsoncorrelation": {"average": "macro"},
    "f1": {"average": "macro"},
    "mcc": {"average": "macro"},
    "precision": {"average": None},  # one value per class
    "recall": {"average": "weighted"},
    "fbeta": {"beta": 0.5, "average": "macro"},
    "confusionmatrix": {"normalize": "true"},
}


def test_every_registered_metric_is_covered():
    registered = set(sm.list_metrics())
    assert registered - SKIP <= set(DATA), registered - SKIP - set(DATA)


def _value(metric: sm.EvalMetric) -> list[float]:
    return flat_values(metric.get_global()[1])


@pytest.mark.parametrize("name", sorted(DATA))
@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, N - 1), max_size=8, unique=True), seed=st.integers(0, 2**32 - 1)
)
def test_same_bits_whatever_chunks_and_order(name, cuts, seed):
    labels, preds = DATA[name]
    make = lambda: sm.create(name, **KWARGS.get(name, {}))  # noqa: E731
    expected = _value(make().update(labels, preds))
    order = np.random.default_rng(seed).permutation(N)
    bounds = [0, *sorted(cuts), N]
    chunked, parts = make(), []
    for a, b in itertools.pairwise(bounds):
        rows = order[a:b]
        chunked.update(labels[rows], preds[rows])
        parts.append(make().update(labels[rows], preds[rows]))
    assert same_bits(_value(chunked), expected)
    merged = parts[0]
    for part in reversed(parts[1:]):  # another merge order
        merged.merge(part)
    assert same_bits(_value(merged), expected)
