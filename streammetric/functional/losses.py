"""Cross-entropy family: exact by default, any framework's arithmetic on request.

Class-index targets ``y`` (integer ``(n,)``) or one-hot/soft targets ``t`` (float ``(n, k)``),
probabilities ``p`` or logits ``x``:

- exact, class index: ``-log p[y]`` or, from logits, ``logsumexp(x) - x[y]``
- exact, dense: ``-sum_c t_c log p_c`` or ``sum_c t_c (logsumexp(x) - x_c)``
- exact, binary: ``-(y log p + (1-y) log(1-p))`` or ``max(x,0) - x*y + log1p(exp(-|x|))``,
  averaged over the last axis

A ``convention`` (see :mod:`streammetric.conventions`) swaps in a framework's epsilon, guard,
renormalisation and dtype. The ``_x_update`` helpers return per-row :class:`LossTerms`; the
public functions and the metric classes reduce them, so both share one code path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.accumulate import ExactSum
from streammetric.conventions import Convention, get_convention

from . import _ce_inputs as inputs
from ._ce_core import (
    LOGITS_SUM_TOLERANCE,
    binary_rows,
    categorical_rows,
    guarded_log,
    sigmoid,
    softmax,
)
from ._ce_diagnostics import (
    DIAGNOSTIC_KEYS,
    binary_diagnostics,
    categorical_diagnostics,
    empty_diagnostics,
)

__all__ = [
    "DIAGNOSTIC_KEYS",
    "REDUCTIONS",
    "LossTerms",
    "binary_cross_entropy",
    "cross_entropy",
    "perplexity",
]

REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size")


@dataclass(frozen=True, eq=False)
class LossTerms:
    """Per-row pieces of a loss, for exact streaming sums.

    ``mean = sum(w * numerator) / sum(w * denominator)`` for sample weights ``w``.

    Attributes:
        numerator: float64 (N,), per-row loss already multiplied by its class weight; 0 for
            ignored and invalid rows.
        denominator: float64 (N,), 1 or ``class_weight[target]``; 0 for ignored/invalid rows.
        invalid: bool (N,), rows that break a rule of the convention.
        invalid_reason: one line about the first invalid row (row, rule, value), or None.
        diagnostics: counts for this batch, keys :data:`DIAGNOSTIC_KEYS` in that order.
        batch_shape: shape of the per-sample output (N is its product).
    """

    numerator: np.ndarray
    denominator: np.ndarray
    invalid: np.ndarray
    invalid_reason: str | None
    diagnostics: dict[str, int]
    batch_shape: tuple[int, ...] = field(default=())


def _probability_rule(
    scores: np.ndarray, conv: Convention, batch_shape: tuple[int, ...], *, logits: bool
) -> inputs.RowRule:
    bad = ~np.isfinite(scores) if logits else ~((scores >= 0) & (scores <= 1))
    what = "finite logits" if logits else "probabilities in [0, 1]"

    def message(row: int) -> str:
        return (
            f"`y_pred` {inputs.row_name(row, batch_shape)} must hold {what} under convention "
            f"{conv.name!r}, got {inputs.first_bad_value(scores, bad, row)}"
        )

    return np.asarray(bad.any(axis=-1)), message


def _assemble(
    numerator: np.ndarray,
    denominator: np.ndarray,
    rules: list[inputs.RowRule],
    skipped: np.ndarray,
    counts: dict[str, int],
    batch_shape: tuple[int, ...],
) -> LossTerms:
    kept_rules = [(mask & ~skipped, message) for mask, message in rules]
    invalid, reason = inputs.first_reason(kept_rules, len(numerator))
    drop = invalid | skipped
    counts["num_invalid"] = int(np.count_nonzero(invalid))
    return LossTerms(
        numerator=np.where(drop, 0.0, numerator.astype(np.float64)),
        denominator=np.where(drop, 0.0, denominator.astype(np.float64)),
        invalid=invalid,
        invalid_reason=reason,
        diagnostics=counts,
        batch_shape=tuple(batch_shape),
    )


def _cross_entropy_update(
    y_true: Any,
    y_pred: Any,
    *,
    convention: str | Convention = "exact",
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    class_weight: Any = None,
    ignore_index: int | None = None,
    axis: int = -1,
    kind: str = "categorical",
) -> LossTerms:
    """Per-row cross-entropy terms of one batch (see :class:`LossTerms`).

    Clean batches of class indices and probabilities take a fast path that reads only the true
    class's probability (:func:`_fast_sparse_terms`); it gives the same bits as the general one.
    """
    conv = get_convention(convention)
    smoothing = inputs.check_label_smoothing(label_smoothing)
    if not from_logits and smoothing == 0 and conv.renormalize_sparse == "never":
        fast = _fast_sparse_terms(y_true, y_pred, conv, class_weight, ignore_index, axis, kind)
        if fast is not None:
            return fast
    return _general_terms(
        y_true, y_pred, conv, from_logits, smoothing, class_weight, ignore_index, axis, kind
    )


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
    if not (pred.min() >= 0 and pred.max() <= 1):  # False for NaN
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


def _general_terms(
    y_true: Any,
    y_pred: Any,
    conv: Convention,
    from_logits: bool,
    smoothing: float,
    class_weight: Any,
    ignore_index: int | None,
    axis: int,
    kind: str,
) -> LossTerms:
    """Terms of any batch (the reference implementation)."""
    batch = inputs.categorical_inputs(
        y_true, y_pred, axis=axis, ignore_index=ignore_index, dtype_of=conv.compute_dtype
    )
    scores, num_classes = batch.scores, batch.scores.shape[-1]
    weights = inputs.class_weights(class_weight, num_classes, scores.dtype)
    native_logits = from_logits and conv.logits == "native"
    probs = softmax(scores) if from_logits and not native_logits else scores
    rules = [batch.label_rule]
    if conv.out_of_range == "invalid":
        rules.append(_probability_rule(scores, conv, batch.batch_shape, logits=from_logits))
    numerator, denominator, guarded = categorical_rows(
        probs,
        batch.labels,
        batch.targets,
        conv,
        logits=native_logits,
        label_smoothing=smoothing,
        class_weight=weights,
        kind=kind,
    )
    active = ~batch.ignored
    counts = categorical_diagnostics(
        scores,
        batch.labels,
        batch.targets,
        active=active & ~batch.label_rule[0],
        from_logits=from_logits,
        source_dtype=batch.source_dtype,
    )
    counts["num_guarded"] = int(guarded[active & ~batch.label_rule[0]].sum())
    counts["num_ignored"] = int(np.count_nonzero(batch.ignored))
    return _assemble(numerator, denominator, rules, batch.ignored, counts, batch.batch_shape)


def _binary_cross_entropy_update(
    y_true: Any,
    y_pred: Any,
    *,
    convention: str | Convention = "exact",
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    pos_weight: Any = None,
) -> LossTerms:
    """Per-row binary cross-entropy terms of one batch (see :class:`LossTerms`)."""
    conv = get_convention(convention)
    smoothing = inputs.check_label_smoothing(label_smoothing)
    targets, scores, batch_shape, target_rule, _ = inputs.binary_inputs(
        y_true, y_pred, dtype_of=conv.compute_dtype
    )
    weight = None
    if pos_weight is not None:
        weight = inputs.to_numpy(pos_weight, "pos_weight").astype(scores.dtype)
        if weight.ndim > 1 or weight.size not in (1, scores.shape[-1]):
            raise InvalidInputError(
                f"`pos_weight` must be a scalar or have {scores.shape[-1]} entries (one per "
                f"output), got shape {weight.shape}"
            )
    native_logits = from_logits and conv.logits == "native"
    probs = sigmoid(scores) if from_logits and not native_logits else scores
    rules = [target_rule]
    if conv.binary_out_of_range == "invalid":
        rules.append(_probability_rule(scores, conv, batch_shape, logits=from_logits))
    per_row, guarded = binary_rows(
        targets,
        probs,
        conv,
        logits=native_logits,
        label_smoothing=smoothing,
        pos_weight=weight,
    )
    counts = binary_diagnostics(targets, scores, from_logits=from_logits)
    counts["num_guarded"] = int(guarded.sum())
    skipped = np.zeros(len(per_row), dtype=bool)
    return _assemble(per_row, np.ones(len(per_row)), rules, skipped, counts, batch_shape)


def _perplexity_update(
    y_true: Any,
    y_pred: Any,
    *,
    convention: str | Convention = "exact",
    from_logits: bool = False,
    ignore_index: int | None = None,
    axis: int = -1,
) -> LossTerms:
    """Per-row ``-log p[y]`` terms of perplexity, with the convention's perplexity guard
    (MXNet 1.x: ``-log(max(1e-10, p[y]))``)."""
    conv = get_convention(convention)
    # Perplexity differs from cross-entropy only where a convention has its own guard or eps
    # (MXNet); otherwise use the same kind, so a composite can share the terms.
    own = conv.perplexity_guard is not None or conv.perplexity_eps is not None
    return _cross_entropy_update(
        y_true,
        y_pred,
        convention=conv,
        from_logits=from_logits,
        ignore_index=ignore_index,
        axis=axis,
        kind="perplexity" if own else "categorical",
    )


def _reduce(terms: LossTerms, sample_weight: Any, reduction: str) -> Any:
    if terms.invalid_reason is not None:
        raise InvalidInputError(terms.invalid_reason)
    weights = inputs.sample_weights(sample_weight, terms.batch_shape)
    numerator = terms.numerator if weights is None else weights * terms.numerator
    if reduction == "none":
        return numerator.reshape(terms.batch_shape)
    total = ExactSum.from_values(numerator)  # the metric objects' exact sums: same bits
    if reduction == "sum":
        return total.value
    if reduction == "sum_over_batch_size":
        return total.ratio(len(numerator) - terms.diagnostics["num_ignored"])
    denominator = terms.denominator if weights is None else weights * terms.denominator
    return total.ratio(ExactSum.from_values(denominator))


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"`reduction` must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def cross_entropy(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool = False,
    convention: str | Convention = "exact",
    label_smoothing: float = 0.0,
    class_weight: Any = None,
    sample_weight: Any = None,
    ignore_index: int | None = None,
    axis: int = -1,
    reduction: str = "mean",
) -> Any:
    """Categorical cross-entropy of class indices or one-hot/soft targets.

    ``l_i = -sum_c w_c t_ic log p_ic`` (``-w_y log p_iy`` for class indices), with label
    smoothing ``t' = (1-ls) t + ls/C``. Reductions: ``none`` (per-sample array), ``sum``,
    ``mean`` = ``sum(s_i l_i) / sum(s_i w_{y_i})`` (sample weights ``s``; class weights in the
    denominator as PyTorch does), ``sum_over_batch_size`` = ``sum(s_i l_i) / n`` (Keras).

    >>> cross_entropy([1, 0], [[0.0, 1.0], [0.0, 1.0]])
    inf
    >>> cross_entropy([1, 0], [[0.0, 1.0], [0.0, 1.0]], convention="keras")
    8.059047875479163
    >>> cross_entropy([[0, 1]], [[5.0, 7.0]], from_logits=True, reduction="none")
    array([0.12692801])
    """
    _check_reduction(reduction)
    terms = _cross_entropy_update(
        y_true,
        y_pred,
        convention=convention,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        class_weight=class_weight,
        ignore_index=ignore_index,
        axis=axis,
    )
    return _reduce(terms, sample_weight, reduction)


def binary_cross_entropy(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool = False,
    convention: str | Convention = "exact",
    label_smoothing: float = 0.0,
    pos_weight: Any = None,
    sample_weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """Binary cross-entropy; the per-sample value is the mean over the last axis of (n, d).

    ``l = -(pw * y log p + (1-y) log(1-p))``, from logits ``(1-y) x + (1 + (pw-1) y) *
    softplus(-x)``; label smoothing ``y' = (1-ls) y + ls/2``. Reductions as
    :func:`cross_entropy`.

    >>> binary_cross_entropy([[1, 1, 1]], [[1.0, 1.0, 0.0]], convention="tf_keras")
    5.141649490132791
    >>> binary_cross_entropy([1, 0], [0.9, 0.2], reduction="none").round(6)
    array([0.105361, 0.223144])
    """
    _check_reduction(reduction)
    terms = _binary_cross_entropy_update(
        y_true,
        y_pred,
        convention=convention,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        pos_weight=pos_weight,
    )
    return _reduce(terms, sample_weight, reduction)


def perplexity(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool = False,
    convention: str | Convention = "exact",
    sample_weight: Any = None,
    ignore_index: int | None = None,
    axis: int = -1,
) -> float:
    """Perplexity ``exp(sum(s_i * -log p_iy) / sum(s_i))`` over rows that are not ignored.

    Under ``convention="mxnet"`` each term is ``-log(max(1e-10, p[y]))`` (MXNet 1.x
    ``mx.metric.Perplexity``, ``ignore_label`` = ``ignore_index``).

    >>> round(perplexity([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]], convention="mxnet"), 7)
    1.7710976
    """
    terms = _perplexity_update(
        y_true,
        y_pred,
        convention=convention,
        from_logits=from_logits,
        ignore_index=ignore_index,
        axis=axis,
    )
    with np.errstate(over="ignore"):
        return float(np.exp(_reduce(terms, sample_weight, "mean")))
