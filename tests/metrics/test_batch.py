"""`BatchStats`: the statistics of a batch computed once for all the metrics that read it.

The kernels' entry points are wrapped to count the passes over the probabilities (observation
only: the wrappers call the real kernels), or made to fail (failure injection)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import streammetric as sm
from streammetric.engine.partial import Partial
from streammetric.functional import _ce_fast
from streammetric.functional import classification as F
from streammetric.metrics.batch import BatchStats, Stat
from streammetric.metrics.classification import Accuracy, TopKAccuracy
from streammetric.metrics.cross_entropy import (
    BinaryCrossEntropy,
    CrossEntropy,
    NegativeLogLikelihood,
    Perplexity,
)

rng = np.random.default_rng(5)
N, K = 300, 6
LABELS = rng.integers(0, K, size=N)
PROBS = rng.random((N, K))
PROBS[:20] = 1 / K  # rows of ties
PROBS /= PROBS.sum(axis=1, keepdims=True)
WEIGHTS = rng.random(N)

CE_ACC_TOPK = ["ce", "acc", {"metric": "top_k_accuracy", "top_k": 3}]


@pytest.fixture
def passes(monkeypatch):
    """The passes over a batch's probabilities: each cross-entropy scan (True when it ranks the
    true classes too) and each rank pass of its own."""
    counted: dict[str, list[bool]] = {"scans": [], "ranks": []}
    scan, ranks = _ce_fast.sparse_loss, F.class_ranks

    def counted_scan(*args):
        counted["scans"].append(args[7] is not None)
        return scan(*args)

    def counted_ranks(*args):
        counted["ranks"].append(True)
        return ranks(*args)

    monkeypatch.setattr(_ce_fast, "sparse_loss", counted_scan)
    monkeypatch.setattr(F, "class_ranks", counted_ranks)
    return counted


def state_of(metric: sm.EvalMetric) -> str:
    return json.dumps(metric.state_dict(), sort_keys=True)


def test_the_declared_statistics():
    for klass in (CrossEntropy, NegativeLogLikelihood, Perplexity, BinaryCrossEntropy):
        assert klass.batch_stats == frozenset({Stat.LOSS_TERMS})
    assert Accuracy.batch_stats == TopKAccuracy.batch_stats == frozenset({Stat.TRUE_CLASS_RANKS})
    assert sm.create("mae").batch_stats == frozenset()
    batch = BatchStats(LABELS, PROBS, None, [sm.create(m) for m in ["ce", "acc", "mae"]])
    assert batch.stats == {Stat.LOSS_TERMS, Stat.TRUE_CLASS_RANKS} and batch.shared


@pytest.mark.parametrize("order", [[0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_composite_scans_once_and_gives_each_metric_alone(order, weighted, passes):
    """ce + acc + top_k in any order: one scan that also ranks the true classes, no rank pass
    of their own, and the bits (state and value) of each metric updated alone."""
    names = [CE_ACC_TOPK[i] for i in order]
    weights = WEIGHTS if weighted else None
    composite = sm.create(names)
    composite.update(LABELS, PROBS, weights)
    composite.update(LABELS[:7], PROBS[:7], None if weights is None else weights[:7])
    assert passes == {"scans": [True, True], "ranks": []}
    for child, name in zip(composite.metrics, names, strict=True):
        alone = sm.create(name).update(LABELS, PROBS, weights)
        alone.update(LABELS[:7], PROBS[:7], None if weights is None else weights[:7])
        assert state_of(child) == state_of(alone)
        assert child.get() == alone.get()


def test_a_lone_metric_makes_its_own_batch(passes):
    sm.create("ce").update(LABELS, PROBS)
    sm.create("acc").update(LABELS, PROBS)
    assert passes == {"scans": [False], "ranks": [True]}  # ce does not rank for itself


def test_terms_are_computed_once_per_loss_configuration(passes):
    """ce and nll_loss of one convention share their terms; another convention scans again,
    without ranking a second time."""
    composite = sm.create(["ce", "acc", "nll_loss", {"metric": "ce", "convention": "keras"}])
    composite.update(LABELS, PROBS)
    assert passes == {"scans": [True, False], "ranks": []}
    ce, _, nll, keras = composite.metrics
    assert ce.get()[1] == nll.get()[1] == sm.create("ce").update(LABELS, PROBS).get()[1]
    assert keras.get() == sm.create("ce", convention="keras").update(LABELS, PROBS).get()
    # each keeps its own diagnostics (shared terms are not handed out to be changed)
    assert ce.last_diagnostics == nll.last_diagnostics
    assert ce.last_diagnostics is not nll.last_diagnostics


def test_nothing_is_kept_across_batches(passes):
    """An eval loop that overwrites its arrays in place gets each batch's own statistics."""
    composite = sm.create(CE_ACC_TOPK)
    labels, probs = LABELS.copy(), PROBS.copy()
    composite.update(labels, probs)
    labels[:] = np.roll(LABELS, 1)
    probs[:] = PROBS[::-1]
    composite.update(labels, probs)
    assert passes == {"scans": [True, True], "ranks": []}
    reference = sm.create(CE_ACC_TOPK)
    reference.update(LABELS, PROBS)
    reference.update(np.roll(LABELS, 1), PROBS[::-1].copy())
    assert state_of(composite) == state_of(reference)


def test_batches_the_scan_declines_rank_on_their_own(passes):
    """Logits (no cross-entropy scan) or probabilities out of range (the scan declines): the
    ranks take their own pass, and the values are each metric's alone."""
    logits = rng.normal(size=(N, K))
    composite = sm.create([{"metric": "ce", "from_logits": True}, "acc"])
    composite.update(LABELS, logits)
    assert passes == {"scans": [], "ranks": [True]}
    alone = sm.create("acc").update(LABELS, logits)
    assert state_of(composite.metrics[1]) == state_of(alone)

    bad = PROBS.copy()
    bad[3, 0] = 1.5
    composite = sm.create(["acc", {"metric": "ce", "on_invalid": "skip"}])
    composite.update(LABELS, bad)
    alone = sm.create("ce", on_invalid="skip").update(LABELS, bad)
    assert state_of(composite.metrics[1]) == state_of(alone)
    assert composite.metrics[0].get() == sm.create("acc").update(LABELS, bad).get()


def test_an_error_of_the_scan_is_raised_by_its_metric_in_its_turn(monkeypatch):
    """Accuracy asks first: the cross-entropy pass it starts fails, so accuracy ranks on its
    own; cross-entropy raises when its turn comes, as updated alone, and the batch adds
    nothing to either (an update is all or nothing: tests/metrics/test_atomic_update.py)."""
    composite = sm.create(["acc", "ce"])
    acc, ce = composite.metrics
    calls = []

    def failing(label, pred, ranks=False):
        calls.append(ranks)
        raise RuntimeError("injected")

    monkeypatch.setattr(ce, "_loss_terms", failing)
    with pytest.raises(RuntimeError, match="injected"):
        composite.update(LABELS, PROBS)
    assert calls == [True, False]  # on accuracy's request, then on its own
    assert acc.num_inst == 0 and ce.num_inst == 0


def test_invalid_rows_of_a_composite_compute_the_terms_once(passes):
    bad = PROBS.copy()
    bad[[4, 9], 1] = -0.5
    composite = sm.create(["ce", "nll_loss", "perplexity"])
    rows = composite.invalid_rows(LABELS, PROBS)
    assert rows is None and passes["scans"] == [False]  # one pass of ce and nll_loss
    rows = composite.invalid_rows(LABELS, bad)
    assert rows is not None and np.flatnonzero(rows).tolist() == [4, 9]


def test_metrics_with_their_own_update_in_a_composite():
    """A custom metric, a metric with its own fold (F1) and a composite inside: each updated
    as alone (the inner composite shares its own batches)."""
    feval = sm.metrics.np_metric(lambda label, pred: float(pred.sum()), name="total")
    inner = sm.create(["ce", "acc"])
    f1 = {"metric": "f1", "class_type": "multiclass", "average": "macro"}
    composite = sm.create([feval, f1, inner, "top_k_accuracy"])
    composite.update([LABELS, LABELS[:5]], [PROBS, PROBS[:5]])
    reference = [
        sm.metrics.np_metric(lambda label, pred: float(pred.sum()), name="total"),
        sm.create(f1),
        sm.create(["ce", "acc"]),
        sm.create("top_k_accuracy"),
    ]
    for metric in reference:
        metric.update([LABELS, LABELS[:5]], [PROBS, PROBS[:5]])
    assert composite.get() == sm.create(reference).get()


def test_the_engine_reads_one_batch_for_every_leaf(passes):
    """`Partial.row_terms`: one scan for ce + acc + top_k, each leaf's terms those of its
    own `row_terms`."""
    partial = Partial(lambda: sm.create(CE_ACC_TOPK))
    terms = partial.row_terms(LABELS, PROBS, WEIGHTS)
    assert passes == {"scans": [True], "ranks": []}
    for leaf, leaf_terms in zip(partial.leaves, terms, strict=True):
        alone = leaf.row_terms(LABELS, PROBS, WEIGHTS)
        assert leaf_terms is not None and alone is not None and set(leaf_terms) == set(alone)
        for name, term in alone.items():
            if isinstance(term, np.ndarray):
                assert np.array_equal(leaf_terms[name], term), name
    partial.add(LABELS, PROBS, WEIGHTS, int(partial.codes_of([()])[0]), terms)
    expected = sm.create(CE_ACC_TOPK).update(LABELS, PROBS, WEIGHTS)
    assert partial.overall().get() == expected.get()
