"""Per-batch diagnostic counts of the cross-entropy family (internal).

The counts explain most differences between conventions. They are vectorised boolean reductions
over the batch and are computed on the predictions as given (in the compute dtype), over rows
that are not ignored.
"""

from __future__ import annotations

import numpy as np

from ._ce_core import LOGITS_SUM_TOLERANCE

#: Names and order of the diagnostic counts in ``LossTerms.diagnostics``:
#:
#: - ``num_true_prob_zero``: rows where a class with a positive target has probability exactly 0
#:   (class-index targets: the true class; binary: ``p = 0`` with ``y > 0`` or ``p = 1`` with
#:   ``y < 1``). Their exact loss is inf.
#: - ``num_true_prob_one``: rows whose true class has probability exactly 1 (binary: ``p = y``
#:   for a hard target).
#: - ``num_guarded``: probability values that enter the loss and that the convention's guard
#:   changed (clipped, eps added, floored or log clamped).
#: - ``num_not_normalized``: finite rows whose probabilities do not sum to 1 within
#:   ``sqrt(finfo(dtype).eps)`` of the input dtype (categorical only).
#: - ``num_out_of_range``: finite probability values outside [0, 1].
#: - ``num_nonfinite``: NaN or infinite values in ``y_pred`` (probabilities or logits).
#: - ``num_looks_like_logits``: finite rows passed as probabilities that hold a negative value or
#:   sum to more than 0.1 away from 1 (binary: a value outside [0, 1]).
#: - ``num_ignored``: rows whose label equals ``ignore_index``.
#: - ``num_invalid``: rows that break a rule of the convention (they add nothing to the sums).
DIAGNOSTIC_KEYS: tuple[str, ...] = (
    "num_true_prob_zero",
    "num_true_prob_one",
    "num_guarded",
    "num_not_normalized",
    "num_out_of_range",
    "num_nonfinite",
    "num_looks_like_logits",
    "num_ignored",
    "num_invalid",
)


def empty_diagnostics() -> dict[str, int]:
    """All counts at zero, in :data:`DIAGNOSTIC_KEYS` order."""
    return dict.fromkeys(DIAGNOSTIC_KEYS, 0)


def _count(mask: np.ndarray, active: np.ndarray) -> int:
    return int(np.count_nonzero(mask & active))


def categorical_diagnostics(
    scores: np.ndarray,
    labels: np.ndarray | None,
    targets: np.ndarray | None,
    *,
    active: np.ndarray,
    from_logits: bool,
    source_dtype: np.dtype,
) -> dict[str, int]:
    """Counts for a categorical batch; ``active`` marks rows that are not ignored."""
    counts = empty_diagnostics()
    nonfinite = np.count_nonzero(~np.isfinite(scores), axis=-1)
    counts["num_nonfinite"] = int(nonfinite[active].sum())
    if from_logits:
        return counts
    finite_rows = nonfinite == 0
    negative = np.any(scores < 0, axis=-1)
    outside = np.count_nonzero((scores < 0) | (scores > 1), axis=-1)
    with np.errstate(invalid="ignore", over="ignore"):
        distance = np.abs(np.sum(scores, axis=-1, dtype=np.float64) - 1)
    tolerance = float(np.sqrt(np.finfo(source_dtype).eps))
    counts["num_out_of_range"] = int(outside[active].sum())
    counts["num_not_normalized"] = _count(finite_rows & (distance > tolerance), active)
    looks_like_logits = finite_rows & (negative | (distance > LOGITS_SUM_TOLERANCE))
    counts["num_looks_like_logits"] = _count(looks_like_logits, active)
    if labels is not None:
        true_prob = scores[np.arange(len(scores)), labels]
        zero, one = true_prob == 0, true_prob == 1
    else:
        assert targets is not None
        positive = targets > 0
        zero = np.any(positive & (scores == 0), axis=-1)
        one = np.any(positive & (scores == 1), axis=-1)
    counts["num_true_prob_zero"] = _count(zero, active)
    counts["num_true_prob_one"] = _count(one, active)
    return counts


def binary_diagnostics(
    targets: np.ndarray, scores: np.ndarray, *, from_logits: bool
) -> dict[str, int]:
    """Counts for a binary batch of rows (N, d)."""
    counts = empty_diagnostics()
    finite = np.isfinite(scores)
    counts["num_nonfinite"] = int(np.count_nonzero(~finite))
    if from_logits:
        return counts
    outside = (scores < 0) | (scores > 1)
    counts["num_out_of_range"] = int(np.count_nonzero(outside))
    counts["num_looks_like_logits"] = int(np.count_nonzero(np.any(outside, axis=-1)))
    zero = ((targets > 0) & (scores == 0)) | ((targets < 1) & (scores == 1))
    one = ((targets == 1) & (scores == 1)) | ((targets == 0) & (scores == 0))
    counts["num_true_prob_zero"] = int(np.count_nonzero(np.any(zero, axis=-1)))
    counts["num_true_prob_one"] = int(np.count_nonzero(np.any(one, axis=-1)))
    return counts
