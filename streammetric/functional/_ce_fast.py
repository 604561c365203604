"""The fast path of the cross-entropy family for clean batches of class indices (internal).

A batch of class indices (n,) and probabilities (n, k) in [0, 1], with every label a valid class
that is not ignored, needs only ``p[y]`` for the loss and the row sums for the diagnostics. One
pass in C (``_kernels.sparse_scan``) proves the batch clean, gathers ``p[y]`` and counts the rows
far from summing to 1; the logarithms are ``_kernels.log``'s, as on the general path (see
:func:`._ce_core.log`), taken in that pass for the exact convention. :func:`_fast_sparse_terms` gives
the general path's bits and counts (``tests/functional/test_losses.py`` compares the two).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from streammetric._kernels import sparse_scan
from streammetric.conventions import Convention

from . import _ce_inputs as inputs
from ._ce_core import LOGITS_SUM_TOLERANCE, guarded_log, log
from ._ce_diagnostics import COLUMN, categorical_diagnostics, empty_diagnostics
from ._ce_terms import LossTerms

_LABEL_TYPES = (np.dtype(np.int64), np.dtype(np.int32))


def _fast_sparse_terms(
    y_true: Any,
    y_pred: Any,
    conv: Convention,
    class_weight: Any,
    ignore_index: int | None,
    axis: int,
    kind: str,
    class_ranks: bool = False,
) -> LossTerms | None:
    """Terms of a clean batch of class indices (n,) and probabilities (n, k), or None.

    "Clean": every probability in [0, 1] and every label a valid, not ignored class index.
    The row sums are float64 sums in index order; a row whose sum is too close to a tolerance
    for the order of summation not to matter is summed again as :func:`categorical_diagnostics`
    does, so the counts are the general path's. With ``class_ranks``, the same pass ranks the
    true classes (``LossTerms.ranks``).
    """
    pred, true = inputs.to_numpy(y_pred, "preds"), inputs.to_numpy(y_true, "labels")
    if pred.ndim != 2 or axis not in (-1, 1) or true.ndim != 1 or not pred.size:
        return None
    compute = conv.compute_dtype(pred.dtype)
    if pred.dtype.kind != "f" or compute.itemsize < pred.dtype.itemsize:
        return None  # not floats, or rounded to a narrower type first: the general path
    if true.dtype not in _LABEL_TYPES:
        if true.dtype.kind not in "iu":
            return None
        true = true.astype(np.int64)
    num_rows, num_classes = pred.shape
    picked = np.empty(num_rows, dtype=compute)
    ignore = ignore_index if ignore_index is not None and 0 <= ignore_index < num_classes else None
    ranks = np.empty((num_rows, 2), dtype=np.int64) if class_ranks else None
    guard = conv.guard_for(kind)
    fused = guard == "none" and compute == np.float64  # -log p[y] taken in the scan itself
    scan = _scan(pred, true, picked, ignore, ranks, neg_log=fused)
    if scan is not None and fused and scan[2]:  # a p[y] == 0: gather p[y] and guard them
        fused, scan = False, _scan(pred, true, picked, ignore, ranks)
    if scan is None:
        return None
    far, far_logits, zeros, ones = scan
    changed = None
    if fused:  # p in (0, 1]: the scan's -log, nothing to guard or warn
        numerator, guarded = picked, 0
    elif guard == "none" and not zeros:  # a plain log, nothing to guard or warn
        numerator, guarded = log(picked, negate=True, out=picked), 0
    else:
        eps = conv.eps_for(compute, kind=kind)
        log_true, changed = guarded_log(picked, guard, eps, conv.log_floor)
        numerator, guarded = -log_true, int(np.count_nonzero(changed))

    def row_diagnostics() -> np.ndarray:
        """The general path's per-row counts (asked for only when some count is not 0)."""
        rows = categorical_diagnostics(
            pred.astype(compute, copy=False),
            true,
            None,
            active=np.ones(num_rows, dtype=bool),
            from_logits=False,
            source_dtype=pred.dtype,
        )
        if changed is not None:
            rows[:, COLUMN["num_guarded"]] = changed
        return rows

    denominator = _ones(num_rows)
    weights = inputs.class_weights(class_weight, num_classes, compute)
    if weights is not None:
        numerator, denominator = weights[true] * numerator, weights[true].astype(np.float64)
    counts = empty_diagnostics()
    counts["num_not_normalized"], counts["num_looks_like_logits"] = far, far_logits
    counts["num_true_prob_zero"], counts["num_true_prob_one"] = zeros, ones
    counts["num_guarded"] = guarded
    return LossTerms(
        numerator=numerator.astype(np.float64, copy=False),
        denominator=denominator,
        invalid=_falses(num_rows),
        invalid_reason=None,
        diagnostics=counts,
        batch_shape=(num_rows,),
        ranks=ranks,
        row_diagnostics=row_diagnostics,
    )


def _scan(
    pred: np.ndarray,
    true: np.ndarray,
    picked: np.ndarray,
    ignore: int | None,
    ranks: np.ndarray | None,
    neg_log: bool = False,
) -> tuple[int, int, int, int] | None:
    """``sparse_scan`` (p[y] into ``picked``, or with ``neg_log`` -log p[y] as :func:`log`
    gives it, taken in the same pass; ranks into ``ranks``), with the rows too close to a
    tolerance summed again as the general path does: (far, far_logits, zeros, ones), or None if
    the batch is not clean."""
    tolerance = _sum_tolerance(pred.dtype)
    margin = _margin(pred.shape[1])
    scan = sparse_scan(
        pred, true, picked, ignore, tolerance, LOGITS_SUM_TOLERANCE, margin, ranks, neg_log
    )
    if scan is None:
        return None
    far, far_logits, zeros, ones, unsure = scan
    if unsure:  # decided by the general path's own sums
        compute = picked.dtype
        distance = np.abs(np.sum(pred[unsure].astype(compute), axis=-1, dtype=np.float64) - 1)
        far += int(np.count_nonzero(distance > tolerance))
        far_logits += int(np.count_nonzero(distance > LOGITS_SUM_TOLERANCE))
    return far, far_logits, zeros, ones


@functools.cache
def _sum_tolerance(dtype: np.dtype) -> float:
    """Rows farther than this from summing to 1 are "not normalised": sqrt(eps) of the dtype."""
    return float(np.sqrt(np.finfo(dtype).eps))


@functools.cache
def _margin(num_classes: int) -> float:
    """A bound on the difference of two float64 sums of k values in [0, 1] in different orders
    (each is within (k - 1) * 2**-53 * k of the exact sum), widened 4x."""
    return 4.0 * num_classes * num_classes * float(np.finfo(np.float64).eps)


@functools.lru_cache(maxsize=8)
def _ones(num_rows: int) -> np.ndarray:
    """A read-only float64 array of ones (cached: batches repeat their sizes)."""
    ones = np.ones(num_rows)
    ones.flags.writeable = False
    return ones


@functools.lru_cache(maxsize=8)
def _falses(num_rows: int) -> np.ndarray:
    """A read-only bool array of False (cached: batches repeat their sizes)."""
    falses = np.zeros(num_rows, dtype=bool)
    falses.flags.writeable = False
    return falses
