"""The fast path of the cross-entropy family for clean batches of class indices (internal).

A batch of class indices (n,) and probabilities (n, k) in [0, 1], with every label a valid class
that is not ignored, needs only ``p[y]`` for the loss and the row sums for the diagnostics. One
pass in C (``_kernels.sparse_scan``) proves the batch clean, gathers ``p[y]`` and counts the rows
far from summing to 1; the logarithms are ``_kernels.log``'s, as on the general path (see
:func:`._ce_core.log`), taken in that pass for `CleanPass`. :func:`_fast_sparse_terms` gives
the general path's bits and counts (``tests/functional/test_losses.py`` compares the two).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from streammetric._kernels import sparse_scan
from streammetric.accumulate import ExactSum
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


class CleanPass:
    """Clean batches of class indices (n,) and probabilities (n, k) folded into running totals:
    the rows, the exact sum of ``-log p[y]`` (float64), the rows far from summing to 1, the
    rows with ``p[y] == 1``, with ``argmax`` the rows whose true class is the argmax (the first
    of equal scores), and per ``k`` of ``top_ks`` the rows whose true class ranks below ``k``
    (the last of equal scores first: see `_class_ranks`). That is all the cross-entropy family
    (see :func:`takes_clean_pass`), accuracy and top-k accuracy need of such a batch, so an
    evaluation can fold a whole unit of work into them at once (``EvalMetric.fold_clean``) with
    one pass in C and one logarithm per batch.

    ``add`` returns False, and adds nothing, for a batch that is not clean or has a ``p[y] ==
    0`` (its loss is not a plain logarithm): such a batch goes through ``update``.

    >>> clean = CleanPass(top_ks=(1,), argmax=True)
    >>> clean.add(np.array([0, 0]), np.array([[0.75, 0.25], [0.5, 0.5]]))
    True
    >>> clean.rows, clean.argmax_hits, clean.hits  # the tie: argmax 0, but class 1 ranks first
    (2, 2, {1: 1})
    >>> clean.neg_log.value == float(-np.log(0.75) - np.log(0.5))
    True
    >>> clean.add(np.array([2, 0]), np.array([[0.75, 0.25], [0.5, 0.5]])), clean.rows
    (False, 2)
    """

    def __init__(self, top_ks: Iterable[int] = (), argmax: bool = False) -> None:
        self.top_ks = tuple(sorted(set(top_ks)))
        self.argmax = argmax
        self.argmax_hits = 0
        self.rows = 0
        self.neg_log = ExactSum()
        self.far = self.far_logits = self.ones = 0
        self.hits = dict.fromkeys(self.top_ks, 0)
        self._picked = np.empty(0)
        self._ranks = np.empty(0, dtype=np.int64)

    def add(self, labels: np.ndarray, preds: np.ndarray) -> bool:
        """Fold in a batch of int32/int64 labels and float32/float64 probabilities; False (and
        nothing added) if it is not clean or has a ``p[y] == 0``."""
        num_rows = len(labels)
        if preds.ndim != 2 or preds.shape[0] != num_rows or preds.shape[1] < 2 or not num_rows:
            return False
        ranked = bool(self.top_ks) or self.argmax
        if len(self._picked) < num_rows:
            self._picked = np.empty(num_rows)
            self._ranks = np.empty((num_rows if ranked else 0, 2), dtype=np.int64)
        picked, ranks = self._picked[:num_rows], self._ranks[:num_rows]
        scan = _scan(preds, labels, picked, None, ranks if ranked else None, neg_log=True)
        if scan is None or scan[2]:
            return False
        far, far_logits, _, ones = scan
        self.neg_log.add(picked)  # -log p[y], taken by the scan
        if self.argmax:
            self.argmax_hits += int(np.count_nonzero(ranks[:, 0] == 0))
        for top_k in self.top_ks:
            self.hits[top_k] += int(np.count_nonzero(ranks[:, 1] < top_k))
        self.rows += num_rows
        self.far += far
        self.far_logits += far_logits
        self.ones += ones
        return True

    def empty_like(self) -> CleanPass:
        """A pass with no rows and the same ``top_ks`` and ``argmax``."""
        return CleanPass(self.top_ks, self.argmax)

    def merge(self, other: CleanPass) -> CleanPass:
        """Add the rows ``other`` folded in (same ``top_ks`` and ``argmax``); exact. Returns
        ``self``."""
        if (other.top_ks, other.argmax) != (self.top_ks, self.argmax):
            raise ValueError(
                f"cannot merge clean passes of top_ks {other.top_ks}, argmax {other.argmax} into {self.top_ks}, {self.argmax}"
            )
        self.argmax_hits += other.argmax_hits
        self.rows += other.rows
        self.neg_log.merge(other.neg_log)
        self.far += other.far
        self.far_logits += other.far_logits
        self.ones += other.ones
        for top_k, hits in other.hits.items():
            self.hits[top_k] += hits
        return self

    def diagnostics(self) -> dict[str, int]:
        """The cross-entropy diagnostics of the rows folded in (see ``DIAGNOSTIC_KEYS``)."""
        counts = empty_diagnostics()
        counts["num_not_normalized"], counts["num_looks_like_logits"] = self.far, self.far_logits
        counts["num_true_prob_one"] = self.ones
        return counts


_CLEAN_PASS_OPTIONS = {"from_logits", "label_smoothing", "class_weight", "ignore_index", "axis"}


def takes_clean_pass(conv: Convention, options: Mapping[str, Any]) -> bool:
    """Whether ``_cross_entropy_update(..., convention=conv, **options)`` of a batch that
    `CleanPass` accepts has the terms it folds: ``-log p[y]`` in float64, one per row, each of
    weight 1, and no diagnostics but those it counts."""
    return (
        set(options) <= _CLEAN_PASS_OPTIONS
        and not options.get("from_logits", False)
        and not options.get("label_smoothing", 0.0)
        and options.get("class_weight") is None
        and options.get("ignore_index") is None
        and options.get("axis", -1) in (-1, 1)
        and conv.renormalize_sparse == "never"
        and conv.guard_for("categorical") == "none"
        and conv.compute_dtype(np.float32) == np.float64
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
