"""Every group's ECE and AUC at once (`ECE.group_values`, `AUC.group_values`) are the bits each
group's state alone gives (`EvalMetric.name_values`), and the bits of the formulas one state
was computed by before the math was shared (`_reference_ece`, `_reference_auc` below): many
small groups, some empty, some of one class only, some of zero weight only, weighted and
unweighted batches mixed, every norm and curve, few and many bins and thresholds, binary and
multiclass, probabilities and logits; and ``eval --by`` (with ``--weights`` and ``--ci`` too)
writes the same bytes as group by group."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.accumulate import ExactSum
from streammetric.functional._ce_core import log
from streammetric.functional.calibration import calibration_error
from streammetric.functional.ranking import binned_auc
from streammetric.metrics import bootstrap, calibration
from streammetric.metrics.base import EvalMetric
from streammetric.metrics.state import GroupedState

from .test_group_values import _outputs, per_group, same_bits

GROUPS = 40


# -- the formulas of one state, as they were before the math was shared ----------------------


def _reference_ece(
    weight: list[int], confidence: list[int], correct: list[int], norm: str
) -> float:
    total = sum(weight)
    if total == 0:
        return math.nan
    bins = [(abs(c - s), w) for w, s, c in zip(weight, confidence, correct, strict=True) if w > 0]
    if norm == "l1":
        return sum(gap for gap, _ in bins) / total
    if norm == "max":
        return float(max(Fraction(gap, w) for gap, w in bins))
    squares = sum((Fraction(gap * gap, w) for gap, w in bins), Fraction(0))
    return math.sqrt(float(squares / total))


def _reference_auc(positives: list[int], negatives: list[int], curve: str) -> float:
    width = max(len(positives), len(negatives))
    pos = [int(x) for x in positives] + [0] * (width - len(positives))
    neg = [int(x) for x in negatives] + [0] * (width - len(negatives))
    total_pos, total_neg = sum(pos), sum(neg)
    tp = [sum(pos[i:]) for i in range(width + 1)]
    fp = [sum(neg[i:]) for i in range(width + 1)]
    if curve == "ROC":
        if total_pos == 0 or total_neg == 0:
            return math.nan
        area = sum(n * (tp[i] + tp[i + 1]) for i, n in enumerate(neg))
        return area / (2 * total_pos * total_neg)
    if total_pos == 0:
        return math.nan
    parts, ratios = [], []
    for i in range(width):
        d_tp, d_p = pos[i], pos[i] + neg[i]
        if d_tp == 0 or d_p == 0:
            continue
        p_above, p_here = tp[i + 1] + fp[i + 1], tp[i] + fp[i]
        intercept = (tp[i + 1] * d_p - d_tp * p_above) / d_p
        parts.append((d_tp / d_p, d_tp, intercept))
        ratios.append(p_here / p_above if p_above > 0 else 1.0)
    logs = log(np.array(ratios, dtype=np.float64)).tolist()
    terms = [s * (d + b * r) for (s, d, b), r in zip(parts, logs, strict=True)]
    return math.fsum(terms) / total_pos


def reference(metric: EvalMetric, state: dict[str, Any]) -> float:
    """``metric``'s value of one state by the reference formulas."""
    if isinstance(metric, sm.ECE):
        weight, confidence, correct = (
            ([s.units for s in state[f"sum_{q}"].sums()] + [0] * metric.n_bins)[: metric.n_bins]
            for q in ("weight", "confidence", "correct")
        )
        return _reference_ece(weight, confidence, correct, metric.norm)
    assert isinstance(metric, sm.AUC)
    return _reference_auc(
        state["num_positive"].tolist(), state["num_negative"].tolist(), metric.curve
    )


# -- grouped states ---------------------------------------------------------------------------


def rows(
    n: int, classes: int, from_logits: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, preds (binary (n,) or (n, classes)) and group codes: every fifth group of
    ``0 .. GROUPS - 1`` without rows, groups ``g % 7 == 1`` of label 0 only and ``g % 7 == 2`` of
    label 1 only; probabilities rounded to tenths (so rows fall on bin edges too)."""
    codes = rng.integers(0, GROUPS, n)
    codes = np.where(codes % 5 == 4, codes - 1, codes)
    top = max(classes, 2)
    labels = rng.integers(0, top, n)
    labels[codes % 7 == 1] = 0
    labels[codes % 7 == 2] = 1
    if from_logits:
        preds = rng.normal(scale=3.0, size=(n, classes))
        preds[codes % 11 == 3] *= 100.0  # probabilities of 0 and 1 exactly
    else:
        preds = np.round(rng.random((n, classes)), 1)
        if classes > 1:
            preds /= np.maximum(preds.sum(axis=1, keepdims=True), 1e-9)
            preds[preds.sum(axis=1) == 0] = 1.0 / classes
    return labels, preds[:, 0] if classes == 1 else preds, codes


def grouped_state(
    metric: EvalMetric, classes: int, from_logits: bool, weights: str, seed: int
) -> GroupedState:
    """The grouped state of two batches: ``weights`` ``"none"``, ``"all"`` (every batch weighted)
    or ``"mixed"`` (the second only); weights whole numbers for AUC (0 in some rows, and in
    every row of groups ``g % 9 == 5``), else some fractions too; a few empty groups beyond the
    last code."""
    rng = np.random.default_rng(seed)
    state = GroupedState(metric.state_specs())
    choices = [0.0, 1.0, 2.0, 7.0] if isinstance(metric, sm.AUC) else [0.0, 0.1, 1 / 3, 1.0, 2.5]
    for batch in range(2):
        labels, preds, codes = rows(250, classes, from_logits, rng)
        weight = None
        if weights == "all" or (weights == "mixed" and batch):
            weight = rng.choice(choices, labels.shape[0])
            weight[codes % 9 == 5] = 0.0
        state.add(metric.row_terms(labels, preds, weight), codes, GROUPS)
    state.reserve(GROUPS + 3)
    return state


def check(metric: EvalMetric, state: GroupedState) -> None:
    """`group_values` (and `group_arrays`, the replicates' `bootstrap.leaf_values`, `group_notes`)
    against each group's state alone and the reference formulas."""
    values = metric.group_values(state)
    assert values is not None
    expected = per_group(metric, state, None)
    assert values.keys() == expected.keys() == {metric.name}
    got = values[metric.name]
    assert got.dtype == np.float64 and got.shape == (state.size,)
    assert same_bits(got, expected[metric.name]), (got, expected[metric.name])
    references = np.array([reference(metric, state.state(g)) for g in range(state.size)])
    assert same_bits(got, references), (got, references)
    arrays = metric.group_arrays(state)
    assert arrays is not None and same_bits(arrays[metric.name], got)
    assert same_bits(bootstrap.leaf_values(metric, state)[metric.name], got)
    notes = [metric.may_note(state.state(g)) for g in range(state.size)]
    assert metric.group_notes(state, values).tolist() == notes


@pytest.mark.parametrize("weights", ["none", "all", "mixed"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("classes", [1, 3])
def test_ece_of_every_group_at_once_is_each_groups_bits(classes, norm, weights):
    for n_bins, from_logits in itertools.product([1, 3, 15, 40], [False, True]):
        metric = sm.ECE(n_bins=n_bins, norm=norm, from_logits=from_logits)
        seed = n_bins + 100 * from_logits + 1000 * classes
        state = grouped_state(metric, classes, from_logits, weights, seed)
        check(metric, state)
        assert not np.isnan(metric.group_values(state)["ece"][: GROUPS - 1]).all()


@pytest.mark.parametrize("weights", ["none", "all", "mixed"])
@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_of_every_group_at_once_is_each_groups_bits(curve, weights):
    for num_thresholds, from_logits in itertools.product([2, 3, 7, 200], [False, True]):
        metric = sm.AUC(num_thresholds=num_thresholds, curve=curve, from_logits=from_logits)
        seed = num_thresholds + 100 * from_logits
        state = grouped_state(metric, 1, from_logits, weights, seed)
        check(metric, state)
        values = metric.group_values(state)[metric.name]
        assert np.isnan(values).any() and not np.isnan(values).all()


def test_extreme_weights_and_counts():
    """ECE of weights from the smallest subnormal to 1e308 (sums beyond the float range, exact),
    AUC of counts whose products pass 2**62 (Python ints), beside ordinary groups."""
    ece = [sm.ECE(n_bins=4, norm=norm) for norm in ("l1", "l2", "max")]
    labels = np.array([1, 0, 1, 1, 0, 1, 0, 0])
    preds = np.array([0.9, 0.1, 0.3, 0.7, 0.55, 0.2, 0.8, 0.4])
    weight = np.array([1e308, 1e308, 5e-324, 1e-300, 3.0, 1e308, 2.5e-310, 0.1])
    codes = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    for metric in ece:
        state = GroupedState(metric.state_specs())
        state.add(metric.row_terms(labels, preds, weight), codes, 4)
        check(metric, state)
    for curve in ("ROC", "PR"):
        metric = sm.AUC(num_thresholds=5, curve=curve)
        state = GroupedState(metric.state_specs())
        state.add(metric.row_terms(labels, preds), codes, 4)
        big = {
            "num_positive": np.array([3 << 40, 0, 5 << 40, 1], dtype=np.int64),
            "num_negative": np.array([1 << 41, 7 << 40, 0, 3], dtype=np.int64),
            "num_inst": 1,
        }
        state.set_state(1, big)
        state.set_state(4, big)
        check(metric, state)


def test_a_sum_beyond_the_floats_is_computed_group_by_group():
    """A group whose sum holds inf (a loaded state, say): no shortcut (None)."""
    metric = sm.ECE(n_bins=2)
    state = GroupedState(metric.state_specs())
    state.add(metric.row_terms(np.array([1, 0]), np.array([0.9, 0.2])), np.array([0, 1]), 2)
    one = state.state(1)
    one["sum_weight"]._add_sum(0, ExactSum.from_values([math.inf]))
    state.set_state(1, one)
    assert metric.group_values(state) is None


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_blocks_of_groups_give_the_bits_of_all_at_once(monkeypatch, norm):
    """`ECE.group_values` takes `_BLOCK` sums of an entry at a time: blocks of any size (one
    group, a few, not dividing the groups) give the same values."""
    metric = sm.ECE(n_bins=5, norm=norm)
    state = grouped_state(metric, 1, False, "mixed", seed=4)
    whole = metric.group_values(state)[metric.name]
    for block in (5, 15, 35):  # 1, 3 and 7 groups a block
        monkeypatch.setattr(calibration, "_BLOCK", block)
        assert same_bits(metric.group_values(state)[metric.name], whole)


def test_no_groups_and_no_rows():
    for metric in (sm.ECE(), sm.ECE(norm="l2"), sm.AUC(), sm.AUC(curve="PR")):
        state = GroupedState(metric.state_specs())
        assert metric.group_values(state)[metric.name].shape == (0,)
        state.reserve(3)
        check(metric, state)
        assert np.isnan(metric.group_values(state)[metric.name]).all()


def test_functional_values_are_the_reference_formulas():
    """`calibration_error` and `binned_auc` (one state: the same math) as before."""
    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(1, 40))
        labels = rng.integers(0, 2, n)
        preds = np.round(rng.random(n), int(rng.integers(1, 4)))
        weight = rng.choice([0.0, 1.0, 3.0, 0.25], n) if trial % 2 else None
        for norm in ("l1", "l2", "max"):
            metric = sm.ECE(n_bins=7, norm=norm)
            metric.update(labels, preds, weight)
            expected = reference(metric, metric._local)
            got = calibration_error(labels, preds, n_bins=7, norm=norm, sample_weight=weight)
            assert same_bits(np.float64(got), np.float64(expected))
        if weight is not None:
            weight = np.floor(weight)
        for curve in ("ROC", "PR"):
            metric = sm.AUC(num_thresholds=9, curve=curve)
            metric.update(labels, preds, weight)
            expected = reference(metric, metric._local)
            got = binned_auc(labels, preds, num_thresholds=9, curve=curve, sample_weight=weight)
            assert same_bits(np.float64(got), np.float64(expected))


# -- the command line --------------------------------------------------------------------------

CLI_METRICS = ["ece", "ece:norm=l2", "ece:norm=max,n_bins=4", "auc", "auc:curve=PR"]


@pytest.fixture
def binary_group_file(tmp_path: Path) -> Path:
    """60 groups of a few binary rows (groups g % 7 == 1 of label 0 only), whole weights."""
    rng = np.random.default_rng(9)
    n = 400
    groups = rng.integers(0, 60, n)
    labels = rng.integers(0, 2, n)
    labels[groups % 7 == 1] = 0
    table = pa.table(
        {
            "label": labels,
            "prob": np.round(rng.random(n), 2).astype(np.float32),
            "g": [f"g{i:02d}" for i in groups],
            "w": rng.choice([0.0, 1.0, 2.0, 5.0], n),
        }
    )
    path = tmp_path / "binary_groups.parquet"
    pq.write_table(table, path, row_group_size=100)
    return path


@pytest.mark.parametrize("extra", [[], ["--weights", "w"], ["--ci", "0.9", "--bootstrap", "40"]])
def test_eval_by_writes_the_bytes_of_group_by_group(binary_group_file, monkeypatch, extra):
    args = [
        "--preds",
        "prob",
        *itertools.chain.from_iterable(("-m", m) for m in CLI_METRICS),
        *extra,
    ]
    at_once = _outputs(binary_group_file, args)
    with monkeypatch.context() as patch:  # the per-group path: no shortcut anywhere
        patch.setattr(EvalMetric, "group_arrays", lambda self, grouped, like=None: None)
        for klass in (sm.ECE, sm.AUC):
            patch.setattr(klass, "group_values", lambda self, grouped: None)
        by_group = _outputs(binary_group_file, args)
    assert at_once == by_group
