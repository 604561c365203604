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
from tests.integrations.test_lightning import Tiny, data, loader

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
    torch.distributed.destroy_process_group()
