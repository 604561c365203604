"""Classification math: predicted classes, top-k hits, outcome counts, and the values from counts:
precision, recall, F-beta and F1 per class and averaged, MCC, PCC, the confusion matrix.

Everything the metric objects keep is an exact count (int64 arrays, or exact weighted sums), and
every value is computed from those counts in Python integer arithmetic: one correctly rounded
division (precision, recall, F-beta, a confusion-matrix cell), a correctly rounded mean of exact
ratios (macro and weighted averages), or one correctly rounded ``num / sqrt(den)`` (MCC, PCC).
Counts are Python ints in one unit: rows, or ``2**-1074`` when weights were given (the units of
:class:`~streammetric.accumulate.ExactSum`); a ratio of two counts does not depend on the unit.

Conventions (MXNet 1.x, defects fixed):

* ``preds`` shaped like ``labels`` (trailing 1s ignored) are predicted class indices; otherwise
  they are scores and the prediction is their argmax over ``axis`` (the first maximum wins).
* Top-k: the true class ``y`` is a hit when ``rank < k``, with
  ``rank = #{j : s_j > s_y} + #{j > y : s_j == s_y}``: among equal scores the higher class index
  ranks first, as MXNet 1.9.1 (the last k columns of ``numpy.argpartition``) and scikit-learn's
  ``top_k_accuracy_score`` (documented) rank them. So with ties, ``top_k=1`` can differ from
  :func:`accuracy`, whose argmax takes the lower index (as MXNet's and NumPy's argmax).
* Multiclass state is three count vectors per class (tp, fp, fn): F1, MCC and PCC need only the
  diagonal and the margins of the confusion matrix, so memory is O(classes), not O(classes^2).

>>> accuracy([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]])
0.6666666666666666
>>> f1_score([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]])
0.8
>>> pcc([0, 1, 2, 2], [0, 1, 1, 2])
0.7
>>> precision_score([0, 1, 2, 2], [0, 1, 1, 2], class_type="multiclass", average=None)
array([1. , 0.5, 1. ])
>>> confusion_matrix([0, 1, 2, 2], [0, 1, 1, 2], normalize="true")
array([[1. , 0. , 0. ],
       [0. , 1. , 0. ],
       [0. , 0.5, 0.5]])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from .._exceptions import ConfigError, InvalidInputError
from .._kernels import class_ranks
from ..accumulate import ExactSum, GroupedExactSum
from ._classification_inputs import (
    CLASS_AVERAGES,
    MAX_MATRIX_CLASSES,
    _as_scores,
    _as_zero_one,
    _by_row,
    _rows,
    _strip,
    check_beta,
    check_config,
    check_normalize,
    check_num_classes,
    check_zero_division,
    zero_division_value,
)
from ._validation import as_class_indices, as_sample_weight, check_same_rows, class_index_rule

__all__ = [
    "accuracy",
    "confusion_matrix",
    "f1_score",
    "fbeta_score",
    "matthews_corrcoef",
    "pcc",
    "precision_score",
    "recall_score",
    "top_k_accuracy",
]

Outcomes = tuple[list[int], list[int], list[int], list[int]]  # tp, fp, fn, tn per class
#: the per-class scores: tp / (tp + fp), tp / (tp + fn), and F-beta (F1 is beta = 1)
SCORES = ("precision", "recall", "fbeta")
Value = float | np.ndarray  # an average, or one value per class (average=None)


# -- per-batch updates -----------------------------------------------------------------------
def _predicted_classes(
    labels: Any, preds: Any, axis: int = -1, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class indices, int64 arrays of shape (n, elements per row).

    With ``num_classes``, indices must be below it and scores must hold that many classes.
    """
    label, pred = _rows(labels), _rows(preds)
    check_same_rows(label, pred)
    rows = len(label)
    if _strip(label.shape) == _strip(pred.shape):
        true = as_class_indices(label, "labels", num_classes)
        try:
            predicted = as_class_indices(pred, "preds", num_classes)
        except InvalidInputError:
            if label.ndim > 1 and label.dtype.kind == "f":  # one-hot or soft targets
                rule = (
                    "must be a class index, not a list of class scores (one-hot or soft "
                    "targets: give the class indices)"
                )
                raise InvalidInputError.bad_row("labels", 0, rule, label[0]) from None
            raise
        return _by_row(true, rows), _by_row(predicted, rows)
    scores = _as_scores(pred)
    if not -scores.ndim <= axis < scores.ndim or axis % scores.ndim == 0:
        raise InvalidInputError(
            f"`preds` must have a class axis {axis} besides the rows, got shape {pred.shape}",
            argument="preds",
        )
    if num_classes is not None and scores.shape[axis] != num_classes:
        raise InvalidInputError(
            f"`preds` must hold num_classes={num_classes} class scores along axis {axis}, "
            f"got shape {pred.shape}",
            argument="preds",
        )
    num_classes = scores.shape[axis]
    if num_classes < 2:
        raise InvalidInputError(
            f"`preds` must hold >= 2 class scores along axis {axis}, got shape {pred.shape}",
            argument="preds",
        )
    predicted = np.argmax(scores, axis=axis)
    label = as_class_indices(label, "labels", num_classes=num_classes)
    if predicted.size != label.size:
        raise InvalidInputError(
            f"`labels` of shape {label.shape} must match `preds` of shape {pred.shape} without "
            f"its class axis {axis}, got {predicted.shape}",
            argument="labels",
        )
    return _by_row(label, rows), _by_row(predicted, rows)


#: the true classes' ranks of the labels and preds at hand, when the caller has them (a
#: metric's `streammetric.metrics.batch.BatchStats`); else :func:`_class_ranks` computes them
RankFunction = Callable[[], np.ndarray]
#: the columns of :func:`_class_ranks`: the true class's position when the first of equal
#: scores comes first (argmax's order) and when the last does (top-k's order)
FIRST_TIE_FIRST, LAST_TIE_FIRST = 0, 1


def _accuracy_update(
    labels: Any, preds: Any, axis: int = 1, ranks: RankFunction | None = None
) -> np.ndarray:
    """Hits (bool, shape (n, elements per row)): predicted class == true class.

    ``ranks()`` gives :func:`_class_ranks` of ``labels`` and ``preds`` (a metric passes its
    batch's, shared with the other metrics), asked for only when they decide the hits.
    """
    if _is_rank_case(labels, preds, axis):  # (n,) labels, (n, k) scores: no argmax needed
        rank = ranks() if ranks is not None else _class_ranks(labels, preds)
        return (rank[:, FIRST_TIE_FIRST] == 0).reshape(-1, 1)
    label, predicted = _predicted_classes(labels, preds, axis)
    return label == predicted


def _is_rank_case(labels: Any, preds: Any, axis: int) -> bool:
    """(n,) or (n, 1) labels with (n, k >= 2) float scores on axis 1: an argmax hit is rank 0
    in argmax's order."""
    label, pred = np.asarray(labels), np.asarray(preds)
    return (
        pred.ndim == 2
        and axis in (1, -1)
        and pred.dtype.kind == "f"
        and pred.shape[1] >= 2
        and label.shape in ((pred.shape[0],), (pred.shape[0], 1))
    )


def _count_true_per_row(mask: np.ndarray) -> np.ndarray:
    """Number of True per row of a 2-D bool array, int64: a float32 einsum (no per-row loop;
    0/1 sums are exact in float32 below 2**24 columns)."""
    return np.einsum("ij->i", mask.astype(np.float32)).astype(np.int64)


_LABEL_TYPES = (np.dtype(np.int64), np.dtype(np.int32))


def _class_ranks(labels: Any, preds: Any) -> np.ndarray:
    """Two ranks of the true class among 2-D scores (0 = highest), int64 (n, 2).

    Column `FIRST_TIE_FIRST`: ``#(scores > true score) + #(equal scores at a lower class
    index)``, the true class's position in a stable descending sort (rank 0: the argmax).
    Column `LAST_TIE_FIRST`: ``#(scores > true score) + #(equal scores at a higher class
    index)``, its position when the last of equal scores comes first (MXNet's and
    scikit-learn's top-k). Clean (n, k) float batches take one pass in C; otherwise the tie
    rules are applied only to rows that have ties.
    """
    label, scores = _rows(labels), _rows(preds)
    if scores.ndim == 2 and label.dtype in _LABEL_TYPES and label.size == scores.shape[0]:
        ranks = np.empty((label.size, 2), dtype=np.int64)
        if class_ranks(scores, label.reshape(-1), ranks):  # False: not finite, bad label, ...
            return ranks
    scores = _as_scores(scores, keep_float=True)
    if scores.ndim != 2:
        raise InvalidInputError(
            f"`preds` must be 2-D scores (rows, classes), got shape {scores.shape}",
            argument="preds",
        )
    check_same_rows(label, scores)
    rows, num_classes = scores.shape
    label = as_class_indices(label, "labels", num_classes=num_classes)
    if label.size != rows:
        raise InvalidInputError(
            f"`labels` must hold one class per row, got shape {label.shape}", argument="labels"
        )
    label = label.reshape(rows)
    true_score = scores[np.arange(rows), label][:, None]
    above = _count_true_per_row(scores > true_score)
    ranks = np.stack([above, above], axis=1)
    equal = scores == true_score
    if np.count_nonzero(equal) > rows:  # some row ties its true score with another class
        tied = np.flatnonzero(_count_true_per_row(equal) > 1)
        columns = np.arange(num_classes)
        ranks[tied, FIRST_TIE_FIRST] += np.count_nonzero(
            equal[tied] & (columns < label[tied, None]), axis=1
        )
        ranks[tied, LAST_TIE_FIRST] += np.count_nonzero(
            equal[tied] & (columns > label[tied, None]), axis=1
        )
    return ranks


def _top_k_update(
    labels: Any, preds: Any, top_k: int, ranks: RankFunction | None = None
) -> np.ndarray:
    """Hits (bool, shape (n, 1)): the true class ranks among the ``top_k`` highest scores, the
    higher class index first among equal scores. ``ranks()``: as for :func:`_accuracy_update`."""
    rank = ranks() if ranks is not None else _class_ranks(labels, preds)
    return (rank[:, LAST_TIE_FIRST] < top_k).reshape(-1, 1)


def _weighted_hits(hits: np.ndarray, weight: np.ndarray | None) -> tuple[ExactSum, ExactSum]:
    """Exact (sum of weights of hits, sum of weights); each row's weight covers its elements."""
    hit_sum, weight_sum = ExactSum(), ExactSum()
    if weight is None:
        hit_sum.add_count(int(np.count_nonzero(hits)))
        weight_sum.add_count(hits.size)
    else:
        per_element = np.broadcast_to(weight[:, None], hits.shape)
        hit_sum.add(per_element[hits])
        weight_sum.add(per_element)
    return hit_sum, weight_sum


def _binary_update(
    labels: Any, preds: Any, threshold: float, weight: np.ndarray | None
) -> tuple[int, list[ExactSum]]:
    """(elements, [tp, fp, fn, tn] as exact weighted sums) of a binary batch."""
    masks = _binary_masks(labels, preds, threshold)
    return masks[0].size, [_weighted_hits(mask, weight)[0] for mask in masks]


def _binary_masks(
    labels: Any, preds: Any, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tp, fp, fn, tn masks (bool, shape (n, elements per row)) of a binary batch.

    ``preds`` shaped like ``labels`` are positive-class probabilities (positive when
    ``> threshold``, as MXNet 2.x); two scores per label are argmax'd (as MXNet 1.x).
    """
    actual, predicted = _binary_classes(labels, preds, threshold)
    return actual & predicted, ~actual & predicted, actual & ~predicted, ~actual & ~predicted


def _binary_classes(labels: Any, preds: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(actual, predicted) positives, bool (n, elements per row), of a binary batch."""
    label, pred = _rows(labels), _rows(preds)
    check_same_rows(label, pred)
    actual = _as_zero_one(label, "labels", "binary")
    scores = _as_scores(pred)
    if _strip(label.shape) == _strip(pred.shape):
        predicted = (scores > threshold).reshape(label.shape)
    elif pred.shape[-1] == 2 and _strip(pred.shape[:-1]) == _strip(label.shape):
        predicted = (np.argmax(scores, axis=-1) == 1).reshape(label.shape)
    else:
        raise InvalidInputError(
            f"`preds` must be probabilities shaped like `labels` {label.shape} or 2 scores per label "
            f"for class_type='binary', got shape {pred.shape}"
            + (" (scores of more classes: class_type='multiclass')" if pred.shape[-1] > 2 else ""),
            argument="preds",
        )
    return _by_row(actual, len(label)), _by_row(predicted, len(label))


def _multiclass_update(labels: Any, preds: Any) -> tuple[int, np.ndarray]:
    """(elements, int64 array (3, classes) of tp, fp, fn per class) of a batch."""
    label, predicted = (a.ravel() for a in _predicted_classes(labels, preds, axis=-1))
    num_classes = int(max(label.max(initial=-1), predicted.max(initial=-1))) + 1
    tp = np.bincount(label[label == predicted], minlength=num_classes)
    fp = np.bincount(predicted, minlength=num_classes) - tp
    fn = np.bincount(label, minlength=num_classes) - tp
    return label.size, np.stack([tp, fp, fn]).astype(np.int64, copy=False)


def _multilabel_update(labels: Any, preds: Any, threshold: float) -> tuple[int, np.ndarray]:
    """(rows, int64 array (3, labels) of tp, fp, fn per label column) of a batch."""
    actual, predicted = _multilabel_classes(labels, preds, threshold)
    actual, predicted = actual.reshape(-1, actual.shape[-1]), predicted.reshape(actual.shape)
    masks = (actual & predicted, ~actual & predicted, actual & ~predicted)
    return actual.shape[0], np.stack([np.count_nonzero(m, axis=0) for m in masks]).astype(np.int64)


def _multilabel_classes(
    labels: Any, preds: Any, threshold: float, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(actual, predicted) bool arrays of shape (n, elements per row, label columns)."""
    label, pred = _rows(labels), _rows(preds)
    check_same_rows(label, pred)
    if label.shape != pred.shape or label.ndim < 2:
        raise InvalidInputError(
            f"`labels` and `preds` must have the same 2-D shape (rows, labels) for "
            f"class_type='multilabel', got {label.shape} and {pred.shape}"
        )
    width = label.shape[-1]
    if num_classes is not None and width != num_classes:
        raise InvalidInputError(
            f"`labels` must have num_classes={num_classes} label columns for "
            f"class_type='multilabel', got {width}",
            argument="labels",
        )
    shape = (label.shape[0], int(np.prod(label.shape[1:-1], dtype=np.int64)), width)
    actual = _as_zero_one(label, "labels", "multilabel").reshape(shape)
    return actual, (_as_scores(pred) > threshold).reshape(actual.shape)


# -- values from counts ----------------------------------------------------------------------
def ratio_over_sqrt(numerator: int, denominator: int) -> float:
    """``numerator / sqrt(denominator)`` for Python ints, correctly rounded (denominator > 0).

    The root is taken in integers with >= 61 significant bits plus a sticky bit, so converting
    to float rounds once, correctly.

    >>> ratio_over_sqrt(-3, 36)
    -0.5
    >>> ratio_over_sqrt(1, 3), 1 / math.sqrt(3)  # the latter is rounded twice
    (0.5773502691896257, 0.5773502691896258)
    """
    if numerator == 0:
        return 0.0
    square = numerator * numerator
    shift = (124 - square.bit_length() + denominator.bit_length()) // 2  # quotient >= 2**122
    if shift >= 0:
        quotient, remainder = divmod(square << (2 * shift), denominator)
    else:
        quotient, remainder = divmod(square, denominator << (-2 * shift))
    root = math.isqrt(quotient)
    sticky = int(remainder != 0 or root * root != quotient)
    magnitude = math.ldexp(float((root << 1) | sticky), -shift - 1)
    return magnitude if numerator > 0 else -magnitude


def binary_mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """MXNet's ``matthewscc``: ``(tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))``, 0 if degenerate."""
    denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return ratio_over_sqrt(tp * tn - fp * fn, denominator) if denominator else 0.0


def mean_of_ratios(ratios: list[tuple[int, int]], weights: list[int] | None = None) -> float:
    """``sum_i w_i n_i / d_i / sum_i w_i`` for ints ``n_i, w_i >= 0``, ``d_i > 0``, correctly
    rounded (the exact mean of exact ratios, rounded once; weights None: all 1).

    Each ratio is taken to ``p`` fractional bits (floor, and whether it was exact): the mean
    lies in ``[low, low + inexact] / 2**p / W``; when both ends round to one float it is the
    answer, else ``p`` grows (and past 8192 bits, exact fractions decide a tie).

    >>> mean_of_ratios([(1, 3), (2, 3)]), mean_of_ratios([(1, 3), (1, 6)], [1, 2])
    (0.5, 0.2222222222222222)
    """
    if weights is None:
        weights = [1] * len(ratios)
    total = sum(weights)
    if not total:
        raise ZeroDivisionError("mean_of_ratios needs a positive total weight")
    terms = [(w * n, d) for (n, d), w in zip(ratios, weights, strict=True) if w and n]
    bits = 128
    while terms and bits <= 8192:
        low = inexact = 0
        for numerator, denominator in terms:
            quotient, remainder = divmod(numerator << bits, denominator)
            low += quotient
            inexact += remainder != 0
        scale = total << bits
        if not inexact:
            return low / scale
        value = low / scale
        if value == (low + inexact) / scale:
            return value
        bits *= 4
    exact = sum((Fraction(n, d) for n, d in terms), Fraction(0)) / total
    return float(exact)


def _beta_squared(beta: float) -> Fraction | None:
    """``beta**2`` exactly (None for beta = inf: the score is the recall)."""
    return None if math.isinf(beta) else Fraction(beta) ** 2


def score_ratio(
    score: str, tp: int, fp: int, fn: int, beta2: Fraction | None = Fraction(1)
) -> tuple[int, int]:
    """(numerator, denominator) of one class's score from its exact counts (denominator 0:
    undefined, the ``zero_division`` value). F-beta is
    ``(1 + b2) tp / ((1 + b2) tp + b2 fn + fp)`` with ``b2 = beta**2 = a / b`` exactly, so
    ``((a + b) tp, (a + b) tp + a fn + b fp)`` in integers (beta = 0: the precision)."""
    if score == "precision":
        return tp, tp + fp
    if score == "recall" or beta2 is None:
        return tp, tp + fn
    a, b = beta2.numerator, beta2.denominator
    return (a + b) * tp, (a + b) * tp + a * fn + b * fp


def class_scores(
    outcomes: Outcomes, score: str, *, beta: float = 1.0, zero_division: float = 0.0
) -> np.ndarray:
    """One score per class (float64), each correctly rounded from the exact counts; a class
    whose denominator is 0 gets ``zero_division`` (0.0, 1.0 or NaN), as scikit-learn's."""
    beta2 = _beta_squared(beta)
    values = []
    for tp, fp, fn in zip(outcomes[0], outcomes[1], outcomes[2], strict=True):
        numerator, denominator = score_ratio(score, tp, fp, fn, beta2)
        values.append(numerator / denominator if denominator else zero_division)
    return np.array(values, dtype=np.float64)


def average_score(
    outcomes: Outcomes,
    score: str,
    average: str | None,
    *,
    beta: float = 1.0,
    zero_division: float = 0.0,
    classes: list[bool] | None = None,
) -> Value:
    """A per-class score (``SCORES``) from exact per-class counts, averaged as scikit-learn's
    ``precision_recall_fscore_support`` averages it:

    * ``None``: one value per class (index = class; ``classes`` is ignored);
    * ``"micro"``: the score of the counts summed over the classes;
    * ``"macro"``: the mean of the per-class scores of ``classes`` (a mask; None: all);
    * ``"weighted"``: their mean weighted by support (tp + fn); all supports 0: the plain mean.

    A class whose denominator is 0 scores ``zero_division``; with NaN it is left out of the
    averages (no class left: NaN), as scikit-learn's ``_nanaverage``. Averages are the exact
    mean of the exact per-class ratios, rounded once (`mean_of_ratios`).

    >>> counts = ([1, 0, 2], [1, 0, 0], [0, 1, 1], [2, 3, 1])
    >>> average_score(counts, "recall", None, zero_division=math.nan).tolist()
    [1.0, 0.0, 0.6666666666666666]
    >>> average_score(counts, "precision", "macro", zero_division=math.nan)  # class 1: 0/0
    0.75
    >>> average_score(counts, "fbeta", "weighted", beta=2.0)
    0.5952380952380952
    """
    if average is None:
        return class_scores(outcomes, score, beta=beta, zero_division=zero_division)
    tp, fp, fn, _ = outcomes
    beta2 = _beta_squared(beta)
    if average == "micro":
        numerator, denominator = score_ratio(score, sum(tp), sum(fp), sum(fn), beta2)
        return numerator / denominator if denominator else zero_division
    keep = range(len(tp)) if classes is None else [c for c in range(len(tp)) if classes[c]]
    ratios, supports = [], []
    for c in keep:
        numerator, denominator = score_ratio(score, tp[c], fp[c], fn[c], beta2)
        if not denominator:
            if math.isnan(zero_division):
                continue  # scikit-learn leaves NaN scores out of the average
            numerator, denominator = int(zero_division), 1
        ratios.append((numerator, denominator))
        supports.append(tp[c] + fn[c])
    if not ratios:
        return math.nan
    if average == "weighted" and any(supports):
        return mean_of_ratios(ratios, supports)
    return mean_of_ratios(ratios)


def binary_classes(outcomes: Outcomes) -> Outcomes:
    """Both classes' counts (class 0, class 1) from the positive class's tp, fp, fn, tn: class
    0's true positives are the true negatives, its false positives the false negatives."""
    (tp,), (fp,), (fn,), (tn,) = outcomes
    return [tn, tp], [fn, fp], [fp, fn], [tp, tn]


def class_value(
    outcomes: Outcomes,
    score: str,
    average: str | None,
    class_type: str,
    *,
    beta: float = 1.0,
    zero_division: float = 0.0,
    classes: list[bool] | None = None,
) -> Value:
    """The value of F1, precision, recall or F-beta of a class type from its counts.

    Binary ``outcomes`` are the positive class's: ``"micro"`` and ``"macro"`` give its score
    (MXNet's F1; scikit-learn's ``average="binary"``), ``"weighted"`` and None see both classes
    0 and 1 (scikit-learn's with ``labels=[0, 1]``). Otherwise as `average_score`.
    """
    if class_type == "binary" and average in (None, "weighted"):
        outcomes = binary_classes(outcomes)
    elif not outcomes[0] and average is not None:
        return math.nan  # no class to score (every row of weight 0)
    return average_score(
        outcomes, score, average, beta=beta, zero_division=zero_division, classes=classes
    )


def f1_from_outcomes(outcomes: Outcomes, average: str) -> float:
    """F1 over classes: micro pools the counts, macro is the exact mean of per-class F1s."""
    if not outcomes[0]:
        return math.nan
    value = average_score(outcomes, "fbeta", average)
    assert isinstance(value, float)
    return value


def mcc_from_outcomes(outcomes: Outcomes, average: str) -> float:
    """MCC over classes: micro = MCC of the pooled one-vs-rest counts, macro = mean of per-class MCCs."""
    if not outcomes[0]:
        return math.nan
    if average == "micro":
        return binary_mcc(*(sum(column) for column in outcomes))
    return math.fsum(binary_mcc(*c) for c in zip(*outcomes, strict=True)) / len(outcomes[0])


def outcomes_from_counts(counts: np.ndarray, total: int, present_only: bool) -> Outcomes:
    """One-vs-rest (tp, fp, fn, tn) per class from (3, classes) tp/fp/fn counts and the total.

    ``present_only`` keeps the classes that occur as true or predicted class (multiclass, as
    scikit-learn's default ``labels``); multilabel keeps every column.
    """
    if present_only:
        counts = counts[:, counts.sum(axis=0) > 0]
    tp, fp, fn = counts.tolist()
    return with_true_negatives([tp, fp, fn], total)


def with_true_negatives(counts: list[list[int]], total: int) -> Outcomes:
    """(tp, fp, fn, tn) per class from tp/fp/fn lists and the total: ``tn = total - tp - fp - fn``."""
    tp, fp, fn = counts
    return tp, fp, fn, [total - a - b - c for a, b, c in zip(tp, fp, fn, strict=True)]


def present_classes(outcomes: Outcomes) -> list[bool]:
    """Which classes occur as true or predicted class (tp + fp + fn > 0)."""
    return [a + b + c > 0 for a, b, c in zip(outcomes[0], outcomes[1], outcomes[2], strict=True)]


def select_classes(outcomes: Outcomes, classes: list[bool]) -> Outcomes:
    """The outcomes of the classes whose mask entry is True."""
    tp, fp, fn, tn = (
        [v for v, keep in zip(column, classes, strict=True) if keep] for column in outcomes
    )
    return tp, fp, fn, tn


def pcc_from_counts(counts: np.ndarray | list[list[int]], total: int) -> float:
    """MXNet's PCC, exact, from per-class tp/fp/fn (the confusion matrix's diagonal and margins).

    With C the confusion matrix, x = tp + fp its row (predicted) sums, y = tp + fn its column
    (true) sums and n = sum(C): ``(n tr(C) - x.y) / sqrt((n^2 - x.x)(n^2 - y.y))``, NaN if a
    factor is 0. Counts are ints in one unit (rows, or weights' ``2**-1074``).
    """
    tp, fp, fn = counts.tolist() if isinstance(counts, np.ndarray) else counts
    predicted = [a + b for a, b in zip(tp, fp, strict=True)]
    actual = [a + c for a, c in zip(tp, fn, strict=True)]
    cov_xx = total * total - sum(x * x for x in predicted)
    cov_yy = total * total - sum(y * y for y in actual)
    if cov_xx == 0 or cov_yy == 0:
        return math.nan
    cov_xy = sum(tp) * total - sum(x * y for x, y in zip(predicted, actual, strict=True))
    return ratio_over_sqrt(cov_xy, cov_xx * cov_yy)


# -- the confusion matrix ----------------------------------------------------------------------
def shell_index(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The position of cell (true, predicted) in a vector that holds a growing K x K matrix:
    the cells of ``max(i, j) = m`` are positions ``m**2 .. (m + 1)**2 - 1`` (row m first, then
    column m), so a matrix of K classes is positions ``0 .. K**2 - 1`` whatever K, and a new
    class appends positions without moving any (no renumbering when K grows between batches).

    >>> shell_index(np.array([0, 1, 1, 0, 2]), np.array([0, 0, 1, 1, 1])).tolist()
    [0, 1, 2, 3, 5]
    """
    shell = np.maximum(true, predicted)
    return shell * shell + np.where(true == shell, predicted, shell + 1 + true)


def shell_positions(num_classes: int) -> np.ndarray:
    """The (K, K) int64 positions of the cells of a K-class matrix (`shell_index`)."""
    classes = np.arange(num_classes, dtype=np.int64)
    return shell_index(classes[:, None], classes[None, :])


def shell_classes(cells: list[int]) -> int:
    """The classes of the smallest matrix whose cells hold every nonzero value of ``cells``
    (a vector in `shell_index` order): 1 + the largest ``m`` with ``m**2 <=`` a nonzero
    position (0 for none)."""
    last = max((position for position, value in enumerate(cells) if value), default=-1)
    return math.isqrt(last) + 1 if last >= 0 else 0


def confusion_from_cells(
    cells: np.ndarray | list[list[int]], normalize: str | None, *, units: bool = False
) -> np.ndarray:
    """The confusion matrix (rows: true class, columns: predicted) from its exact cells: an
    int64 array of counts, or nested lists of ints (``units``: in ``2**-1074``, the units of
    exact weight sums). ``normalize``: None (the counts, int64 as scikit-learn gives them, or
    the weight sums, float64), ``"true"``
    (each row over its sum), ``"pred"`` (each column over its sum), ``"all"`` (over the total);
    a row, column or total of 0 gives 0s, as scikit-learn. Each value is rounded once.

    >>> confusion_from_cells(np.array([[2, 1], [0, 0]]), "true").tolist()
    [[0.6666666666666666, 0.3333333333333333], [0.0, 0.0]]
    """
    if isinstance(cells, np.ndarray) and not units and normalize is None:
        return cells.astype(np.int64)  # a copy: callers keep theirs
    if isinstance(cells, np.ndarray) and not units and (cells.size == 0 or cells.sum() < 2**53):
        matrix = cells.astype(np.float64)  # exact: every sum below 2**53
        if normalize == "true":
            totals = matrix.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            totals = matrix.sum(axis=0, keepdims=True)
        else:
            totals = np.full((1, 1), matrix.sum())
        totals = np.broadcast_to(totals, matrix.shape)
        return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals != 0)
    rows = cells.tolist() if isinstance(cells, np.ndarray) else cells
    size = len(rows)
    scale = 1 << 1074 if units else 1
    if normalize is None:
        return np.array([[c / scale for c in row] for row in rows], dtype=np.float64).reshape(
            size, size
        )
    if normalize == "true":
        sums = [sum(row) for row in rows]
        total = lambda i, j: sums[i]  # noqa: E731
    elif normalize == "pred":
        sums = [sum(row[j] for row in rows) for j in range(size)]
        total = lambda i, j: sums[j]  # noqa: E731
    else:
        everything = sum(map(sum, rows))
        total = lambda i, j: everything  # noqa: E731
    out = np.zeros((size, size), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if cell:
                out[i, j] = cell / total(i, j)
    return out


def _confusion_pairs(
    labels: Any, preds: Any, class_type: str, threshold: float, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class indices (int64, (n, elements per row)) for a confusion matrix:
    binary 0/1 labels with probabilities (or 2 scores), or multiclass indices or scores.
    Without ``num_classes`` the classes are capped at `MAX_MATRIX_CLASSES`."""
    if class_type == "binary":
        actual, predicted = _binary_classes(labels, preds, threshold)
        return actual.astype(np.int64), predicted.astype(np.int64)
    true, predicted = _predicted_classes(labels, preds, axis=-1, num_classes=num_classes)
    if num_classes is None:
        check_class_cap(true, predicted, MAX_MATRIX_CLASSES, "a confusion matrix")
    return true, predicted


def check_class_cap(true: np.ndarray, predicted: np.ndarray, cap: int, what: str) -> None:
    """Class indices of a metric without ``num_classes``, whose counts grow with the largest:
    an error naming the row of the first at or beyond ``cap``."""
    for name, array in (("labels", true), ("preds", predicted)):
        bad = array >= cap
        if bad.any():
            row = int(np.argmax(bad.any(axis=1)))
            rule = f"{class_index_rule(cap)} for {what} without num_classes"
            raise InvalidInputError.bad_row(name, row, rule, array[row])


# -- per-class counts of a batch ---------------------------------------------------------------
def _position_sums(index: np.ndarray, weight: np.ndarray | None, size: int) -> list[int]:
    """Per position ``0 .. size - 1``: how many of ``index`` (weight None), or the exact sum
    of their weights in ``2**-1074`` units."""
    if weight is None:
        return np.bincount(index, minlength=size).tolist()
    sums = GroupedExactSum()
    sums.add(weight, index)
    return [sums[position].units for position in range(size)]


def _element_weights(weight: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """A row's weight for each of its elements (None stays None)."""
    if weight is None:
        return None
    return np.broadcast_to(weight.reshape((-1,) + (1,) * (len(shape) - 1)), shape)


def _outcomes(
    labels: Any,
    preds: Any,
    class_type: str,
    threshold: float,
    sample_weight: Any,
    num_classes: int | None = None,
) -> tuple[Outcomes, list[bool] | None]:
    """Per-class (tp, fp, fn, tn) of a batch, exact, and which classes the averages see (None:
    all). Binary: the positive class. Multiclass: classes ``0 .. K - 1`` (``num_classes``, or
    up to the last that occurs in a row of nonzero weight), those that occur seen (without
    ``num_classes``). Multilabel: every label column."""
    weight = as_sample_weight(sample_weight, len(_rows(labels)))
    if class_type == "binary":
        tp, fp, fn, tn = _binary_update(labels, preds, threshold, weight)[1]
        return ([tp.units], [fp.units], [fn.units], [tn.units]), None
    if class_type == "multiclass":
        true, predicted = _predicted_classes(labels, preds, axis=-1, num_classes=num_classes)
        w = _element_weights(weight, true.shape)
        hit = true == predicted
        size = num_classes or int(max(true.max(initial=-1), predicted.max(initial=-1))) + 1
        counts = [
            _position_sums(array[mask], None if w is None else w[mask], size)
            for array, mask in ((true, hit), (predicted, ~hit), (true, ~hit))
        ]
        outcomes = with_true_negatives(counts, sum(counts[0]) + sum(counts[2]))
        if num_classes is not None:
            return outcomes, None
        present = present_classes(outcomes)
        last = max((c for c, seen in enumerate(present) if seen), default=-1)
        return select_classes(outcomes, [c <= last for c in range(size)]), present[: last + 1]
    actual, predicted = _multilabel_classes(labels, preds, threshold, num_classes)
    w = _element_weights(weight, actual.shape)
    columns = np.broadcast_to(np.arange(actual.shape[-1]), actual.shape)
    counts = [
        _position_sums(columns[mask], None if w is None else w[mask], actual.shape[-1])
        for mask in (actual & predicted, ~actual & predicted, actual & ~predicted)
    ]
    elements = actual.shape[0] * actual.shape[1]
    total = elements if w is None else ExactSum.from_values(w[..., 0]).units
    return with_true_negatives(counts, total), None


# -- one-shot functional forms ---------------------------------------------------------------
def accuracy(labels: Any, preds: Any, *, axis: int = 1, sample_weight: Any = None) -> float:
    """Fraction of elements whose predicted class is right: ``sum_i w_i hits_i / sum_i w_i m``."""
    hits = _accuracy_update(labels, preds, axis)
    hit_sum, weight_sum = _weighted_hits(hits, as_sample_weight(sample_weight, hits.shape[0]))
    return hit_sum.ratio(weight_sum)


def top_k_accuracy(labels: Any, preds: Any, *, top_k: int = 1, sample_weight: Any = None) -> float:
    """Fraction of rows whose true class is among the ``top_k`` highest scores (ties: the higher
    class index first, as scikit-learn's ``top_k_accuracy_score``).

    >>> top_k_accuracy([2, 0], [[0.1, 0.5, 0.4], [0.3, 0.3, 0.4]], top_k=2)  # class 1 before 0
    0.5
    """
    hits = _top_k_update(labels, preds, top_k)
    hit_sum, weight_sum = _weighted_hits(hits, as_sample_weight(sample_weight, hits.shape[0]))
    return hit_sum.ratio(weight_sum)


def _score(
    score: str,
    labels: Any,
    preds: Any,
    *,
    class_type: str,
    threshold: float,
    average: str | None,
    sample_weight: Any,
    num_classes: int | None,
    zero_division: Any,
    beta: float = 1.0,
) -> Value:
    average = check_config(class_type, average, threshold, CLASS_AVERAGES)
    num_classes = check_num_classes(num_classes, class_type)
    zero = zero_division_value(check_zero_division(zero_division))
    outcomes, classes = _outcomes(labels, preds, class_type, threshold, sample_weight, num_classes)
    return class_value(
        outcomes,
        score,
        average,
        class_type,
        beta=check_beta(beta),
        zero_division=zero,
        classes=classes,
    )


def precision_score(
    labels: Any,
    preds: Any,
    *,
    class_type: str = "binary",
    threshold: float = 0.5,
    average: str | None = "micro",
    sample_weight: Any = None,
    num_classes: int | None = None,
    zero_division: Any = 0.0,
) -> Value:
    """Precision ``tp / (tp + fp)``: binary (positive class), averaged over classes
    (micro, macro, weighted), or one value per class (``average=None``); as scikit-learn's
    ``precision_score`` (see `class_value` and `average_score`).

    >>> precision_score([0, 1, 2, 2], [0, 1, 1, 0], class_type="multiclass", average="macro")
    0.3333333333333333
    """
    return _score(
        "precision",
        labels,
        preds,
        class_type=class_type,
        threshold=threshold,
        average=average,
        sample_weight=sample_weight,
        num_classes=num_classes,
        zero_division=zero_division,
    )


def recall_score(
    labels: Any,
    preds: Any,
    *,
    class_type: str = "binary",
    threshold: float = 0.5,
    average: str | None = "micro",
    sample_weight: Any = None,
    num_classes: int | None = None,
    zero_division: Any = 0.0,
) -> Value:
    """Recall ``tp / (tp + fn)``, averaged as :func:`precision_score`.

    >>> recall_score([0, 1, 2, 2], [0, 1, 1, 0], class_type="multiclass", average=None).tolist()
    [1.0, 1.0, 0.0]
    """
    return _score(
        "recall",
        labels,
        preds,
        class_type=class_type,
        threshold=threshold,
        average=average,
        sample_weight=sample_weight,
        num_classes=num_classes,
        zero_division=zero_division,
    )


def fbeta_score(
    labels: Any,
    preds: Any,
    *,
    beta: float = 1.0,
    class_type: str = "binary",
    threshold: float = 0.5,
    average: str | None = "micro",
    sample_weight: Any = None,
    num_classes: int | None = None,
    zero_division: Any = 0.0,
) -> Value:
    """F-beta ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` (``beta`` exactly, b = inf: the
    recall), averaged as :func:`precision_score`.

    >>> fbeta_score([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.6], beta=2.0)
    0.5
    """
    return _score(
        "fbeta",
        labels,
        preds,
        class_type=class_type,
        threshold=threshold,
        average=average,
        sample_weight=sample_weight,
        num_classes=num_classes,
        zero_division=zero_division,
        beta=beta,
    )


def f1_score(
    labels: Any,
    preds: Any,
    *,
    class_type: str = "binary",
    threshold: float = 0.5,
    average: str | None = "micro",
    sample_weight: Any = None,
    num_classes: int | None = None,
    zero_division: Any = 0.0,
) -> Value:
    """F1 ``2 tp / (2 tp + fp + fn)``: binary (positive class), or averaged over classes as
    :func:`precision_score`.

    >>> f1_score([0, 1, 2, 2], [0, 1, 1, 0], class_type="multiclass", average="macro")
    0.4444444444444444
    """
    return _score(
        "fbeta",
        labels,
        preds,
        class_type=class_type,
        threshold=threshold,
        average=average,
        sample_weight=sample_weight,
        num_classes=num_classes,
        zero_division=zero_division,
    )


def matthews_corrcoef(
    labels: Any,
    preds: Any,
    *,
    class_type: str = "binary",
    threshold: float = 0.5,
    average: str = "micro",
    sample_weight: Any = None,
) -> float:
    """MCC ``(tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))`` (0 when degenerate).

    >>> matthews_corrcoef([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1])
    0.5773502691896257
    """
    check_config(class_type, average, threshold)
    outcomes, classes = _outcomes(labels, preds, class_type, threshold, sample_weight)
    if classes is not None:
        outcomes = select_classes(outcomes, classes)
    return mcc_from_outcomes(outcomes, average)


def pcc(labels: Any, preds: Any, *, sample_weight: Any = None) -> float:
    """MXNet's multiclass MCC from the confusion matrix C (x = row sums, y = column sums, n = sum):
    ``PCC = (n tr(C) - x.y) / sqrt((n^2 - x.x)(n^2 - y.y))``, NaN when a factor is 0.

    >>> pcc([0, 1, 2], [1, 1, 1])
    nan
    """
    outcomes, _ = _outcomes(labels, preds, "multiclass", 0.5, sample_weight)
    tp, fp, fn, _ = outcomes
    return pcc_from_counts([tp, fp, fn], sum(tp) + sum(fn))


def confusion_matrix(
    labels: Any,
    preds: Any,
    *,
    num_classes: int | None = None,
    normalize: str | None = None,
    sample_weight: Any = None,
    class_type: str = "multiclass",
    threshold: float = 0.5,
) -> np.ndarray:
    """The confusion matrix ((K, K); rows: true class, columns: predicted), as scikit-learn's
    ``confusion_matrix`` with ``labels=range(K)``, its dtype too (int64 counts; float64 with
    ``sample_weight`` or ``normalize``): K is ``num_classes``, or 1 +
    the largest class that occurs (in a row of nonzero weight). ``normalize`` as
    `confusion_from_cells`. Binary: 0/1 labels, a positive class when ``pred > threshold``.

    >>> confusion_matrix([0, 1, 1], [0.2, 0.7, 0.4], class_type="binary").tolist()
    [[1, 0], [1, 1]]
    """
    matrix_class_type(class_type, threshold)
    num_classes = check_num_classes(num_classes, class_type, MAX_MATRIX_CLASSES)
    normalize = check_normalize(normalize)
    if class_type == "binary":
        num_classes = 2
    true, predicted = _confusion_pairs(labels, preds, class_type, threshold, num_classes)
    weight = _element_weights(as_sample_weight(sample_weight, true.shape[0]), true.shape)
    positions = shell_index(true, predicted).reshape(-1)
    size = num_classes or math.isqrt(int(positions.max(initial=0))) + (1 if positions.size else 0)
    sums = _position_sums(positions, None if weight is None else weight.reshape(-1), size * size)
    if weight is not None and num_classes is None:  # classes seen in rows of nonzero weight
        size = shell_classes(sums)
    rows: list[list[int]] = [[sums[p] for p in row] for row in shell_positions(size).tolist()]
    if weight is None:
        return confusion_from_cells(np.array(rows, dtype=np.int64).reshape(size, size), normalize)
    return confusion_from_cells(rows, normalize, units=True)


def matrix_class_type(class_type: str, threshold: float) -> None:
    """The confusion matrix takes class_type binary or multiclass (and a finite threshold)."""
    check_config(class_type, "micro", threshold)
    if class_type == "multilabel":
        raise ConfigError(
            "`class_type` must be one of binary, multiclass for a confusion matrix, got 'multilabel'"
        )
