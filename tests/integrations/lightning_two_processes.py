"""Run by tests/integrations/test_lightning.py under ``torch.distributed.run`` (two CPU
processes, gloo): Lightning's DDP validates with `StreamMetricCallback`, which merges the ranks'
metrics through `streammetric.distributed.sync`; each process writes what ``trainer.validate``
returned and the rows its own batches held to ``OUT/rank-N.json``."""

from __future__ import annotations

import json
import os
import sys

import lightning.pytorch as pl
import torch

from streammetric.integrations.lightning import StreamMetricCallback
from tests.integrations.test_lightning import BATCH, Tiny, data, loader


def loader_of(rows):
    return torch.utils.data.DataLoader(rows, batch_size=BATCH)


DDP_ROWS = 22  # even: DistributedSampler repeats no row (see the test)

if __name__ == "__main__":
    out, rank = sys.argv[1], int(os.environ["RANK"])
    torch.manual_seed(0)
    model = Tiny()
    callback = StreamMetricCallback(["ce", "acc"])
    seen: list[list[int]] = []
    select = callback._select

    def spy(outputs, batch):  # the labels of each batch this process validated
        seen.append(batch[1].tolist())
        return select(outputs, batch)

    callback.select = spy
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=out,
    )
    x, y = data(1, DDP_ROWS)
    results = trainer.validate(model, dataloaders=loader(x, y), verbose=False)
    with open(os.path.join(out, f"rank-{rank}.json"), "w") as handle:
        json.dump({"results": results, "world": trainer.world_size, "seen": seen}, handle)

    # 23 rows: the sampler repeats row 0 on rank 1; with ids, it counts once after the merge
    class DictBatches(Tiny):
        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            return {"preds": self(batch["x"])}  # the labels: batch["labels"]

    rows = [{"x": a, "labels": b, "id": i} for i, (a, b) in enumerate(zip(*data(1), strict=True))]
    callback = StreamMetricCallback(["ce", "acc"], ids_key="id")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=out,
    )
    ids: list[list[int]] = []
    original = callback._ids
    callback._ids = lambda outputs, batch: (
        ids.append(batch["id"].tolist()) or original(outputs, batch)
    )
    torch.manual_seed(0)
    results = trainer.validate(DictBatches(), dataloaders=loader_of(rows), verbose=False)
    with open(os.path.join(out, f"ids-rank-{rank}.json"), "w") as handle:
        json.dump({"results": results, "ids": ids}, handle)
    torch.distributed.destroy_process_group()
