"""Metrics for the export tests: a CE-like metric with ``diagnostics()`` (as the CE family has);
the arguments of an eval with interval bounds, a per-class metric and groups."""

from __future__ import annotations

from typing import Any

import numpy as np

import streammetric as sm

# an eval with interval bounds (--ci), a per-class metric (f1 per class) and groups (--by model)
CI_EVAL = (
    *("-m", "ce", "-m", "acc", "-m", "f1:average=None,class_type=multiclass"),
    *("-m", "confusion_matrix"),
    *("--by", "model", "--ci", "0.9", "--bootstrap", "100"),
)
DIAGNOSTICS = {"num_true_prob_zero": 1, "num_guarded": 3}


class FakeCrossEntropy(sm.CustomMetric):
    """Mean of -log(pred) over rows, named like the real one, with fixed diagnostic counts."""

    def __init__(self, name: str = "cross-entropy", **kwargs: Any) -> None:
        super().__init__(_neg_log_sum, name=name, **kwargs)

    def diagnostics(self) -> dict[str, int]:
        return dict(DIAGNOSTICS)


def _neg_log_sum(label: np.ndarray, pred: np.ndarray) -> tuple[float, int]:
    return float(-np.log(pred).sum()), int(pred.shape[0])


def fake_accuracy() -> sm.CustomMetric:
    return sm.CustomMetric(_hits, name="accuracy")


def _hits(label: np.ndarray, pred: np.ndarray) -> tuple[float, int]:
    return float((np.round(pred) == label).sum()), int(label.shape[0])
