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

from typing import Any

import numpy as np

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.accumulate import ExactSum
from streammetric.conventions import Convention, get_convention

from . import _ce_inputs as inputs
from ._ce_core import binary_rows, categorical_rows, exp_float, sigmoid, softmax
from ._ce_diagnostics import (
    COLUMN,
    DIAGNOSTIC_KEYS,
    binary_diagnostics,
    categorical_diagnostics,
    totals,
)
from ._ce_fast import _fast_sparse_terms
from ._ce_terms import LossTerms

__all__ = [
    "DIAGNOSTIC_KEYS",
    "REDUCTIONS",
    "LossTerms",
    "binary_cross_entropy",
    "cross_entropy",
    "perplexity",
]

REDUCTIONS = ("none", "sum", "mean", "sum_over_batch_size")


def _probability_rule(
    scores: np.ndarray, conv: Convention, batch_shape: tuple[int, ...], *, logits: bool
) -> inputs.RowRule:
    bad = ~np.isfinite(scores) if logits else ~((scores >= 0) & (scores <= 1))
    what = "finite logits" if logits else "probabilities in [0, 1]"

    def error(row: int) -> InvalidInputError:
        value = inputs.first_bad_value(scores, bad, row)
        rule = f"must hold {what} under convention {conv.name!r}"
        return inputs.row_error("preds", row, batch_shape, rule, value)

    return np.asarray(bad.any(axis=-1)), error


def _assemble(
    numerator: np.ndarray,
    denominator: np.ndarray,
    rules: list[inputs.RowRule],
    skipped: np.ndarray,
    rows: np.ndarray,
    batch_shape: tuple[int, ...],
) -> LossTerms:
    """The terms, with the per-row diagnostics ``rows`` (their invalid column set here)."""
    kept_rules = [(mask & ~skipped, error) for mask, error in rules]
    invalid, reason = inputs.first_error(kept_rules, len(numerator))
    drop = invalid | skipped
    rows[:, COLUMN["num_invalid"]] = invalid
    counts = totals(rows)
    return LossTerms(
        numerator=np.where(drop, 0.0, numerator.astype(np.float64)),
        denominator=np.where(drop, 0.0, denominator.astype(np.float64)),
        invalid=invalid,
        invalid_reason=reason,
        diagnostics=counts,
        batch_shape=tuple(batch_shape),
        row_diagnostics=lambda: rows,
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

    Clean batches of class indices and probabilities take a fast path, one pass in C that reads
    only the true class's probability (the whole row under keras' renormalisation) and computes
    the loss (:func:`_fast_sparse_terms`); it gives the same bits as the general one.
    """
    conv = get_convention(convention)
    smoothing = inputs.check_label_smoothing(label_smoothing)
    if not from_logits and smoothing == 0:
        fast = _fast_sparse_terms(y_true, y_pred, conv, class_weight, ignore_index, axis, kind)
        if fast is not None:
            return fast
    return _general_terms(
        y_true, y_pred, conv, from_logits, smoothing, class_weight, ignore_index, axis, kind
    )


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
    counted = ~batch.ignored & ~batch.label_rule[0]
    rows = categorical_diagnostics(
        scores,
        batch.labels,
        batch.targets,
        active=counted,
        from_logits=from_logits,
        source_dtype=batch.source_dtype,
    )
    rows[:, COLUMN["num_guarded"]] = np.where(counted, guarded, 0)
    rows[:, COLUMN["num_ignored"]] = batch.ignored
    return _assemble(numerator, denominator, rules, batch.ignored, rows, batch.batch_shape)


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
                f"output), got shape {weight.shape}",
                argument="pos_weight",
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
    rows = binary_diagnostics(targets, scores, from_logits=from_logits)
    rows[:, COLUMN["num_guarded"]] = (
        np.reshape(guarded, (len(per_row), -1)).sum(axis=1) if len(per_row) else 0
    )
    skipped = np.zeros(len(per_row), dtype=bool)
    return _assemble(per_row, np.ones(len(per_row)), rules, skipped, rows, batch_shape)


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
        raise terms.invalid_reason
    weights = inputs.sample_weights(sample_weight, terms.batch_shape)
    numerator = terms.numerator if weights is None else weights * terms.numerator
    if reduction == "none":
        return numerator.reshape(terms.batch_shape)
    total = ExactSum.from_values(numerator)  # the metric objects' exact sums: same bits
    if reduction == "sum":
        return total.value
    if reduction == "sum_over_batch_size":  # Keras' divide_no_nan: 0 when no row counts
        counted = len(numerator) - terms.diagnostics["num_ignored"]
        return total.ratio(counted) if counted else 0.0
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
    denominator as PyTorch does), ``sum_over_batch_size`` = ``sum(s_i l_i) / n`` (Keras; 0 when
    no row counts, as Keras' ``divide_no_nan``).

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
    return exp_float(_reduce(terms, sample_weight, "mean"))
