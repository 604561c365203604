"""Classification metrics through the shared harness, against scikit-learn and MXNet's documentation."""

from __future__ import annotations

import json
import math
from decimal import Decimal, getcontext
from fractions import Fraction
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, top_k_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

import streammetric as sm
from streammetric._exceptions import InvalidInputError
from streammetric.functional import classification as F
from streammetric.metrics import classification
from streammetric.metrics.classification import F1, MCC, PCC, Accuracy, TopKAccuracy
from tests.helpers.harness import check_metric, same_bits

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.UndefinedMetricWarning",
    "ignore:A single label was found:UserWarning",
)

rng = np.random.default_rng(11)
N, K = 240, 5
LABELS = rng.integers(0, K, size=N)
SCORES = rng.random((N, K)) + np.eye(K)[LABELS] * 0.4  # tie-free, better than chance
WEIGHTS = rng.random(N)
BINARY = rng.integers(0, 2, size=N)
PROBS = np.clip(BINARY * 0.3 + rng.random(N) * 0.7, 0.0, 1.0)
MULTILABEL = rng.integers(0, 2, size=(N, 4))
MULTILABEL[:, 3] = 0  # a column that never occurs: macro counts it as F1 = 0, as scikit-learn
ML_PROBS = np.clip(MULTILABEL * 0.3 + rng.random((N, 4)) * 0.65, 0.0, 1.0)


def weights_or_none(weighted: bool) -> np.ndarray | None:
    return WEIGHTS if weighted else None


# -- accuracy --------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_matches_sklearn(weighted):
    check_metric(
        Accuracy,
        LABELS,
        SCORES,
        weights=weights_or_none(weighted),
        reference=lambda y, p, w: accuracy_score(y, p.argmax(axis=1), sample_weight=w),
    )


def test_accuracy_of_predicted_labels_and_column_labels():
    predicted = SCORES.argmax(axis=1)
    reference = accuracy_score(LABELS, predicted)
    check_metric(Accuracy, LABELS, predicted, reference=reference)
    check_metric(Accuracy, LABELS.reshape(-1, 1), SCORES, reference=reference)  # MXNet's (n, 1)
    check_metric(
        Accuracy, LABELS.astype(np.float32), predicted.astype(np.float64), reference=reference
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_counts_elements_of_sequence_labels(weighted):
    labels, scores = rng.integers(0, 3, size=(40, 6)), rng.random((40, 6, 3))
    values = check_metric(
        partial(Accuracy, axis=2),
        labels,
        scores,
        weights=WEIGHTS[:40] if weighted else None,
        reference=lambda y, p, w: accuracy_score(
            y.ravel(),
            p.argmax(axis=2).ravel(),
            sample_weight=None if w is None else np.repeat(w, 6),
        ),
    )
    assert Accuracy(axis=2).update(labels, scores).num_inst == 240  # elements, as MXNet
    assert values == [
        F.accuracy(labels, scores, axis=2, sample_weight=WEIGHTS[:40] if weighted else None)
    ]


# -- top-k -----------------------------------------------------------------------------------
@pytest.mark.parametrize("top_k", [1, 2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
def test_top_k_matches_sklearn_without_ties(top_k, weighted):
    check_metric(
        partial(TopKAccuracy, top_k=top_k),
        LABELS,
        SCORES,
        weights=weights_or_none(weighted),
        reference=lambda y, p, w: top_k_accuracy_score(
            y, p, k=top_k, labels=np.arange(K), sample_weight=w
        ),
    )


def test_top_k_ties_rank_the_higher_class_first_as_sklearn():
    """scikit-learn's documented rule (and MXNet 1.9.1's where its order is defined, below):
    among equal scores the higher class index ranks first. Accuracy keeps argmax (the first
    maximum), so with ties top_k=1 is not Accuracy."""
    labels, scores = rng.integers(0, 6, size=300), rng.integers(0, 3, size=(300, 6)).astype(float)
    for top_k in (1, 2, 4):
        check_metric(
            partial(TopKAccuracy, top_k=top_k),
            labels,
            scores,
            reference=top_k_accuracy_score(labels, scores, k=top_k, labels=np.arange(6)),
        )
    argmax = accuracy_score(labels, np.argmax(scores, axis=1))
    assert Accuracy().update(labels, scores).get()[1] == argmax
    assert TopKAccuracy().update(labels, scores).get()[1] != argmax


def _mxnet_tie_cases() -> list[tuple[str, dict]]:
    cases = json.loads((Path(__file__).parents[1] / "data" / "mxnet_top_k_ties.json").read_text())
    return sorted(cases["cases"].items())


@pytest.mark.parametrize(("name", "case"), _mxnet_tie_cases(), ids=lambda v: str(v)[:14])
def test_top_k_ties_against_mxnet_1_9_1(name, case):
    labels = np.array([int(c) for c in case["labels"]])
    scores = np.array(
        [[0.25 if c == "u" else float(c) for c in row] for row in case["scores"]], dtype=np.float32
    )
    top_k, classes = case["top_k"], case["classes"]
    assert scores.shape == (len(labels), classes)
    ours = TopKAccuracy(top_k=top_k).update(labels, scores).get()[1]
    assert ours == top_k_accuracy_score(labels, scores, k=top_k, labels=np.arange(classes))
    if case["defined"]:
        assert ours == case["mxnet"]
    else:  # argpartition's order among ties depends on the data: MXNet is neither rule
        assert ours != case["mxnet"]


def test_top_k_name_config_and_global_state():
    m = TopKAccuracy(top_k=3)
    assert m.name == "top_k_accuracy_3" and sm.create(m.get_config()).name == "top_k_accuracy_3"
    m.update(LABELS[:100], SCORES[:100]).reset_local()
    m.update(LABELS[100:], SCORES[100:])
    assert m.get_global()[1] == top_k_accuracy_score(LABELS, SCORES, k=3)  # MXNet never updated it
    assert m.global_num_inst == N and m.num_inst == N - 100


# -- F1 and MCC ------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("metric", "sk"), [(F1, f1_score), (MCC, matthews_corrcoef)])
def test_binary_matches_sklearn(metric, sk, weighted):
    scores2 = np.stack([1 - PROBS, PROBS], axis=1)
    w = weights_or_none(weighted)
    check_metric(
        metric,
        BINARY,
        scores2,
        weights=w,
        reference=lambda y, p, w: sk(y, p.argmax(1), sample_weight=w),
    )
    check_metric(
        partial(metric, threshold=0.3),
        BINARY.astype(float),
        PROBS,
        weights=w,
        reference=lambda y, p, w: sk(y, p > 0.3, sample_weight=w),
    )
    check_metric(
        metric, BINARY.reshape(-1, 1), PROBS.reshape(-1, 1), reference=sk(BINARY, PROBS > 0.5)
    )


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_binary_average_is_the_positive_class(average):
    value = F1(average=average).update(BINARY, PROBS).get()[1]
    assert value == pytest.approx(f1_score(BINARY, PROBS > 0.5), rel=1e-15)


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_multiclass_f1_matches_sklearn(average):
    scores = np.concatenate([SCORES, np.zeros((N, 1))], axis=1)  # class 5 never occurs
    check_metric(
        partial(F1, class_type="multiclass", average=average),
        LABELS,
        scores,
        reference=lambda y, p, w: f1_score(y, p.argmax(1), average=average),
    )
    sparse = np.where(LABELS == 2, 7, LABELS)  # class indices with gaps: the matrix grows
    check_metric(
        partial(F1, class_type="multiclass", average=average),
        sparse,
        SCORES.argmax(1),
        reference=f1_score(sparse, SCORES.argmax(1), average=average),
    )


def _one_vs_rest_mcc(y: np.ndarray, p: np.ndarray, average: str) -> float:
    """The documented multiclass MCC, through scikit-learn's binary MCC on one-vs-rest indicators."""
    classes = np.union1d(y, p)
    actual, predicted = y.reshape(-1, 1) == classes, p.reshape(-1, 1) == classes
    if average == "micro":
        return matthews_corrcoef(actual.ravel(), predicted.ravel())
    return float(
        np.mean([matthews_corrcoef(actual[:, c], predicted[:, c]) for c in range(len(classes))])
    )


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_multiclass_mcc_is_one_vs_rest(average):
    check_metric(
        partial(MCC, class_type="multiclass", average=average),
        LABELS,
        SCORES,
        reference=lambda y, p, w: _one_vs_rest_mcc(y, p.argmax(1), average),
    )


def _fixed_classes_mcc(y: np.ndarray, p: np.ndarray, classes: int, average: str) -> float:
    """One-vs-rest MCC over classes ``0 .. classes - 1``, through scikit-learn's binary MCC
    (a class without rows: its degenerate MCC, 0)."""
    actual, predicted = (
        y.reshape(-1, 1) == np.arange(classes),
        p.reshape(-1, 1) == np.arange(classes),
    )
    if average == "micro":
        return matthews_corrcoef(actual.ravel(), predicted.ravel())
    return float(
        np.mean([matthews_corrcoef(actual[:, c], predicted[:, c]) for c in range(classes)])
    )


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_mcc_num_classes_counts_every_class(average):
    """``num_classes``: the classes 0 .. K - 1, seen or not (a class without rows counts in
    the macro mean with MCC 0); labels beyond are errors naming the row; a config of before
    the option builds the same metric."""
    y = np.array([0, 1, 2, 1, 0, 2, 1])
    p = np.array([0, 1, 1, 1, 0, 2, 0])
    fixed = MCC(class_type="multiclass", average=average, num_classes=5)
    assert fixed.update(y, p).get()[1] == pytest.approx(_fixed_classes_mcc(y, p, 5, average))
    seen = MCC(class_type="multiclass", average=average).update(y, p).get()[1]
    assert seen == pytest.approx(_one_vs_rest_mcc(y, p, average))
    if average == "macro":
        assert fixed.get()[1] == pytest.approx(seen * 3 / 5)
    with pytest.raises(InvalidInputError, match=r"row 1 .*\[0, 5\)"):
        fixed.update([0, 5], [0, 0])
    assert fixed.get_config()["num_classes"] == 5
    before = {
        k: v for k, v in MCC(class_type="multiclass").get_config().items() if k != "num_classes"
    }
    assert sm.create(before).get_config() == MCC(class_type="multiclass").get_config()
    assert (
        sm.create(fixed.get_config()).update(y, p).get()
        == MCC(class_type="multiclass", average=average, num_classes=5).update(y, p).get()
    )


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_multilabel_matches_sklearn(average):
    check_metric(
        partial(F1, class_type="multilabel", average=average, threshold=0.4),
        MULTILABEL,
        ML_PROBS,
        reference=lambda y, p, w: f1_score(y, p > 0.4, average=average),
    )
    predicted = ML_PROBS > 0.4
    mcc = (
        matthews_corrcoef(MULTILABEL.ravel(), predicted.ravel())
        if average == "micro"
        else np.mean([matthews_corrcoef(MULTILABEL[:, c], predicted[:, c]) for c in range(4)])
    )
    check_metric(
        partial(MCC, class_type="multilabel", average=average, threshold=0.4),
        MULTILABEL,
        ML_PROBS,
        reference=float(mcc),
    )


def test_degenerate_counts_give_zero_and_empty_gives_nan():
    assert F1().update([0, 0], [0.1, 0.2]).get() == ("f1", 0.0)
    assert MCC().update([1, 1], [0.9, 0.8]).get() == ("mcc", 0.0)
    for metric in (
        Accuracy(),
        TopKAccuracy(top_k=2),
        F1(),
        MCC(),
        PCC(),
        F1(class_type="multilabel"),
    ):
        assert math.isnan(metric.get()[1]) and metric.num_inst == 0


# -- PCC -------------------------------------------------------------------------------------
def test_pcc_matches_sklearn_and_grows():
    check_metric(PCC, LABELS, SCORES, reference=lambda y, p, w: matthews_corrcoef(y, p.argmax(1)))
    labels = np.sort(rng.integers(0, 8, size=200))  # classes appear batch after batch
    predicted = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 8, size=200))
    check_metric(
        PCC, labels, predicted, reference=matthews_corrcoef(labels, predicted), permute=False
    )
    check_metric(PCC, labels, predicted, reference=matthews_corrcoef(labels, predicted))


def test_pcc_is_nan_when_degenerate_and_exact():
    assert math.isnan(PCC().update([0, 1, 2], [1, 1, 1]).get()[1])  # scikit-learn says 0.0
    m = PCC().update([0, 1, 2, 2], [0, 1, 1, 2])
    assert m.get()[1] == 0.7 and m.num_inst == 4


# -- MXNet's documented values ---------------------------------------------------------------
def test_mxnet_documented_examples():
    preds, labels = [np.array([[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]])], [np.array([0, 1, 1])]
    assert Accuracy().update(labels, preds).get() == ("accuracy", 0.6666666666666666)
    assert F1().update([labels[0].astype(float)], preds).get() == ("f1", 0.8)
    fp, tn, fn, tp = 1000, 1, 1, 10000
    scores = np.array([[0.3, 0.7]] * fp + [[0.7, 0.3]] * tn + [[0.7, 0.3]] * fn + [[0.3, 0.7]] * tp)
    truth = np.array([0.0] * (fp + tn) + [1.0] * (fn + tp))
    assert F1().update([truth], [scores]).get()[1] == pytest.approx(0.95233560306652054, rel=1e-15)
    getcontext().prec = 60
    exact = (
        Decimal(tp * tn - fp * fn) / Decimal((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt()
    )
    for metric in (MCC(), PCC()):
        value = metric.update([truth], [scores]).get()[1]
        assert (
            value == float(exact) == pytest.approx(0.01917751877733392, rel=1e-15)
        )  # correctly rounded


# -- MXNet 1.x defects, fixed ----------------------------------------------------------------
def _mxnet1_macro_f1(batches: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """MXNet 1.x F1(average='macro'): the mean of per-batch F1 scores."""
    scores = []
    for y, p in batches:
        tp, fp, fn = np.sum(y & p), np.sum(~y & p), np.sum(y & ~p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores))


def test_macro_is_over_classes_from_global_counts_not_over_batches():
    y, p = BINARY.astype(bool), PROBS > 0.5
    batches = [(y[:30], p[:30]), (y[30:], p[30:])]
    ours = F1(average="macro")
    for labels, preds in batches:
        ours.update(labels.astype(int), preds.astype(float))
    assert ours.get()[1] == pytest.approx(f1_score(y, p), rel=1e-15)
    assert (
        abs(ours.get()[1] - _mxnet1_macro_f1(batches)) > 1e-3
    )  # MXNet 1.x depends on the batching


def test_counts_are_per_sample_not_per_batch():
    m = PCC().update(LABELS[:10], SCORES[:10]).update(LABELS[10:], SCORES[10:])
    assert m.num_inst == N  # MXNet 1.x: 2 (batches)
    assert m.sum_metric == pytest.approx(m.get()[1] * N)


# -- properties ------------------------------------------------------------------------------
METRICS = [
    Accuracy,
    partial(TopKAccuracy, top_k=2),
    F1,
    MCC,
    partial(F1, class_type="multiclass", average="macro"),
    partial(MCC, class_type="multiclass", average="macro"),
    partial(MCC, class_type="multiclass"),
    PCC,
]


@st.composite
def classified_batches(draw):
    n = draw(st.integers(1, 40))
    labels = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    scores = np.array(
        draw(
            st.lists(
                st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=3, max_size=3),
                min_size=n,
                max_size=n,
            )
        )
    )
    scores[:, 2] = (
        0.0  # binary metrics read columns 0-1; keep class 2 as a sometimes-tied third score
    )
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return labels, scores, [0, *cuts, n]


@settings(max_examples=40, deadline=None)
@given(classified_batches())
def test_any_batching_gives_the_same_bits(batch):
    labels, scores, bounds = batch
    for make in METRICS:
        preds = scores[:, :2] if make in (F1, MCC) else scores
        whole = make().update(labels, preds)
        split = make()
        for start, stop in pairwise(bounds):
            if stop > start:
                split.update(labels[start:stop], preds[start:stop])
        assert same_bits([split.get()[1]], [whole.get()[1]])
        half = len(labels) // 2
        merged = (
            make()
            .update(labels[:half], preds[:half])
            .merge(make().update(labels[half:], preds[half:]))
        )
        assert same_bits([merged.get_global()[1]], [whole.get()[1]])


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**40), 10**40), st.integers(1, 10**80))
def test_ratio_over_sqrt_is_correctly_rounded(numerator, denominator):
    getcontext().prec = 120
    exact = Decimal(numerator) / Decimal(denominator).sqrt()
    assert F.ratio_over_sqrt(numerator, denominator) == float(exact)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=60))
def test_functional_forms_match_sklearn(pairs):
    y, p = np.array(pairs).T
    assert F.accuracy(y, p) == accuracy_score(y, p)
    assert F.f1_score(y, p, class_type="multiclass", average="macro") == pytest.approx(
        f1_score(y, p, average="macro"), rel=1e-12
    )
    value, reference = F.pcc(y, p), matthews_corrcoef(y, p)
    assert (math.isnan(value) and reference == 0.0) or value == pytest.approx(
        reference, rel=1e-12, abs=1e-15
    )
    macro = F.f1_score(y, p, class_type="multiclass", average="macro")
    confusion = sk_confusion_matrix(y, p)  # the exact mean of per-class F1s, correctly rounded
    tp, predicted, actual = np.diagonal(confusion), confusion.sum(axis=0), confusion.sum(axis=1)
    exact = [
        Fraction(2 * int(a), int(b + c)) for a, b, c in zip(tp, predicted, actual, strict=True)
    ]
    assert macro == float(sum(exact) / len(exact))


# -- names and errors ------------------------------------------------------------------------
def test_registered_names_and_aliases():
    for name, expected in [
        ("acc", "accuracy"),
        ("accuracy", "accuracy"),
        ("top_k_acc", "top_k_accuracy_1"),
        ("top_k_accuracy", "top_k_accuracy_1"),
        ("f1", "f1"),
        ("mcc", "mcc"),
        ("pcc", "pcc"),
    ]:
        metric = sm.create(name)
        assert metric.name == expected and metric.higher_is_better is True
    assert isinstance(sm.create({"metric": "f1", "class_type": "multiclass"}), classification.F1)


@pytest.mark.parametrize(
    ("make", "labels", "preds", "message"),
    [
        (
            Accuracy,
            [0, 1, 5],
            np.full((3, 3), 0.5),
            "`labels` row 2 must be a class index in [0, 3), got [5]",
        ),
        (
            Accuracy,
            [0, 1],
            [[0.5, np.nan], [0.5, 0.5]],
            "`preds` row 0 must be finite, got [0.5, nan]",
        ),
        (
            Accuracy,
            [0.0, 1.5],
            [[0.5, 0.5], [0.5, 0.5]],
            "`labels` row 1 must be integer class indices, got [1.5]",
        ),
        (Accuracy, [0, 1], [0.2, 0.7], "`preds` row 0 must be integer class indices, got [0.2]"),
        (
            Accuracy,
            [0, 1, 1],
            np.zeros((2, 2)),
            "`labels` and `preds` must have the same number of rows, got 3 and 2",
        ),
        (
            Accuracy,
            [[0, 1]],
            np.zeros((1, 3)),
            "`labels` of shape (1, 2) must match `preds` of shape (1, 3)",
        ),
        (
            Accuracy,
            [0, 1],
            np.zeros((2, 1, 3)),
            "`preds` must hold >= 2 class scores along axis 1, got shape (2, 1, 3)",
        ),
        (
            partial(TopKAccuracy, top_k=2),
            [0],
            np.zeros((1, 2, 2)),
            "`preds` must be 2-D scores (rows, classes)",
        ),
        (
            F1,
            [0, 2, 1],
            [0.1, 0.9, 0.4],
            "`labels` row 1 must be 0 or 1 for class_type='binary' (class indices of more classes: "
            "class_type='multiclass'), got [2]",
        ),
        (
            F1,
            [0, 1],
            np.zeros((2, 3)),
            "`preds` must be probabilities shaped like `labels` (2,) or 2 scores",
        ),
        (
            partial(MCC, class_type="multilabel"),
            np.zeros((2, 3)),
            np.zeros((2, 2)),
            "same 2-D shape",
        ),
        (PCC, [0, -1], [0, 0], "`labels` row 1 must be a class index >= 0, got [-1]"),
    ],
)
def test_bad_input_is_one_clear_line(make, labels, preds, message):
    with pytest.raises(sm.InvalidInputError) as info:
        make().update(np.asarray(labels), np.asarray(preds))
    text = str(info.value)
    assert message in text and "\n" not in text and "{" not in text


@pytest.mark.parametrize(
    ("make", "labels", "preds", "bad"),
    [
        (Accuracy, [0, 5, 1.5, 2], np.full((4, 3), 0.5), [False, True, True, False]),
        (Accuracy, [0, 1, 1], [0, -1, 0.5], [False, True, True]),
        (
            partial(TopKAccuracy, top_k=2),
            [0, 1],
            [[0.5, np.nan, 0.1], [0.2, 0.3, 0.5]],
            [True, False],
        ),
        (F1, [0, 2, 1], [0.1, 0.9, np.inf], [False, True, True]),
        (
            partial(MCC, class_type="multilabel"),
            [[0, 1], [1, 3]],
            [[0.1, 0.2], [0.3, 0.4]],
            [False, True],
        ),
        (PCC, [0, 1], [[0.2, 0.8], [0.5, 0.5]], None),
    ],
)
def test_invalid_rows_are_the_rows_update_rejects(make, labels, preds, bad):
    labels, preds = np.asarray(labels), np.asarray(preds)
    mask = make().invalid_rows(labels, preds)
    assert (mask is None and bad is None) or mask.tolist() == bad
    if bad is not None:
        with pytest.raises(sm.InvalidInputError):
            make().update(labels, preds)
        keep = ~np.asarray(bad)
        make().update(labels[keep], preds[keep])  # the clean rows pass


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_weights_for_every_class_type(average):
    """Multiclass and multilabel took no sample_weight before; now they weigh the counts
    exactly, as scikit-learn (tests/metrics/test_per_class.py has the rest)."""
    check_metric(
        partial(F1, class_type="multiclass", average=average),
        LABELS,
        SCORES,
        weights=WEIGHTS,
        reference=lambda y, p, w: f1_score(y, p.argmax(1), average=average, sample_weight=w),
    )
    check_metric(
        partial(F1, class_type="multilabel", average=average, threshold=0.4),
        MULTILABEL,
        ML_PROBS,
        weights=WEIGHTS,
        reference=lambda y, p, w: f1_score(y, p > 0.4, average=average, sample_weight=w),
    )
    check_metric(
        PCC,
        LABELS,
        SCORES,
        weights=WEIGHTS,
        reference=lambda y, p, w: matthews_corrcoef(y, p.argmax(1), sample_weight=w),
    )


def test_multilabel_width_must_not_change():
    m = F1(class_type="multilabel").update(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(
        sm.InvalidInputError,
        match=r"`labels` must keep 3 label columns for class_type='multilabel', got 2",
    ):
        m.update(np.zeros((2, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (partial(TopKAccuracy, top_k=0), "`top_k` must be an int >= 1, got 0"),
        (partial(Accuracy, axis=0), "`axis` must be a nonzero int (axis 0 holds the rows), got 0"),
        (
            partial(F1, class_type="multi"),
            "`class_type` must be one of binary, multiclass, multilabel, got 'multi'",
        ),
        (partial(MCC, average=None), "`average` must be one of micro, macro, got None"),
        (partial(F1, threshold=float("nan")), "`threshold` must be a finite number, got nan"),
    ],
)
def test_bad_config(make, message):
    with pytest.raises(sm.ConfigError) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize(
    "names",
    [
        ["ce", "acc", "top_k_accuracy:top_k=2", "nll_loss", "perplexity"],
        ["acc", "ce", "top_k_accuracy:top_k=2"],  # accuracy asks before cross-entropy runs
        ["ce", "nll_loss"],  # nothing asks for ranks
    ],
)
def test_a_composite_ranks_the_classes_in_the_cross_entropy_pass(names, monkeypatch):
    """Cross-entropy's pass over a clean batch also ranks the true classes when accuracy or
    top-k asks for them, whatever the order of the metrics: one pass over the probabilities,
    and the results of separate metrics."""
    from streammetric.functional import _ce_fast
    from streammetric.metrics.specs import build_metrics

    probs = np.concatenate([SCORES, np.full((3, K), 1 / K)])  # and rows of ties
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.concatenate([LABELS, [0, 2, 4]])
    ranked_scans, rank_passes = [], []
    scan, ranks = _ce_fast.sparse_loss, F.class_ranks
    monkeypatch.setattr(
        _ce_fast,
        "sparse_loss",
        lambda *a: ranked_scans.append(len(a) > 7 and a[7] is not None) or scan(*a),
    )
    monkeypatch.setattr(F, "class_ranks", lambda *a: rank_passes.append(1) or ranks(*a))
    composite = build_metrics(names, {})
    composite.update(labels, probs)
    scans, own_rank_passes = list(ranked_scans), len(rank_passes)
    separately = [build_metrics([name], {}).update(labels, probs).get()[1][0] for name in names]
    assert composite.get()[1] == separately
    asks = any(name.startswith(("acc", "top_k")) for name in names)
    assert scans == [asks]  # one cross-entropy pass, ranking the classes if asked
    assert own_rank_passes == 0  # never a pass of their own
