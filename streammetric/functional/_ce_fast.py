"""The fast path of the cross-entropy family for clean batches of class indices (internal).

A batch of class indices (n,) and probabilities (n, k) in [0, 1], with every label a valid class
that is not ignored, needs only ``p[y]`` for the loss and the row sums for the diagnostics
(under a convention that renormalises after its guard, keras' for class indices, the whole
rows: see :func:`._ce_core.renormalised_nll`). One pass in C (``_kernels.sparse_loss``) proves the batch clean,
counts the rows far from summing to 1 and writes each row's loss as the general path computes
it under the convention (guard, renormalisation, dtype), in its order and with its logarithms:
float64 ones are ``_kernels.log``'s (see :func:`._ce_core.log`), float32 ones NumPy's float32
``log``, whose algorithm the kernels carry (used where NumPy's own agree with them:
:func:`float32_logs_agree`). :func:`_fast_sparse_terms` gives the general path's bits and counts
(``tests/functional/test_losses.py`` compares the two).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from streammetric._kernels import log32, sparse_loss, sparse_scan
from streammetric.conventions import GUARDS, Convention

from . import _ce_inputs as inputs
from ._ce_core import LOGITS_SUM_TOLERANCE, guarded_log, log
from ._ce_diagnostics import COLUMN, categorical_diagnostics, empty_diagnostics
from ._ce_terms import LossTerms

_LABEL_TYPES = (np.dtype(np.int64), np.dtype(np.int32))
_NOTHING = empty_diagnostics()
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
_GUARDED = COLUMN["num_guarded"]


class _Plan(NamedTuple):
    """How the fast path computes a convention's terms of one kind for one input dtype."""

    compute: np.dtype  # the convention's dtype for this input
    guard: str
    eps: np.floating  # the guard's epsilon, in ``compute``
    log_floor: float
    after: bool  # renormalised after the guard (keras' rule for class indices)
    tolerance: float  # rows farther from summing to 1 are "not normalised"
    loss: tuple[Any, ...] | None  # sparse_loss's (guard, after, f32, eps, hi, floor), or None


_PLANS: dict[tuple[int, str, np.dtype], tuple[Convention, _Plan | None]] = {}


def _plan(conv: Convention, kind: str, dtype: np.dtype) -> _Plan | None:
    """The fast path's plan for ``conv``, ``kind`` and float input ``dtype`` (cached by the
    convention's identity: a frozen dataclass hashes all its fields on every call), or None
    when the batch goes to the general path (the convention computes in a narrower dtype, or
    renormalises before its guard, or after it without the kernel's logarithms or after a log
    clamp)."""
    key = (id(conv), kind, dtype)
    cached = _PLANS.get(key)
    if cached is not None and cached[0] is conv:
        return cached[1]
    plan = _make_plan(conv, kind, dtype)
    if len(_PLANS) > 256:  # conventions made on the fly (eps=...): keep the cache small
        _PLANS.clear()
    _PLANS[key] = (conv, plan)
    return plan


def _make_plan(conv: Convention, kind: str, dtype: np.dtype) -> _Plan | None:
    compute = conv.compute_dtype(dtype)
    if dtype.kind != "f" or compute.itemsize < dtype.itemsize:
        return None  # not floats, or rounded to a narrower type first: the general path
    renorm = conv.renormalize_sparse
    guard, eps = conv.guard_for(kind), conv.eps_for(compute, kind=kind)
    kernel = compute == _FLOAT64 or (compute == _FLOAT32 and float32_logs_agree())
    if renorm == "before" or (renorm == "after" and (not kernel or guard == "log_clamp")):
        return None
    loss = None
    if kernel:
        hi, floor = 1 - eps, compute.type(conv.log_floor)
        f32 = compute == _FLOAT32
        loss = (GUARDS.index(guard), renorm == "after", f32, float(eps), float(hi), float(floor))
    tolerance = _sum_tolerance(dtype)
    return _Plan(compute, guard, eps, conv.log_floor, renorm == "after", tolerance, loss)


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
    pred = y_pred if type(y_pred) is np.ndarray else inputs.to_numpy(y_pred, "preds")
    true = y_true if type(y_true) is np.ndarray else inputs.to_numpy(y_true, "labels")
    if pred.ndim != 2 or axis not in (-1, 1) or true.ndim != 1 or not pred.size:
        return None
    cached = _PLANS.get((id(conv), kind, pred.dtype))
    plan = cached[1] if cached is not None and cached[0] is conv else _plan(conv, kind, pred.dtype)
    if plan is None:
        return None
    if true.dtype not in _LABEL_TYPES:
        if true.dtype.kind not in "iu":
            return None
        true = true.astype(np.int64)
    compute = plan.compute
    num_rows, num_classes = pred.shape
    ignore = None
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        ignore = ignore_index
    ranks = np.empty((num_rows, 2), dtype=np.int64) if class_ranks else None
    weights = None
    if class_weight is not None:
        weights = inputs.class_weights(class_weight, num_classes, compute)
    if plan.loss is not None:  # the loss in the scan
        numerator = np.empty(num_rows) if weights is None else np.empty(num_rows, dtype=compute)
        tolerance = plan.tolerance
        found = sparse_loss(
            pred,
            true,
            numerator,
            ignore,
            tolerance,
            LOGITS_SUM_TOLERANCE,
            _margin(num_classes),
            ranks,
            *plan.loss,
        )
        if found is None:
            return None
        far, far_logits, zeros, ones, guarded, unsure = found
        if unsure:
            far, far_logits = _decide(pred, unsure, compute, tolerance, far, far_logits)
    else:  # the scan, then the guard and the logarithm in NumPy (float16, ...)
        picked = np.empty(num_rows, dtype=compute)
        scanned = _scan(pred, true, picked, ignore, ranks)
        if scanned is None:
            return None
        far, far_logits, zeros, ones = scanned
        if plan.guard == "none" and not zeros:  # p in (0, 1]: a plain log
            numerator, guarded = log(picked, negate=True, out=picked), 0
        else:
            log_true, changed = guarded_log(picked, plan.guard, plan.eps, plan.log_floor)
            numerator, guarded = -log_true, int(np.count_nonzero(changed))

    def row_diagnostics() -> np.ndarray:
        """The general path's per-row counts (asked for only when some count is not 0)."""
        scores = pred.astype(compute, copy=False)
        rows = categorical_diagnostics(
            scores,
            true,
            None,
            active=np.ones(num_rows, dtype=bool),
            from_logits=False,
            source_dtype=pred.dtype,
        )
        if guarded:  # the values the guard changed, per row
            values = scores if plan.after else scores[np.arange(num_rows), true]
            _, changed = guarded_log(values, plan.guard, plan.eps, plan.log_floor)
            rows[:, _GUARDED] = changed if changed.ndim == 1 else changed.sum(axis=-1)
        return rows

    if weights is None:
        denominator = _ones(num_rows)
    else:
        numerator, denominator = weights[true] * numerator, weights[true].astype(np.float64)
    if zeros or ones or guarded or far or far_logits:
        diagnostics = {  # DIAGNOSTIC_KEYS, in order
            "num_true_prob_zero": zeros,
            "num_true_prob_one": ones,
            "num_guarded": guarded,
            "num_not_normalized": far,
            "num_out_of_range": 0,
            "num_nonfinite": 0,
            "num_looks_like_logits": far_logits,
            "num_ignored": 0,
            "num_invalid": 0,
        }
    else:  # a clean batch counts nothing (a copy: callers keep it)
        diagnostics = _NOTHING.copy()
    if numerator.dtype != _FLOAT64:
        numerator = numerator.astype(np.float64)
    return LossTerms(  # numerator, denominator, invalid, invalid_reason, diagnostics, ...
        numerator,
        denominator,
        _falses(num_rows),
        None,
        diagnostics,
        (num_rows,),
        ranks,
        row_diagnostics,
    )


@functools.cache
def float32_logs_agree() -> bool:
    """Whether NumPy's float32 ``log`` gives the bits of ``_kernels.log32`` here: it carries
    NumPy's algorithm on x86-64 CPUs with AVX2 and FMA or AVX-512 (every float32 was compared),
    while NumPy elsewhere calls the C library's. Checked once on values where the two differ
    often; where they differ, float32 losses keep NumPy's path."""
    rng = np.random.default_rng(0)
    positive = rng.integers(1, 0x7F800000, 4096, dtype=np.uint32).view(np.float32)
    special = np.array([0.0, -0.0, 1.0, 0.5, np.inf, -np.inf, np.nan, -1.0], dtype=np.float32)
    values = np.concatenate([positive, special])
    out = np.empty_like(values)
    with np.errstate(all="ignore"):
        return bool(log32(values, out)) and np.array_equal(
            np.log(values).view(np.uint32), out.view(np.uint32)
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
    if unsure:
        far, far_logits = _decide(pred, unsure, picked.dtype, tolerance, far, far_logits)
    return far, far_logits, zeros, ones


def _decide(
    pred: np.ndarray,
    unsure: list[int],
    compute: np.dtype,
    tolerance: float,
    far: int,
    far_logits: int,
) -> tuple[int, int]:
    """``far`` and ``far_logits`` with the rows the scan was unsure of decided by the general
    path's own sums (of the values in the ``compute`` dtype)."""
    distance = np.abs(np.sum(pred[unsure].astype(compute), axis=-1, dtype=np.float64) - 1)
    far += int(np.count_nonzero(distance > tolerance))
    far_logits += int(np.count_nonzero(distance > LOGITS_SUM_TOLERANCE))
    return far, far_logits


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
