"""The fast path of the cross-entropy family for clean batches of class indices (internal).

A batch of class indices (n,) and probabilities (n, k) in [0, 1], with every label a valid class
that is not ignored, needs only ``p[y]`` for the loss and the row sums for the diagnostics.
:func:`_fast_sparse_terms` reads only those and gives the general path's bits and counts
(``tests/functional/test_losses.py`` compares the two).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from streammetric.conventions import Convention

from . import _ce_inputs as inputs
from ._ce_core import LOGITS_SUM_TOLERANCE, guarded_log
from ._ce_diagnostics import empty_diagnostics
from ._ce_terms import LossTerms


def _fast_sparse_terms(
    y_true: Any,
    y_pred: Any,
    conv: Convention,
    class_weight: Any,
    ignore_index: int | None,
    axis: int,
    kind: str,
) -> LossTerms | None:
    """Terms of a clean batch of class indices (n,) and probabilities (n, k), or None.

    "Clean": every probability in [0, 1] (one global min/max, which NaN fails) and every label
    a valid, not ignored class index. Then only ``p[y]`` enters the loss, and the diagnostics
    need the row sums only: BLAS gives them, and rows whose BLAS sum is too close to a
    tolerance to be sure are summed again exactly as :func:`categorical_diagnostics` does, so
    the counts are the general path's.
    """
    pred, true = inputs.to_numpy(y_pred, "y_pred"), inputs.to_numpy(y_true, "y_true")
    if (
        pred.ndim != 2
        or axis not in (-1, 1)
        or pred.dtype.kind != "f"
        or true.shape != pred.shape[:1]
        or true.dtype.kind not in "iu"
        or not pred.size
    ):
        return None
    num_rows, num_classes = pred.shape
    if not _all_probabilities(pred):
        return None
    if true.min() < 0 or true.max() >= num_classes:
        return None
    if ignore_index is not None and np.any(true == ignore_index):
        return None
    compute = conv.compute_dtype(pred.dtype)
    flat_index = _row_starts(num_rows, num_classes) + true
    picked = pred.reshape(-1).take(flat_index).astype(compute, copy=False)
    guard = conv.guard_for(kind)
    zeros = int(np.count_nonzero(picked == 0))
    if guard == "none" and not zeros:  # p in (0, 1]: a plain log, nothing to guard or warn
        numerator, guarded = -np.log(picked), 0
    else:
        eps = conv.eps_for(compute, kind=kind)
        log_true, changed = guarded_log(picked, guard, eps, conv.log_floor)
        numerator, guarded = -log_true, int(np.count_nonzero(changed))
    denominator = _ones(num_rows)
    weights = inputs.class_weights(class_weight, num_classes, compute)
    if weights is not None:
        numerator, denominator = weights[true] * numerator, weights[true].astype(np.float64)
    counts = empty_diagnostics()
    counts["num_not_normalized"], counts["num_looks_like_logits"] = _count_far_from_one(
        pred, compute, (_sum_tolerance(pred.dtype), LOGITS_SUM_TOLERANCE)
    )
    counts["num_true_prob_zero"] = zeros
    counts["num_true_prob_one"] = int(np.count_nonzero(picked == 1))
    counts["num_guarded"] = guarded
    return LossTerms(
        numerator=numerator.astype(np.float64, copy=False),
        denominator=denominator,
        invalid=np.zeros(num_rows, dtype=bool),
        invalid_reason=None,
        diagnostics=counts,
        batch_shape=(num_rows,),
    )


_ONE_BITS = {
    np.dtype(np.float32): (np.uint32, 0x3F800000),
    np.dtype(np.float64): (np.uint64, 0x3FF0000000000000),
}


def _all_probabilities(pred: np.ndarray) -> bool:
    """Every value in [0, 1], in one reduction: as unsigned integers the bits of 0 <= p <= 1
    are at most those of 1.0, while negatives (sign bit), inf and NaN are all larger. (-0.0
    also fails: the general path handles it.)

    >>> _all_probabilities(np.array([[0.0, 1.0]], dtype=np.float32)), _all_probabilities(np.array([[np.nan, 0.5]]))
    (True, False)
    """
    bits = _ONE_BITS.get(pred.dtype)
    if bits is None or not pred.flags.c_contiguous:
        return bool(pred.min() >= 0 and pred.max() <= 1)  # False for NaN
    unsigned, one = bits
    return int(pred.view(unsigned).max()) <= one


@functools.cache
def _sum_tolerance(dtype: np.dtype) -> float:
    """Rows farther than this from summing to 1 are "not normalised": sqrt(eps) of the dtype."""
    return float(np.sqrt(np.finfo(dtype).eps))


@functools.lru_cache(maxsize=8)
def _ones(num_rows: int) -> np.ndarray:
    """A read-only float64 array of ones (cached: batches repeat their sizes)."""
    ones = np.ones(num_rows)
    ones.flags.writeable = False
    return ones


@functools.lru_cache(maxsize=8)
def _row_starts(num_rows: int, num_classes: int) -> np.ndarray:
    """Flat index of each row's first element (read-only, cached: row groups repeat sizes)."""
    starts = np.arange(0, num_rows * num_classes, num_classes)
    starts.flags.writeable = False
    return starts


def _count_far_from_one(
    pred: np.ndarray, compute: np.dtype, limits: tuple[float, ...]
) -> list[int]:
    """For each limit, the number of rows with ``|sum(row) - 1| > limit``, where the sum is the
    general diagnostics' (float64 sums of the compute-dtype values), for probabilities in [0, 1].

    ``einsum`` sums the rows fast in ``pred``'s dtype (error <= k * u * sum <= k * k * u;
    widened 4x). A row farther than that margin from a limit is decided by that sum; when the
    counts with the limit widened and narrowed by the margin differ, the rows in between are
    summed again the general way. (Not BLAS: OpenBLAS spreads a small matvec over threads that
    spin against the engine's own threads, 20-50x slower on a busy machine.)
    """
    num_classes = pred.shape[1]
    if pred.shape[0] <= 4096:  # small batch: the general sums directly cost less than the detour
        exact = np.abs(
            np.add.reduce(pred.astype(compute, copy=False), axis=-1, dtype=np.float64) - 1
        )
        return [int(np.count_nonzero(exact > limit)) for limit in limits]
    sums = np.einsum("ij->i", pred)
    margin = 4.0 * num_classes * num_classes * float(np.finfo(pred.dtype).eps)
    counts = []
    for limit in limits:
        sure = int(np.count_nonzero(sums > 1 + limit + margin)) + int(
            np.count_nonzero(sums < 1 - limit - margin)
        )
        maybe = int(np.count_nonzero(sums > 1 + limit - margin)) + int(
            np.count_nonzero(sums < 1 - limit + margin)
        )
        if maybe != sure:
            band = (np.abs(sums.astype(np.float64) - 1) - limit) <= margin
            band &= (np.abs(sums.astype(np.float64) - 1) - limit) >= -margin
            exact = np.abs(
                np.sum(pred[band].astype(compute, copy=False), axis=-1, dtype=np.float64) - 1
            )
            sure += int(np.count_nonzero(exact > limit))
        counts.append(sure)
    return counts
