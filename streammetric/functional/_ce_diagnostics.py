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


#: the column of each count in a per-row diagnostics matrix (N, len(DIAGNOSTIC_KEYS))
COLUMN = {key: index for index, key in enumerate(DIAGNOSTIC_KEYS)}


def totals(rows: np.ndarray) -> dict[str, int]:
    """The counts of a per-row diagnostics matrix, summed over its rows."""
    sums = rows.sum(axis=0, dtype=np.int64).tolist() if len(rows) else [0] * len(DIAGNOSTIC_KEYS)
    return dict(zip(DIAGNOSTIC_KEYS, sums, strict=True))


def categorical_diagnostics(
    scores: np.ndarray,
    labels: np.ndarray | None,
    targets: np.ndarray | None,
    *,
    active: np.ndarray,
    from_logits: bool,
    source_dtype: np.dtype,
) -> np.ndarray:
    """Per-row counts (N, len(DIAGNOSTIC_KEYS)) of a categorical batch; rows that are not
    ``active`` (ignored) count nothing. The columns guarded, ignored and invalid stay 0 (the
    caller knows them)."""
    rows = np.zeros((len(scores), len(DIAGNOSTIC_KEYS)), dtype=np.int64)
    nonfinite = np.count_nonzero(~np.isfinite(scores), axis=-1)
    rows[:, COLUMN["num_nonfinite"]] = nonfinite
    if not from_logits:
        finite_rows = nonfinite == 0
        negative = np.any(scores < 0, axis=-1)
        outside = np.count_nonzero((scores < 0) | (scores > 1), axis=-1)
        with np.errstate(invalid="ignore", over="ignore"):
            distance = np.abs(np.sum(scores, axis=-1, dtype=np.float64) - 1)
        tolerance = float(np.sqrt(np.finfo(source_dtype).eps))
        rows[:, COLUMN["num_out_of_range"]] = outside
        rows[:, COLUMN["num_not_normalized"]] = finite_rows & (distance > tolerance)
        looks_like_logits = finite_rows & (negative | (distance > LOGITS_SUM_TOLERANCE))
        rows[:, COLUMN["num_looks_like_logits"]] = looks_like_logits
        if labels is not None:
            true_prob = scores[np.arange(len(scores)), labels]
            zero, one = true_prob == 0, true_prob == 1
        else:
            assert targets is not None
            positive = targets > 0
            zero = np.any(positive & (scores == 0), axis=-1)
            one = np.any(positive & (scores == 1), axis=-1)
        rows[:, COLUMN["num_true_prob_zero"]] = zero
        rows[:, COLUMN["num_true_prob_one"]] = one
    rows[~active] = 0
    return rows


def binary_diagnostics(targets: np.ndarray, scores: np.ndarray, *, from_logits: bool) -> np.ndarray:
    """Per-row counts (N, len(DIAGNOSTIC_KEYS)) of a binary batch of rows (N, d)."""
    rows = np.zeros((len(scores), len(DIAGNOSTIC_KEYS)), dtype=np.int64)
    finite = np.isfinite(scores)
    rows[:, COLUMN["num_nonfinite"]] = np.count_nonzero(~finite, axis=-1)
    if from_logits:
        return rows
    outside = (scores < 0) | (scores > 1)
    rows[:, COLUMN["num_out_of_range"]] = np.count_nonzero(outside, axis=-1)
    rows[:, COLUMN["num_looks_like_logits"]] = np.any(outside, axis=-1)
    zero = ((targets > 0) & (scores == 0)) | ((targets < 1) & (scores == 1))
    one = ((targets == 1) & (scores == 1)) | ((targets == 0) & (scores == 0))
    rows[:, COLUMN["num_true_prob_zero"]] = np.any(zero, axis=-1)
    rows[:, COLUMN["num_true_prob_one"]] = np.any(one, axis=-1)
    return rows
