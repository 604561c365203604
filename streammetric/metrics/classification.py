"""Classification metrics: Accuracy, TopKAccuracy, F1, MCC, PCC (MXNet 1.x names and defaults),
Precision, Recall, FBeta and ConfusionMatrix (scikit-learn's values).

The state is exact counts (or exact weighted sums), so every value is the same bits whatever the
batching, order or merge tree. Fixed over MXNet 1.x: F1/MCC ``"macro"`` averages over classes
from the global counts (MXNet 1.x averaged per-batch scores); TopKAccuracy updates its global
state; PCC counts samples (MXNet counted batches). The math lives in
:mod:`streammetric.functional.classification`.

Per-class state (multiclass, multilabel, the confusion matrix) is two vectors per quantity:
int64 ``counts`` of the rows given without ``sample_weight`` (``true_positives``, ...), and
exact ``sums`` of the weights of rows given with one (``weighted_true_positives``, ...); a value
adds them exactly (a count ``c`` is ``c * 2**1074`` units of an exact sum), so the state kind
does not depend on which batches had weights, a batch of weights 1.0 gives the bits of the same
batch without weights, and unweighted data keeps the fast integer path. A row of weight 0 adds
nothing: a class seen only in such rows is not among "the classes seen".

>>> m = Accuracy()
>>> for labels, preds in [([0, 1], [[0.3, 0.7], [0.0, 1.0]]), ([1], [[0.4, 0.6]])]:
...     print(m.update(labels, preds).get())
('accuracy', 0.5)
('accuracy', 0.6666666666666666)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._exceptions import ConfigError, InvalidInputError, StateError
from ..accumulate import UNITS_PER_ONE as _UNIT
from ..accumulate import ExactSum, int_quotients
from ..functional._classification_inputs import (
    CLASS_AVERAGES,
    MAX_MATRIX_CLASSES,
    MAX_SEEN_CLASSES,
    _invalid_rows,
    check_beta,
    check_config,
    check_normalize,
    check_num_classes,
    check_zero_division,
    zero_division_value,
)
from ..functional.classification import (
    Outcomes,
    Value,
    _accuracy_update,
    _beta_squared,
    _binary_masks,
    _confusion_pairs,
    _multilabel_classes,
    _predicted_classes,
    _top_k_update,
    binary_mcc,
    check_class_cap,
    class_value,
    confusion_from_cells,
    matrix_class_type,
    mcc_from_outcomes,
    pcc_from_counts,
    present_classes,
    select_classes,
    shell_classes,
    shell_index,
    shell_positions,
    with_true_negatives,
)
from .base import EvalMetric, State, _num_rows
from .batch import BatchStats, Stat
from .registry import alias, register
from .state import ROWS, At, GroupedState, Terms, fold

__all__ = [
    "F1",
    "MCC",
    "PCC",
    "Accuracy",
    "ConfusionMatrix",
    "FBeta",
    "Precision",
    "Recall",
    "TopKAccuracy",
]

_OUTCOMES = ("true_positives", "false_positives", "false_negatives", "true_negatives")


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

    Parameters
    ----------
    axis : int, default 1
        The class axis of score ``preds`` (not 0, which holds the rows; -1: the last).
    name : str, default "accuracy"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = Accuracy()
    >>> print(m.update([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]).get())
    ('accuracy', 0.6666666666666666)
    >>> print(m.update([2], [2]).get())
    ('accuracy', 0.75)
    """

    higher_is_better = True
    batch_stats = frozenset({Stat.TRUE_CLASS_RANKS})
    mxnet_positional = ("axis", "name", "output_names", "label_names")

    def __init__(
        self,
        *,
        axis: int = 1,
        name: str = "accuracy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ConfigError(f"`axis` must be a nonzero int (axis 0 holds the rows), got {axis!r}")
        self.axis = axis
        super().__init__(name, output_names=output_names, label_names=label_names, axis=axis)

    def _batch_terms(self, batch: BatchStats) -> Terms:
        """Hits from the batch's `Stat.TRUE_CLASS_RANKS` (a clean (n, k) batch's)."""
        hits = _accuracy_update(batch.labels, batch.preds, self.axis, batch.true_class_ranks)
        return _hit_terms(hits, batch.weights)

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

    Parameters
    ----------
    top_k : int, default 1
        How many of the highest scores a row's true class may be among.
    name : str, default "top_k_accuracy"
        The name ``get()`` reports the value under, followed by ``_<top_k>`` (as MXNet's).
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = TopKAccuracy(top_k=2)
    >>> print(m.update([2, 0], [[0.1, 0.5, 0.4], [0.2, 0.5, 0.3]]).get())
    ('top_k_accuracy_2', 0.5)
    >>> print(m.update([0], [[0.3, 0.3, 0.4]]).get())  # tie with class 1, which ranks first
    ('top_k_accuracy_2', 0.3333333333333333)
    """

    higher_is_better = True
    batch_stats = frozenset({Stat.TRUE_CLASS_RANKS})
    mxnet_positional = ("top_k", "name", "output_names", "label_names")

    def __init__(
        self,
        *,
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

    def _batch_terms(self, batch: BatchStats) -> Terms:
        """Hits from the batch's `Stat.TRUE_CLASS_RANKS`."""
        hits = _top_k_update(batch.labels, batch.preds, self.top_k, batch.true_class_ranks)
        return _hit_terms(hits, batch.weights)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds, axis=1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["name"] = self._base_name  # create(config) appends "_<k>" again
        return config


_CLASS_COUNTS = ("true_positives", "false_positives", "false_negatives")
_WEIGHTED_COUNTS = tuple(f"weighted_{name}" for name in _CLASS_COUNTS)
_EMPTY_SUMS = {"shape": [0], "sums": []}


def _element_terms(rows: int, elements: int) -> Any:
    return ROWS if elements == 1 else np.full(rows, elements, dtype=np.int64)


def _class_terms(
    indices: tuple[np.ndarray, ...], weight: np.ndarray | None, size: int, names: tuple[str, ...]
) -> dict[str, Any]:
    """At terms of per-class vectors: row i adds 1 (no weights: the ``counts``) or its weight
    (the ``weighted_`` sums) at each of its class indices (-1: nothing); (n, 1) indices are
    one per row."""
    indices = tuple(i[:, 0] if i.ndim == 2 and i.shape[1] == 1 else i for i in indices)
    if weight is None:
        return {name: At(index, size=size) for name, index in zip(names, indices, strict=True)}
    return {
        f"weighted_{name}": At(index, values=weight, size=size)
        for name, index in zip(names, indices, strict=True)
    }


def _combined(state: State, names: tuple[str, ...]) -> tuple[list[list[int]], bool]:
    """Each named vector as Python ints: the ``counts`` plus the ``weighted_`` sums, exactly,
    padded to one length; in rows (no weighted rows were seen) or in ``2**-1074`` units
    (``True``)."""
    counts = [state[name] for name in names]
    sums = [state[f"weighted_{name}"] for name in names]
    width = max([c.shape[0] for c in counts] + [len(s) for s in sums])
    weighted = any(len(s) for s in sums)
    out = []
    for count, weights in zip(counts, sums, strict=True):
        values = count.tolist() + [0] * (width - count.shape[0])
        if weighted:
            values = [v * _UNIT for v in values]
            for position, one in enumerate(weights.sums()):
                values[position] += one.units
        out.append(values)
    return out, weighted


def _padded(values: list[list[int]], size: int) -> list[list[int]]:
    return [v[:size] + [0] * (size - len(v)) for v in values]


def _upgraded_state(state: Any, added: dict[str, Callable[[dict[str, Any]], Any]]) -> Any:
    """A state_dict written before the ``added`` entries existed, with them: each window that
    has none of them gets each one's value for that window (weighted sums: empty). A window
    with some of them is left alone (the loader names what is wrong)."""
    if not isinstance(state, dict):
        return state
    out = dict(state)
    for window in ("local", "past"):
        data = state.get(window)
        if isinstance(data, dict) and not any(name in data for name in added):
            out[window] = {**data, **{name: make(data) for name, make in added.items()}}
    return out


def _count_sum_json(data: dict[str, Any]) -> Any:
    """``num_inst`` of an earlier state as the exact sum of its rows' weights (all 1)."""
    count = data.get("num_inst")
    total = ExactSum()
    if type(count) is int and 0 <= count < 1 << 63:
        total.add_count(count)
    return total.to_json()


def _sums_problem(state: State, names: tuple[str, ...]) -> tuple[str, str, Any] | None:
    """Weighted sums grow together and are finite (sums of finite weights)."""
    sums = [state[f"weighted_{name}"] for name in names]
    if len({len(s) for s in sums}) > 1:
        return (
            ", ".join(f"weighted_{name}" for name in names),
            "must have one length",
            [len(s) for s in sums],
        )
    for name, one in zip(names, sums, strict=True):
        if any(s.num_pos_inf or s.num_nan for s in one.sums()):
            return f"weighted_{name}", "must be finite (sums of finite weights)", one.to_json()
    return None


def _class_counts_problem(state: State, multiclass: bool) -> tuple[str, str, Any] | None:
    """Per-class tp/fp/fn vectors grow together, and with one true and one predicted class per
    row (multiclass) each of tp + fn and tp + fp sums to the rows given without weights (to
    ``num_inst`` when no weighted rows were seen), and likewise for the weights."""
    tp, fp, fn = (state[name] for name in _CLASS_COUNTS)
    if not tp.shape == fp.shape == fn.shape:
        shapes = [list(a.shape) for a in (tp, fp, fn)]
        return "true_positives, false_positives, false_negatives", "must have one shape", shapes
    problem = _sums_problem(state, _CLASS_COUNTS)
    if problem is not None or not multiclass:
        return problem
    weighted = len(state["weighted_true_positives"]) > 0
    for names, total in (
        ("true_positives + false_negatives", tp + fn),
        ("true_positives + false_positives", tp + fp),
    ):
        rows = int(total.sum())
        if rows != state["num_inst"] and not (weighted and rows <= state["num_inst"]):
            rule = f"must sum to num_inst ({state['num_inst']}: one class per row)"
            if weighted:
                rule = f"must sum to at most num_inst ({state['num_inst']})"
            return names, rule, rows
    if weighted:
        wtp, wfp, wfn = (
            sum(s.units for s in state[f"weighted_{name}"].sums()) for name in _CLASS_COUNTS
        )
        if wtp + wfn != wtp + wfp:
            rule = (
                "must equal weighted_true_positives + weighted_false_positives (one class per row)"
            )
            return "weighted_true_positives + weighted_false_negatives", rule, (wtp + wfn) / _UNIT
    return None


# -- every group's values at once (`EvalMetric.group_arrays`) -----------------------------------

#: ints below this are float64 exactly: a ratio of two such ints divided in float64 is rounded
#: once, as Python's ``int / int`` rounds it
_EXACT = 1 << 53


def _group_counts(grouped: GroupedState, names: tuple[str, ...]) -> np.ndarray | None:
    """`_combined` of every group at once: the named vectors as a (len(names), groups, width)
    array of exact counts, int64 in rows (no weighted rows were seen), else Python ints of
    ``2**-1074`` units (an object array); None if a weighted sum is not finite."""
    counts = [grouped.whole_vector(name) for name in names]
    sums = [grouped.units(f"weighted_{name}") for name in names]
    weights = [units for units in sums if units is not None]
    if len(weights) < len(sums):
        return None
    width = max(array.shape[1] for array in [*counts, *weights])
    weighted = any(units.shape[1] for units in weights)
    out = np.zeros((len(names), grouped.size, width), dtype=object if weighted else np.int64)
    for position, (count, units) in enumerate(zip(counts, weights, strict=True)):
        if weighted:
            out[position, :, : count.shape[1]] = count.astype(object) * _UNIT
            out[position, :, : units.shape[1]] += units
        else:
            out[position, :, : count.shape[1]] = count
    return out


def _fits(bound: float, *arrays: np.ndarray) -> bool:
    """Whether ``arrays`` are NumPy numbers (int64, or float64 bounds; not Python ints in an
    object array) every one below ``bound`` in magnitude."""
    return all(
        array.dtype != object and (not array.size or float(np.abs(array).max()) < bound)
        for array in arrays
    )


def _mean_ratios(
    numerators: np.ndarray, denominators: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Each row's ``sum_c w_c n_c / d_c / sum_c w_c`` (exact ints ``0 <= n_c <= d_c`` where
    ``w_c > 0``; a class of weight 0 is left out), exact and rounded once, as `mean_of_ratios`
    gives it (NaN for a row without weight): ``N / (W P)``, ``P`` the product of the row's
    denominators, ``N = sum_c w_c n_c P / d_c <= W P``, in int64 where ``W P`` is below
    `_EXACT`, else in Python ints."""
    used = np.asarray(weights > 0, dtype=bool)
    denominators = np.where(used, denominators, 1)
    numerators = np.where(used, numerators, 0)
    weights = np.where(used, weights, 0)
    small = _fits(_EXACT, numerators, denominators, weights)
    if small:
        with np.errstate(over="ignore"):
            bound = np.prod(denominators.astype(np.float64), axis=1) * weights.sum(axis=1)
        small = _fits(_EXACT / 2, bound)
    if not small:
        numerators, denominators, weights = (
            a.astype(object) for a in (numerators, denominators, weights)
        )
    product = np.prod(denominators, axis=1)
    total = (weights * numerators * (product[:, None] // denominators)).sum(axis=1)
    return int_quotients(np.asarray(total), np.asarray(weights.sum(axis=1) * product))


def _score_ratios(
    score: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """`score_ratio` of every entry of tp, fp, fn arrays (exact ints, int64 or object)."""
    beta2 = _beta_squared(beta)
    if score == "precision":
        return tp, tp + fp
    if score == "recall" or beta2 is None:
        return tp, tp + fn
    a, b = beta2.numerator, beta2.denominator
    if not _fits(2.0**62 / (a + b), tp + fp + fn):
        tp, fp, fn = (array.astype(object) for array in (tp, fp, fn))
    return (a + b) * tp, (a + b) * tp + a * fn + b * fp


def _like_value(metric: EvalMetric, grouped: GroupedState, like: Any) -> Any:
    """The run's value whose classes every group's per-class value or matrix takes
    (`EvalMetric.widen`): ``like``'s (the pairs of the run's total), else the total's of
    ``grouped``."""
    pairs = like if like is not None else metric.name_values(grouped.total())
    return pairs[0][1]


def _widened(values: np.ndarray, like: Any, fill: float, empty: np.ndarray) -> np.ndarray:
    """Every group's per-class values (groups, classes, ...) with the classes of ``like``
    (`EvalMetric.widen`: classes beyond a group's score ``fill``), NaN for the ``empty``
    groups (no row, or no class)."""
    shape = np.shape(like)
    out = np.full((values.shape[0], *shape), fill, dtype=np.float64)
    kept = [
        slice(0, min(mine, theirs)) for mine, theirs in zip(values.shape[1:], shape, strict=True)
    ]
    inside = (slice(None), *kept)
    out[inside] = values[inside]
    out[empty] = math.nan
    return out


def _multiclass_terms(
    label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None, num_classes: int | None
) -> dict[str, Any]:
    """Per-class tp/fp/fn terms of a multiclass batch, and its elements (``num_inst``)."""
    true, predicted = _predicted_classes(label, pred, axis=-1, num_classes=num_classes)
    if num_classes is None:
        check_class_cap(true, predicted, MAX_SEEN_CLASSES, "per-class counts")
    hit = true == predicted
    size = num_classes or int(max(true.max(initial=-1), predicted.max(initial=-1))) + 1
    indices = (np.where(hit, true, -1), np.where(hit, -1, predicted), np.where(hit, -1, true))
    terms = _class_terms(indices, weight, size, _CLASS_COUNTS)
    terms["num_inst"] = _element_terms(true.shape[0], true.shape[1])
    return terms


class _OutcomeMetric(EvalMetric):
    """Shared state of F1, MCC, Precision, Recall and FBeta: per-class outcome counts, exact
    and mergeable.

    ``class_type="binary"``: four exact weighted sums (tp, fp, fn, tn). ``"multiclass"`` /
    ``"multilabel"``: per-class tp/fp/fn vectors (see the module docstring: counts of rows
    without weights, exact sums of weights), which grow as classes appear unless
    ``num_classes`` fixes them; tn follows from the total (multiclass: tp + fn over the
    classes; multilabel: ``sum_weight``). ``sample_weight`` works for every class type, a row's
    weight for each of its elements. Multilabel updates must keep the number of label columns.

    The constructors take keywords; positional arguments come in MXNet 1.9.1's order of F1's
    and MCC's (``name, output_names, label_names, average``: `EvalMetric.mxnet_positional`).
    The default ``average="micro"`` follows MXNet 2.x.
    Binary, ``"micro"`` and ``"macro"`` give the positive class's score from the global counts:
    MXNet 1.x's ``"micro"`` on any batching, its ``"macro"`` (the mean of per-batch scores, its
    default) on one batch only.
    """

    higher_is_better = True
    #: the averages the class takes
    _averages: ClassVar[tuple[str | None, ...]] = ("micro", "macro")
    num_classes: int | None = None
    #: MXNet 1.9.1's F1 and MCC (Precision, Recall and FBeta are not MXNet's: ``()``)
    mxnet_positional: ClassVar[tuple[str, ...]] = ("name", "output_names", "label_names", "average")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__doc__:  # one text for the options the outcome metrics share
            cls.__doc__ = cls.__doc__.replace("    {score options}\n", _SCORE_OPTIONS).replace(
                "    {class type options}\n", _CLASS_TYPE_OPTIONS
            )

    def __init__(
        self,
        *,
        name: str | None = None,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str | None = "micro",
        class_type: str = "binary",
        threshold: float = 0.5,
        num_classes: int | None = None,
    ) -> None:
        """MCC's constructor; `_ClassScore`'s adds its options (`_configure`). (A config
        written before MCC took ``num_classes`` builds the same metric: None.)"""
        self._configure(
            name, output_names, label_names, average, class_type, threshold, num_classes=num_classes
        )

    def _configure(
        self,
        name: str | None,
        output_names: list[str] | None,
        label_names: list[str] | None,
        average: str | None,
        class_type: str,
        threshold: float,
        **options: Any,
    ) -> None:
        """Check and keep the options (``options``: a subclass's, checked, for the config),
        then `EvalMetric.__init__`."""
        self.average = check_config(class_type, average, threshold, self._averages)
        self.class_type, self.threshold = class_type, threshold
        if "num_classes" in options:
            self.num_classes = check_num_classes(options["num_classes"], class_type)
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            class_type=class_type,
            threshold=threshold,
            average=self.average,
            **options,
        )

    def _init_states(self) -> None:
        self._add_state("num_inst", "count")
        if self.class_type == "binary":
            for outcome in _OUTCOMES:
                self._add_state(outcome, "sum")
            return
        for name in _CLASS_COUNTS:
            self._add_state(name, "counts", size=self.num_classes)
        for name in _WEIGHTED_COUNTS:
            self._add_state(name, "sums", size=self.num_classes)
        if self.class_type == "multilabel":
            self._add_state(
                "sum_weight", "sum"
            )  # the weight of every row: tn = this - tp - fp - fn

    def _added_entries(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """State entries added since the first version (filled in for its state_dicts)."""
        if self.class_type == "binary":
            return {}
        added: dict[str, Callable[[dict[str, Any]], Any]] = dict.fromkeys(
            _WEIGHTED_COUNTS, lambda data: _EMPTY_SUMS
        )
        if self.class_type == "multilabel":
            added["sum_weight"] = _count_sum_json
        return added

    def _staged_load(self, state: Any) -> Callable[[], None]:
        """State dicts of earlier versions (no weighted entries) load: their rows had no weights."""
        return super()._staged_load(_upgraded_state(state, self._added_entries()))

    def _state_problem(self, state: State) -> tuple[str, str, Any] | None:
        if self.class_type == "binary":
            return None
        problem = _class_counts_problem(state, self.class_type == "multiclass")
        if problem is None and self.class_type == "multilabel":
            rows = state["num_inst"]
            if not len(state["weighted_true_positives"]) and state["sum_weight"].units != (
                rows * _UNIT
            ):
                rule = f"must be num_inst ({rows}) when no weighted rows were seen"
                return "sum_weight", rule, state["sum_weight"].value
        return problem

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        if self.class_type == "binary":
            return self._binary_terms(label, pred, weight)
        if self.class_type == "multiclass":
            return _multiclass_terms(label, pred, weight, self.num_classes)
        actual, predicted = _multilabel_classes(label, pred, self.threshold, self.num_classes)
        rows, elements, width = actual.shape
        columns = np.arange(width)
        indices = tuple(
            np.where(mask, columns, -1).reshape(rows, elements * width)
            for mask in (actual & predicted, ~actual & predicted, actual & ~predicted)
        )
        terms = _class_terms(indices, weight, width, _CLASS_COUNTS)
        terms["num_inst"] = _element_terms(rows, elements)
        if weight is None:
            terms["sum_weight"] = ROWS if elements == 1 else np.full(rows, float(elements))
        else:
            terms["sum_weight"] = (
                weight if elements == 1 else np.repeat(weight[:, None], elements, 1)
            )
        return terms

    def _binary_terms(
        self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> Terms:
        masks = _binary_masks(label, pred, self.threshold)
        rows, elements = masks[0].shape
        terms: dict[str, Any] = {"num_inst": _element_terms(rows, elements)}
        for outcome, mask in zip(_OUTCOMES, masks, strict=True):
            if weight is None:
                term = mask.astype(np.float64)
            else:
                term = np.where(mask, weight[:, None], 0.0)
            terms[outcome] = term[:, 0] if elements == 1 else term
        return terms

    def _update_state(
        self, state: State, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
    ) -> None:
        terms = self._row_terms(label, pred, weight)
        if self.class_type == "multilabel" and self.num_classes is None:
            seen = max(state["true_positives"].shape[0], len(state["weighted_true_positives"]))
            term = terms["true_positives" if weight is None else "weighted_true_positives"]
            assert isinstance(term, At)
            if seen and seen != term.size:
                raise InvalidInputError(
                    f"`labels` must keep {seen} label columns for class_type='multilabel', got {term.size}",
                    argument="labels",
                )
        fold(state, self._specs, terms, _num_rows(label, pred))

    def _label_columns(self) -> int:
        """Multilabel: the label columns seen (0: none yet)."""
        with self._lock:
            states = (self._local, self._past)
            return max(
                max(state["true_positives"].shape[0], len(state["weighted_true_positives"]))
                for state in states
            )

    def merge(self, other: EvalMetric) -> EvalMetric:
        """`EvalMetric.merge`; multilabel (without ``num_classes``): of as many label columns."""
        if (
            self.class_type == "multilabel"
            and self.num_classes is None
            and isinstance(other, _OutcomeMetric)
            and other.class_type == "multilabel"
        ):
            mine, theirs = self._label_columns(), other._label_columns()
            if mine and theirs and mine != theirs:
                raise StateError(
                    f"`other` has seen {theirs} label columns, this metric {mine} "
                    "(class_type='multilabel' keeps the number of label columns)"
                )
        return super().merge(other)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(
            labels,
            preds,
            zero_one=self.class_type != "multiclass",
            num_classes=(self.num_classes or MAX_SEEN_CLASSES)
            if self.class_type == "multiclass"
            else None,
        )

    def _outcomes(self, state: State) -> tuple[Outcomes, list[bool] | None]:
        """Per-class (tp, fp, fn, tn) in one unit, and which classes the averages see (None:
        all). Binary: the positive class's. Multiclass: classes ``0 .. K - 1`` (K =
        ``num_classes``, or 1 + the last class seen), those seen (without ``num_classes``).
        Multilabel: every label column."""
        if self.class_type == "binary":
            tp, fp, fn, tn = ([state[outcome].units] for outcome in _OUTCOMES)
            return (tp, fp, fn, tn), None
        counts, weighted = _combined(state, _CLASS_COUNTS)
        if self.num_classes is not None:
            counts = _padded(counts, self.num_classes)
        if self.class_type == "multilabel":
            units = state["sum_weight"].units
            return with_true_negatives(counts, units if weighted else units // _UNIT), None
        outcomes = with_true_negatives(counts, sum(counts[0]) + sum(counts[2]))
        if self.num_classes is not None:
            return outcomes, None
        present = present_classes(outcomes)
        size = max((c + 1 for c, seen in enumerate(present) if seen), default=0)
        keep = [c < size for c in range(len(present))]
        return select_classes(outcomes, keep), present[:size]

    def _group_outcomes(self, grouped: GroupedState) -> tuple[np.ndarray, np.ndarray] | None:
        """`_outcomes` of every group at once: (4, groups, classes) tp, fp, fn, tn (exact ints,
        int64 or object, in one unit per group as `_outcomes` gives them; multiclass: classes
        ``0 ..`` the last seen in any group, or ``num_classes``) and which classes each group's
        averages see ((groups, classes) bool: multiclass without ``num_classes``, those the
        group saw; else all); None if a sum is not finite."""
        if self.class_type == "binary":
            found = [grouped.units(outcome) for outcome in _OUTCOMES]
            sums = [one for one in found if one is not None]
            if len(sums) < len(found):
                return None
            return np.stack(sums)[:, :, None], np.ones((grouped.size, 1), dtype=bool)
        counts = _group_counts(grouped, _CLASS_COUNTS)
        if counts is None:
            return None
        weighted = counts.dtype == object
        if self.num_classes is not None and counts.shape[2] < self.num_classes:
            padded = np.zeros((3, grouped.size, self.num_classes), dtype=counts.dtype)
            padded[:, :, : counts.shape[2]] = counts
            counts = padded
        tp, fp, fn = counts
        if self.class_type == "multilabel":
            units = grouped.units("sum_weight")
            if units is None:
                return None
            total = units if weighted else units // _UNIT
            seen = np.ones(tp.shape, dtype=bool)
        else:
            total = tp.sum(axis=1) + fn.sum(axis=1)
            seen = np.asarray(tp + fp + fn > 0, dtype=bool)
            if self.num_classes is not None:
                seen[:] = True
        tn = np.asarray(total)[:, None] - tp - fp - fn
        return np.stack([tp, fp, fn, tn]), seen


#: the outcome metrics' class-type options as their docstrings describe them (a docstring's
#: ``{class type options}`` line, filled in by `_OutcomeMetric.__init_subclass__`)
_CLASS_TYPE_OPTIONS = """\
    class_type : {"binary", "multiclass", "multilabel"}, default "binary"
        Binary: 0/1 labels and positive-class probabilities (or 2 scores); multiclass: class
        indices and scores (argmax) or indices; multilabel: (n, L) 0/1 labels and
        probabilities.
    threshold : float, default 0.5
        A probability above it predicts the positive class (binary, multilabel).
"""

#: the options F1, Precision, Recall and FBeta share (a docstring's ``{score options}`` line)
_SCORE_OPTIONS = (
    """\
    average : {"micro", "macro", "weighted", None}, default "micro"
        How per-class values combine: over pooled counts, their mean, their mean weighted by
        each class's true rows, or None (``"none"``): one value per class, a NumPy array.
        Binary ``micro``/``macro`` give the positive class's value.
"""
    + _CLASS_TYPE_OPTIONS
    + """\
    num_classes : int, optional
        The classes (labels or predictions at or beyond it are errors naming the row); None:
        the classes seen.
    zero_division : {0, 1, "nan"}, default 0
        The value of a class whose denominator is 0 (scikit-learn's effective default 0).
"""
)


class _ClassScore(_OutcomeMetric):
    """F1, Precision, Recall and FBeta: a per-class score from the outcome counts, averaged
    as scikit-learn's ``precision_recall_fscore_support`` averages it
    (:func:`~streammetric.functional.classification.class_value`).

    ``average``: ``"micro"`` (the score of the pooled counts), ``"macro"`` (the mean over the
    classes), ``"weighted"`` (the mean weighted by each class's support tp + fn), or None (also
    the string ``"none"``: one value per class, a float64 array indexed by class). The classes:
    ``0 .. num_classes - 1`` when ``num_classes`` is given (labels and predictions beyond are
    errors naming the row), else those seen as true or predicted class (macro and weighted
    average over them; None gives classes ``0 ..`` the last seen, those between never seen
    scoring ``zero_division``); multilabel: the label columns; binary: the positive class
    (``"micro"``, ``"macro"``, as MXNet and scikit-learn's ``average="binary"``) or both
    classes 0 and 1 (``"weighted"``, None). A score whose denominator is 0 is
    ``zero_division`` (0, scikit-learn's effective default; 1; or NaN, which the averages
    leave out). Values are exact counts rounded once: they equal scikit-learn's where it
    computes the same single division (unweighted precision and recall), and are within a few
    ulps of its float64 arithmetic otherwise. NaN before any row (None: NaN per class).

    Its constructor is F1's, Precision's and Recall's (named after their `default_name`);
    FBeta's adds ``beta`` and passes the rest on.
    """

    _averages = CLASS_AVERAGES
    _score: ClassVar[str] = "fbeta"
    beta: float = 1.0

    def __init__(
        self,
        *,
        name: str | None = None,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str | None = "micro",
        class_type: str = "binary",
        threshold: float = 0.5,
        num_classes: int | None = None,
        zero_division: float | str = 0.0,
    ) -> None:
        zero = check_zero_division(zero_division)
        self.zero_division = zero_division_value(zero)
        self._configure(
            name,
            output_names,
            label_names,
            average,
            class_type,
            threshold,
            num_classes=num_classes,
            zero_division=zero,
        )

    def class_fill(self) -> float | None:
        """A class without rows has no denominator: ``zero_division`` (average None)."""
        return self.zero_division if self.average is None else None

    def _compute(self, state: State) -> Value:
        if not state["num_inst"]:
            if self.average is not None:
                return math.nan
            size = 2 if self.class_type == "binary" else (self.num_classes or 0)
            return np.full(size, math.nan)
        outcomes, classes = self._outcomes(state)
        return class_value(
            outcomes,
            self._score,
            self.average,
            self.class_type,
            beta=self.beta,
            zero_division=self.zero_division,
            classes=classes,
        )

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        """`group_arrays` of an average (a number per group); None per class (the engine's
        columns hold numbers)."""
        return None if self.average is None else self.group_arrays(grouped)

    def group_arrays(
        self, grouped: GroupedState, like: list[tuple[str, Any]] | None = None
    ) -> dict[str, np.ndarray] | None:
        """`_compute` of every group at once, from `_group_outcomes`: each score a ratio of
        exact ints rounded once (`int_quotients`), an average their exact mean rounded once
        (`_mean_ratios`), as `class_value` gives them; per class, with the run's classes."""
        rows = grouped.whole("num_inst")
        found = self._group_outcomes(grouped)
        if rows is None or found is None:
            return None
        (tp, fp, fn, tn), seen = found
        empty = (rows == 0) | ~seen.any(axis=1)  # no row, or no class to score: NaN
        if self.class_type == "binary" and self.average in (None, "weighted"):
            tp, fp, fn = (np.concatenate(pair, axis=1) for pair in ((tn, tp), (fn, fp), (fp, fn)))
            seen = np.ones(tp.shape, dtype=bool)
            empty = rows == 0
        zero = self.zero_division
        if self.average is None:
            values = int_quotients(*_score_ratios(self._score, tp, fp, fn, self.beta), zero)
            # a group without rows is NaN in the classes it always has (none: all NaN)
            own = 2 if self.class_type == "binary" else (self.num_classes or 0)
            none = empty if not own else empty & (rows > 0)
            values = _widened(values, _like_value(self, grouped, like), zero, none)
            values[rows == 0, :own] = math.nan
            return {str(self.name): values}
        if self.average == "micro":
            pooled = _score_ratios(
                self._score, tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1), self.beta
            )
            value = int_quotients(*pooled, zero)
        else:
            numerators, denominators = _score_ratios(self._score, tp, fp, fn, self.beta)
            undefined = np.asarray(denominators == 0, dtype=bool)
            used = seen & ~undefined if math.isnan(zero) else seen
            numerators = np.where(undefined, 0 if math.isnan(zero) else int(zero), numerators)
            denominators = np.where(undefined, 1, denominators)
            weights = np.where(used, 1, 0)
            if self.average == "weighted":
                supports = np.where(used, tp + fn, 0)
                weighted = np.asarray((supports > 0).any(axis=1), dtype=bool)
                weights = np.where(weighted[:, None], supports, weights)
            value = _mean_ratios(numerators, denominators, weights)
        value[empty] = math.nan
        return {str(self.name): value}


@register
class F1(_ClassScore):
    """F1 score ``2 tp / (2 tp + fp + fn)`` from global counts (``zero_division``, default 0,
    when tp + fp + fn = 0).

    ``class_type="binary"`` (default): labels 0/1; ``preds`` are positive-class probabilities
    (positive when ``> threshold``) or (n, 2) scores (argmax, as MXNet 1.x); the value is the
    positive class's F1, for both averages. ``"multiclass"``: scores (argmax) or class indices;
    ``micro`` pools the counts (= accuracy), ``macro`` is the mean of per-class F1s over the
    classes that occur as true or predicted class (as scikit-learn). ``"multilabel"``: (n, L)
    0/1 labels and probabilities; ``macro`` averages over all L columns. ``"weighted"``, None,
    ``num_classes`` and ``zero_division`` as :class:`Precision`.

    Parameters
    ----------
    name : str, default "f1"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    {score options}

    >>> m = F1()
    >>> print(m.update([0.0, 1.0, 1.0], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]).get())
    ('f1', 0.8)
    >>> print(m.update([1.0, 0.0], [[0.9, 0.1], [0.2, 0.8]]).get())
    ('f1', 0.5714285714285714)
    """

    default_name = "f1"


@register
class Precision(_ClassScore):
    """Precision ``tp / (tp + fp)`` per class, averaged (``average``) as scikit-learn's
    ``precision_score`` with the same ``labels`` (``range(num_classes)``, or the classes seen)
    and ``sample_weight``; options as F1's (see ``_ClassScore``).

    Parameters
    ----------
    {score options}
    name : str, default "precision"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = Precision(class_type="multiclass", average=None)
    >>> print(m.update([0, 1, 2, 2], [0, 1, 1, 2]).get())
    ('precision', array([1. , 0.5, 1. ]))
    >>> print(m.update([3], [[0.1, 0.2, 0.3, 0.4]]).get())
    ('precision', array([1. , 0.5, 1. , 1. ]))
    >>> Precision(average="weighted", class_type="multiclass").update([0, 1, 1], [0, 1, 0]).get()
    ('precision', 0.8333333333333334)
    """

    _score = "precision"
    default_name = "precision"
    mxnet_positional = ()  # not an MXNet metric: keywords only


@register
class Recall(_ClassScore):
    """Recall ``tp / (tp + fn)`` per class, averaged as :class:`Precision` (scikit-learn's
    ``recall_score``).

    Parameters
    ----------
    {score options}
    name : str, default "recall"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> Recall(class_type="multiclass", average="macro").update([0, 1, 2, 2], [0, 1, 1, 0]).get()
    ('recall', 0.6666666666666666)
    """

    _score = "recall"
    default_name = "recall"
    mxnet_positional = ()  # not an MXNet metric: keywords only


@register
class FBeta(_ClassScore):
    """F-beta ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` per class (``b = beta``, taken
    exactly: ``beta=2`` weighs recall higher; ``beta=0`` is the precision, ``inf`` the recall),
    averaged as :class:`Precision` (scikit-learn's ``fbeta_score``).

    Parameters
    ----------
    beta : float, default 1.0
        The weight of recall against precision (F1 at 1).
    {score options}
    name : str, default "fbeta"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> FBeta(beta=2.0).update([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.6]).get()
    ('fbeta', 0.5)
    """

    default_name = "fbeta"
    mxnet_positional = ()  # not an MXNet metric: keywords only

    def __init__(self, *, beta: float = 1.0, **options: Any) -> None:
        """``beta``, then `_ClassScore`'s options (which ``inspect.signature`` lists too)."""
        self.beta = check_beta(beta)
        super().__init__(**options)
        self._kwargs["beta"] = self.beta  # in the config, after _ClassScore's options


@register
class MCC(_OutcomeMetric):
    """Matthews correlation ``(tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))``, 0 if degenerate.

    Binary as MXNet 1.x's ``matthewscc`` (= scikit-learn's binary ``matthews_corrcoef``), from
    global counts. Multiclass/multilabel use one-vs-rest counts per class: ``micro`` is the MCC
    of the pooled counts, ``macro`` the mean of the per-class MCCs (classes as in :class:`F1`).
    ``sample_weight`` weighs the counts. For the multiclass generalisation from the confusion
    matrix, see :class:`PCC`.

    Parameters
    ----------
    name : str, default "mcc"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    average : {"micro", "macro"}, default "micro"
        The MCC of the pooled one-vs-rest counts, or the mean of the per-class MCCs; binary:
        either gives the MCC of the global counts.
    {class type options}
    num_classes : int, optional
        Multiclass: the classes ``0 .. num_classes - 1`` (labels or predictions at or beyond
        it are errors naming the row; a class without rows counts, with an MCC of 0, in the
        macro mean); None: the classes seen.

    >>> m = MCC()
    >>> print(m.update([0, 1, 1], [[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]]).get())
    ('mcc', 0.0)
    >>> print(m.update([0], [[0.8, 0.2]]).get())
    ('mcc', 0.5773502691896257)
    """

    default_name = "mcc"

    def _compute(self, state: State) -> float:
        if not state["num_inst"]:
            return math.nan
        outcomes, classes = self._outcomes(state)
        if classes is not None:
            outcomes = select_classes(outcomes, classes)
        assert self.average is not None
        return mcc_from_outcomes(outcomes, self.average)

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        """`_compute` of every group at once, from `_group_outcomes` (no state per group):
        ``micro`` the MCC of each group's pooled counts of the classes it saw, ``macro`` the
        mean of their MCCs (`mcc_from_outcomes`), exact and rounded once as each group's."""
        rows = grouped.whole("num_inst")
        found = self._group_outcomes(grouped)
        if rows is None or found is None:
            return None
        outcomes, seen = found
        values = np.full(grouped.size, math.nan)
        valued = np.flatnonzero((rows > 0) & seen.any(axis=1)).tolist()  # else NaN
        if self.average == "micro":
            pooled = np.where(seen, outcomes, 0).sum(axis=2).T.tolist()  # (groups, 4)
            for code in valued:
                values[code] = binary_mcc(*map(int, pooled[code]))
            return {str(self.name): values}
        assert self.average == "macro"
        for code in valued:
            kept = outcomes[:, code, seen[code]].tolist()
            values[code] = mcc_from_outcomes((kept[0], kept[1], kept[2], kept[3]), "macro")
        return {str(self.name): values}


@register
class PCC(EvalMetric):
    """MXNet's multiclass MCC from the confusion matrix C (rows = predicted, columns = true)::

        n = sum(C), x = row sums, y = column sums
        PCC = (n tr(C) - x.y) / sqrt((n^2 - x.x) (n^2 - y.y))        NaN when a factor is 0

    It needs only C's diagonal and margins, kept as per-class tp/fp/fn vectors that grow as
    classes appear (counts, and exact weight sums for rows given ``sample_weight``: C of
    weights, as scikit-learn's ``matthews_corrcoef``). Exact integer arithmetic and one
    correctly rounded ``num / sqrt(den)``; equals scikit-learn's multiclass
    ``matthews_corrcoef`` where that is not degenerate.

    Parameters
    ----------
    name : str, default "pcc"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    has_global_stats : bool, default True
        False: ``get_global()`` is ``get()``, no state is kept beyond the local window (MXNet's
        argument, in the config too).

    >>> m = PCC()
    >>> print(m.update([0, 1], [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]]).get())
    ('pcc', 1.0)
    >>> print(m.update([2, 2], [1, 2]).get())
    ('pcc', 0.7)
    """

    higher_is_better = True
    mxnet_positional = ("name", "output_names", "label_names", "has_global_stats")

    def __init__(
        self,
        *,
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
        for name in _WEIGHTED_COUNTS:
            self._add_state(name, "sums")

    def _staged_load(self, state: Any) -> Callable[[], None]:
        """State dicts of earlier versions (no weighted entries) load: their rows had no weights."""
        added = dict.fromkeys(_WEIGHTED_COUNTS, lambda data: _EMPTY_SUMS)
        return super()._staged_load(_upgraded_state(state, added))

    def _state_problem(self, state: State) -> tuple[str, str, Any] | None:
        return _class_counts_problem(state, multiclass=True)

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        return _multiclass_terms(label, pred, weight, None)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _invalid_rows(labels, preds)

    def _counts(self, state: State) -> tuple[list[list[int]], int]:
        counts, _ = _combined(state, _CLASS_COUNTS)
        return counts, sum(counts[0]) + sum(counts[2])

    def _compute(self, state: State) -> float:
        if not state["num_inst"]:
            return math.nan
        return pcc_from_counts(*self._counts(state))

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        """`_compute` of every group at once, from every group's counts (`_group_counts`, no
        state per group): `pcc_from_counts` of each group's, the same bits."""
        rows = grouped.whole("num_inst")
        counts = _group_counts(grouped, _CLASS_COUNTS)
        if rows is None or counts is None:
            return None
        totals = (counts[0].sum(axis=1) + counts[2].sum(axis=1)).tolist()
        values = np.full(grouped.size, math.nan)
        for code in np.flatnonzero(rows > 0).tolist():
            values[code] = pcc_from_counts(counts[:, code].tolist(), int(totals[code]))
        return {str(self.name): values}

    def _nonfinite_reason(self, state: State, value: float) -> tuple[str, str]:
        if state["num_inst"]:  # pcc_from_counts: NaN when every row has one predicted/true class
            (tp, fp, fn), total = self._counts(state)
            if not total:
                return "zero_weight", "every row has weight 0"
            for what, other in (("true", fn), ("predicted", fp)):
                if sum(1 for a, b in zip(tp, other, strict=True) if a + b) <= 1:
                    return f"one_{what}_class", f"every row has the same {what} class"
        return super()._nonfinite_reason(state, value)


@register
@alias("confusion_matrix")
class ConfusionMatrix(EvalMetric):
    """The confusion matrix: a (K, K) array, rows the true class, columns the predicted one, as
    scikit-learn's ``confusion_matrix`` with ``labels=range(K)`` and the same ``sample_weight``,
    its dtype too (int64 counts; float64 once a row had a weight, or with ``normalize``). K is
    ``num_classes`` (classes beyond are errors naming the row), or 1 +
    the largest class seen (in a row of nonzero weight; at most 4096 classes without
    ``num_classes``). ``normalize``: None (counts, or sums of weights), ``"true"`` (each row
    over its sum), ``"pred"`` (each column over its sum), ``"all"`` (over the total); a sum of
    0 gives 0s, as scikit-learn. ``class_type="binary"``: 0/1 labels, positive when
    ``pred > threshold`` (or the argmax of 2 scores); K = 2. Each value is its exact count or
    weight sum, rounded once (scikit-learn's bits without weights).

    The state is a vector of the K*K cells in an order that does not depend on K
    (:func:`~streammetric.functional.classification.shell_index`: the cells of class m come
    after those of the classes below), so the matrix grows with the classes seen without
    renumbering, and groups, batches and merges of different K add position by position.

    Parameters
    ----------
    num_classes : int, optional
        K, the classes; None: 1 + the largest class seen.
    normalize : {None, "true", "pred", "all"}, default None
        Counts (or weight sums), or each row, column or the whole over its sum.
    class_type : {"multiclass", "binary"}, default "multiclass"
        Class indices and scores (argmax) or indices; or 0/1 labels and positive-class
        probabilities.
    threshold : float, default 0.5
        A probability above it predicts the positive class (binary).
    name : str, default "confusion_matrix"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> m = ConfusionMatrix()
    >>> print(m.update([0, 1, 1], [0, 1, 0]).get()[1])
    [[1 0]
     [1 1]]
    >>> print(m.update([2], [1]).get()[1])
    [[1 0 0]
     [1 1 0]
     [0 1 0]]
    """

    higher_is_better = None
    mxnet_positional = ()  # not an MXNet metric: keywords only

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        normalize: str | None = None,
        class_type: str = "multiclass",
        threshold: float = 0.5,
        name: str = "confusion_matrix",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        matrix_class_type(class_type, threshold)
        self.num_classes = check_num_classes(num_classes, class_type, MAX_MATRIX_CLASSES)
        self.normalize = check_normalize(normalize)
        self.class_type, self.threshold = class_type, threshold
        self._classes = 2 if class_type == "binary" else self.num_classes
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            num_classes=self.num_classes,
            normalize=self.normalize,
            class_type=class_type,
            threshold=threshold,
        )

    def _init_states(self) -> None:
        size = None if self._classes is None else self._classes**2
        self._add_state("num_inst", "count")
        self._add_state("confusion", "counts", size=size)
        self._add_state("weighted_confusion", "sums", size=size)

    def _state_problem(self, state: State) -> tuple[str, str, Any] | None:
        problem = _sums_problem(state, ("confusion",))
        if problem is not None:
            return problem
        rows, total = int(state["confusion"].sum()), state["num_inst"]
        if len(state["weighted_confusion"]):  # rows with weights are in num_inst too
            if rows > total:
                return "confusion", f"must sum to at most num_inst ({total})", rows
        elif rows != total:
            return "confusion", f"must sum to num_inst ({total}: one cell per row)", rows
        return None

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        true, predicted = _confusion_pairs(
            label, pred, self.class_type, self.threshold, self._classes
        )
        size = 0 if self._classes is None else self._classes**2
        terms = _class_terms((shell_index(true, predicted),), weight, size, ("confusion",))
        terms["num_inst"] = _element_terms(true.shape[0], true.shape[1])
        return terms

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        if self.class_type == "binary":
            return _invalid_rows(labels, preds, zero_one=True)
        return _invalid_rows(labels, preds, num_classes=self._classes or MAX_MATRIX_CLASSES)

    def class_fill(self) -> float | None:
        """A class without rows has a row and a column of 0s (normalized: 0s, as totals of 0
        give)."""
        return 0

    def group_arrays(
        self, grouped: GroupedState, like: list[tuple[str, Any]] | None = None
    ) -> dict[str, np.ndarray] | None:
        """`_compute` of every group at once, with the run's classes: each cell its exact count
        or weight sum, or over its row's, column's or the group's, rounded once (`int_quotients`);
        NaN for a group without a cell (and without ``num_classes``)."""
        found = _group_counts(grouped, ("confusion",))
        if found is None:
            return None
        cells = found[0]
        weighted = cells.dtype == object
        like_value = _like_value(self, grouped, like)
        size = self._classes if self._classes is not None else np.shape(like_value)[0]
        if cells.shape[1] < size * size:
            padded = np.zeros((grouped.size, size * size), dtype=cells.dtype)
            padded[:, : cells.shape[1]] = cells
            cells = padded
        matrix = cells[:, shell_positions(size)]  # (groups, K, K)
        if self.normalize is None:
            values = int_quotients(matrix, np.full(matrix.shape, _UNIT if weighted else 1), 0.0)
        else:
            axes = {"true": (2,), "pred": (1,), "all": (1, 2)}[self.normalize]
            totals = matrix.sum(axis=axes, keepdims=True)
            values = int_quotients(matrix, np.broadcast_to(totals, matrix.shape), 0.0)
        empty = np.zeros(grouped.size, dtype=bool)  # no cell: no class (without num_classes)
        if self._classes is None:
            empty[:] = np.asarray(cells == 0, dtype=bool).all(axis=1)
        return {str(self.name): _widened(values, like_value, 0.0, empty)}

    def _compute(self, state: State) -> np.ndarray:
        (cells,), weighted = _combined(state, ("confusion",))
        size = self._classes
        if size is None:
            size = shell_classes(cells)
        positions = shell_positions(size)
        cells = cells + [0] * (size * size - len(cells))
        if not weighted:
            matrix = np.array(cells, dtype=np.int64)[positions].reshape(size, size)
            return confusion_from_cells(matrix, self.normalize)
        rows = [[cells[p] for p in row] for row in positions.tolist()]
        return confusion_from_cells(rows, self.normalize, units=True)
