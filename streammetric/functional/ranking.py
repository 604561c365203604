"""Ranking math: area under the ROC or PR curve at fixed thresholds, as Keras' AUC.

Inputs are binary: ``preds`` of shape (n,) or (n, 1), the probability of class 1 (``from_logits``
applies a sigmoid first), labels 0/1. Rows are counted in ``num_thresholds - 1`` buckets between
consecutive thresholds (the equal-width bins of :func:`.calibration.uniform_bins`), so the state
is two integer counts per bucket and the value does not depend on how the rows were batched.

>>> binned_auc([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], num_thresholds=3)
0.75
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from ..accumulate import int_quotients
from ._ce_core import log
from ._validation import as_sample_weight
from .calibration import (
    MAX_THRESHOLDS,
    _number,
    check_choice,
    check_count,
    probabilities,
    uniform_bins,
)

__all__ = ["binned_auc", "binned_auc_bound"]

CURVES = ("ROC", "PR")


def _auc_update(
    labels: Any,
    preds: Any,
    weight: np.ndarray | None,
    *,
    num_thresholds: int,
    from_logits: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Positives and negatives (int64) per bucket between consecutive thresholds."""
    buckets, positive = _auc_rows(
        labels, preds, weight, num_thresholds=num_thresholds, from_logits=from_logits
    )
    num_buckets = num_thresholds - 1
    if weight is None:
        return (
            np.bincount(buckets[positive], minlength=num_buckets),
            np.bincount(buckets[~positive], minlength=num_buckets),
        )
    # whole-number float sums below 2**53 are exact, so these counts are exact integers
    return (
        np.bincount(buckets, weights=np.where(positive, weight, 0.0), minlength=num_buckets),
        np.bincount(buckets, weights=np.where(positive, 0.0, weight), minlength=num_buckets),
    )


def _auc_rows(
    labels: Any,
    preds: Any,
    weight: np.ndarray | None,
    *,
    num_thresholds: int,
    from_logits: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's bucket (int64) and whether it is positive (bool); weights are checked to be
    whole numbers summing below 2**53 (so that float sums of them are exact counts)."""
    label, prob = probabilities(labels, preds, from_logits=from_logits)
    if prob.shape[1] != 1:
        raise InvalidInputError(
            f"`preds` must be positive-class probabilities of shape (n,) or (n, 1), got shape {prob.shape}",
            argument="preds",
        )
    buckets = uniform_bins(prob[:, 0], num_thresholds - 1)
    if weight is not None:
        fractional = weight != np.floor(weight)
        if fractional.any():
            row = int(np.argmax(fractional))
            rule = "must be whole numbers for AUC (its state counts rows)"
            raise InvalidInputError.bad_row("sample_weight", row, rule, weight[row])
        if float(weight.sum()) >= 2.0**53:
            raise InvalidInputError.bad_argument(
                "sample_weight", "must sum to less than 2**53 per batch for AUC", weight.sum()
            )
    return buckets, label == 1


def _auc_compute(positives: Sequence[int], negatives: Sequence[int], curve: str) -> float:
    """Keras' interpolated AUC from per-bucket counts (``math.nan`` when a class is missing):
    `_auc_values` of one row."""
    pos, neg = ([int(x) for x in counts] for counts in (positives, negatives))
    return _number(_auc_values(_count_rows([pos]), _count_rows([neg]), curve)[0])


def _count_rows(rows: Any) -> np.ndarray:
    """Counts (rows, buckets) as int64, or as Python ints (an object array) beyond it."""
    try:
        return np.array(rows, dtype=np.int64)
    except OverflowError:
        return np.array(rows, dtype=object)


#: the cells (rows x buckets) `_auc_values` takes at a time: its temporaries stay a few MB
_BLOCK = 1 << 18


def _auc_values(positives: np.ndarray, negatives: np.ndarray, curve: str) -> np.ndarray:
    """Keras' interpolated AUC (float64) of each row of per-bucket counts (exact ints >= 0,
    (rows, buckets): int64, or Python ints in object arrays; the narrower padded with 0s); NaN
    where a class the curve needs is missing. A few rows at a time (`_BLOCK`); each row's value
    is its own, whatever the rows beside it.

    ``tp[i]`` and ``fp[i]`` are the rows above threshold ``i`` (in buckets ``>= i``; 0 above
    the last), ``P`` and ``N`` the positives and negatives. ROC: the trapezoids ``sum_i (fpr_i -
    fpr_i+1) (tpr_i + tpr_i+1) / 2 = sum_i neg_i (tp_i + tp_i+1) / (2 P N)``, exact ints divided
    once. PR: `_pr_terms` summed by ``math.fsum`` (correctly rounded), over ``P``.
    """
    width = max(positives.shape[1], negatives.shape[1])
    positives, negatives = (_padded(counts, width) for counts in (positives, negatives))
    out = np.empty(positives.shape[0], dtype=np.float64)
    step = max(1, _BLOCK // max(width, 1))
    for start in range(0, positives.shape[0], step):
        rows = slice(start, start + step)
        out[rows] = _auc_block(positives[rows], negatives[rows], curve)
    return out


def _padded(counts: np.ndarray, width: int) -> np.ndarray:
    if counts.shape[1] == width:
        return counts
    out = np.zeros((counts.shape[0], width), dtype=counts.dtype)
    out[:, : counts.shape[1]] = counts
    return out


def _auc_block(pos: np.ndarray, neg: np.ndarray, curve: str) -> np.ndarray:
    """`_auc_values` of a few rows: in int64 where every product below fits (the rows'
    totals squared below 2**62), else in Python ints."""
    with np.errstate(over="ignore"):
        bound = (pos.sum(axis=1, dtype=np.float64) + neg.sum(axis=1, dtype=np.float64)).max(
            initial=0.0
        )
    if pos.dtype == object or neg.dtype == object or bound * bound >= 2.0**62:
        pos, neg = pos.astype(object), neg.astype(object)
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    tp, fp = _above(pos), _above(neg)
    if curve == "ROC":
        area = (neg * (tp[:, :-1] + tp[:, 1:])).sum(axis=1)
        return int_quotients(area, 2 * total_pos * total_neg)
    rows, terms = _pr_terms(pos, neg, tp, fp)
    bounds = np.searchsorted(rows, np.arange(pos.shape[0] + 1)).tolist()
    listed = terms.tolist()
    sums = np.array([math.fsum(listed[a:b]) for a, b in pairwise(bounds)], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # float / int: the int as a float
        values = sums / total_pos.astype(np.float64)
    values[np.asarray(total_pos == 0, dtype=bool)] = math.nan
    return values


def _above(counts: np.ndarray) -> np.ndarray:
    """Rows above each threshold: suffix sums of the bucket counts, and 0 above the last."""
    out = np.zeros((counts.shape[0], counts.shape[1] + 1), dtype=counts.dtype)
    out[:, :-1] = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    return out


def _pr_terms(
    pos: np.ndarray, neg: np.ndarray, tp: np.ndarray, fp: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``interpolate_pr_auc`` terms (Davis & Goadrich), before dividing by positives:
    (each term's row, the terms), row by row. A bucket without positives (zero slope) has none;
    each division of exact ints is rounded once (`int_quotients`), each float operation is one
    IEEE operation, as on Python floats."""
    at = np.nonzero(np.asarray((pos != 0) & (pos + neg != 0), dtype=bool))
    rows, i = at
    d_tp, d_p = pos[at], pos[at] + neg[at]
    tp_above, p_above, p_here = tp[rows, i + 1], tp[rows, i + 1] + fp[rows, i + 1], tp[at] + fp[at]
    slope = int_quotients(d_tp, d_p)
    intercept = int_quotients(tp_above * d_p - d_tp * p_above, d_p)  # tp - slope * p, rounded once
    ratios = int_quotients(p_here, p_above, fill=1.0)
    log_ratios = log(ratios)  # the same bits on every CPU
    return rows, slope * (d_tp.astype(np.float64) + intercept * log_ratios)


def _auc_bound(positives: Sequence[int], negatives: Sequence[int]) -> float:
    """Half the share of (positive, negative) pairs that fall into the same bucket."""
    pos, neg = [int(x) for x in positives], [int(x) for x in negatives]
    total_pos, total_neg = sum(pos), sum(neg)
    if total_pos == 0 or total_neg == 0:
        return math.nan
    return sum(p * n for p, n in zip(pos, neg, strict=True)) / (2 * total_pos * total_neg)


def _auc_counts(
    labels: Any, preds: Any, num_thresholds: int, from_logits: bool, sample_weight: Any
) -> tuple[list[int], list[int]]:
    num_thresholds = check_count(num_thresholds, "num_thresholds", 2, MAX_THRESHOLDS)
    weight = as_sample_weight(sample_weight, np.asarray(labels).reshape(-1).shape[0])
    positives, negatives = _auc_update(
        labels, preds, weight, num_thresholds=num_thresholds, from_logits=from_logits
    )
    return positives.tolist(), negatives.tolist()


def binned_auc(
    labels: Any,
    preds: Any,
    *,
    num_thresholds: int = 200,
    curve: str = "ROC",
    from_logits: bool = False,
    sample_weight: Any = None,
) -> float:
    """Area under the ROC or PR curve at ``num_thresholds`` fixed thresholds, as Keras 3's AUC.

    Thresholds are ``-1e-7, 1/(T-1), ..., (T-2)/(T-1), 1 + 1e-7``; a row is predicted positive at
    ``t`` when ``pred > t``. ROC: trapezoids over (fpr, tpr); PR: Keras' Davis & Goadrich
    interpolation. Computed in float64 from exact integer counts (``sample_weight`` must be whole
    numbers).

    >>> binned_auc([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], num_thresholds=3, sample_weight=[1, 0, 0, 1])
    1.0
    """
    curve = check_choice(curve, "curve", CURVES)
    return _auc_compute(
        *_auc_counts(labels, preds, num_thresholds, from_logits, sample_weight), curve
    )


def binned_auc_bound(
    labels: Any,
    preds: Any,
    *,
    num_thresholds: int = 200,
    from_logits: bool = False,
    sample_weight: Any = None,
) -> float:
    """Bound on ``|binned ROC AUC - exact ROC AUC|``: ``sum_b P_b N_b / (2 P N)``.

    Pairs in different buckets are ordered the same by both; a pair inside one bucket counts 1/2
    in the binned AUC and 0, 1/2 or 1 in the exact one (ties count 1/2).

    >>> binned_auc_bound([0, 1, 0, 1], [0.1, 0.2, 0.6, 0.9], num_thresholds=3)
    0.25
    """
    return _auc_bound(*_auc_counts(labels, preds, num_thresholds, from_logits, sample_weight))
