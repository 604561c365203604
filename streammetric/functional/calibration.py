"""Calibration math: expected calibration error and Brier score (binned AUC: :mod:`.ranking`).

Inputs are binary (``preds`` of shape (n,) or (n, 1): the probability of class 1, labels 0/1) or
multiclass (``preds`` of shape (n, k), k >= 2; labels are class indices). ``from_logits=True``
applies a sigmoid (binary) or softmax (multiclass) first, in float64 and numerically stable.

Every value is computed from exact per-bin sums or integer counts, so it does not depend on how
the rows were batched. Bins are equal-width on (lo, hi]: value ``v`` is in bin ``b`` when
``edge[b] < v <= edge[b + 1]`` with ``edge[j] = j / n`` rounded to float64, the first bin also
holding 0. The float nearest ``j / n`` is thus on the edge, as a user who writes ``j / n``
expects; ``ceil(v * n) - 1`` would not do that (``7 / 25 * 25`` rounds above 7).

>>> calibration_error([0, 0, 1, 1, 1], [0.25, 0.25, 0.55, 0.75, 0.75], n_bins=2)
0.29
>>> brier_score([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3])  # as scikit-learn
0.03749999999999999
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from .._exceptions import ConfigError, InvalidInputError
from ..accumulate import ExactSum, exact_sum_units, int_quotients
from ._ce_core import sigmoid, softmax
from ._validation import (
    as_class_indices,
    as_float_rows,
    as_sample_weight,
    check_same_rows,
    first_bad_row,
)

__all__ = [
    "brier_score",
    "calibration_error",
    "uniform_bins",
]

NORMS = ("l1", "l2", "max")
_UNIT_SHIFT = 1074  # ExactSum units are 2**-1074; an integer count c is c << 1074 units
_ONE = 1 << _UNIT_SHIFT
_SMALL_BATCH = 256


# -- options ----------------------------------------------------------------------------------
def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices`` (case-insensitive for upper-case choices)."""
    key = value.upper() if isinstance(value, str) and choices[0].isupper() else value
    if key not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(key)


#: The most ECE bins (each keeps three exact sums: ~1 KB a bin in a metric object).
MAX_BINS = 10_000
#: The most AUC thresholds (two int64 counts a bucket in a metric object: 1.6 MB at the cap).
MAX_THRESHOLDS = 100_000


def check_count(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """An integer option in [minimum, maximum]; ``maximum`` caps what it allocates."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(
            f"`{name}` must be an integer in [{minimum}, {maximum}] (it sizes the state), got {value!r}"
        )
    return int(value)


def check_scale(scale_by_half: Any) -> bool | str:
    if scale_by_half != "auto" and not isinstance(scale_by_half, bool):
        raise ConfigError(f"`scale_by_half` must be 'auto', True or False, got {scale_by_half!r}")
    return scale_by_half


# -- inputs -----------------------------------------------------------------------------------
def probabilities(labels: Any, preds: Any, *, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (n,) and float64 probabilities (n, k); k == 1 is binary (P(class 1))."""
    raw = np.asarray(preds)
    if raw.ndim > 2:
        raise InvalidInputError(
            f"`preds` must have shape (n,), (n, 1) or (n, k), got shape {raw.shape}",
            argument="preds",
        )
    pred = np.ascontiguousarray(as_float_rows(raw, "preds"))
    label = np.asarray(labels)
    if (label.ndim == 2 and label.shape[1] == 1) or label.ndim == 0:
        label = label.reshape(-1)
    if label.ndim != 1:
        raise InvalidInputError(
            f"`labels` must be class indices of shape (n,) or (n, 1), got shape {label.shape}",
            argument="labels",
        )
    check_same_rows(label, pred)
    label = as_class_indices(label, "labels", num_classes=max(pred.shape[1], 2))
    if from_logits:
        return label, sigmoid(pred) if pred.shape[1] == 1 else softmax(pred)
    bad = (pred < 0) | (pred > 1)
    if bad.any():
        row = first_bad_row(bad)
        rule = "must be probabilities in [0, 1] (pass from_logits=True for logits)"
        raise InvalidInputError.bad_row("preds", row, rule, pred[row])
    return label, pred


def _invalid_rows(labels: Any, preds: Any, *, from_logits: bool) -> np.ndarray | None:
    """Rows :func:`probabilities` rejects for their values (``on_invalid="skip"``), or None.

    Shape and dtype errors are left to the update.
    """
    label, pred = np.asarray(labels), np.asarray(preds)
    if pred.ndim > 2 or label.dtype.kind not in "biuf" or pred.dtype.kind not in "biuf":
        return None
    pred = pred.reshape(pred.shape[0] if pred.ndim else 1, -1).astype(np.float64)
    if label.ndim > 1 and label.shape[1:] != (1,):
        return None
    label = label.reshape(-1).astype(np.float64)
    if label.shape[0] != pred.shape[0]:
        return None
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(pred).all(axis=1)
        if not from_logits:
            bad |= ((pred < 0) | (pred > 1)).any(axis=1)
        bad |= ~np.isfinite(label) | (label < 0) | (label >= max(pred.shape[1], 2))
        bad |= label != np.floor(label)
    return bad if bad.any() else None


# -- bins -------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _edges(n_bins: int) -> np.ndarray:
    edges = np.array([j / n_bins for j in range(n_bins + 1)], dtype=np.float64)
    edges.flags.writeable = False
    return edges


def uniform_bins(values: Any, n_bins: int) -> np.ndarray:
    """Index (int64) of the bin ``(edge[b], edge[b + 1]]`` holding each value in [0, 1].

    ``edge[j]`` is ``j / n_bins`` rounded to float64 and the comparison is exact, so the float
    ``j / n`` lands in bin ``j - 1``; 0 lands in bin 0 and 1 in the last bin.

    >>> uniform_bins([0.0, 0.28, 7 / 25, 0.2800001, 1.0], 25).tolist()
    [0, 6, 6, 7, 24]
    """
    index = np.searchsorted(_edges(n_bins), np.asarray(values, dtype=np.float64), side="left")
    return np.clip(index - 1, 0, n_bins - 1).astype(np.int64)


def per_bin_units(bins: np.ndarray, values: np.ndarray, n_bins: int) -> list[int]:
    """Exact sum of ``values`` in each bin, in ExactSum units (integers of 2**-1074)."""
    if len(values) <= _SMALL_BATCH:  # Python integers beat n_bins vectorised passes here
        sums = [0] * n_bins
        for index, value in zip(bins.tolist(), values.tolist(), strict=True):
            numerator, denominator = value.as_integer_ratio()  # denominator: 2**k, k <= 1074
            sums[index] += numerator * (_ONE // denominator)
        return sums
    counts = np.bincount(bins, minlength=n_bins)
    order = np.argsort(bins, kind="stable")
    grouped = values[order]
    bounds = [0, *np.cumsum(counts).tolist()]
    return [
        exact_sum_units(grouped[start:stop]) if stop > start else 0
        for start, stop in pairwise(bounds)
    ]


# -- expected calibration error ---------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationSums:
    """Per-bin exact sums (ExactSum units) of weight, weighted confidence and weighted hits."""

    weight: list[int]
    confidence: list[int]
    correct: list[int]
    num_rows: int = 0


def _calibration_update(
    labels: Any,
    preds: Any,
    weight: np.ndarray | None,
    *,
    n_bins: int,
    from_logits: bool,
) -> CalibrationSums:
    bins, confidence, correct = _calibration_rows(
        labels, preds, n_bins=n_bins, from_logits=from_logits
    )
    if weight is None:
        counts = np.bincount(bins, minlength=n_bins).tolist()
        hits = np.bincount(bins[correct], minlength=n_bins).tolist()
        return CalibrationSums(
            weight=[c << _UNIT_SHIFT for c in counts],
            confidence=per_bin_units(bins, confidence, n_bins),
            correct=[h << _UNIT_SHIFT for h in hits],
            num_rows=len(bins),
        )
    return CalibrationSums(
        weight=per_bin_units(bins, weight, n_bins),
        confidence=per_bin_units(bins, confidence * weight, n_bins),
        correct=per_bin_units(bins, np.where(correct, weight, 0.0), n_bins),
        num_rows=len(bins),
    )


def _calibration_rows(
    labels: Any, preds: Any, *, n_bins: int, from_logits: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's bin (int64), confidence (float64) and whether it is correct (bool)."""
    label, prob = probabilities(labels, preds, from_logits=from_logits)
    if prob.shape[1] == 1:  # binary: the positive-class probability against the label
        confidence, correct = prob[:, 0], label == 1
    else:  # top-1: np.argmax takes the first maximum on ties, as torch.max(dim=1)
        top = np.argmax(prob, axis=1)
        confidence, correct = prob[np.arange(len(top)), top], top == label
    return uniform_bins(confidence, n_bins), confidence, correct


def _calibration_compute(sums: CalibrationSums, norm: str) -> float:
    """ECE from exact per-bin sums: every step is exact up to one final rounding (and sqrt);
    `_calibration_values` of one row (NaN: ``math.nan``)."""
    gaps = [
        abs(correct - confidence)
        for confidence, correct in zip(sums.confidence, sums.correct, strict=True)
    ]
    weight = np.array([list(sums.weight)], dtype=object)
    return _number(_calibration_values(weight, np.array([gaps], dtype=object), norm)[0])


def _number(value: np.float64) -> float:
    """A float of a one-row value; NaN as ``math.nan`` itself (as the scalar math gave it: a
    result holding it compares equal to another, ``nan is nan``)."""
    return math.nan if math.isnan(value) else float(value)


def _calibration_values(weight: np.ndarray, gaps: np.ndarray, norm: str) -> np.ndarray:
    """ECE of each row of exact per-bin sums, float64: exact up to one final rounding (and
    sqrt), NaN for a row of no weight. ``weight`` holds the bins' weights ``W_b`` (>= 0),
    ``gaps`` their ``|C_b - S_b|`` (correct minus confidence sums), Python ints in ExactSum
    units in object arrays (rows, bins). With ``W`` the row's total weight and the bins of
    ``W_b > 0`` only:

    * l1 ``sum_b |C_b - S_b| / W``, the exact ints divided once (Python's ``int / int``);
    * max ``max_b |C_b - S_b| / W_b``, each divided once: rounding is monotonic, so the
      largest rounded ratio is the largest ratio rounded;
    * l2 ``sqrt(sum_b (C_b - S_b)**2 / W_b / W)``: the sum over the bins' least common
      denominator ``L``, ``sum_b (C_b - S_b)**2 (L / W_b) / (L W)``, divided once, after every
      int of the row is divided by the power of 2 they all share (the same ratio, in ints of
      a few dozen bits instead of over a thousand: ``weight`` and ``gaps`` are divided in
      place).
    """
    total = weight.sum(axis=1)
    empty = np.asarray(total == 0, dtype=bool)
    used = np.asarray(weight > 0, dtype=bool)
    if norm == "l2":  # 2**k divides every int of the row: k the lowest set bit of their OR
        low = np.bitwise_or.reduce(np.concatenate([weight, gaps], axis=1), axis=1).tolist()
        shift = np.array([(v & -v).bit_length() - 1 if v else 0 for v in low], dtype=object)
        total = total >> shift
        for array in (weight, gaps):  # in place: the long ints go as the short ones come
            np.right_shift(array, shift[:, None], out=array)
    gaps = np.where(used, gaps, 0)
    if norm == "l1":
        values = int_quotients(gaps.sum(axis=1), np.where(empty, 1, total))
    elif norm == "max":
        ratios = int_quotients(gaps, np.where(used, weight, 1))
        values = np.where(used, ratios, -math.inf).max(axis=1, initial=-math.inf)
    else:
        weight = np.where(used, weight, 1)
        common = np.lcm.reduce(weight, axis=1)
        squares = (gaps * gaps * (common[:, None] // weight)).sum(axis=1)
        values = np.sqrt(int_quotients(squares, np.where(empty, 1, common * total)))
    values[empty] = math.nan
    return values


def calibration_error(
    labels: Any,
    preds: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    from_logits: bool = False,
    sample_weight: Any = None,
) -> float:
    """Expected calibration error over ``n_bins`` equal-width confidence bins.

    With bin weight ``W_b``, mean confidence ``conf_b`` and accuracy ``acc_b``, ``W = sum_b W_b``:
    ``l1 = sum_b (W_b / W) |acc_b - conf_b|``, ``l2 = sqrt(sum_b (W_b / W) (acc_b - conf_b)^2)``,
    ``max = max_b |acc_b - conf_b|`` (over non-empty bins). Binary rows use the positive-class
    probability as confidence and the label as accuracy; multiclass rows the top-1 probability
    and whether the top-1 class is the label.

    >>> preds = [[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]]
    >>> calibration_error([0, 1, 2, 0], preds, n_bins=3)  # torchmetrics prints tensor(0.2000)
    0.2
    """
    n_bins = check_count(n_bins, "n_bins", 1, MAX_BINS)
    norm = check_choice(norm, "norm", NORMS)
    weight = as_sample_weight(sample_weight, np.asarray(labels).reshape(-1).shape[0])
    sums = _calibration_update(labels, preds, weight, n_bins=n_bins, from_logits=from_logits)
    return _calibration_compute(sums, norm)


# -- Brier score ------------------------------------------------------------------------------
def _brier_update(
    labels: Any, preds: Any, *, from_logits: bool, scale_by_half: bool | str
) -> np.ndarray:
    """Per-row, per-class terms (n, c) whose row sums are the per-sample Brier scores."""
    label, prob = probabilities(labels, preds, from_logits=from_logits)
    num_classes = max(prob.shape[1], 2)
    halve = num_classes < 3 if scale_by_half == "auto" else bool(scale_by_half)
    if prob.shape[1] == 1:  # both one-hot columns have the same error (y - p)^2
        error = label[:, None] - prob
        return (error * error) * (1.0 if halve else 2.0)
    diff = prob.copy()
    diff[np.arange(len(label)), label] -= 1.0
    return (diff * diff) * (0.5 if halve else 1.0)


def brier_score(
    labels: Any,
    preds: Any,
    *,
    from_logits: bool = False,
    scale_by_half: bool | str = "auto",
    sample_weight: Any = None,
) -> float:
    """Brier score ``sum_i w_i s * sum_c (y_ic - p_ic)^2 / sum_i w_i`` (scikit-learn's).

    ``y`` is one-hot; binary rows are the two columns ``(1 - p, p)``. ``s`` is 1/2 when
    ``scale_by_half`` is True, or "auto" with fewer than 3 classes (so binary is the mean of
    ``(y - p)^2``, multiclass lies in [0, 2]), as ``sklearn.metrics.brier_score_loss``.

    >>> brier_score([0, 1, 2], [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6]])
    0.1466666666666667
    """
    check_scale(scale_by_half)
    terms = _brier_update(labels, preds, from_logits=from_logits, scale_by_half=scale_by_half)
    weight = as_sample_weight(sample_weight, terms.shape[0])
    if weight is None:
        return ExactSum.from_values(terms).ratio(terms.shape[0])
    return ExactSum.from_values(terms * weight[:, None]).ratio(ExactSum.from_values(weight))
