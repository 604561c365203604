"""State with a group dimension: every group's state, folded from the batch's row terms in one
pass, is the bits a metric updated with that group's rows alone has, whatever the batching,
threads or number of groups; the overall state is that of all the rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streammetric as sm
from streammetric.accumulate import ExactSum
from streammetric.engine import local
from streammetric.io import reader
from streammetric.metrics.state import (
    ROWS,
    At,
    GroupedState,
    Rowwise,
    Spec,
    fold,
    fresh_state,
    zero_counts,
)

METRICS = ["ce", "acc", "top_k_accuracy:top_k=3", "perplexity", "nll_loss", "mae", "brier"]


def _probs(rng: np.random.Generator, rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), labels] += 1.0
    logits[rng.random(rows) < 0.05] = 0.0  # ties: every class alike
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[rng.random(rows) < 0.02, 0] = 0.0  # rows that are not distributions, p = 0
    return labels, probs.astype(np.float32)


def _file(tmp_path, rows: int, classes: int, groups: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels, probs = _probs(rng, rows, classes)
    group = rng.integers(0, groups, rows)
    names = np.array([f"g{g}" for g in range(groups)], dtype=object)[group]
    flat = pa.array(probs.reshape(-1))
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
            "slice": pa.array(names, pa.string()),
        }
    )
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path, row_group_size=max(1, rows // 3))
    return path, labels, probs, names


def _alone(metrics, labels, probs) -> dict[str, float]:
    from streammetric.engine.metric_specs import build_metrics

    metric = build_metrics(metrics)
    metric.update(labels, probs)
    names, values = metric.get()
    return dict(zip(names, values, strict=True))


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(np.float64(a[k]), np.float64(b[k]), equal_nan=True) for k in a
    )


@pytest.mark.parametrize("groups", [1, 7, 600])
@pytest.mark.parametrize("slice_rows", [97, 4096])
def test_each_group_is_the_bits_of_its_rows_alone(tmp_path, monkeypatch, groups, slice_rows):
    path, labels, probs, names = _file(tmp_path, 3000, 5, groups)
    monkeypatch.setattr(reader, "slice_rows", lambda resolved: slice_rows)
    monkeypatch.setattr(local, "FLUSH_ROWS", 1000)  # flush mid-unit too
    metrics = [m for m in METRICS if m not in ("mae", "brier")]
    result = sm.evaluate(path, metrics, by="slice", threads=2, convention="keras")
    from streammetric.engine.metric_specs import build_metrics

    converted = build_metrics(metrics, {"convention": "keras"})
    assert len(result.groups) == len(set(names))
    for group in result.groups:
        rows = names == group["key"]["slice"]
        assert group["rows"] == int(rows.sum())
        alone = converted.copy()
        alone.reset()
        alone.update(labels[rows], probs[rows])
        assert _same(group["metrics"], dict(zip(*alone.get(), strict=True))), group["key"]
    converted.update(labels, probs)
    assert _same(result.metrics, dict(zip(*converted.get(), strict=True)))


def test_grouped_and_ungrouped_runs_agree_overall(tmp_path):
    path, labels, probs, _ = _file(tmp_path, 2000, 4, 30, seed=3)
    metrics = ["ce", "acc", "top_k_accuracy:top_k=2", "perplexity"]
    grouped = sm.evaluate(path, metrics, by="slice", threads=2)
    plain = sm.evaluate(path, metrics, threads=1)
    assert _same(grouped.metrics, plain.metrics)
    assert _same(plain.metrics, _alone(metrics, labels, probs))


def test_notes_count_the_groups_without_building_every_group(tmp_path):
    path, _, _, names = _file(tmp_path, 2000, 4, 50, seed=5)
    result = sm.evaluate(path, ["ce"], by="slice")
    zero_groups = [g for g in result.groups if g["metrics"]["cross-entropy"] == float("inf")]
    assert zero_groups  # p = 0 rows: inf in some groups
    line = next(n for n in result.notes if n.startswith("cross-entropy is inf"))
    assert f"in {len(zero_groups)} of {len(set(names))} groups" in line or (
        f"in all {len(set(names))} groups" in line
    )


# -- GroupedState against fold, for any terms ----------------------------------------------

SPECS = {
    "total": Spec("sum", nonnegative=False),
    "rows": Spec("count"),
    "hits": Spec("count"),
    "per_class": Spec("counts"),
    "weighted": Spec("sums"),
    "diag": Spec("counts", size=3),
}

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, st.integers(0, 4), st.integers(-1, 3), st.booleans()), max_size=40),
    st.integers(1, 5),
)
def test_grouped_state_is_fold_per_group(rows, num_groups):
    values = np.array([r[0] for r in rows], dtype=np.float64)
    codes = np.array([r[1] % num_groups for r in rows], dtype=np.int64)
    index = np.array([r[2] for r in rows], dtype=np.int64)
    flags = np.array([r[3] for r in rows], dtype=bool)
    diag = np.stack([flags.astype(np.int64)] * 3, axis=1) if rows else np.zeros((0, 3), np.int64)

    def terms(mask: np.ndarray):
        return {
            "total": values[mask],
            "rows": ROWS,
            "hits": flags[mask],
            "per_class": At(index[mask], size=2),
            "weighted": At(index[mask], np.abs(values[mask]), size=2),
            "diag": Rowwise(diag[mask].sum(axis=0), lambda: diag[mask]),
        }

    grouped = GroupedState(SPECS)
    half = len(rows) // 2
    for part in (slice(0, half), slice(half, None)):  # two batches
        mask = np.zeros(len(rows), dtype=bool)
        mask[part] = True
        grouped.add(terms(mask), codes[mask], num_groups)
    for group in range(num_groups):
        mask = codes == group
        alone = fresh_state(SPECS)
        fold(alone, SPECS, terms(mask), int(mask.sum()))
        state = grouped.state(group)
        assert state["total"] == alone["total"]
        assert state["rows"] == alone["rows"] and state["hits"] == alone["hits"]
        width = max(state["per_class"].size, alone["per_class"].size)
        assert np.array_equal(
            np.pad(state["per_class"], (0, width - state["per_class"].size)),
            np.pad(alone["per_class"], (0, width - alone["per_class"].size)),
        )
        for position in range(max(len(state["weighted"]), len(alone["weighted"]))):
            assert state["weighted"][position] == alone["weighted"][position]
        assert np.array_equal(
            np.pad(state["diag"], (0, 3 - state["diag"].size)),
            np.pad(alone["diag"], (0, 3 - alone["diag"].size)),
        )
    total = grouped.total()
    everything = fresh_state(SPECS)
    fold(everything, SPECS, terms(np.ones(len(rows), dtype=bool)), len(rows))
    assert total["total"] == everything["total"] and total["rows"] == everything["rows"]
    assert isinstance(total["total"], ExactSum)


def test_zero_counts_and_hits_fold_as_their_values():
    """A clean batch says "nothing" with the shared read-only `zero_counts` (read by neither fold
    nor the grouped state: its per-row form is never asked for), and 0/1 hits in a sum are
    counted: the same states as any zero vector and the float sum of the hits."""
    specs = {"diag": Spec("counts", size=3), "hits": Spec("sum"), "rows": Spec("count")}
    zeros = zero_counts(3)
    assert zeros is zero_counts(3) and not zeros.flags.writeable and zeros.tolist() == [0] * 3

    def never() -> np.ndarray:
        raise AssertionError("the per-row form of zero counts was asked for")

    hits = np.array([True, False, True])
    state = fresh_state(specs)
    fold(state, specs, {"diag": Rowwise(zeros, never), "hits": hits, "rows": ROWS}, 3)
    other = fresh_state(specs)
    fold(other, specs, {"diag": Rowwise(np.zeros(3, np.int64), never), "hits": hits * 1.0}, 3)
    assert state["diag"].tolist() == other["diag"].tolist() == [0, 0, 0]
    assert state["hits"] == other["hits"] == ExactSum.from_values([1.0, 0.0, 1.0])
    fold(state, specs, {"diag": Rowwise(np.array([1, 0, 2]), never), "hits": hits}, 3)
    assert state["diag"].tolist() == [1, 0, 2] and state["hits"].value == 4.0
    assert zeros.tolist() == [0, 0, 0]
    grouped = GroupedState(specs)
    grouped.add({"diag": Rowwise(zeros, never), "hits": hits}, np.array([0, 1, 1]), 2)
    assert grouped.whole_vector("diag").tolist() == [[0, 0, 0], [0, 0, 0]]
    assert grouped.state(1)["hits"].value == 1.0


def test_merge_renumbers_groups():
    specs = {"total": Spec("sum"), "rows": Spec("count")}
    a, b = GroupedState(specs), GroupedState(specs)
    a.add({"total": np.array([1.0, 2.0]), "rows": ROWS}, np.array([0, 1]), 2)
    b.add({"total": np.array([4.0, 8.0]), "rows": ROWS}, np.array([0, 1]), 2)
    a.merge(b, np.array([1, 2]))
    assert [a.state(g)["total"].value for g in range(3)] == [1.0, 6.0, 8.0]
    assert [a.state(g)["rows"] for g in range(3)] == [1, 2, 1]
