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


def test_token_classification_rows_whether_or_not_a_label_is_ignored() -> None:
    """Labels (batch, tokens) and logits (batch, tokens, classes) are flattened to one row a
    token with or without a -100 among the labels (and with ``ignore_index=None``): with as many
    tokens as classes, ``acc`` no longer takes the arg max over the tokens."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(8, 4, 4))
    labels = logits.argmax(-1)
    labels[:, 0] = (labels[:, 0] + 1) % 4  # every token right but the first of each sequence
    spec = [{"metric": "ce", "from_logits": True}, "acc"]
    want = dict(sm.create(spec).update(labels.reshape(-1), logits.reshape(-1, 4)).get_name_value())
    assert want["accuracy"] == 0.75
    as_they_are = transformers.EvalPrediction(predictions=logits, label_ids=labels)
    assert StreamMetricComputer(spec)(as_they_are) == want
    assert StreamMetricComputer(spec, ignore_index=None)(as_they_are) == want
    padded = transformers.EvalPrediction(
        predictions=np.concatenate([logits, np.zeros((8, 1, 4))], 1),
        label_ids=np.concatenate([labels, np.full((8, 1), -100)], 1),
    )
    assert StreamMetricComputer(spec)(padded) == want
    # torch tensors (the Trainer's, before it moves them to NumPy) alike
    tensors = transformers.EvalPrediction(
        predictions=torch.from_numpy(logits), label_ids=torch.from_numpy(labels)
    )
    assert StreamMetricComputer(spec)(tensors) == want


def test_other_shapes_go_in_as_they_are() -> None:
    """Labels (batch,) with logits (batch, classes), and multilabel targets (batch, k) with
    scores (batch, k): nothing to flatten, the values those of the metric updated directly."""
    rng = np.random.default_rng(4)
    logits, labels = rng.normal(size=(6, CLASSES)), rng.integers(0, CLASSES, 6)
    compute = StreamMetricComputer(METRICS)
    want = dict(sm.create(METRICS).update(labels, logits).get_name_value())
    assert compute(transformers.EvalPrediction(predictions=logits, label_ids=labels)) == want
    scores, targets = rng.random((6, 5)), rng.integers(0, 2, (6, 5))
    multilabel = {"metric": "f1", "class_type": "multilabel"}
    want = dict(sm.create(multilabel).update(targets, scores).get_name_value())
    got = StreamMetricComputer(multilabel)(
        transformers.EvalPrediction(predictions=scores, label_ids=targets)
    )
    assert got == want


def test_bfloat16_logits_with_ignored_labels() -> None:
    """bfloat16 logits (``bf16_full_eval=True``) with -100 labels: read as the metrics read
    them (widened to float32, exactly), not refused by NumPy."""
    rng = np.random.default_rng(5)
    logits = torch.from_numpy(rng.normal(size=(3, 4, CLASSES))).to(torch.bfloat16)
    labels = torch.from_numpy(rng.integers(0, CLASSES, (3, 4)))
    labels[0, 3] = labels[2] = -100
    keep = labels != -100
    want = dict(sm.create(METRICS).update(labels[keep], logits.float()[keep]).get_name_value())
    compute = StreamMetricComputer(METRICS)
    assert compute(transformers.EvalPrediction(predictions=logits, label_ids=labels)) == want


class TinyInItsDtype(Tiny):
    """`Tiny` whose inputs follow its weights' dtype (bfloat16 under ``bf16_full_eval``), and
    whose loss leaves out the -100 labels."""

    def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
        logits = self.layer(x.to(self.layer.weight.dtype))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits.float(), labels)
        return out


def test_bf16_full_eval_with_ignored_labels(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model, rows = TinyInItsDtype(), data(1)
    for index in range(0, ROWS, 4):
        rows[index]["labels"] = -100
    run = trainer(tmp_path, model, StreamMetricComputer(METRICS), bf16_full_eval=True)
    run.eval_dataset = rows
    results = run.evaluate()
    metric = sm.create(METRICS)
    with torch.no_grad():  # the Trainer left the model in bfloat16
        assert model.layer.weight.dtype == torch.bfloat16
        for start in range(0, ROWS, BATCH):
            batch = rows[start : start + BATCH]
            labels = torch.tensor([r["labels"] for r in batch])
            logits = model(torch.stack([r["x"] for r in batch]))["logits"]
            metric.update(labels[labels != -100], logits[labels != -100])
    want = {f"eval_{name}": value for name, value in metric.get_name_value()}
    assert {k: results[k] for k in want} == want


def test_metrics_of_one_name_get_distinct_names() -> None:
    """Two ``recall``s, micro and one per class: both returned, under the command line's names."""
    rng = np.random.default_rng(6)
    logits, labels = rng.normal(size=(9, CLASSES)), rng.integers(0, CLASSES, 9)
    micro = {"metric": "recall", "class_type": "multiclass"}
    per_class = {**micro, "average": None}
    got = StreamMetricComputer([micro, per_class])(
        transformers.EvalPrediction(predictions=logits, label_ids=labels)
    )
    micro_value = sm.create(micro).update(labels, logits).get()[1]
    per_class_values = sm.create(per_class).update(labels, logits).get()[1]
    assert got == {
        "recall[average=micro]": micro_value,
        **{f"recall[average=none]/{i}": float(v) for i, v in enumerate(per_class_values)},
    }
    with pytest.raises(sm.ConfigError, match="would both be named 'accuracy'"):
        StreamMetricComputer(["acc", {"metric": "mae", "name": "accuracy"}])
