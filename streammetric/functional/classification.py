"""Classification math: predicted classes, top-k hits, outcome counts, F1 / MCC / PCC from counts.

Everything the metric objects keep is an exact count (int64 arrays, or exact weighted sums), and
every value is computed from those counts in Python integer arithmetic with one correctly
rounded division (F1) or one correctly rounded ``num / sqrt(den)`` (MCC, PCC).

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from .._kernels import class_ranks
from ..accumulate import ExactSum
from ._classification_inputs import _as_scores, _as_zero_one, _by_row, _rows, _strip, check_config
from ._validation import as_class_indices, as_sample_weight, check_same_rows

__all__ = [
    "accuracy",
    "f1_score",
    "matthews_corrcoef",
    "pcc",
    "top_k_accuracy",
]

Outcomes = tuple[list[int], list[int], list[int], list[int]]  # tp, fp, fn, tn per class


# -- per-batch updates -----------------------------------------------------------------------
def _predicted_classes(labels: Any, preds: Any, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class indices, int64 arrays of shape (n, elements per row)."""
    label, pred = _rows(labels), _rows(preds)
    check_same_rows(label, pred)
    rows = len(label)
    if _strip(label.shape) == _strip(pred.shape):
        return _by_row(as_class_indices(label, "labels"), rows), _by_row(
            as_class_indices(pred, "preds"), rows
        )
    scores = _as_scores(pred)
    if not -scores.ndim <= axis < scores.ndim or axis % scores.ndim == 0:
        raise InvalidInputError(
            f"`preds` must have a class axis {axis} besides the rows, got shape {pred.shape}",
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


RankFunction = Callable[[Any, Any], np.ndarray]
#: the columns of :func:`_class_ranks`: the true class's position when the first of equal
#: scores comes first (argmax's order) and when the last does (top-k's order)
FIRST_TIE_FIRST, LAST_TIE_FIRST = 0, 1


def _accuracy_update(
    labels: Any, preds: Any, axis: int = 1, ranks: RankFunction | None = None
) -> np.ndarray:
    """Hits (bool, shape (n, elements per row)): predicted class == true class.

    ``ranks`` computes :func:`_class_ranks` (a metric passes one that shares the result).
    """
    if _is_rank_case(labels, preds, axis):  # (n,) labels, (n, k) scores: no argmax needed
        return ((ranks or _class_ranks)(labels, preds)[:, FIRST_TIE_FIRST] == 0).reshape(-1, 1)
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
    higher class index first among equal scores."""
    return ((ranks or _class_ranks)(labels, preds)[:, LAST_TIE_FIRST] < top_k).reshape(-1, 1)


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
    """(elements, [tp, fp, fn, tn] as exact weighted sums) of a binary batch.

    ``preds`` shaped like ``labels`` are positive-class probabilities (positive when
    ``> threshold``, as MXNet 2.x); two scores per label are argmax'd (as MXNet 1.x).
    """
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
            f"for class_type='binary', got shape {pred.shape}",
            argument="preds",
        )
    actual, predicted = _by_row(actual, len(label)), _by_row(predicted, len(label))
    masks = (actual & predicted, ~actual & predicted, actual & ~predicted, ~actual & ~predicted)
    return actual.size, [_weighted_hits(mask, weight)[0] for mask in masks]


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
    label, pred = _rows(labels), _rows(preds)
    check_same_rows(label, pred)
    if label.shape != pred.shape or label.ndim < 2:
        raise InvalidInputError(
            f"`labels` and `preds` must have the same 2-D shape (rows, labels) for "
            f"class_type='multilabel', got {label.shape} and {pred.shape}"
        )
    width = label.shape[-1]
    actual = _as_zero_one(label, "labels", "multilabel").reshape(-1, width)
    predicted = (_as_scores(pred) > threshold).reshape(-1, width)
    masks = (actual & predicted, ~actual & predicted, actual & ~predicted)
    return actual.shape[0], np.stack([np.count_nonzero(m, axis=0) for m in masks]).astype(np.int64)


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


def _f1(tp: int, fp: int, fn: int) -> Fraction:
    denominator = 2 * tp + fp + fn
    return Fraction(2 * tp, denominator) if denominator else Fraction(0)


def binary_mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """MXNet's ``matthewscc``: ``(tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))``, 0 if degenerate."""
    denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return ratio_over_sqrt(tp * tn - fp * fn, denominator) if denominator else 0.0


def f1_from_outcomes(outcomes: Outcomes, average: str) -> float:
    """F1 over classes: micro pools the counts, macro is the exact mean of per-class F1s."""
    tp, fp, fn, _ = outcomes
    if not tp:
        return math.nan
    if average == "micro":
        return float(_f1(sum(tp), sum(fp), sum(fn)))
    return float(sum((_f1(*c) for c in zip(tp, fp, fn, strict=True)), Fraction(0)) / len(tp))


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
    return tp, fp, fn, [total - a - b - c for a, b, c in zip(tp, fp, fn, strict=True)]


def pcc_from_counts(counts: np.ndarray, total: int) -> float:
    """MXNet's PCC, exact, from per-class tp/fp/fn (the confusion matrix's diagonal and margins).

    With C the confusion matrix, x = tp + fp its row (predicted) sums, y = tp + fn its column
    (true) sums and n = sum(C): ``(n tr(C) - x.y) / sqrt((n^2 - x.x)(n^2 - y.y))``, NaN if a
    factor is 0.
    """
    tp, fp, fn = counts.tolist()
    predicted = [a + b for a, b in zip(tp, fp, strict=True)]
    actual = [a + c for a, c in zip(tp, fn, strict=True)]
    cov_xx = total * total - sum(x * x for x in predicted)
    cov_yy = total * total - sum(y * y for y in actual)
    if cov_xx == 0 or cov_yy == 0:
        return math.nan
    cov_xy = sum(tp) * total - sum(x * y for x, y in zip(predicted, actual, strict=True))
    return ratio_over_sqrt(cov_xy, cov_xx * cov_yy)


def _outcomes(
    labels: Any, preds: Any, class_type: str, threshold: float, sample_weight: Any
) -> Outcomes:
    if class_type == "binary":
        weight = as_sample_weight(sample_weight, len(_rows(labels)))
        tp, fp, fn, tn = _binary_update(labels, preds, threshold, weight)[1]
        return [tp.units], [fp.units], [fn.units], [tn.units]
    if sample_weight is not None:
        raise InvalidInputError(
            f"`sample_weight` is only supported with class_type='binary', got class_type={class_type!r}",
            argument="sample_weight",
        )
    if class_type == "multiclass":
        total, counts = _multiclass_update(labels, preds)
    else:
        total, counts = _multilabel_update(labels, preds, threshold)
    return outcomes_from_counts(counts, total, present_only=class_type == "multiclass")


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


def f1_score(
    labels: Any,
    preds: Any,
    *,
    class_type: str = "binary",
    threshold: float = 0.5,
    average: str = "micro",
    sample_weight: Any = None,
) -> float:
    """F1 ``2 tp / (2 tp + fp + fn)``: binary (positive class), or micro/macro over classes.

    >>> f1_score([0, 1, 2, 2], [0, 1, 1, 0], class_type="multiclass", average="macro")
    0.4444444444444444
    """
    check_config(class_type, average, threshold)
    return f1_from_outcomes(_outcomes(labels, preds, class_type, threshold, sample_weight), average)


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
    return mcc_from_outcomes(
        _outcomes(labels, preds, class_type, threshold, sample_weight), average
    )


def pcc(labels: Any, preds: Any) -> float:
    """MXNet's multiclass MCC from the confusion matrix C (x = row sums, y = column sums, n = sum):
    ``PCC = (n tr(C) - x.y) / sqrt((n^2 - x.x)(n^2 - y.y))``, NaN when a factor is 0.

    >>> pcc([0, 1, 2], [1, 1, 1])
    nan
    """
    total, counts = _multiclass_update(labels, preds)
    return pcc_from_counts(counts, total)
