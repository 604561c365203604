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
from itertools import accumulate
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from ._ce_core import log
from ._validation import as_sample_weight
from .calibration import MAX_THRESHOLDS, check_choice, check_count, probabilities, uniform_bins

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
    """Keras' interpolated AUC from per-bucket counts (NaN when a class is missing)."""
    pos, neg = [int(x) for x in positives], [int(x) for x in negatives]
    total_pos, total_neg = sum(pos), sum(neg)
    # tp[i] / fp[i]: rows above threshold i, i.e. in buckets >= i (tp[-1] == 0)
    tp, fp = _above(pos), _above(neg)
    if curve == "ROC":
        if total_pos == 0 or total_neg == 0:
            return math.nan
        # trapezoids: sum_i (fpr_i - fpr_i+1) (tpr_i + tpr_i+1) / 2, fpr_i - fpr_i+1 = neg_i / N
        area = sum(n * (tp[i] + tp[i + 1]) for i, n in enumerate(neg))
        return area / (2 * total_pos * total_neg)
    if total_pos == 0:
        return math.nan
    return math.fsum(_pr_increments(pos, neg, tp, fp)) / total_pos


def _above(counts: list[int]) -> list[int]:
    """Rows above each threshold: suffix sums of the bucket counts, and 0 above the last."""
    suffix = list(accumulate(reversed(counts)))
    return [*reversed(suffix), 0]


def _pr_increments(pos: list[int], neg: list[int], tp: list[int], fp: list[int]) -> list[float]:
    """Keras' ``interpolate_pr_auc`` terms (Davis & Goadrich), before dividing by positives."""
    parts, ratios = [], []
    for i in range(len(pos)):
        d_tp, d_p = pos[i], pos[i] + neg[i]
        if d_tp == 0 or d_p == 0:
            continue  # zero slope
        p_above, p_here = tp[i + 1] + fp[i + 1], tp[i] + fp[i]
        slope = d_tp / d_p
        intercept = (tp[i + 1] * d_p - d_tp * p_above) / d_p  # tp - slope * p, exactly rounded
        parts.append((slope, d_tp, intercept))
        ratios.append(p_here / p_above if p_above > 0 else 1.0)
    log_ratios = log(np.array(ratios, dtype=np.float64)).tolist()  # the same bits on every CPU
    return [
        slope * (d_tp + intercept * log_ratio)
        for (slope, d_tp, intercept), log_ratio in zip(parts, log_ratios, strict=True)
    ]


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
