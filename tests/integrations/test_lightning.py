"""`streammetric.integrations.lightning.StreamMetricCallback` on a real Lightning Trainer: a tiny
model and dataset made here, the logged values equal to the metrics updated directly with the
same predictions, bit for bit."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from tests.integrations.two_processes import run_two_processes

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

import streammetric as sm  # noqa: E402
from streammetric.integrations.lightning import StreamMetricCallback  # noqa: E402

ROWS, FEATURES, CLASSES, BATCH = 23, 4, 3, 5  # 5 batches, the last of 3 rows


class Tiny(pl.LightningModule):
    """A linear classifier whose steps return softmax probabilities (and, in test, labels)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(FEATURES, CLASSES)

    def forward(self, x: Any) -> Any:
        return torch.softmax(self.layer(x), dim=1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return {"preds": self(batch[0])}  # the labels: the batch's last item

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        return {"preds": self(batch["x"]), "labels": batch["y"]}

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.5)


class Recorder(pl.loggers.Logger):
    """A logger that keeps what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[dict[str, float]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.logged.append(dict(metrics))


def data(seed: int, rows: int = ROWS) -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, FEATURES, generator=generator)
    return x, torch.randint(0, CLASSES, (rows,), generator=generator)


def loader(x: Any, y: Any, batch_size: int = BATCH) -> Any:
    return torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=batch_size)


def expected(
    model: Tiny, x: Any, y: Any, prefix: str, batch_size: int = BATCH, metrics: Any = ("ce", "acc")
) -> dict:
    """The metrics updated directly, batch by batch, with the model's own forward."""
    metric = sm.create(list(metrics))
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            metric.update(y[rows], model(x[rows]))
    return {f"{prefix}{name}": value for name, value in metric.get_name_value()}


def trainer(tmp_path: Any, callback: Any, logger: Any = False, **kwargs: Any) -> Any:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[callback],
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **kwargs,
    )


def test_validate_logs_the_exact_values(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model, (x, y) = Tiny(), data(1)
    callback, recorder = StreamMetricCallback(["ce", "acc"]), Recorder()
    sizes = spy_on_sizes(callback)
    results = trainer(tmp_path, callback, logger=recorder).validate(
        model, dataloaders=loader(x, y), verbose=False
    )
    want = expected(model, x, y, "val_")
    assert set(want) == {"val_cross-entropy", "val_accuracy"}
    assert results == [want]  # bit for bit: == on floats
    assert callback.last == want
    assert [m for m in recorder.logged if "val_accuracy" in m] == [{**want, "epoch": 0}]
    assert len(sizes) == 5
    assert all(isinstance(m, sm.EvalMetric) for m in callback._metrics.values())
    # the direct update of all rows at once agrees too: nothing depends on the batching
    with torch.no_grad():
        whole = sm.create(["ce", "acc"]).update(y, model(x))
    assert results == [{f"val_{n}": v for n, v in whole.get_name_value()}]


def spy_on_sizes(callback: StreamMetricCallback) -> list[int]:
    """The size of the callback's whole memory (its metrics, pickled) before each batch."""
    sizes: list[int] = []
    select = callback._select

    def spy(outputs: Any, batch: Any) -> Any:
        sizes.append(len(pickle.dumps(callback._metrics)))
        return select(outputs, batch)

    callback.select = spy
    return sizes


def test_the_state_does_not_grow_with_the_batches(tmp_path: Any) -> None:
    """Over 47 batches the pickled metrics stay within a few bytes (their exact sums' integers
    may gain a digit); kept predictions would add 12 bytes a row, 2,796 in all."""
    torch.manual_seed(0)
    callback = StreamMetricCallback(["ce", "acc"])
    sizes = spy_on_sizes(callback)
    x, y = data(5, 233)
    trainer(tmp_path, callback).validate(Tiny(), dataloaders=loader(x, y), verbose=False)
    assert len(sizes) == 47 and max(sizes[1:]) - min(sizes[1:]) < 32  # [0]: before any row
    # no list but the metrics' names it was given
    assert [k for k, v in vars(callback).items() if isinstance(v, list)] == ["metrics"]
    assert callback.metrics == ["ce", "acc"]


def test_fit_and_test_with_dict_batches_and_two_dataloaders(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model = Tiny()
    (x, y), (x1, y1), (x2, y2) = data(1, 17), data(2, 11), data(3, 9)
    ends: list[tuple[bool, list]] = []

    class Watched(StreamMetricCallback):
        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            ends.append((trainer.sanity_checking, sorted(self._metrics)))
            super().on_validation_epoch_end(trainer, pl_module)

    callback = Watched("acc", prefix="{stage}/")
    run = trainer(tmp_path, callback, max_epochs=1, num_sanity_val_steps=2)
    run.fit(model, loader(x, y, 4), [loader(x1, y1, 4), loader(x2, y2, 4)])
    # a metric for each dataloader from the epoch's start, the sanity check's too: in several
    # processes, each has the same metrics to merge, whichever batches it saw
    keys = [("validate", 0), ("validate", 1)]
    assert ends == [(True, keys), (False, keys)]
    # validation after the epoch: the final weights; the sanity check before left nothing
    for index, (xv, yv) in enumerate([(x1, y1), (x2, y2)]):
        want = expected(model, xv, yv, "val/", 4, ["acc"])
        assert (
            run.callback_metrics[f"val/accuracy/dataloader_idx_{index}"].item()
            == want["val/accuracy"]
        )
    batches = torch.utils.data.DataLoader(
        [{"x": a, "y": b} for a, b in zip(x2, y2, strict=True)], batch_size=4
    )
    results = run.test(model, dataloaders=batches, verbose=False)
    assert results == [expected(model, x2, y2, "test/", 4, ["acc"])]


def test_a_step_without_predictions_says_what_to_return(tmp_path: Any) -> None:
    class NoPreds(Tiny):
        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            return {"loss": torch.tensor(0.0)}

    x, y = data(1, 6)
    with pytest.raises(sm.InvalidInputError, match=r"has no 'preds'.*pass `select`"):
        trainer(tmp_path, StreamMetricCallback("acc")).validate(
            NoPreds(), dataloaders=loader(x, y), verbose=False
        )


def test_select_and_an_evalmetric_instance(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model, (x, y) = Tiny(), data(4, 13)
    mine = sm.create("ce")
    callback = StreamMetricCallback(
        mine, select=lambda outputs, batch: (batch[1], outputs["preds"]), stages=("validate",)
    )
    results = trainer(tmp_path, callback).validate(model, dataloaders=loader(x, y), verbose=False)
    assert results == [expected(model, x, y, "val_", metrics=["ce"])]
    assert mine.num_inst == 0  # the callback updated a copy


def test_several_processes_merge_before_logging(monkeypatch: Any) -> None:
    """With ``world_size > 1`` each metric goes through `streammetric.distributed.sync` (here a
    stand-in that merges a second process's state) before its values are read; with one
    process that module is not imported at all."""
    import sys
    import types

    calls: list[Any] = []
    other = sm.create(["ce", "acc"]).update([2, 2], [[0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])

    def sync(metric: Any, group: Any = None) -> None:
        calls.append(group)
        metric.merge(other)  # what the real one does: every rank ends with the merged state

    monkeypatch.setitem(sys.modules, "streammetric.distributed", types.SimpleNamespace(sync=sync))

    class Module:
        def __init__(self) -> None:
            self.logged: dict[str, Any] = {}

        def log(self, name: str, value: Any, **kwargs: Any) -> None:
            self.logged[name] = value.item()

    labels, preds = torch.tensor([0, 1]), torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    for world_size, group in [(1, None), (2, "a group")]:
        callback, module = StreamMetricCallback(["ce", "acc"], group=group), Module()
        callback._update("validate", {"preds": preds}, (None, labels), 0)
        callback._end("validate", types.SimpleNamespace(world_size=world_size), module)
        mine = sm.create(["ce", "acc"]).update(labels, preds)
        if world_size > 1:
            mine.merge(other)
        assert module.logged == {f"val_{n}": v for n, v in mine.get_name_value()}
    assert calls == ["a group"]  # once, with the group, in the two-process run only


@pytest.mark.slow  # two processes that import torch and Lightning: 10 to 20 s
def test_two_processes_merge_with_distributed_sync(tmp_path: Any) -> None:
    """Lightning's DDP under ``torch.distributed.run`` (two CPU processes, gloo, on the
    loopback): each process validates its shard (Lightning's DistributedSampler: every other
    row), the callback merges the two with `streammetric.distributed.sync`, and both processes
    log the values of one process over all the rows, bit for bit. 22 rows: with an odd count the
    sampler repeats a row to even out the shards, and that row would count twice; with
    ``ids_key`` (23 rows, then) it counts once."""
    import json

    run_two_processes("lightning_two_processes.py", tmp_path)
    torch.manual_seed(0)
    model, (x, y) = Tiny(), data(1, 22)
    reports = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    metric = sm.create(["ce", "acc"])
    model.eval()
    with torch.no_grad():
        for rank in (0, 1):  # each rank's own batches: rows rank, rank + 2, ..., 5 at a time
            rows = torch.arange(rank, 22, 2)
            seen = reports[rank]["seen"]
            assert [len(b) for b in seen] == [5, 5, 1]
            assert [label for b in seen for label in b] == y[rows].tolist()
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                metric.update(y[batch], model(x[batch]))
    want = {f"val_{name}": value for name, value in metric.get_name_value()}
    assert [r["world"] for r in reports] == [2, 2]
    assert [r["results"] for r in reports] == [[want], [want]]
    # the same bits as one process over all 22 rows in order
    with torch.no_grad():
        whole = sm.create(["ce", "acc"]).update(y, model(x))
    assert [want] == [{f"val_{n}": v for n, v in whole.get_name_value()}]
    # 23 rows with ids_key: the sampler gives rank 1 row 0 again, which counts once
    ids = [json.loads((tmp_path / f"ids-rank-{r}.json").read_text()) for r in (0, 1)]
    assert ids[0]["ids"] == [[0, 2, 4, 6, 8], [10, 12, 14, 16, 18], [20, 22]]
    assert ids[1]["ids"] == [[1, 3, 5, 7, 9], [11, 13, 15, 17, 19], [21, 0]]
    x, y = data(1)
    with torch.no_grad():
        whole = sm.create(["ce", "acc"]).update(y, model(x))
    want = {f"val_{name}": value for name, value in whole.get_name_value()}
    assert [r["results"] for r in ids] == [[want], [want]]


def test_ids_key_needs_ids() -> None:
    callback = StreamMetricCallback("acc", ids_key="id")
    preds, labels = torch.tensor([[0.7, 0.3], [0.2, 0.8]]), torch.tensor([0, 0])
    callback._update("validate", {"preds": preds, "id": torch.tensor([4, 4])}, (None, labels), 0)
    assert callback.metric("validate").get() == ("accuracy", 1.0)  # id 4 counted once
    with pytest.raises(sm.InvalidInputError, match=r"no ids: .* 'id'"):
        callback._update("validate", preds, (None, labels), 0)


def test_metrics_of_one_name_get_distinct_names(tmp_path: Any) -> None:
    """``ce`` and Keras's ``ce`` are both ``cross-entropy``: each is logged, under the name the
    command line gives it, none dropped."""
    from streammetric.metrics.specs import distinct_names

    specs = ["ce", {"metric": "ce", "convention": "keras"}]
    torch.manual_seed(0)
    model, (x, y) = Tiny(), data(1)
    callback = StreamMetricCallback(specs, stages=("validate",))
    results = trainer(tmp_path, callback).validate(model, dataloaders=loader(x, y), verbose=False)
    want = expected(model, x, y, "val_", metrics=distinct_names(specs))
    assert sorted(want) == [
        "val_cross-entropy[convention=exact]",
        "val_cross-entropy[convention=keras]",
    ]
    assert results == [want]
    with pytest.raises(sm.ConfigError, match="same metric"):
        StreamMetricCallback(["acc", "accuracy"])  # at construction, not at the first batch
