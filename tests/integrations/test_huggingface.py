"""`streammetric.integrations.huggingface.StreamMetricComputer` in a real Trainer with
``batch_eval_metrics=True``: a tiny model and dataset made here, the logged values equal to the
metrics updated directly with the same logits, bit for bit."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from tests.integrations.two_processes import run_two_processes

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import streammetric as sm  # noqa: E402
from streammetric.integrations.huggingface import StreamMetricComputer  # noqa: E402

ROWS, FEATURES, CLASSES, BATCH = 23, 4, 3, 5  # 5 batches, the last of 3 rows
METRICS = [{"metric": "ce", "from_logits": True}, "acc"]


class Tiny(torch.nn.Module):
    """A linear classifier with the Trainer's contract: ``labels`` in, ``loss`` and logits out."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(FEATURES, CLASSES)

    def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
        logits = self.layer(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def data(seed: int, rows: int = ROWS) -> list[dict[str, Any]]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, FEATURES, generator=generator)
    y = torch.randint(0, CLASSES, (rows,), generator=generator)
    return [{"x": a, "labels": int(b)} for a, b in zip(x, y, strict=True)]


def expected(model: Tiny, rows: list[dict[str, Any]], prefix: str = "eval_") -> dict:
    """The metrics updated directly, batch by batch, with the model's own forward."""
    metric = sm.create(METRICS)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            x = torch.stack([r["x"] for r in batch])
            metric.update(torch.tensor([r["labels"] for r in batch]), model(x)["logits"])
    return {f"{prefix}{name}": value for name, value in metric.get_name_value()}


def trainer(tmp_path: Any, model: Any, compute: Any, train: Any = None, **kwargs: Any) -> Any:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=BATCH,
        per_device_train_batch_size=BATCH,
        batch_eval_metrics=True,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        save_strategy="no",
        **kwargs,
    )
    return transformers.Trainer(
        model=model, args=args, train_dataset=train, eval_dataset=data(1), compute_metrics=compute
    )


def test_evaluate_logs_the_exact_values(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model, compute = Tiny(), StreamMetricComputer(METRICS)
    sizes: list[int] = []
    update = compute.metric.update

    def spy(*args: Any, **kwargs: Any) -> Any:  # the computer's whole memory, batch by batch
        sizes.append(len(pickle.dumps(compute.metric.state_dict())))
        return update(*args, **kwargs)

    compute.metric.update = spy  # type: ignore[method-assign]
    run = trainer(tmp_path, model, compute)
    results = run.evaluate()
    want = expected(model, data(1))
    assert set(want) == {"eval_cross-entropy", "eval_accuracy"}
    assert {k: results[k] for k in want} == want  # bit for bit
    assert {k: run.state.log_history[-1][k] for k in want} == want  # what the Trainer logged
    assert len(sizes) == 5 and max(sizes[1:]) - min(sizes[1:]) < 32
    assert compute.metric.num_inst == 0  # reset for the next evaluation
    assert [k for k, v in vars(compute).items() if isinstance(v, (list, np.ndarray))] == []
    again = run.evaluate()
    assert {k: again[k] for k in want} == want


def test_evaluation_within_training(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model = Tiny()
    run = trainer(
        tmp_path,
        model,
        StreamMetricComputer(METRICS, prefix="sm_"),
        train=data(2, 17),
        num_train_epochs=1,
        eval_strategy="epoch",
        learning_rate=0.5,
    )
    run.train()
    logged = [entry for entry in run.state.log_history if "eval_sm_accuracy" in entry]
    assert len(logged) == 1
    want = expected(model, data(1), prefix="eval_sm_")  # evaluated with the final weights
    assert {k: logged[0][k] for k in want} == want


def test_ignored_labels_and_several_outputs() -> None:
    """Token classification's layout: labels (batch, tokens) with -100 where nothing is
    predicted, logits (batch, tokens, classes); the model's other outputs after the logits."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, CLASSES))
    labels = rng.integers(0, CLASSES, (2, 4))
    labels[0, 3] = labels[1, 0] = -100
    compute = StreamMetricComputer(METRICS)
    eval_pred = transformers.EvalPrediction(
        predictions=(logits, rng.normal(size=(2, 7))), label_ids=labels
    )
    keep = labels != -100
    want = sm.create(METRICS).update(labels[keep], logits[keep]).get_name_value()
    assert compute(eval_pred) == dict(want)
    with pytest.raises(sm.InvalidInputError, match="ignore_index=-100"):
        compute(transformers.EvalPrediction(predictions=logits[:, :2], label_ids=labels))


@pytest.mark.slow  # two processes that import torch and Transformers: 10 to 20 s
def test_two_processes_each_get_the_whole_set(tmp_path: Any) -> None:
    """Under ``torch.distributed.run`` (two CPU processes, gloo, on the loopback) the Trainer
    gathers each batch from both processes before calling the computer (and drops the rows it
    repeated to even out the last batch): each process reports the values of the whole set, the
    same as one process, bit for bit, with nothing merged by streammetric."""
    import json

    run_two_processes("hf_two_processes.py", tmp_path)
    torch.manual_seed(0)
    want = expected(Tiny(), data(1))
    for rank in (0, 1):
        report = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        assert report["world"] == 2
        assert report["seen"] == [10, 10, 3]  # 23 rows: both processes' batches, no repeats
        assert {k: report["metrics"][k] for k in want} == want
