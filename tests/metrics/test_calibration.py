"""Calibration and ranking metrics (ECE, Brier, AUC) through the shared harness.

References: scikit-learn (``brier_score_loss``, ``roc_auc_score``, ``average_precision_score``);
torchmetrics' documented Binary/MulticlassCalibrationError examples and a NumPy re-implementation
of its algorithm; Keras 3's documented AUC examples (docstring and ``confusion_metrics_test.py``)
and NumPy re-implementations of its threshold loop (float64) and bucketed fast path (float32).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from functools import partial

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

import streammetric as sm
from streammetric.functional.calibration import (
    brier_score,
    calibration_error,
    per_bin_units,
    uniform_bins,
)
from streammetric.functional.ranking import binned_auc, binned_auc_bound
from streammetric.metrics.calibration import AUC, ECE, Brier
from tests.helpers.harness import check_metric, same_bits

rng = np.random.default_rng(11)
N = 300
Y_BIN = rng.integers(0, 2, N)
P_BIN = np.clip(rng.random(N) * 0.8 + 0.2 * Y_BIN, 0.0, 1.0)
Y_MC = rng.integers(0, 4, N)
P_MC = scipy.special.softmax(rng.normal(size=(N, 4)) + 2.0 * np.eye(4)[Y_MC], axis=1)
W = rng.random(N) * 2
W_INT = rng.integers(0, 4, N).astype(np.float64)


# -- references -------------------------------------------------------------------------------
def confidences(labels, preds):
    preds = np.asarray(preds, dtype=np.float64)
    if preds.ndim == 1 or preds.shape[1] == 1:
        return preds.reshape(-1), (np.asarray(labels) == 1).astype(np.float64)
    top = np.argmax(preds, axis=1)
    return preds[np.arange(len(top)), top], (top == np.asarray(labels)).astype(np.float64)


def textbook_ece(labels, preds, weights=None, n_bins=15, norm="l1"):
    """Guo et al.: bins ((j-1)/n, j/n] (edges = the floats j/n), first bin closed; exact."""
    conf, acc = confidences(labels, preds)
    weights = np.ones(len(conf)) if weights is None else np.asarray(weights)
    total, terms, gaps = Fraction(0), [], []
    for j in range(n_bins):
        lo, hi = j / n_bins, (j + 1) / n_bins
        inside = (conf > lo) & (conf <= hi) | ((conf == 0.0) if j == 0 else False)
        w = [Fraction(float(x)) for x in weights[inside]]
        if not w or sum(w) == 0:
            continue
        weight = sum(w)
        c = sum(
            Fraction(float(x)) * Fraction(float(v))
            for x, v in zip(weights[inside], conf[inside], strict=True)
        )
        a = sum(
            Fraction(float(x)) * int(v) for x, v in zip(weights[inside], acc[inside], strict=True)
        )
        total += weight
        terms.append((weight, abs(a - c) / weight))
        gaps.append(abs(a - c) / weight)
    if norm == "l1":
        return float(sum(w * g for w, g in terms) / total)
    if norm == "max":
        return float(max(gaps))
    return math.sqrt(float(sum(w * g * g for w, g in terms) / total))


def torchmetrics_ece(labels, preds, n_bins=15, norm="l1"):
    """NumPy re-implementation of torchmetrics' ``_binning_bucketize`` + ``_ce_compute``."""
    conf, acc = confidences(labels, preds)
    boundaries = np.linspace(0, 1, n_bins + 1, dtype=np.float32)
    index = np.searchsorted(boundaries, conf, side="right") - 1  # torch.bucketize(right=True)
    count = np.bincount(index, minlength=n_bins + 1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        conf_bin = np.nan_to_num(np.bincount(index, conf, minlength=n_bins + 1) / count)
        acc_bin = np.nan_to_num(np.bincount(index, acc, minlength=n_bins + 1) / count)
    prop = count / count.sum()
    if norm == "l1":
        return float(np.sum(np.abs(acc_bin - conf_bin) * prop))
    if norm == "max":
        return float(np.max(np.abs(acc_bin - conf_bin)))
    return float(np.sqrt(np.sum((acc_bin - conf_bin) ** 2 * prop)))


def keras_counts(labels, preds, weights, num_thresholds):
    """Keras' threshold loop (``update_confusion_matrix_variables``), in float64."""
    m = num_thresholds - 1
    thresholds = np.array([-1e-7] + [(i + 1) / m for i in range(m - 1)] + [1 + 1e-7])
    w = np.ones(len(labels)) if weights is None else np.asarray(weights)
    above = np.asarray(preds).reshape(1, -1) > thresholds.reshape(-1, 1)
    pos = np.asarray(labels).reshape(1, -1) == 1
    tp, fp = (above & pos) @ w, (above & ~pos) @ w
    return tp, fp, pos @ w - tp, (~pos) @ w - fp


def keras_auc(tp, fp, fn, tn, curve):
    """Keras 3's ``AUC.result()`` (interpolation) in NumPy, in the dtype of the counts."""
    div = lambda a, b: np.where(b > 0, a / np.where(b > 0, b, 1), 0)  # noqa: E731
    if curve == "ROC":
        recall, fpr = div(tp, tp + fn), div(fp, fp + tn)
        return float(np.sum((fpr[:-1] - fpr[1:]) * (recall[:-1] + recall[1:]) / 2))
    dtp, p = tp[:-1] - tp[1:], tp + fp
    slope = div(dtp, np.maximum(p[:-1] - p[1:], 0))
    intercept = tp[1:] - slope * p[1:]
    ratio = np.where((p[:-1] > 0) & (p[1:] > 0), div(p[:-1], np.maximum(p[1:], 0)), 1)
    return float(np.sum(div(slope * (dtp + intercept * np.log(ratio)), tp[1:] + fn[1:])))


def keras_float32_auc(labels, preds, num_thresholds, curve):
    """Keras' bucketed fast path as it runs: float32 ``ceil(p * (T-1)) - 1`` and float32 math."""
    bucket = np.maximum(np.ceil(preds.astype(np.float32) * np.float32(num_thresholds - 1)) - 1, 0)
    bucket = bucket.astype(np.int64)
    pos = np.bincount(bucket[labels == 1], minlength=num_thresholds).astype(np.float32)
    neg = np.bincount(bucket[labels != 1], minlength=num_thresholds).astype(np.float32)
    tp, fp = np.cumsum(pos[::-1])[::-1], np.cumsum(neg[::-1])[::-1]
    return keras_auc(tp, fp, pos.sum() - tp, neg.sum() - fp, curve)


# -- ECE --------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize(("labels", "preds"), [(Y_BIN, P_BIN), (Y_MC, P_MC)])
def test_ece_matches_torchmetrics_algorithm_and_textbook(labels, preds, norm):
    value = check_metric(
        partial(ECE, n_bins=10, norm=norm),
        labels,
        preds,
        reference=lambda y, p, w: torchmetrics_ece(y, p, n_bins=10, norm=norm),
        rtol=1e-12,
    )
    assert value[0] == textbook_ece(labels, preds, n_bins=10, norm=norm)  # correctly rounded


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_ece_weighted(norm):
    check_metric(
        partial(ECE, n_bins=7, norm=norm),
        Y_MC,
        P_MC,
        weights=W,
        reference=lambda y, p, w: textbook_ece(y, p, w, n_bins=7, norm=norm),
        rtol=1e-15,
    )


@pytest.mark.parametrize(
    ("norm", "binary", "multiclass"),
    [("l1", 0.2900, 0.2000), ("l2", 0.2918, 0.2082), ("max", 0.3167, 0.2333)],
)
def test_ece_torchmetrics_documented_examples(norm, binary, multiclass):
    # BinaryCalibrationError / MulticlassCalibrationError docstrings (printed to 4 decimals)
    preds = [0.25, 0.25, 0.55, 0.75, 0.75]
    assert ECE(n_bins=2, norm=norm).update([0, 0, 1, 1, 1], preds).get()[1] == pytest.approx(
        binary, abs=5e-5
    )
    preds_mc = [[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]]
    value = ECE(n_bins=3, norm=norm).update([0, 1, 2, 0], preds_mc).get()[1]
    assert value == pytest.approx(multiclass, abs=5e-5)


@pytest.mark.parametrize("n_bins", range(1, 101))
def test_every_float_edge_lands_in_the_bin_below(n_bins):
    edges = np.array([j / n_bins for j in range(n_bins + 1)])
    assert uniform_bins(edges, n_bins).tolist() == [0, *range(n_bins)]
    above = np.nextafter(edges[:-1], 2.0)
    assert uniform_bins(above, n_bins).tolist() == list(range(n_bins))


def test_grouped_exact_sums_agree_on_both_paths():
    r = np.random.default_rng(5)
    values = r.random(1000) * np.exp2(r.integers(-1074, 60, 1000).astype(float))
    bins = r.integers(0, 7, 1000)
    vectorised = per_bin_units(bins, values, 7)  # > 256 values: one exact sum per bin
    python = [0] * 7  # <= 256 values: Python integers
    for start in range(0, 1000, 200):
        python = [
            a + b
            for a, b in zip(
                python,
                per_bin_units(bins[start : start + 200], values[start : start + 200], 7),
                strict=True,
            )
        ]
    assert vectorised == python
    assert [math.fsum(values[bins == b]) for b in range(7)] == [u / 2**1074 for u in python]


def test_ceil_formula_would_misplace_edges():
    # the reason for exact edge comparison: fl(7/25) * 25 rounds above 7
    assert math.ceil((7 / 25) * 25) - 1 == 7 and uniform_bins([7 / 25], 25).tolist() == [6]


@pytest.mark.parametrize("n_bins", [1, 3, 10, 15, 25, 49])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_ece_textbook_on_edges_zero_and_one(n_bins, norm):
    conf = np.array([0.0, 1.0] + [j / n_bins for j in range(n_bins + 1)] * 2)
    labels = (np.arange(len(conf)) % 3 == 0).astype(int)
    value = check_metric(partial(ECE, n_bins=n_bins, norm=norm), labels, conf, trials=2)
    assert value[0] == textbook_ece(labels, conf, n_bins=n_bins, norm=norm)


def test_confidence_one_is_in_the_last_bin_not_a_hidden_one():
    # torchmetrics issue #3510's example: both predictions belong to the last bin
    ours = ECE().update([1, 0], [0.95, 1.0]).get()[1]
    assert ours == pytest.approx(abs(0.5 - 0.975)) and ours == textbook_ece([1, 0], [0.95, 1.0])
    assert torchmetrics_ece([1, 0], [0.95, 1.0]) == pytest.approx(0.525)  # the bug


def test_multiclass_ties_take_the_first_maximum():
    # torch.max(dim=1) / np.argmax return the first maximal index: class 0 here, so wrong
    assert ECE(n_bins=5).update([1], [[0.4, 0.4, 0.2]]).get()[1] == pytest.approx(0.4)
    assert ECE(n_bins=5).update([0], [[0.4, 0.4, 0.2]]).get()[1] == pytest.approx(0.6)


# -- Brier ------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("labels", "preds"), [(Y_BIN, P_BIN), (Y_MC, P_MC)])
def test_brier_matches_sklearn(labels, preds, weighted):
    k = 2 if preds.ndim == 1 else preds.shape[1]
    check_metric(
        Brier,
        labels,
        preds,
        weights=W if weighted else None,
        reference=lambda y, p, w: brier_score_loss(y, p, sample_weight=w, labels=list(range(k))),
        rtol=1e-13,
    )


@pytest.mark.parametrize("scale_by_half", [True, False])
@pytest.mark.parametrize(("labels", "preds"), [(Y_BIN, P_BIN), (Y_MC, P_MC)])
def test_brier_scale_matches_sklearn(labels, preds, scale_by_half):
    expected = brier_score_loss(labels, preds, scale_by_half=scale_by_half)
    got = Brier(scale_by_half=scale_by_half).update(labels, preds).get()[1]
    assert got == pytest.approx(expected, rel=1e-13)


def test_brier_two_columns_is_halved_as_binary():
    two = np.column_stack([1 - P_BIN, P_BIN])
    check_metric(Brier, Y_BIN, two, reference=brier_score_loss(Y_BIN, P_BIN), rtol=1e-13)


def test_brier_sklearn_documented_examples():
    assert brier_score([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]) == pytest.approx(0.0375)
    unscaled = brier_score([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], scale_by_half=False)
    assert unscaled == pytest.approx(0.075, rel=1e-15)
    probs = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6]]
    assert brier_score([0, 1, 2], probs) == pytest.approx(0.44 / 3, rel=1e-15)  # printed 0.146


# -- AUC --------------------------------------------------------------------------------------
@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("num_thresholds", [3, 10, 200])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_matches_keras_threshold_loop(curve, num_thresholds, weighted):
    def reference(y, p, w):
        return keras_auc(*keras_counts(y, p, w, num_thresholds), curve)

    check_metric(
        partial(AUC, num_thresholds=num_thresholds, curve=curve),
        Y_BIN,
        P_BIN,
        weights=W_INT if weighted else None,
        reference=reference,
        rtol=1e-12,
    )


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_close_to_keras_float32_fast_path(curve):
    y, p = Y_BIN, P_BIN.astype(np.float32)
    ours = AUC(curve=curve).update(y, p).get()[1]
    assert ours == pytest.approx(keras_float32_auc(y, p, 200, curve), rel=1e-5)


def test_auc_keras_documented_examples():
    y, p = [0, 0, 1, 1], [0, 0.5, 0.3, 0.9]
    assert AUC(num_thresholds=3).update(y, p).get() == ("auc", 0.75)  # docstring
    assert AUC(num_thresholds=3).update(y, p, sample_weight=[1, 0, 0, 1]).get()[1] == 1.0
    assert AUC().update(y, y).get()[1] == 1.0  # test_unweighted_all_correct
    logits = -np.log(1.0 / (np.array(p, dtype=np.float32) + 1e-12) - 1.0)
    assert AUC(num_thresholds=3, from_logits=True).update(y, logits).get()[1] == 0.75
    weights = [1, 2, 3, 4]  # test_weighted_roc_interpolation: 0.7855 at 1e-3
    roc = AUC(num_thresholds=3).update(y, p, sample_weight=weights).get()[1]
    assert roc == pytest.approx(0.7855, abs=1e-3) and roc == 11 / 14
    pr = AUC(num_thresholds=3, curve="PR").update(y, p, sample_weight=weights).get()
    assert pr[0] == "auc_pr"  # test_weighted_pr_interpolation: 2.416/7 + 4/7 at 1e-3
    assert pr[1] == pytest.approx(2.416 / 7 + 4 / 7, abs=1e-3)
    assert pr[1] == pytest.approx((5.5 + math.log(2.5)) / 7, rel=1e-15)


@pytest.mark.parametrize("num_thresholds", [3, 11, 200])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_within_bound_of_sklearn(num_thresholds, ties, weighted):
    for seed in range(5):
        r = np.random.default_rng(seed)
        y = r.integers(0, 2, 400)
        p = np.clip(r.random(400) * 0.7 + 0.3 * y, 0, 1)
        p = np.round(p, 2) if ties else p
        w = r.integers(0, 5, 400).astype(float) if weighted else None
        m = AUC(num_thresholds=num_thresholds).update(y, p, sample_weight=w)
        exact = roc_auc_score(y, p, sample_weight=w)
        assert abs(m.get()[1] - exact) <= m.get_bound() * (1 + 1e-12) + 1e-15
        assert m.get_bound() == binned_auc_bound(
            y, p, num_thresholds=num_thresholds, sample_weight=w
        )


def test_auc_bound_is_tight():
    m = AUC(num_thresholds=3).update([0, 1], [0.1, 0.2])  # one bucket: binned 1/2, exact 1
    assert m.get()[1] == 0.5 and m.get_global_bound() == 0.5 == abs(
        0.5 - roc_auc_score([0, 1], [0.1, 0.2])
    )


def test_pr_auc_close_to_average_precision():
    r = np.random.default_rng(3)
    y = r.integers(0, 2, 5000)
    p = np.clip(r.random(5000) * 0.6 + 0.4 * y, 0, 1)
    value = binned_auc(y, p, num_thresholds=1000, curve="PR")
    assert value == pytest.approx(average_precision_score(y, p), abs=5e-3)


def test_auc_undefined_without_both_classes():
    assert math.isnan(AUC().update([1, 1], [0.2, 0.9]).get()[1])
    assert math.isnan(AUC().get_bound())
    assert AUC(curve="PR").update([1, 1], [0.2, 0.9]).get()[1] == 1.0
    with pytest.raises(sm.ConfigError, match="curve='ROC' only"):
        AUC(curve="PR").get_bound()


def test_auc_thresholds_are_keras():
    assert AUC(num_thresholds=3).thresholds == [-1e-7, 0.5, 1 + 1e-7]


# -- shared behaviour -------------------------------------------------------------------------
def test_from_logits_equals_probabilities():
    logits_bin, logits_mc = rng.normal(size=50) * 4, rng.normal(size=(50, 4)) * 4
    y_bin, y_mc = Y_BIN[:50], Y_MC[:50]
    p_bin, p_mc = scipy.special.expit(logits_bin), scipy.special.softmax(logits_mc, axis=1)
    for make in (ECE, Brier):
        for y, logits, p in ((y_bin, logits_bin, p_bin), (y_mc, logits_mc, p_mc)):
            got = make(from_logits=True).update(y, logits).get()[1]
            assert got == pytest.approx(make().update(y, p).get()[1], rel=1e-12)
    got = AUC(from_logits=True).update(y_bin, logits_bin).get()[1]
    assert got == AUC().update(y_bin, p_bin).get()[1]


def test_state_does_not_grow_with_rows():
    def state(make, rows):
        r = np.random.default_rng(0)
        return json.dumps(make().update(r.integers(0, 2, rows), r.random(rows)).state_dict())

    def shape(text):  # the state's structure, numbers left out
        return "".join(c for c in text if not c.isdigit())

    for make in (ECE, Brier, AUC):
        small, large = state(make, 1_000), state(make, 100_000)
        # same entries; only the digits of exact sums / counts grow (log of the rows)
        assert shape(large) == shape(small), make.__name__
        assert len(large) <= len(small) * 1.6, (make.__name__, len(small), len(large))


def test_created_by_name_with_metadata():
    assert sm.create("ece").get_config()["n_bins"] == 15
    assert sm.create("calibration_error").name == "ece"
    assert sm.create("brier").name == "brier" and sm.create("brier_score").name == "brier"
    assert sm.create("auc", curve="pr").name == "auc_pr"
    assert sm.create(AUC(curve="PR").get_config()).curve == "PR"
    assert (ECE.higher_is_better, Brier.higher_is_better, AUC.higher_is_better) == (
        False,
        False,
        True,
    )


def test_functional_matches_classes():
    assert calibration_error(Y_MC, P_MC, sample_weight=W) == ECE().update(Y_MC, P_MC, W).get()[1]
    assert brier_score(Y_MC, P_MC, sample_weight=W) == Brier().update(Y_MC, P_MC, W).get()[1]
    auc = AUC(curve="PR").update(Y_BIN, P_BIN, W_INT).get()[1]
    assert binned_auc(Y_BIN, P_BIN, curve="PR", sample_weight=W_INT) == auc


@pytest.mark.parametrize("make", [ECE, Brier, AUC])
@pytest.mark.parametrize(
    ("labels", "preds", "message"),
    [
        (
            [0, 1, 0, 1],
            [0.1, 0.2, 0.3, 1.5],
            "`preds` row 3 must be probabilities in [0, 1] (pass from_logits=True for logits), got [1.5]",
        ),
        (
            [0, 1],
            [0.1, -0.2],
            "`preds` row 1 must be probabilities in [0, 1] (pass from_logits=True for logits), got [-0.2]",
        ),
        ([0, 1], [0.1, np.nan], "`preds` row 1 must be finite, got [nan]"),
        ([0, 2], [0.1, 0.2], "`labels` row 1 must be a class index in [0, 2), got [2]"),
        ([0, 0.5], [0.1, 0.2], "`labels` row 1 must be integer class indices, got [0.5]"),
        (
            [0, 1, 1],
            [0.1, 0.2],
            "`labels` and `preds` must have the same number of rows, got 3 and 2",
        ),
        (
            [[0, 1]],
            [[0.1, 0.9]],
            "`labels` must be class indices of shape (n,) or (n, 1), got shape (1, 2)",
        ),
        (
            [0],
            np.zeros((1, 2, 2)),
            "`preds` must have shape (n,), (n, 1) or (n, k), got shape (1, 2, 2)",
        ),
    ],
)
def test_bad_input_is_one_clear_line(make, labels, preds, message):
    with pytest.raises(sm.InvalidInputError) as info:
        make().update(np.asarray(labels), np.asarray(preds))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("make", [ECE, Brier])
def test_multiclass_label_out_of_range(make):
    with pytest.raises(
        sm.InvalidInputError, match=r"`labels` row 1 must be a class index in \[0, 3\), got \[3\]"
    ):
        make().update(np.array([0, 3]), np.full((2, 3), 1 / 3))


def test_auc_input_rules():
    with pytest.raises(
        sm.InvalidInputError, match=r"positive-class probabilities .* got shape \(2, 3\)"
    ):
        AUC().update(np.array([0, 1]), np.full((2, 3), 1 / 3))
    with pytest.raises(
        sm.InvalidInputError,
        match=r"`sample_weight` row 1 must be whole numbers for AUC \(its state counts rows\), got 0.5",
    ):
        AUC().update(np.array([0, 1]), np.array([0.2, 0.3]), sample_weight=np.array([1.0, 0.5]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (partial(ECE, norm="l3"), "`norm` must be one of 'l1', 'l2', 'max', got 'l3'"),
        (partial(ECE, n_bins=0), "`n_bins` must be an integer >= 1, got 0"),
        (partial(AUC, num_thresholds=1), "`num_thresholds` must be an integer >= 2, got 1"),
        (partial(AUC, curve="DET"), "`curve` must be one of 'ROC', 'PR', got 'DET'"),
        (
            partial(Brier, scale_by_half="yes"),
            "`scale_by_half` must be 'auto', True or False, got 'yes'",
        ),
    ],
)
def test_bad_options(make, message):
    with pytest.raises(sm.ConfigError) as info:
        make()
    assert message in str(info.value)


rows = st.integers(min_value=1, max_value=40)


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    n=rows,
    kind=st.sampled_from(["ece", "ece_mc", "brier_mc", "auc", "auc_pr"]),
)
def test_any_chunking_gives_the_same_bits(data, n, kind):
    seed = data.draw(st.integers(0, 2**32 - 1))
    r = np.random.default_rng(seed)
    multiclass = kind.endswith("_mc")
    y = r.integers(0, 3 if multiclass else 2, n)
    p = scipy.special.softmax(r.normal(size=(n, 3)) * 3, axis=1) if multiclass else r.random(n)
    p = np.round(p, data.draw(st.integers(1, 17))) if not multiclass else p  # edges and ties
    make = {
        "ece": partial(ECE, n_bins=5),
        "ece_mc": partial(ECE, norm="l2"),
        "brier_mc": Brier,
        "auc": partial(AUC, num_thresholds=11),
        "auc_pr": partial(AUC, num_thresholds=11, curve="PR"),
    }[kind]
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    whole = make().update(y, p).get()[1]
    chunked, parts = make(), []
    for a, b in zip([0, *cuts], [*cuts, n], strict=True):
        chunked.update(y[a:b], p[a:b])
        parts.append(make().update(y[a:b], p[a:b]))
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    assert same_bits([chunked.get()[1], merged.get()[1]], [whole, whole])


@pytest.mark.parametrize("make", [ECE, Brier, AUC, partial(ECE, from_logits=True)])
def test_invalid_rows_flags_exactly_the_rows_update_rejects(make):
    labels = np.array([0, 1, 2, 1, -1, 0.5, 1, 0])
    preds = np.array([0.1, 1.5, 0.3, np.nan, 0.2, 0.4, -3.0, 1.0])
    metric = make()
    bad = metric.invalid_rows(labels, preds)
    for row in range(len(labels)):
        try:
            make().update(labels[row : row + 1], preds[row : row + 1])
            rejected = False
        except sm.InvalidInputError:
            rejected = True
        assert rejected == bool(bad[row]), row
    keep = ~bad
    metric.update(labels[keep], preds[keep])
    assert metric.num_inst == int(keep.sum())
    assert make().invalid_rows(labels[keep], preds[keep]) is None


def test_invalid_rows_multiclass():
    labels = np.array([0, 3, 2])
    preds = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5], [0.2, np.inf, 0.5]])
    assert ECE().invalid_rows(labels, preds).tolist() == [False, True, True]
    assert ECE().invalid_rows(labels, np.zeros((2, 3))) is None  # row mismatch: left to update
