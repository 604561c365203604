"""The Hugging Face Trainer: `StreamMetricComputer`, a ``compute_metrics`` that keeps no
predictions.

``pip install streammetric[huggingface]``. This module imports neither Transformers nor torch:
the Trainer hands it tensors, and it needs nothing else from them.

With ``TrainingArguments(batch_eval_metrics=True)`` the Trainer calls ``compute_metrics`` after
every evaluation batch, with that batch's logits and labels and ``compute_result=False``, and
with ``compute_result=True`` after the last; it keeps no predictions itself then. The computer
updates its streammetric metrics with each batch and, on the last, returns their values
(``{"cross-entropy": ..., "accuracy": ...}``, which the Trainer prefixes with ``eval_``, logs and
returns from ``evaluate``) and resets them for the next evaluation. Without
``batch_eval_metrics`` the Trainer gathers every prediction and calls it once
(``compute_result`` left at True): the values are the same, the memory is the Trainer's.

Several processes: the Trainer gathers each batch from every process before it calls
``compute_metrics`` (``accelerator.gather_for_metrics``, which also drops the samples repeated
to even out the last batch), so every process sees every row and the values are already those
of the whole evaluation set; there is nothing to merge (merging would count each row once per
process).

Logits: the Trainer passes the model's logits; use metrics that read them, such as
``{"metric": "ce", "from_logits": True}`` (``acc`` takes the arg max of logits as of
probabilities), or a ``preprocess_logits_for_metrics`` in the Trainer.

>>> compute = StreamMetricComputer([{"metric": "ce", "from_logits": True}, "acc"])
>>> class Batch:  # what the Trainer passes: an EvalPrediction
...     def __init__(self, predictions, label_ids):
...         self.predictions, self.label_ids = predictions, label_ids
>>> compute(Batch([[2.0, 0.0]], [0]), compute_result=False)
{}
>>> compute(Batch([[0.0, 2.0], [1.0, 1.0]], [0, 1]), compute_result=True)
{'cross-entropy': 0.9823344008819636, 'accuracy': 0.3333333333333333}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._exceptions import InvalidInputError
from .._tensors import as_numpy, is_array_object
from ._common import make_metric, scalars, to_host

__all__ = ["StreamMetricComputer"]


class StreamMetricComputer:
    """A ``compute_metrics`` for ``Trainer(..., compute_metrics=StreamMetricComputer(...))``.

    Parameters
    ----------
    metrics
        What `streammetric.create` takes: a name, a list (a composite), a config dict, or an
        `EvalMetric` (copied).
    ignore_index
        Rows whose label is this are left out (the Trainer's and the models' padding of labels,
        -100; token classification's labels of sub-words and special tokens), with their
        predictions: labels ``(batch, ...)`` select rows of predictions ``(batch, ..., classes)``.
        None keeps every row. Either way, each position of labels ``(batch, tokens, ...)`` is a
        row with its predictions ``(batch, tokens, ..., classes)``, token classification's
        layout.
    select
        ``select(eval_pred) -> (labels, preds)`` in place of the default:
        ``(eval_pred.label_ids, eval_pred.predictions)``, the first of the predictions when the
        model returned several outputs.
    prefix
        Put before each value's name (the Trainer adds its own ``eval_`` before that).
    """

    def __init__(
        self,
        metrics: Any,
        *,
        ignore_index: int | None = -100,
        select: Callable[[Any], tuple[Any, Any]] | None = None,
        prefix: str = "",
    ) -> None:
        self.metric = make_metric(metrics)
        self.ignore_index, self.select, self.prefix = ignore_index, select, prefix

    def __call__(self, eval_pred: Any, compute_result: bool = True) -> dict[str, float]:
        if self.select is not None:
            labels, preds = self.select(eval_pred)
        else:
            labels, preds = eval_pred.label_ids, eval_pred.predictions
            if isinstance(preds, (list, tuple)) and preds and _is_array(preds[0]):
                preds = preds[0]  # the logits, before the model's other outputs
        labels, preds = self._rows(to_host(labels), to_host(preds))
        self.metric.update(labels, preds)
        if not compute_result:
            return {}
        values = scalars(self.metric, self.prefix)
        self.metric.reset()
        return values

    def _rows(self, labels: Any, preds: Any) -> tuple[Any, Any]:
        """The labels and predictions as the metrics' rows: a position of token classification's
        labels ``(batch, ...)`` is a row, with its predictions ``(batch, ..., classes)`` (both
        flattened, whether or not a label is ``ignore_index``); then the rows whose label is
        ``ignore_index`` left out. Other shapes (labels ``(batch,)`` with predictions ``(batch,
        classes)``, multilabel ``(batch, k)`` with ``(batch, k)``) as they are; lists of arrays
        (the metrics pair their items) untouched."""
        if _is_array_list(labels) or _is_array_list(preds):
            return labels, preds
        label_array, pred_array = as_numpy(labels, "labels"), as_numpy(preds, "preds")
        if (
            label_array.ndim >= 2
            and pred_array.ndim == label_array.ndim + 1
            and pred_array.shape[: label_array.ndim] == label_array.shape
        ):
            label_array = label_array.reshape(-1)
            pred_array = pred_array.reshape(-1, pred_array.shape[-1])
        if self.ignore_index is None:
            return label_array, pred_array
        keep = label_array != self.ignore_index
        if keep.all():
            return label_array, pred_array
        if pred_array.ndim not in (label_array.ndim, label_array.ndim + 1) or (
            pred_array.shape[: label_array.ndim] != label_array.shape
        ):
            raise InvalidInputError(
                f"labels of shape {label_array.shape} hold ignore_index={self.ignore_index}, "
                f"but predictions of shape {pred_array.shape} do not have a row for each label; "
                "pass ignore_index=None or `select`",
                argument="labels",
            )
        return label_array[keep], pred_array[keep]

    def reset(self) -> None:
        """Forget a partial evaluation (one the Trainer stopped before its last batch)."""
        self.metric.reset()


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _is_array_list(value: Any) -> bool:
    """Whether ``value`` is a list (or tuple) of arrays, which the metrics pair item by item."""
    return isinstance(value, (list, tuple)) and any(is_array_object(item) for item in value)
