"""Regression metrics: MAE, MSE, RMSE, Pearson's r, and ``Loss`` (mean of given loss values).

Unlike MXNet 1.x, counts are per sample (MXNet counts batches, so its MAE/MSE depend on the batch
sizes), RMSE is ``sqrt`` of the global MSE (MXNet averages per-batch roots), and Pearson's r is
computed from exact global sums (MXNet 1.x's default averages per-batch coefficients).

>>> m = MAE()
>>> for labels, preds in [([2.5, 0.0], [3.0, -0.5]), ([2.0, 8.0], [2.0, 7.0])]:
...     print(m.update(np.array(labels), np.array(preds)).get())
('mae', 0.5)
('mae', 0.5)
>>> RMSE().update(np.array([2.5, 0.0, 2, 8]), np.array([3, -0.5, 2, 7])).get()
('rmse', 0.6123724356957945)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._exceptions import InvalidInputError
from ..functional._validation import as_float_rows, as_sample_weight
from ..functional.regression import (
    _absolute_error_update,
    _regression_rows,
    _squared_error_update,
    _squared_log_error_invalid,
    _squared_log_error_update,
    exact_products,
    pearson_from_sums,
)
from ._options import check_choice
from .base import EvalMetric, State
from .registry import alias, register
from .state import ROWS, GroupedState, Terms

__all__ = ["MAE", "MSE", "MSLE", "RMSE", "Caffe", "Loss", "PearsonCorrelation", "Torch"]


@register
class MAE(EvalMetric):
    """Mean absolute error ``sum_i w_i |y_i - p_i| / sum_i w_i``.

    Rows of several outputs (n, d) count the mean over their outputs.

    Parameters
    ----------
    name : str, default "mae"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    """

    default_name = "mae"
    higher_is_better = False

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        return self._weighted_terms(_absolute_error_update(label, pred), weight)


@register
class MSE(EvalMetric):
    """Mean squared error ``sum_i w_i (y_i - p_i)^2 / sum_i w_i``.

    Rows of several outputs (n, d) count the mean over their outputs.

    Parameters
    ----------
    name : str, default "mse"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    """

    default_name = "mse"
    higher_is_better = False

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        return self._weighted_terms(_squared_error_update(label, pred), weight)


@register
class RMSE(MSE):
    """Root mean squared error: ``sqrt`` of the global MSE (not a mean of per-batch roots).

    Parameters
    ----------
    name : str, default "rmse"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    """

    default_name = "rmse"

    def _compute(self, state: State) -> float:
        return math.sqrt(super()._compute(state))

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        means = self._group_means(grouped)
        return None if means is None else {self.name: np.sqrt(means)}  # IEEE: as math.sqrt

    def _sum_metric(self, state: State) -> float:
        return self._compute(state) * state["num_inst"] if state["num_inst"] else 0.0


@register
class MSLE(EvalMetric):
    """Mean squared logarithmic error ``sum_i w_i (log1p(y_i) - log1p(p_i))^2 / sum_i w_i``.

    As scikit-learn's ``mean_squared_log_error``; labels and predictions must be > -1.

    Parameters
    ----------
    name : str, default "msle"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> MSLE().update([3, 5, 2.5, 7], [2.5, 5, 4, 8]).get()
    ('msle', 0.03973012298459379)
    """

    default_name = "msle"
    higher_is_better = False

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        return self._weighted_terms(_squared_log_error_update(label, pred), weight)

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return _squared_log_error_invalid(labels, preds)


@register
@alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson's correlation coefficient of labels and predictions, from exact global sums.

    The products are split exactly (:func:`exact_products`), so the raw moments are exact and
    ``n Sxx - Sx^2`` suffers no cancellation, even for data with a large offset.

    ``average`` is MXNet 1.x's argument, accepted for drop-in use: ``"micro"`` (the default) and
    ``"macro"`` both give the r of all rows seen. MXNet 1.x's ``"micro"`` is that r too; its
    ``"macro"`` (its default) is the mean of the per-batch coefficients, which depends on the
    batching and equals this value only when everything came in one batch.

    Parameters
    ----------
    name : str, default "pearsonr"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    average : {"micro", "macro"}, default "micro"
        MXNet 1.x's argument, accepted for drop-in use: either gives the r of all rows (above).

    >>> m = PearsonCorrelation()
    >>> m = m.update(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    >>> name, value = m.update(np.array([3.0, 4.0]), np.array([2.0, 5.0])).get()
    >>> name, round(value, 12)
    ('pearsonr', 0.894427191)
    """

    mxnet_positional = ("name", "output_names", "label_names", "average")
    higher_is_better = True

    def __init__(
        self,
        *,
        name: str = "pearsonr",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str = "micro",
    ) -> None:
        self.average = check_choice(average, "average", ("macro", "micro"))
        super().__init__(name, output_names=output_names, label_names=label_names, average=average)

    def _init_states(self) -> None:
        for name in ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy"):
            self._add_state(name, "sum", nonnegative=name in ("sum_xx", "sum_yy"))
        self._add_state("num_inst", "count")

    def _row_terms(self, label: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> Terms:
        """Each row adds its elements' x, y and the exact parts of x*x, y*y and x*y
        (:func:`exact_products`: no per-sample rounding), and its number of elements."""
        if weight is not None:
            rule = "is not taken by PearsonCorrelation (an unweighted correlation)"
            raise InvalidInputError(f"`sample_weight` {rule}", argument="sample_weight", rule=rule)
        x, y = _regression_rows(label, pred)  # (n, elements per row)
        rows, elements = x.shape

        def products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.concatenate(exact_products(a, b), axis=1)

        return {
            "sum_x": x[:, 0] if elements == 1 else x,
            "sum_y": y[:, 0] if elements == 1 else y,
            "sum_xx": products(x, x),
            "sum_yy": products(y, y),
            "sum_xy": products(x, y),
            "num_inst": ROWS if elements == 1 else np.full(rows, elements, dtype=np.int64),
        }

    def _compute(self, state: State) -> float:
        names = ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")
        if any(not math.isfinite(state[n].value) for n in names):
            return math.nan
        sx, sy, sxx, syy, sxy = (state[n].units for n in names)
        # Sums are integers in units of u = 2**-1074. With Sx = sx*u and Sxx = sxx*u, the terms
        # n*Sxx - Sx**2 share the unit u**2 once the second moments are scaled by 2**1074.
        scale = 1 << 1074
        return pearson_from_sums(state["num_inst"], sx, sy, sxx * scale, syy * scale, sxy * scale)

    def _sum_metric(self, state: State) -> float:
        return self._compute(state) * state["num_inst"] if state["num_inst"] else 0.0

    def _nonfinite_reason(self, state: State, value: float) -> tuple[str, str]:
        names = ("sum_x", "sum_y", "sum_xx", "sum_yy")
        n = state["num_inst"]
        if n and all(math.isfinite(state[k].value) for k in names):
            if n < 2:
                return "one_row", "it needs at least 2 rows"
            sx, sy, sxx, syy = (state[k].units for k in names)
            scale = 1 << 1074  # as in _compute: the variances' sign is exact
            for label, total, squares in (("labels", sx, sxx), ("predictions", sy, syy)):
                if n * squares * scale - total * total <= 0:
                    return f"constant_{label}", f"the {label} are constant (variance 0)"
        return super()._nonfinite_reason(state, value)


@register
class Loss(EvalMetric):
    """Mean of loss values given as ``preds`` (labels are ignored), over every element;
    with ``sample_weight``, weighted by each row's weight (for each of its values).

    Parameters
    ----------
    name : str, default "loss"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).

    >>> Loss().update(None, [np.array([1.0, 2.0]), np.array([3.0])]).get()
    ('loss', 2.0)
    """

    default_name = "loss"
    higher_is_better = False
    _signed_sum_metric = True  # a loss value may be negative

    def update(
        self, labels: Any, preds: Any, sample_weight: Any = None, *, sample_ids: Any = None
    ) -> Loss:
        from ._inputs import _as_list, to_numpy

        if sample_ids is not None:
            rule = f"is not taken by {type(self).__name__} (it reads loss values, not rows)"
            raise InvalidInputError(f"`sample_ids` {rule}", argument="sample_ids", rule=rule)
        pred_list = _as_list(preds)
        weights = [None] * len(pred_list) if sample_weight is None else _as_list(sample_weight)
        if len(weights) != len(pred_list):
            raise InvalidInputError(
                f"`sample_weight` must pair with `preds`, got {len(weights)} arrays for "
                f"{len(pred_list)}",
                argument="sample_weight",
            )
        for pred, weight in zip(pred_list, weights, strict=True):
            rows = as_float_rows(to_numpy(pred, "preds"), "preds")
            values = rows.ravel()
            row_weights = None
            if weight is not None:  # a row's weight for each of its loss values
                count = rows.shape[0] if rows.ndim else 1
                row_weights = as_sample_weight(to_numpy(weight, "sample_weight"), count)
                if row_weights is not None and count and values.shape[0] != count:
                    row_weights = np.repeat(row_weights, values.shape[0] // count)
            self._add_weighted(self._local, values, row_weights)
        return self


@register
class Torch(Loss):
    """MXNet 1.x's ``Torch`` metric: :class:`Loss` named ``torch`` (for Torch criterions' losses).

    Parameters
    ----------
    name : str, default "torch"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    """

    default_name = "torch"


@register
class Caffe(Loss):
    """MXNet 1.x's ``Caffe`` metric: :class:`Loss` named ``caffe`` (for Caffe losses).

    Parameters
    ----------
    name : str, default "caffe"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    """

    default_name = "caffe"
