"""Run by tests/integrations/test_huggingface.py under ``torch.distributed.run`` (two CPU
processes, gloo): the Trainer evaluates with `StreamMetricComputer`, and each process writes the
values it got and the rows its own batches held to ``OUT/rank-N.json``."""

from __future__ import annotations

import json
import os
import sys

import torch
import transformers

from streammetric.integrations.huggingface import StreamMetricComputer
from tests.integrations.test_huggingface import BATCH, METRICS, Tiny, data

if __name__ == "__main__":
    out, rank = sys.argv[1], int(os.environ["RANK"])
    torch.manual_seed(0)
    model = Tiny()
    args = transformers.TrainingArguments(
        output_dir=out,
        per_device_eval_batch_size=BATCH,
        batch_eval_metrics=True,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        save_strategy="no",
    )
    compute = StreamMetricComputer(METRICS)
    seen: list[int] = []
    update = compute.metric.update

    def spy(labels, preds):  # the rows each call held: every process's, gathered
        seen.append(len(labels))
        return update(labels, preds)

    compute.metric.update = spy
    trainer = transformers.Trainer(
        model=model, args=args, eval_dataset=data(1), compute_metrics=compute
    )
    metrics = trainer.evaluate()
    with open(os.path.join(out, f"rank-{rank}.json"), "w") as handle:
        json.dump({"metrics": metrics, "seen": seen, "world": trainer.args.world_size}, handle)
    # the process group ended before the interpreter (left to exit, gloo's threads may abort it)
    torch.distributed.destroy_process_group()
