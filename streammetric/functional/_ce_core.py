"""Vectorised cross-entropy arithmetic in a given dtype (internal).

Every function works on rows (N, C) or (N, d) and keeps the dtype of its input, so a float32
batch is computed with float32 roundings, as the frameworks do. The guard table is in
:mod:`streammetric.conventions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streammetric import _kernels
from streammetric.conventions import Convention

#: Rows of probabilities whose sum is farther than this from 1 look like logits (or scores).
LOGITS_SUM_TOLERANCE = 0.1


def _portable(kernel: Any, x: np.ndarray, out: np.ndarray | None, *flag: bool) -> np.ndarray | None:
    """``kernel(x, out, *flag)`` for float64 ``x`` (into a new array unless ``out``), else None."""
    if x.dtype != np.float64:
        return None
    out = np.empty(x.shape) if out is None else out
    return out if kernel(np.ascontiguousarray(x), out, *flag) else None


def log(x: np.ndarray, negate: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Elementwise natural logarithm (``-log`` with ``negate``), into ``out`` if given (may be
    ``x``). float64 goes through ``_kernels.log``: the same bits on every CPU (NumPy's float64
    log differs in the last bit between its AVX-512 and other loops), below 0.502 ulp; other
    dtypes through NumPy, as the frameworks compute them."""
    done = _portable(_kernels.log, x, out, negate)
    if done is not None:
        return done
    logs = np.log(x, out=out)
    return np.negative(logs, out=logs) if negate else logs


def exp(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Elementwise ``exp`` as :func:`log` computes ``log``: float64 through ``_kernels.exp``
    (the same bits on every CPU, below 0.51 ulp), other dtypes through NumPy."""
    done = _portable(_kernels.exp, x, out)
    return done if done is not None else np.exp(x, out=out)


def exp_float(value: float) -> float:
    """``exp`` of one float by :func:`exp`'s float64 path (perplexity from a mean loss)."""
    return float(exp(np.array([value], dtype=np.float64))[0])


def log1p(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Elementwise ``log(1 + x)`` as :func:`log` computes ``log``: float64 through
    ``_kernels.log1p`` (the same bits on every CPU, below 0.502 ulp), other dtypes through
    NumPy."""
    done = _portable(_kernels.log1p, x, out)
    return done if done is not None else np.log1p(x, out=out)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (after != before) & ~np.isnan(before)


def guard_values(p: np.ndarray, guard: str, eps: np.floating) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities under ``guard`` (one that acts on them: not ``log_clamp``), and where the
    guard changed a value."""
    if guard == "none":
        return p, np.zeros(p.shape, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        if guard == "add":
            values = p + eps
        elif guard == "floor":
            values = np.maximum(p, eps)
        else:  # clip, clip_add
            values = np.clip(p, eps, 1 - eps)
            if guard == "clip_add":
                values = values + eps
    return values, _changed(p, values)


def guarded_log(
    p: np.ndarray, guard: str, eps: np.floating, log_floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """``log`` of probabilities under ``guard``, and where the guard changed a value."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if guard == "log_clamp":
            raw = log(p)
            floor = p.dtype.type(log_floor)
            return np.maximum(raw, floor), raw < floor
        values, changed = guard_values(p, guard, eps)
        return log(values), changed


def renormalised_nll(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``-log_softmax(log(values))[labels]`` of guarded probabilities, row by row, in their dtype:
    the true class's share after the guard, ``-((log g[y] - log max g) - log(sum(g / max g)))``
    with the sum taken by :func:`halving_sum`.

    This is Keras' (TF backend's) rule for class indices, a log-softmax of the guarded logs,
    without the logarithm and exponential of every class that the log-softmax takes:
    ``exp(log g - log max g)`` is ``g / max g`` up to the rounding of the logs, which TF's own
    ``log`` and ``exp`` do not share with NumPy's either (``scripts/framework_agreement.py``:
    77.0% of random rows bit-identical to TF's, against 77.7% for the log-softmax of NumPy's
    logs). Only
    where the logs round finely: not for float16 (its logs round to 11 bits), nor under
    ``log_clamp`` (which changes the logs, not the probabilities).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        top = np.max(values, axis=-1)
        total = halving_sum(values / top[:, None])
        shifted = log(values[np.arange(len(values)), labels]) - log(top)
        return -(shifted - log(0 + total))


def halving_sum(values: np.ndarray) -> np.ndarray:
    """Each row's sum by halving: the row padded with zeros to a power of two, its second half
    added to its first until one value is left. The order of a tree of vector lanes (the
    kernels' across rows), which is also that of the frameworks' vectorised reductions more
    often than NumPy's pairwise sum."""
    width = 1 << (values.shape[-1] - 1).bit_length()
    while width > 1:
        width //= 2
        head, tail = values[:, :width], values[:, width:]
        values = np.concatenate([head[:, : tail.shape[1]] + tail, head[:, tail.shape[1] :]], 1)
    return values[:, 0]


def binary_guarded_logs(
    p: np.ndarray, guard: str, eps: np.floating, log_floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``log p`` and ``log(1 - p)`` under ``guard``, and where the guard changed each."""
    one = p.dtype.type(1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if guard in ("none", "log_clamp"):
            log_pos, log_neg = log(p), log1p(-p)
            if guard == "none":
                unchanged = np.zeros(p.shape, dtype=bool)
                return log_pos, log_neg, unchanged, unchanged
            floor = p.dtype.type(log_floor)
            clamped = (log_pos < floor, log_neg < floor)
            return np.maximum(log_pos, floor), np.maximum(log_neg, floor), *clamped
        if guard == "add":
            pos, neg = p + eps, (one - p) + eps
        elif guard == "floor":
            pos, neg = np.maximum(p, eps), np.maximum(one - p, eps)
        else:  # clip, clip_add
            clipped = np.clip(p, eps, one - eps)
            pos, neg = clipped, one - clipped
            if guard == "clip_add":
                pos, neg = pos + eps, neg + eps
        return log(pos), log(neg), _changed(p, pos), _changed(one - p, neg)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Stable ``x - max - log(sum(exp(x - max)))`` along the last axis, in x's dtype."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shift = np.max(x, axis=-1, keepdims=True)
        shift = np.where(np.isfinite(shift), shift, 0)
        shifted = x - shift
        return shifted - log(np.sum(exp(shifted), axis=-1, keepdims=True))


def softmax(x: np.ndarray) -> np.ndarray:
    """Stable softmax along the last axis, in x's dtype."""
    with np.errstate(invalid="ignore", over="ignore"):
        shift = np.max(x, axis=-1, keepdims=True)
        exps = exp(x - np.where(np.isfinite(shift), shift, 0))
        return exps / np.sum(exps, axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Stable logistic function, in x's dtype."""
    with np.errstate(over="ignore"):
        e = exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def categorical_rows(
    scores: np.ndarray,
    labels: np.ndarray | None,
    targets: np.ndarray | None,
    conv: Convention,
    *,
    logits: bool,
    label_smoothing: float,
    class_weight: np.ndarray | None,
    kind: str = "categorical",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row numerator, denominator and number of guarded values that enter the loss.

    ``logits`` means ``scores`` are logits for a native log-softmax; otherwise they are
    probabilities and go through renormalisation and the convention's guard.
    """
    dtype = scores.dtype.type
    num_rows, num_classes = scores.shape
    rows = np.arange(num_rows)
    # class indices with label smoothing are the one-hot targets they smooth into (Keras' sparse
    # loss has no smoothing: its users smooth one-hot targets)
    sparse = labels is not None and not label_smoothing
    renorm = conv.renormalize_sparse if sparse else conv.renormalize_dense
    guard, eps = conv.guard_for(kind), conv.eps_for(scores.dtype, kind=kind)
    # float16 widened for the log-softmax, each row's loss rounded back (TF's, PyTorch's)
    half16 = scores.dtype == np.float16
    half = half16 and conv.half_softmax == "float32"
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # class indices without the full log-softmax: only the true class's probability enters
        # (the whole row, as a ratio, when renormalised after the guard: see renormalised_nll)
        ratio = renorm == "after" and guard != "log_clamp" and not half16
        if labels is not None and sparse and not logits and (renorm != "after" or ratio):
            if ratio:
                values, changed = guard_values(scores, guard, eps)
                nll, num_guarded = renormalised_nll(values, labels), changed.sum(axis=-1)
            else:
                picked = scores[rows, labels]
                if renorm == "before":
                    picked = picked / np.sum(scores, axis=-1)
                log_true, changed = guarded_log(picked, guard, eps, conv.log_floor)
                nll, num_guarded = -log_true, changed.astype(np.int64)
            weight = class_weight[labels] if class_weight is not None else None
            numerator = nll if weight is None else weight * nll
            denominator = np.ones(num_rows) if weight is None else weight
            return numerator, denominator, num_guarded
        widened = (lambda x: x.astype(np.float32)) if half else (lambda x: x)
        if logits:
            log_probs, changed = log_softmax(widened(scores)), np.zeros(scores.shape, dtype=bool)
        else:
            probs = (
                scores / np.sum(scores, axis=-1, keepdims=True) if renorm == "before" else scores
            )
            log_probs, changed = guarded_log(probs, guard, eps, conv.log_floor)
            if renorm == "after":
                log_probs = log_softmax(widened(log_probs))
        if labels is not None:
            nll = -log_probs[rows, labels]
            weight = class_weight[labels] if class_weight is not None else None
            numerator = nll if weight is None else weight * nll
            denominator = np.ones(num_rows) if weight is None else weight
            if label_smoothing:
                weighted = log_probs if class_weight is None else log_probs * class_weight
                smooth = -np.sum(weighted, axis=-1)
                numerator = dtype(1 - label_smoothing) * numerator + smooth * dtype(
                    label_smoothing / num_classes
                )
                contributes = np.ones(scores.shape, dtype=bool)
            else:
                contributes = np.zeros(scores.shape, dtype=bool)
                contributes[rows, labels] = True
        else:
            assert targets is not None
            smoothed = targets
            if label_smoothing:
                smoothed = targets * dtype(1 - label_smoothing) + dtype(label_smoothing) / dtype(
                    num_classes
                )
            weighted_targets = smoothed if class_weight is None else smoothed * class_weight
            contributes = weighted_targets != 0
            numerator = -np.sum(np.where(contributes, weighted_targets * log_probs, 0), axis=-1)
            denominator = np.ones(num_rows)
        if renorm == "after":
            contributes = np.ones(scores.shape, dtype=bool)
        guarded = np.count_nonzero(changed & contributes, axis=-1)
    if half and numerator.dtype != np.float16:
        numerator = numerator.astype(np.float16)
    return numerator, denominator, guarded


def binary_rows(
    targets: np.ndarray,
    scores: np.ndarray,
    conv: Convention,
    *,
    logits: bool,
    label_smoothing: float,
    pos_weight: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row binary cross-entropy (mean over the last axis) and guarded-value counts."""
    dtype = scores.dtype.type
    if label_smoothing:
        targets = targets * dtype(1 - label_smoothing) + dtype(0.5 * label_smoothing)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if logits:
            softplus = log1p(exp(-np.abs(scores)))
            if pos_weight is None and conv.binary_logits == "softplus":
                elements = np.maximum(scores, 0) - scores * targets + softplus
            else:  # PyTorch's (1 - y) x - w log_sigmoid(x), w = 1 without pos_weight
                log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * targets
                elements = (1 - targets) * scores + log_weight * (softplus + np.maximum(-scores, 0))
            changed = np.zeros(scores.shape, dtype=bool)
        else:
            guard, eps = conv.binary_guard, conv.eps_for(scores.dtype, kind="binary")
            log_pos, log_neg, changed_pos, changed_neg = binary_guarded_logs(
                scores, guard, eps, conv.log_floor
            )
            positive, negative = targets != 0, targets != 1
            pos_term = np.where(positive, targets * log_pos, 0)
            if pos_weight is not None:
                pos_term = pos_term * pos_weight
            neg_term = np.where(negative, (1 - targets) * log_neg, 0)
            elements = -(pos_term + neg_term)
            changed = (changed_pos & positive) | (changed_neg & negative)
        per_row = np.mean(elements, axis=-1)
    return per_row, np.count_nonzero(changed, axis=-1)
