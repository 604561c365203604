"""PyTorch Lightning: `StreamMetricCallback`, streammetric metrics over validation and test.

``pip install streammetric[lightning]``. Importing this module imports Lightning
(``lightning.pytorch``, or the older ``pytorch_lightning`` when only that is installed).

The callback updates its metrics after every validation (or test) batch and keeps nothing else:
no predictions, no labels. At the end of the epoch it merges the metrics of every process (when
``trainer.world_size > 1``, through `streammetric.distributed.sync`), logs their values with
``pl_module.log`` (so they reach ``trainer.logger``, ``trainer.callback_metrics``, the dicts
``trainer.validate``/``trainer.test`` return, and what ``ModelCheckpoint``/``EarlyStopping``
monitor), and resets them.

Where the predictions come from, after each ``validation_step``/``test_step``:

* ``select(outputs, batch) -> (labels, preds)``, when given, says it;
* otherwise the step returns the predictions, either as a tensor or as a dict holding them under
  ``preds_key`` (``"preds"``). The labels are ``outputs[labels_key]`` when that dict has them,
  else ``batch[labels_key]`` for a dict batch, else the last item of a ``(inputs, labels)``
  batch.

>>> callback = StreamMetricCallback(["ce", "acc"])
>>> callback.metrics
['ce', 'acc']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .._exceptions import InvalidInputError
from ..metrics.base import EvalMetric
from ._common import make_metric, scalars, sync, to_host

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ModuleNotFoundError as exc:  # the older package name
    if exc.name not in ("lightning", "lightning.pytorch"):
        raise
    from pytorch_lightning import Callback, LightningModule, Trainer  # type: ignore[assignment]

__all__ = ["StreamMetricCallback"]

#: each stage and its short name (in the default prefix of its values)
_STAGES = {"validate": "val", "test": "test"}


class StreamMetricCallback(Callback):
    """Update streammetric ``metrics`` after each validation/test batch; log and reset them at
    the epoch's end.

    Parameters
    ----------
    metrics
        What `streammetric.create` takes: a name (``"acc"``), a list (``["ce", "acc"]``), a
        config dict, or an `EvalMetric` (copied: one fresh copy per stage and dataloader).
    preds_key, labels_key
        Where the default selection finds the predictions and the labels (see the module).
    select
        ``select(outputs, batch) -> (labels, preds)``, in place of the default selection.
    stages
        Which of ``"validate"`` and ``"test"`` to follow.
    prefix
        The prefix of the logged names, formatted with ``stage`` (``"val"`` or ``"test"``):
        ``"{stage}_"`` logs ``val_accuracy``. With several dataloaders, each name ends in
        ``/dataloader_idx_N``, as Lightning's own.
    group
        The ``torch.distributed`` process group the metrics are merged over (None: all).
    ids_key
        Where each row's id is (the dataset index, say): ``outputs[ids_key]``, else
        ``batch[ids_key]`` for a dict batch. The ids go to ``update(..., sample_ids=)``, so a row
        that Lightning's ``DistributedSampler`` repeats on another process (to even out the
        shards when the rows do not divide among the processes) counts once after the merge.
        Opt-in: the metrics then keep each row's id and values until the epoch's end (16 bytes
        plus the row's), what dropping a repeated id needs. None: no ids, nothing kept.

    The values of the last epoch's end are also kept in ``last`` (``{name: value}``).
    """

    def __init__(
        self,
        metrics: Any,
        *,
        preds_key: str = "preds",
        labels_key: str = "labels",
        select: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        stages: tuple[str, ...] = ("validate", "test"),
        prefix: str = "{stage}_",
        group: Any = None,
        ids_key: str | None = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(stages) - set(_STAGES))
        if unknown:
            raise ValueError(f"`stages` must be among {sorted(_STAGES)}, got {unknown}")
        make_metric(metrics)  # a bad spec fails here, not at the first batch
        self.metrics = metrics
        self.preds_key, self.labels_key, self.select = preds_key, labels_key, select
        self.stages, self.prefix, self.group = tuple(stages), prefix, group
        self.ids_key = ids_key
        #: (stage, dataloader index) -> its metric: all the callback keeps between batches
        self._metrics: dict[tuple[str, int], EvalMetric] = {}
        self.last: dict[str, float] = {}

    # --- the hooks --------------------------------------------------------------------------

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start("validate", trainer)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start("test", trainer)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update("validate", outputs, batch, dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update("test", outputs, batch, dataloader_idx)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end("validate", trainer, pl_module)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end("test", trainer, pl_module)

    # --- the work ---------------------------------------------------------------------------

    def metric(self, stage: str, dataloader_idx: int = 0) -> EvalMetric:
        """The metric of ``stage``'s dataloader ``dataloader_idx`` (made when first needed)."""
        key = (stage, dataloader_idx)
        if key not in self._metrics:
            self._metrics[key] = make_metric(self.metrics)
        return self._metrics[key]

    def _start(self, stage: str, trainer: Trainer) -> None:
        if stage not in self.stages:
            return
        for key in [k for k in self._metrics if k[0] == stage]:
            del self._metrics[key]  # an epoch cut short leaves nothing behind
        for index in range(_num_dataloaders(trainer, stage)):
            self.metric(stage, index)  # every process has the same metrics to merge

    def _update(self, stage: str, outputs: Any, batch: Any, dataloader_idx: int) -> None:
        if stage not in self.stages:
            return
        labels, preds = (self.select or self._select)(outputs, batch)
        metric = self.metric(stage, dataloader_idx)
        if self.ids_key is None:
            metric.update(to_host(labels), to_host(preds))
        else:
            ids = self._ids(outputs, batch)
            metric.update(to_host(labels), to_host(preds), sample_ids=to_host(ids))

    def _ids(self, outputs: Any, batch: Any) -> Any:
        for where in (outputs, batch):
            if isinstance(where, Mapping) and self.ids_key in where:
                return where[self.ids_key]
        raise InvalidInputError(
            f"no ids: neither the step's output nor the batch is a dict with {self.ids_key!r}"
        )

    def _select(self, outputs: Any, batch: Any) -> tuple[Any, Any]:
        """The default selection (see the module's docstring)."""
        if isinstance(outputs, Mapping):
            if self.preds_key not in outputs:
                raise InvalidInputError(
                    f"the step's output has no {self.preds_key!r} (keys: {sorted(map(str, outputs))}): "
                    "return the predictions under `preds_key`, or pass `select`"
                )
            preds = outputs[self.preds_key]
            if self.labels_key in outputs:
                return outputs[self.labels_key], preds
        elif torch.is_tensor(outputs):
            preds = outputs
        else:
            raise InvalidInputError(
                f"the step returned {type(outputs).__name__}: return the predictions (a tensor, "
                f"or a dict with {self.preds_key!r}), or pass `select`"
            )
        if isinstance(batch, Mapping) and self.labels_key in batch:
            return batch[self.labels_key], preds
        if isinstance(batch, (list, tuple)) and len(batch) >= 2:
            return batch[-1], preds
        raise InvalidInputError(
            f"no labels: the step's output has no {self.labels_key!r}, and the batch is neither "
            f"a dict with it nor an (inputs, labels) sequence; pass `select`"
        )

    def _end(self, stage: str, trainer: Trainer, pl_module: LightningModule) -> None:
        if stage not in self.stages:
            return
        keys = sorted(k for k in self._metrics if k[0] == stage)
        prefix = self.prefix.format(stage=_STAGES[stage])
        values: dict[str, float] = {}
        for key in keys:
            metric = self._metrics[key]
            sync(metric, trainer.world_size, self.group)
            suffix = f"/dataloader_idx_{key[1]}" if len(keys) > 1 else ""
            values.update({f"{n}{suffix}": v for n, v in scalars(metric, prefix).items()})
            metric.reset()
        self.last = values
        for name, value in values.items():
            # a float64 tensor, and a batch size of 1: Lightning's epoch mean of one value is
            # then the value itself, bit for bit (a float would become a float32 tensor). The
            # metrics are merged already: Lightning has nothing more to reduce across processes.
            pl_module.log(
                name,
                torch.tensor(value, dtype=torch.float64),
                on_step=False,
                on_epoch=True,
                batch_size=1,
                sync_dist=False,
                add_dataloader_idx=False,
            )

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing to resume: the metrics live within one epoch


def _num_dataloaders(trainer: Trainer, stage: str) -> int:
    if stage == "test":
        counts = trainer.num_test_batches
    elif trainer.sanity_checking:
        counts = trainer.num_sanity_val_batches
    else:
        counts = trainer.num_val_batches
    return len(counts) if isinstance(counts, (list, tuple)) else 1
