"""Calibration and ranking metrics in constant memory: ECE, Brier score, binned AUC.

The state does not grow with the rows: ECE keeps three exact sums per bin (three ``sums``
vectors over the bins), Brier a weighted mean, AUC two integer counts per threshold bucket. Each
says what a row adds (``_row_terms``), so ``--by`` folds a batch into every group at once, and
gives every group's value at once (``group_values``), by the math of one state. The math lives in
:mod:`streammetric.functional.calibration` and :mod:`streammetric.functional.ranking`; these
classes only keep the state.

>>> m = AUC(num_thresholds=3)
>>> for labels, preds in [([0, 0], [0.0, 0.5]), ([1, 1], [0.3, 0.9])]:
...     print(m.update(labels, preds).get())
('auc', nan)
('auc', 0.75)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._exceptions import ConfigError, StateError
from ..functional.calibration import (
    MAX_BINS,
    MAX_THRESHOLDS,
    NORMS,
    CalibrationSums,
    _brier_update,
    _calibration_compute,
    _calibration_rows,
    _calibration_values,
    _invalid_rows,
    check_choice,
    check_count,
    check_scale,
)
from ..functional.ranking import CURVES, _auc_bound, _auc_compute, _auc_rows, _auc_values
from .base import EvalMetric, State
from .registry import alias, register
from .state import ROWS, At, GroupedState, Terms

__all__ = ["AUC", "ECE", "Brier"]

_QUANTITIES = ("weight", "confidence", "correct")

#: the sums of an entry `ECE.group_values` takes at a time (Python ints of over a thousand bits,
#: ~180 bytes each: ~12 MB a block and entry)
_BLOCK = 1 << 16


@register
@alias("calibration_error")
class ECE(EvalMetric):
    """Expected calibration error over ``n_bins`` equal-width bins ``(lo, hi]`` of confidence.

    ``l1 = sum_b (W_b / W) |acc_b - conf_b|``, ``l2 = sqrt(sum_b (W_b / W) (acc_b - conf_b)^2)``,
    ``max = max_b |acc_b - conf_b|``, with ``W_b`` the (weighted) rows in bin ``b``. Binary
    ``preds`` (n,) give the positive-class probability (confidence) and labels 0/1 (accuracy), as
    torchmetrics' BinaryCalibrationError; multiclass ``preds`` (n, k) the top-1 probability and
    top-1 correctness (first maximum on ties), as MulticlassCalibrationError. Unlike torchmetrics,
    a confidence of exactly 1.0 is in the last bin (torchmetrics issue #3510) and bins are closed
    on the right, as Guo et al. (2017) define them.

    Parameters
    ----------
    n_bins : int, default 15
        The number of equal-width confidence bins, 1 to 10,000 (the state keeps three exact sums
        per bin).
    norm : {"l1", "l2", "max"}, default "l1"
        How the bins' gaps ``|acc_b - conf_b|`` combine: their mean weighted by the bins' rows,
        the root of the weighted mean of their squares, or the largest.
    from_logits : bool, default False
        ``preds`` are logits: a sigmoid (binary) or softmax (multiclass) gives the
        probabilities first. False: ``preds`` must be probabilities in [0, 1].
    name : str, default "ece"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = ECE(n_bins=2)
    >>> for labels, preds in [([0, 0], [0.25, 0.25]), ([1, 1, 1], [0.55, 0.75, 0.75])]:
    ...     print(m.update(labels, preds).get())
    ('ece', 0.25)
    ('ece', 0.29)
    """

    higher_is_better = False
    mxnet_positional = ()  # not an MXNet metric: keywords only

    def __init__(
        self,
        *,
        n_bins: int = 15,
        norm: str = "l1",
        from_logits: bool = False,
        name: str = "ece",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        self.n_bins = check_count(n_bins, "n_bins", 1, MAX_BINS)
        self.norm = check_choice(norm, "norm", NORMS)
        self.from_logits = bool(from_logits)
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            n_bins=self.n_bins,
            norm=self.norm,
            from_logits=self.from_logits,
        )

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, from_logits=self.from_logits)

    def _init_states(self) -> None:
        for quantity in _QUANTITIES:  # one exact sum per bin: sum_weight[b], ...
            self._add_state(f"sum_{quantity}", "sums", size=self.n_bins)
        self._add_state("num_inst", "count")

    def _staged_load(self, state: Any) -> Callable[[], None]:
        """A state_dict of the first format (one entry per bin, ``sum_weight_0``, ...) loads
        as the vectors it holds."""
        return super()._staged_load(self._upgraded_state(state))

    def _upgraded_state(self, state: Any) -> Any:
        if not isinstance(state, dict):
            return state
        out = dict(state)
        for window in ("local", "past"):
            data = state.get(window)
            if not isinstance(data, dict) or "sum_weight_0" not in data:
                continue
            data = dict(data)
            for quantity in _QUANTITIES:
                names = [f"sum_{quantity}_{index}" for index in range(self.n_bins)]
                missing = [name for name in names if name not in data]
                if missing:
                    raise StateError(
                        f"`state` lacks state entry {missing[0]!r} in `{window}` for metric {self.name!r}",
                        field=f"{window}.{missing[0]}",
                        rule="is missing",
                    )
                data[f"sum_{quantity}"] = {
                    "shape": [self.n_bins],
                    "sums": [data.pop(name) for name in names],
                }
            out[window] = data
        return out

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        """Each row adds its weight (1), weighted confidence and weighted hit in its bin: the
        values the first format summed per bin, so the sums are the same bits."""
        bins, confidence, correct = _calibration_rows(
            label, pred, n_bins=self.n_bins, from_logits=self.from_logits
        )
        size = self.n_bins
        if weight is None:
            return {
                "sum_weight": At(bins, size=size),
                "sum_confidence": At(bins, confidence, size=size),
                "sum_correct": At(np.where(correct, bins, -1), size=size),
                "num_inst": ROWS,
            }
        return {
            "sum_weight": At(bins, weight, size=size),
            "sum_confidence": At(bins, confidence * weight, size=size),
            "sum_correct": At(bins, np.where(correct, weight, 0.0), size=size),
            "num_inst": ROWS,
        }

    def _compute(self, state: State) -> float:
        weight, confidence, correct = (
            [s.units for s in state[f"sum_{quantity}"].sums()] + [0] * self.n_bins
            for quantity in _QUANTITIES
        )
        return _calibration_compute(
            CalibrationSums(
                weight[: self.n_bins], confidence[: self.n_bins], correct[: self.n_bins]
            ),
            self.norm,
        )

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        """Every group's `_compute` at once, the same bits: its bins' exact sums
        (`GroupedState.units`, 0 in the bins its vectors have not reached) through the math of
        one group's (`_calibration_values`), `_BLOCK` sums of an entry at a time (each is an
        int of over a thousand bits); None if a group's sum is inf or NaN."""
        values = np.empty(grouped.size, dtype=np.float64)
        step = max(1, _BLOCK // self.n_bins)
        for start in range(0, grouped.size, step):
            block = slice(start, min(grouped.size, start + step))
            gaps = self._group_bins(grouped, "correct", block)
            confidence = None if gaps is None else self._group_bins(grouped, "confidence", block)
            weight = None if confidence is None else self._group_bins(grouped, "weight", block)
            if gaps is None or confidence is None or weight is None:
                return None
            gaps = np.abs(gaps - confidence)
            values[block] = _calibration_values(weight, gaps, self.norm)
        return {str(self.name): values}

    def _group_bins(self, grouped: GroupedState, quantity: str, block: slice) -> np.ndarray | None:
        """The ``block`` of groups' sums of ``quantity`` over the ``n_bins`` bins
        (`GroupedState.units` padded with 0s: an object array, (groups, n_bins)); None if one
        is inf or NaN."""
        units = grouped.units(f"sum_{quantity}", block)
        if units is None:
            return None
        out = np.zeros((units.shape[0], self.n_bins), dtype=object)
        width = min(units.shape[1], self.n_bins)
        out[:, :width] = units[:, :width]
        return out


@register
@alias("brier_score")
class Brier(EvalMetric):
    """Brier score, as scikit-learn's ``brier_score_loss``: ``mean_i s * sum_c (y_ic - p_ic)^2``.

    Binary ``preds`` (n,) are the positive-class probability (the two columns ``1 - p, p``);
    multiclass ``preds`` (n, k) are scored against one-hot labels. ``s = 1/2`` when
    ``scale_by_half`` is True, or "auto" (the default) with fewer than 3 classes: binary Brier is
    the mean of ``(y - p)^2`` in [0, 1], multiclass lies in [0, 2], as in scikit-learn >= 1.7.

    Parameters
    ----------
    from_logits : bool, default False
        ``preds`` are logits: a sigmoid (binary) or softmax (multiclass) gives the
        probabilities first. False: ``preds`` must be probabilities in [0, 1].
    scale_by_half : bool or "auto", default "auto"
        Whether each row's sum of squares is halved (``s = 1/2``): True, False, or "auto", which
        halves it for fewer than 3 classes.
    name : str, default "brier"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = Brier()
    >>> for labels, preds in [([0, 1], [0.1, 0.9]), ([1, 0], [0.8, 0.3])]:
    ...     print(m.update(labels, preds).get())
    ('brier', 0.009999999999999998)
    ('brier', 0.03749999999999999)
    """

    higher_is_better = False
    mxnet_positional = ()  # not an MXNet metric: keywords only

    def __init__(
        self,
        *,
        from_logits: bool = False,
        scale_by_half: bool | str = "auto",
        name: str = "brier",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        self.from_logits = bool(from_logits)
        self.scale_by_half = check_scale(scale_by_half)
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            from_logits=self.from_logits,
            scale_by_half=self.scale_by_half,
        )

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, from_logits=self.from_logits)

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        terms = _brier_update(
            label, pred, from_logits=self.from_logits, scale_by_half=self.scale_by_half
        )
        return self._weighted_terms(terms, None if weight is None else weight[:, None])


@register
class AUC(EvalMetric):
    """Binned area under the ROC (name ``auc``) or PR (name ``auc_pr``) curve, as Keras 3's AUC.

    Rows are counted per bucket between the thresholds ``-1e-7, 1/(T-1), ..., 1 + 1e-7``
    (``T = num_thresholds``; positive at ``t`` when ``pred > t``); ROC is the trapezoid sum over
    (fpr, tpr), PR Keras' ``interpolate_pr_auc``. The counts are exact integers, the value is
    float64 (Keras computes in float32). ``sample_weight`` must be whole numbers.
    :meth:`get_bound` bounds the distance to the exact ROC AUC. NaN until both classes are seen
    (Keras returns 0.0).

    Parameters
    ----------
    num_thresholds : int, default 200
        The number of thresholds T, 2 to 100,000 (the state keeps two integer counts per bucket
        between them; more buckets, a tighter bound).
    curve : {"ROC", "PR"}, default "ROC"
        The area under the ROC curve (true against false positive rate) or the precision-recall
        curve.
    from_logits : bool, default False
        ``preds`` are logits: a sigmoid gives the probabilities first. False: ``preds`` must be
        probabilities in [0, 1].
    name : str, optional
        The name ``get()`` reports the value under; None: ``"auc"`` for ROC, ``"auc_pr"`` for PR.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = AUC(num_thresholds=3, curve="PR")
    >>> for labels, preds in [([0, 0, 1], [0.0, 0.5, 0.3]), ([1], [0.9])]:
    ...     print(m.update(labels, preds).get())
    ('auc_pr', 0.3333333333333333)
    ('auc_pr', 0.8206993734577656)
    """

    higher_is_better = True
    mxnet_positional = ()  # not an MXNet metric: keywords only

    def __init__(
        self,
        *,
        num_thresholds: int = 200,
        curve: str = "ROC",
        from_logits: bool = False,
        name: str | None = None,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        self.num_thresholds = check_count(num_thresholds, "num_thresholds", 2, MAX_THRESHOLDS)
        self.curve = check_choice(curve, "curve", CURVES)
        self.from_logits = bool(from_logits)
        if name is None:
            name = "auc" if self.curve == "ROC" else "auc_pr"
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            num_thresholds=self.num_thresholds,
            curve=self.curve,
            from_logits=self.from_logits,
        )

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, from_logits=self.from_logits)

    def _init_states(self) -> None:
        buckets = self.num_thresholds - 1  # per bucket (thresholds[i], thresholds[i+1]]
        self._add_state("num_positive", "counts", size=buckets)
        self._add_state("num_negative", "counts", size=buckets)
        self._add_state("num_inst", "count")

    @property
    def thresholds(self) -> list[float]:
        """Keras' thresholds: ``[-1e-7, 1/(T-1), ..., (T-2)/(T-1), 1 + 1e-7]``."""
        inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
        return [0.0 - 1e-7, *inner, 1.0 + 1e-7]

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        """Each row counts in its bucket's positives or negatives (its weight, a whole number,
        or 1)."""
        buckets, positive = _auc_rows(
            label, pred, weight, num_thresholds=self.num_thresholds, from_logits=self.from_logits
        )
        size = self.num_thresholds - 1
        if weight is None:
            return {
                "num_positive": At(np.where(positive, buckets, -1), size=size),
                "num_negative": At(np.where(positive, -1, buckets), size=size),
                "num_inst": ROWS,
            }
        return {
            "num_positive": At(buckets, np.where(positive, weight, 0.0), size=size),
            "num_negative": At(buckets, np.where(positive, 0.0, weight), size=size),
            "num_inst": ROWS,
        }

    def _compute(self, state: State) -> float:
        return _auc_compute(
            state["num_positive"].tolist(), state["num_negative"].tolist(), self.curve
        )

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        """Every group's `_compute` at once, the same bits (never None): its counts
        (`GroupedState.whole_vector`) through the math of one group's (`_auc_values`, a few
        thousand groups at a time)."""
        values = _auc_values(
            grouped.whole_vector("num_positive"), grouped.whole_vector("num_negative"), self.curve
        )
        return {str(self.name): values}

    def _nonfinite_reason(self, state: State, value: float) -> tuple[str, str]:
        positives, negatives = int(state["num_positive"].sum()), int(state["num_negative"].sum())
        if state["num_inst"] and (not positives or (self.curve == "ROC" and not negatives)):
            missing = "positive" if not positives else "negative"
            return f"no_{missing}", f"no {missing} rows were seen (it needs both classes)"
        return super()._nonfinite_reason(state, value)

    def _bound(self, state: State) -> float:
        if self.curve != "ROC":
            raise ConfigError(f"the bound is defined for curve='ROC' only, got {self.curve!r}")
        if not state["num_inst"]:
            return math.nan
        return _auc_bound(state["num_positive"].tolist(), state["num_negative"].tolist())

    def get_bound(self) -> float:
        """Bound on ``|get()[1] - exact ROC AUC|``: ``sum_b P_b N_b / (2 P N)`` (local window).

        The exact AUC (scikit-learn's ``roc_auc_score``, ties counting 1/2) and the binned one
        order every (positive, negative) pair in different buckets alike; a pair inside one bucket
        counts 1/2 in the binned AUC and 0, 1/2 or 1 in the exact one.
        """
        return self._bound(self._local)

    def get_global_bound(self) -> float:
        """:meth:`get_bound` over everything since the last ``reset``."""
        return self._bound(self._global_state())
