"""The engine's clean pass: batches a `CleanPass` accepts are folded in once per unit, and the
states are exactly those of one ``update`` per batch (the general path)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine import local
from streammetric.functional import _ce_fast
from streammetric.io import reader

FIVE = ["ce", "acc", "top_k_accuracy:top_k=3", "perplexity", "nll_loss"]


def _probs(rng: np.random.Generator, rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), labels] += 1.0
    logits[rng.random(rows) < 0.05] = 0.0  # ties: every class alike
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs


def _write(path, labels, probs, *, layout: str, row_group_size: int = 2500) -> None:
    rows, classes = probs.shape
    if layout == "fixed32":
        flat = pa.array(probs.astype(np.float32).reshape(-1))
        preds = pa.FixedSizeListArray.from_arrays(flat, classes)
    elif layout == "list64":
        offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * classes)
        preds = pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1)))
    else:  # large lists of float32, int32 labels
        offsets = pa.array(np.arange(rows + 1, dtype=np.int64) * classes)
        preds = pa.LargeListArray.from_arrays(offsets, pa.array(probs.astype(np.float32).ravel()))
        labels = labels.astype(np.int32)
    pq.write_table(pa.table({"label": labels, "probs": preds}), path, row_group_size=row_group_size)


class _Counting:
    """Wraps CleanPass.add to count the batches it accepts and refuses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.accepted = self.refused = 0
        add = _ce_fast.CleanPass.add

        def counting_add(clean: _ce_fast.CleanPass, labels, preds) -> bool:
            taken = add(clean, labels, preds)
            self.accepted += taken
            self.refused += not taken
            return taken

        monkeypatch.setattr(_ce_fast.CleanPass, "add", counting_add)


def _both_ways(monkeypatch, path, metrics, **options):
    """(states and result with the clean pass, the same through update alone)."""
    counts = _Counting(monkeypatch)
    fast = local.evaluate(path, metrics, threads=2, **options)
    with monkeypatch.context() as patch:
        patch.setattr(local._Evaluator, "clean_needs", property(lambda self: None))
        general = local.evaluate(path, metrics, threads=2, **options)
    return counts, fast, general


def _same(fast, general) -> None:
    assert json.dumps(fast.to_dict()) == json.dumps(general.to_dict())
    assert json.dumps(fast.partial.to_json()) == json.dumps(general.partial.to_json())


@pytest.mark.parametrize("layout", ["fixed32", "list64", "large32"])
def test_clean_files_fold_to_the_states_of_update(tmp_path, monkeypatch, layout):
    labels, probs = _probs(np.random.default_rng(1), 9000, 7)
    path = tmp_path / "clean.parquet"
    _write(path, labels, probs, layout=layout)
    monkeypatch.setattr(reader, "slice_rows", lambda resolved: 1000)
    counts, fast, general = _both_ways(monkeypatch, path, FIVE)
    assert counts.accepted == 11 and counts.refused == 0  # row groups of 3, 3, 3, 2 slices
    _same(fast, general)
    assert fast.metrics["accuracy"] == np.mean(probs.argmax(axis=1) == labels)


def test_dirty_slices_go_through_update_and_the_sum_is_the_same(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    labels, probs = _probs(rng, 9000, 7)
    probs[100, labels[100]] = 0.0  # p[y] == 0: inf loss, through update
    probs[2600] *= 1.3  # not normalised: counted either way
    probs[4200] /= probs[4200].sum() * (1 + np.sqrt(np.finfo(np.float32).eps))  # on a tolerance
    probs[6100, 0] = np.nan  # dropped by on_invalid="skip"
    labels[8500] = 9  # not a class: dropped
    path = tmp_path / "dirty.parquet"
    _write(path, labels, probs, layout="fixed32")
    monkeypatch.setattr(reader, "slice_rows", lambda resolved: 1000)
    counts, fast, general = _both_ways(monkeypatch, path, FIVE, on_invalid="skip")
    assert counts.refused == 3 and counts.accepted == 8  # p[y] == 0, NaN and label 9 refused
    _same(fast, general)
    assert fast.invalid_rows == 2 and fast.metrics["cross-entropy"] == np.inf
    ce = fast.partial.overall().get_metric(0)
    assert ce.diagnostics()["num_not_normalized"] >= 1


@pytest.mark.parametrize(
    "metrics",
    [
        ["ce", {"metric": "f1", "class_type": "multiclass"}],  # f1 takes no clean batches
        ["ce:convention=keras"],
        [{"metric": "ce", "class_weight": [1, 2, 1, 1, 1, 1, 1]}],
        ["perplexity:convention=mxnet"],
    ],
)
def test_metrics_without_a_clean_fold_take_update(tmp_path, monkeypatch, metrics):
    labels, probs = _probs(np.random.default_rng(3), 3000, 7)
    path = tmp_path / "clean.parquet"
    _write(path, labels, probs, layout="fixed32")
    counts, fast, general = _both_ways(monkeypatch, path, metrics)
    assert counts.accepted == counts.refused == 0
    _same(fast, general)


def test_which_metrics_fold_clean_batches():
    assert sm.create("ce").clean_needs() == {"neg_log"}
    assert sm.create("perplexity").clean_needs() == {"neg_log"}
    assert sm.create("top_k_accuracy", top_k=5).clean_needs() == {("hits", 5)}
    three = sm.create(["ce", "acc", {"metric": "top_k_accuracy", "top_k": 3}])
    assert three.clean_needs() == {"neg_log", "argmax_hits", ("hits", 3)}
    for metric in (
        sm.create("ce", convention="keras"),
        sm.create("ce", from_logits=True),
        sm.create("ce", label_smoothing=0.1),
        sm.create("ce", ignore_index=0),
        sm.create("ce", class_weight=[1.0, 2.0]),
        sm.create("perplexity", convention="mxnet"),
        sm.create("binary_cross_entropy"),
        sm.create("mae"),
        sm.create(["ce", "mae"]),
    ):
        assert metric.clean_needs() is None, metric


def test_clean_rows_fold_into_metric_objects_only_when_read():
    """A partial keeps clean rows as a pass until its groups are read; merging one builds no
    metric objects, adopts none of its objects, and gives the states of ``update``."""
    from streammetric.engine.partial import Partial

    labels, probs = _probs(np.random.default_rng(4), 600, 7)
    built: list[int] = []

    def new_metrics():
        built.append(1)
        return sm.create(["ce", "acc", {"metric": "top_k_accuracy", "top_k": 3}])

    clean = _ce_fast.CleanPass(top_ks=(3,), argmax=True)
    assert clean.add(labels[:400], probs[:400]) and clean.add(labels[400:], probs[400:])
    unit = Partial(new_metrics, unit_key="a#rg0")
    unit.fold_clean(clean)
    clean.add(labels, probs)  # the caller's pass again: the partial took a copy
    total = Partial(new_metrics)
    total.merge(unit).merge(unit)
    assert not built and total.rows == 1200 and total.group_rows == {(): 1200}

    expected = sm.create(["ce", "acc", {"metric": "top_k_accuracy", "top_k": 3}])
    expected.update(labels, probs).update(labels, probs)
    assert json.dumps(total.to_json()["groups"][0][2]) == json.dumps(expected.state_dict())
    assert len(built) == 1  # the total's, when read
    once = sm.create(["ce", "acc", {"metric": "top_k_accuracy", "top_k": 3}]).update(labels, probs)
    assert json.dumps(unit.groups[()].state_dict()) == json.dumps(once.state_dict())


def test_clean_passes_of_different_top_ks_do_not_merge():
    with pytest.raises(ValueError, match="top_ks"):
        _ce_fast.CleanPass(top_ks=(1,)).merge(_ce_fast.CleanPass(top_ks=(1, 5)))
    with pytest.raises(ValueError, match="argmax"):
        _ce_fast.CleanPass(top_ks=(1,)).merge(_ce_fast.CleanPass(top_ks=(1,), argmax=True))


def test_a_clean_pass_counts_ties_as_accuracy_and_top_k_do():
    """Uniform rows tie every class: argmax takes class 0, top-k the highest classes first."""
    labels = np.array([0, 1, 2, 3, 3], dtype=np.int64)
    probs = np.full((5, 4), 0.25)
    clean = _ce_fast.CleanPass(top_ks=(1, 2), argmax=True)
    assert clean.add(labels, probs)
    assert (clean.argmax_hits, clean.hits) == (1, {1: 2, 2: 3})
    metrics = sm.create(["acc", "top_k_accuracy", {"metric": "top_k_accuracy", "top_k": 2}])
    assert metrics.update(labels, probs).get()[1] == [1 / 5, 2 / 5, 3 / 5]
