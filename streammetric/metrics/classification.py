"""Classification metrics: Accuracy, TopKAccuracy, F1, MCC, PCC (MXNet 1.x names and defaults).

The state is exact counts (or exact weighted sums), so every value is the same bits whatever the
batching, order or merge tree. Fixed over MXNet 1.x: F1/MCC ``"macro"`` averages over classes
from the global counts (MXNet 1.x averaged per-batch scores); TopKAccuracy updates its global
state; PCC counts samples (MXNet counted batches). The math lives in
:mod:`streammetric.functional.classification`.

>>> m = Accuracy()
>>> for labels, preds in [([0, 1], [[0.3, 0.7], [0.0, 1.0]]), ([1], [[0.4, 0.6]])]:
...     print(m.update(labels, preds).get())
('accuracy', 0.5)
('accuracy', 0.6666666666666666)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._exceptions import ConfigError, InvalidInputError
from ..functional._classification_inputs import _invalid_rows, check_config
from ..functional.classification import (
    Outcomes,
    _accuracy_update,
    _binary_update,
    _class_ranks,
    _multiclass_update,
    _multilabel_update,
    _top_k_update,
    f1_from_outcomes,
    mcc_from_outcomes,
    outcomes_from_counts,
    pcc_from_counts,
)
from ._shared import CLASS_RANKS, memoized
from .base import EvalMetric, State, _merge_value
from .registry import alias, register
from .state import ROWS, Terms

__all__ = ["F1", "MCC", "PCC", "Accuracy", "TopKAccuracy"]

_OUTCOMES = ("true_positives", "false_positives", "false_negatives", "true_negatives")


def _shared_ranks(labels: Any, preds: Any) -> np.ndarray:
    """True-class ranks, computed once per composite update for Accuracy and TopKAccuracy."""
    return memoized(CLASS_RANKS, (labels, preds), lambda: _class_ranks(labels, preds))


def _hit_terms(hits: np.ndarray, weight: np.ndarray | None) -> Terms:
    """What each row adds to a hit rate: its weight for each hit among its elements, its
    weight for each element, and its number of elements."""
    elements = int(np.prod(hits.shape[1:], dtype=np.int64)) if hits.ndim > 1 else 1
    hits = hits.reshape(hits.shape[0], elements)
    if weight is None:
        return {
            "sum_metric": hits[:, 0] if elements == 1 else hits,
            "sum_weight": ROWS if elements == 1 else np.ones(hits.shape),
            "num_inst": ROWS if elements == 1 else np.full(hits.shape[0], elements),
        }
    per_element = np.broadcast_to(np.asarray(weight, dtype=np.float64)[:, None], hits.shape)
    return {
        "sum_metric": np.where(hits, per_element, 0.0),
        "sum_weight": per_element,
        "num_inst": ROWS if elements == 1 else np.full(hits.shape[0], elements),
    }


@register
@alias("acc")
class Accuracy(EvalMetric):
    """Fraction of correctly predicted labels ``sum_i w_i hits_i / sum_i w_i m_i``, over elements.

    ``preds`` are class indices shaped like ``labels``, or scores argmax'd over ``axis``. Labels
    of shape (n, T) count T elements per row (as MXNet: ``num_inst`` counts elements); a row's
    ``sample_weight`` applies to each of its elements.

    >>> m = Accuracy()
    >>> print(m.update([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]).get())
    ('accuracy', 0.6666666666666666)
    >>> print(m.update([2], [2]).get())
    ('accuracy', 0.75)
    """

    higher_is_better = True
    shared_work = (CLASS_RANKS,)

    def __init__(
        self,
        axis: int = 1,
        name: str = "accuracy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ConfigError(f"`axis` must be a nonzero int (axis 0 holds the rows), got {axis!r}")
        self.axis = axis
        super().__init__(name, output_names=output_names, label_names=label_names, axis=axis)

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        return _hit_terms(_accuracy_update(label, pred, self.axis, _shared_ranks), weight)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, axis=self.axis)


@register
@alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of rows whose true class is among the ``top_k`` highest of the (n, k) scores.

    Ties are broken as MXNet 1.9.1 (the last k columns of ``numpy.argpartition``) and
    scikit-learn's ``top_k_accuracy_score`` break them: among equal scores the higher class index
    ranks first. The true class y ranks ``#{j : s_j > s_y} + #{j > y : s_j == s_y}`` and is a
    hit when that is ``< top_k``. MXNet asserts ``top_k > 1``; ``top_k=1`` is accepted here and
    equals :class:`Accuracy` except on ties (argmax takes the lower index, as MXNet's).

    >>> m = TopKAccuracy(top_k=2)
    >>> print(m.update([2, 0], [[0.1, 0.5, 0.4], [0.2, 0.5, 0.3]]).get())
    ('top_k_accuracy_2', 0.5)
    >>> print(m.update([0], [[0.3, 0.3, 0.4]]).get())  # tie with class 1, which ranks first
    ('top_k_accuracy_2', 0.3333333333333333)
    """

    higher_is_better = True
    shared_work = (CLASS_RANKS,)

    def __init__(
        self,
        top_k: int = 1,
        name: str = "top_k_accuracy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"`top_k` must be an int >= 1, got {top_k!r}")
        self.top_k = top_k
        self._base_name = name
        super().__init__(
            f"{name}_{top_k}", output_names=output_names, label_names=label_names, top_k=top_k
        )

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        return _hit_terms(_top_k_update(label, pred, self.top_k, _shared_ranks), weight)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, axis=1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["name"] = self._base_name  # create(config) appends "_<k>" again
        return config


_CLASS_COUNTS = ("true_positives", "false_positives", "false_negatives")


def _add_class_counts(state: State, count: int, counts: np.ndarray) -> None:
    """Fold a batch's (3, classes) tp/fp/fn counts into growing per-class count vectors."""
    for name, row in zip(_CLASS_COUNTS, counts, strict=True):
        state[name] = _merge_value("counts", state[name], row)
    state["num_inst"] += count


def _class_counts_problem(state: State, multiclass: bool) -> tuple[str, str, Any] | None:
    """Per-class tp/fp/fn vectors grow together, and with one true and one predicted class per
    row (multiclass) each of tp + fn and tp + fp sums to the rows."""
    tp, fp, fn = (state[name] for name in _CLASS_COUNTS)
    if not tp.shape == fp.shape == fn.shape:
        shapes = [list(a.shape) for a in (tp, fp, fn)]
        return "true_positives, false_positives, false_negatives", "must have one shape", shapes
    if multiclass:
        for names, total in (
            ("true_positives + false_negatives", tp + fn),
            ("true_positives + false_positives", tp + fp),
        ):
            if int(total.sum()) != state["num_inst"]:
                rule = f"must sum to num_inst ({state['num_inst']}: one class per row)"
                return names, rule, int(total.sum())
    return None


class _OutcomeMetric(EvalMetric):
    """Shared state of F1 and MCC: per-class outcome counts, exact and mergeable.

    ``class_type="binary"``: four exact weighted sums (tp, fp, fn, tn), so ``sample_weight``
    works. ``"multiclass"``/``"multilabel"``: per-class tp/fp/fn count vectors that grow as
    classes appear (tn follows from ``num_inst``); they are integers and take no weights.
    Multilabel updates must keep the number of label columns (merging does not check it).
    The arguments come in MXNet 1.9.1's order (``name, output_names, label_names, average``),
    then ``class_type`` and ``threshold``. The default ``average="micro"`` follows MXNet 2.x.
    Binary, both averages give the positive class's score from the global counts: MXNet 1.x's
    ``"micro"`` on any batching, its ``"macro"`` (the mean of per-batch scores, its default) on
    one batch only.
    """

    higher_is_better = True

    def __init__(
        self,
        name: str,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str = "micro",
        class_type: str = "binary",
        threshold: float = 0.5,
    ) -> None:
        check_config(class_type, average, threshold)
        self.class_type, self.threshold, self.average = class_type, threshold, average
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            class_type=class_type,
            threshold=threshold,
            average=average,
        )

    def _init_states(self) -> None:
        self._add_state("num_inst", "count")
        if self.class_type == "binary":
            for outcome in _OUTCOMES:
                self._add_state(outcome, "sum")
        else:
            for name in _CLASS_COUNTS:
                self._add_state(name, "counts")

    def _state_problem(self, state: State) -> tuple[str, str, Any] | None:
        if self.class_type == "binary":
            return None
        return _class_counts_problem(state, self.class_type == "multiclass")

    def _update_state(
        self, state: State, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> None:
        if self.class_type == "binary":
            count, sums = _binary_update(label, pred, self.threshold, weight)
            for outcome, value in zip(_OUTCOMES, sums, strict=True):
                state[outcome].merge(value)
            state["num_inst"] += count
            return
        if weight is not None:
            raise InvalidInputError(
                f"`sample_weight` is only supported with class_type='binary', got class_type={self.class_type!r}",
                argument="sample_weight",
            )
        if self.class_type == "multiclass":
            _add_class_counts(state, *_multiclass_update(label, pred))
            return
        count, counts = _multilabel_update(label, pred, self.threshold)
        width = state["true_positives"].size
        if width and width != counts.shape[1]:
            raise InvalidInputError(
                f"`labels` must keep {width} label columns for class_type='multilabel', got {counts.shape[1]}",
                argument="labels",
            )
        _add_class_counts(state, count, counts)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, zero_one=self.class_type != "multiclass")

    def _outcomes(self, state: State) -> Outcomes:
        if self.class_type == "binary":
            tp, fp, fn, tn = ([state[outcome].units] for outcome in _OUTCOMES)
            return tp, fp, fn, tn
        counts = np.stack([state[name] for name in _CLASS_COUNTS])
        return outcomes_from_counts(
            counts, state["num_inst"], present_only=self.class_type == "multiclass"
        )


@register
class F1(_OutcomeMetric):
    """F1 score ``2 tp / (2 tp + fp + fn)`` from global counts (0 when tp + fp + fn = 0).

    ``class_type="binary"`` (default): labels 0/1; ``preds`` are positive-class probabilities
    (positive when ``> threshold``) or (n, 2) scores (argmax, as MXNet 1.x); the value is the
    positive class's F1, for both averages. ``"multiclass"``: scores (argmax) or class indices;
    ``micro`` pools the counts (= accuracy), ``macro`` is the mean of per-class F1s over the
    classes that occur as true or predicted class (as scikit-learn). ``"multilabel"``: (n, L)
    0/1 labels and probabilities; ``macro`` averages over all L columns.

    >>> m = F1()
    >>> print(m.update([0.0, 1.0, 1.0], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]).get())
    ('f1', 0.8)
    >>> print(m.update([1.0, 0.0], [[0.9, 0.1], [0.2, 0.8]]).get())
    ('f1', 0.5714285714285714)
    """

    def __init__(
        self,
        name: str = "f1",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str = "micro",
        class_type: str = "binary",
        threshold: float = 0.5,
    ) -> None:
        super().__init__(name, output_names, label_names, average, class_type, threshold)

    def _compute(self, state: State) -> float:
        return (
            f1_from_outcomes(self._outcomes(state), self.average) if state["num_inst"] else math.nan
        )


@register
class MCC(_OutcomeMetric):
    """Matthews correlation ``(tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))``, 0 if degenerate.

    Binary as MXNet 1.x's ``matthewscc`` (= scikit-learn's binary ``matthews_corrcoef``), from
    global counts. Multiclass/multilabel use one-vs-rest counts per class: ``micro`` is the MCC
    of the pooled counts, ``macro`` the mean of the per-class MCCs (classes as in :class:`F1`).
    For the multiclass generalisation from the confusion matrix, see :class:`PCC`.

    >>> m = MCC()
    >>> print(m.update([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]).get())
    ('mcc', 0.0)
    >>> print(m.update([0], [[0.8, 0.2]]).get())
    ('mcc', 0.5773502691896257)
    """

    def __init__(
        self,
        name: str = "mcc",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str = "micro",
        class_type: str = "binary",
        threshold: float = 0.5,
    ) -> None:
        super().__init__(name, output_names, label_names, average, class_type, threshold)

    def _compute(self, state: State) -> float:
        return (
            mcc_from_outcomes(self._outcomes(state), self.average)
            if state["num_inst"]
            else math.nan
        )


@register
class PCC(EvalMetric):
    """MXNet's multiclass MCC from the confusion matrix C (rows = predicted, columns = true)::

        n = sum(C), x = row sums, y = column sums
        PCC = (n tr(C) - x.y) / sqrt((n^2 - x.x) (n^2 - y.y))        NaN when a factor is 0

    It needs only C's diagonal and margins, kept as per-class tp/fp/fn count vectors that grow
    as classes appear. Exact integer arithmetic and one correctly rounded ``num / sqrt(den)``;
    equals scikit-learn's multiclass ``matthews_corrcoef`` where that is not degenerate.

    >>> m = PCC()
    >>> print(m.update([0, 1], [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]]).get())
    ('pcc', 1.0)
    >>> print(m.update([2, 2], [1, 2]).get())
    ('pcc', 0.7)
    """

    higher_is_better = True

    def __init__(
        self,
        name: str = "pcc",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        has_global_stats: bool = True,
    ) -> None:
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=has_global_stats,
        )
        self._kwargs["has_global_stats"] = self._has_global_stats  # the base class takes it out

    def _init_states(self) -> None:
        self._add_state("num_inst", "count")
        for name in _CLASS_COUNTS:
            self._add_state(name, "counts")

    def _state_problem(self, state: State) -> tuple[str, str, Any] | None:
        return _class_counts_problem(state, multiclass=True)

    def _update_state(
        self, state: State, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> None:
        if weight is not None:
            raise InvalidInputError(
                "`sample_weight` is not supported by PCC (its state is integer counts)",
                argument="sample_weight",
            )
        _add_class_counts(state, *_multiclass_update(label, pred))

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds)

    def _compute(self, state: State) -> float:
        counts = np.stack([state[name] for name in _CLASS_COUNTS])
        return pcc_from_counts(counts, state["num_inst"]) if state["num_inst"] else math.nan

    def _nonfinite_reason(self, state: State, value: float) -> tuple[str, str]:
        if state["num_inst"]:  # pcc_from_counts: NaN when every row has one predicted/true class
            tp, fp, fn = (state[name] for name in _CLASS_COUNTS)
            for what, sums in (("true", tp + fn), ("predicted", tp + fp)):
                if int(np.count_nonzero(sums)) <= 1:
                    return f"one_{what}_class", f"every row has the same {what} class"
        return super()._nonfinite_reason(state, value)
