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
from streammetric.engine.partial import RowTally
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
    from streammetric.metrics.specs import build_metrics

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
    from streammetric.metrics.specs import build_metrics

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


@pytest.mark.parametrize("threads", [1, 2])
def test_units_in_a_threads_partial_or_reused_partials_give_the_same_result(
    tmp_path, monkeypatch, threads
):
    """Without a checkpoint, each worker thread's one partial takes all of its units; with
    one, each unit has its own partial, and a merged unit's is cleared and evaluates a later
    unit (its arrays reused). Either way the result and the run's state are those of a fresh
    partial per unit, bit for bit."""
    rng = np.random.default_rng(11)
    rows, classes = 4000, 4
    labels, probs = _probs(rng, rows, classes)
    probs[rng.integers(0, rows, 40)] = 0.0  # inf and NaN rows in some groups, diagnostics
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), classes),
            "slice": pa.array(rng.integers(0, 300, rows)),
        }
    )
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path, row_group_size=rows // 10)  # 10 units
    metrics = [
        "ce",
        "acc",
        "top_k_accuracy:top_k=2",
        "perplexity",
        "f1:average=None,class_type=multiclass",
    ]
    made = []

    class Counted(local.Partial):
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    def run(**kwargs):
        made.clear()
        result = sm.evaluate(
            path, metrics, by="slice", threads=threads, on_invalid="skip", **kwargs
        )
        return result, len(made)

    monkeypatch.setattr(local, "Partial", Counted)
    shared, partials = run()
    assert partials <= 1 + threads  # the total, and one partial per thread
    reused, partials = run(checkpoint=tmp_path / "reused.ckpt")
    assert partials < 1 + 10  # the total, and fewer partials than units
    monkeypatch.setattr(local.Evaluator, "recycle", lambda self, partial: None)
    fresh, partials = run(checkpoint=tmp_path / "fresh.ckpt")
    assert partials >= 1 + 10
    for result in (shared, reused):
        assert result.to_dict() == fresh.to_dict() and result.notes == fresh.notes
        assert result.partial.to_json() == fresh.partial.to_json()


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


def _batch_terms(rows, mask):
    values = np.array([r[0] for r in rows], dtype=np.float64)[mask]
    index = np.array([r[2] for r in rows], dtype=np.int64)[mask]
    flags = np.array([r[3] for r in rows], dtype=bool)[mask]
    diag = np.stack([flags.astype(np.int64)] * 3, axis=1) if len(flags) else np.zeros((0, 3))
    return {
        "total": values,
        "rows": ROWS,
        "hits": flags,
        "per_class": At(index, size=2),
        "weighted": At(index, np.abs(values), size=2),
        "diag": Rowwise(diag.sum(axis=0).astype(np.int64), lambda: diag),
        "weight": ROWS,  # whole units in sums
        "hit_sum": flags,
    }


#: `SPECS`, and sums of whole units
CLEAR_SPECS = {**SPECS, "weight": Spec("sum"), "hit_sum": Spec("sum")}


def _everything(grouped: GroupedState) -> list:
    """Every group's state and the total, as plain values (count vectors with their width)."""
    out = []
    for state in [grouped.state(g) for g in range(grouped.size + 1)] + [grouped.total()]:
        out.append(
            {
                name: (
                    (value.units, value.num_pos_inf, value.num_neg_inf, value.num_nan)
                    if isinstance(value, ExactSum)
                    else value.tolist()
                    if isinstance(value, np.ndarray)
                    else [s.units for s in value.sums()]
                    if hasattr(value, "sums")
                    else value
                )
                for name, value in state.items()
            }
        )
    return [grouped.size, out]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, st.integers(0, 6), st.integers(-1, 3), st.booleans()), max_size=30),
    st.lists(st.tuples(finite, st.integers(0, 3), st.integers(-1, 3), st.booleans()), max_size=30),
    st.integers(1, 7),
    st.integers(1, 4),
)
def test_a_cleared_state_is_a_fresh_one(first, second, first_groups, second_groups):
    """`GroupedState.clear` (units reusing their arrays) leaves a state that then takes any
    batches exactly as a fresh one does: the same groups, values, count-vector widths (a
    vector widened before the clear is not wide after it until a batch widens it)."""
    used = GroupedState(CLEAR_SPECS)
    if first:
        codes = np.array([r[1] % first_groups for r in first], dtype=np.int64)
        used.add(_batch_terms(first, np.ones(len(first), bool)), codes, first_groups)
    used.clear()
    fresh = GroupedState(CLEAR_SPECS)
    assert _everything(used) == _everything(fresh)
    for state in (used, fresh):
        if second:
            codes = np.array([r[1] % second_groups for r in second], dtype=np.int64)
            state.add(_batch_terms(second, np.ones(len(second), bool)), codes, second_groups)
    assert _everything(used) == _everything(fresh)


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


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 9), max_size=12), max_size=5),
    st.integers(1, 3),
    st.integers(10, 40),
    st.booleans(),
)
def test_a_tally_counts_every_batchs_rows_as_counting_each_batch_does(
    batches, num_arrays, size, other_arrays
):
    """`RowTally` counts a flush's batches at once (one tally added to each array), or batch
    by batch when the arrays differ from one batch to the next or the groups outnumber the
    rows: the counts are those of counting each batch into each array."""
    expected = [np.arange(size, dtype=np.int64) * (i + 1) for i in range(num_arrays)]
    arrays = [array.copy() for array in expected]
    spare = [np.zeros(size, dtype=np.int64) for _ in range(num_arrays)]
    expected_spare = [array.copy() for array in spare]
    tally = RowTally()
    for i, codes in enumerate(batches):
        codes = np.array(codes, dtype=np.int64)
        mine = spare if other_arrays and i % 2 else arrays
        theirs = expected_spare if other_arrays and i % 2 else expected
        tally.add(tuple(array[:] for array in mine), codes)  # new views of the same values
        for array in theirs:
            array += np.bincount(codes, minlength=size)
    tally.close()
    assert [a.tolist() for a in arrays + spare] == [a.tolist() for a in expected + expected_spare]
    tally.close()  # nothing left to count
    assert [a.tolist() for a in arrays] == [a.tolist() for a in expected]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(-1, 4), min_size=3, max_size=3), finite),
        max_size=30,
    ),
    st.booleans(),
)
def test_at_with_several_positions_a_row(rows, weights_per_position):
    """An (n, E) index: row i adds at each of its E positions (a sequence's classes, a row's
    label columns), with its value (or one value per position); grouped as folded."""
    specs = {"counts": Spec("counts"), "sums": Spec("sums", nonnegative=False)}
    codes = np.array([r[0] for r in rows], dtype=np.int64)
    index = np.array([r[1] for r in rows], dtype=np.int64).reshape(len(rows), 3)
    values = np.array([r[2] for r in rows], dtype=np.float64)
    if weights_per_position:
        values = np.stack([values, -values, values / 3], axis=1)

    def terms(mask):
        return {"counts": At(index[mask]), "sums": At(index[mask], values[mask], size=2)}

    grouped = GroupedState(specs)
    grouped.add(terms(np.ones(len(rows), bool)), codes, 4)
    for group in range(4):
        mask = codes == group
        alone = fresh_state(specs)
        fold(alone, specs, terms(mask), int(mask.sum()))
        state = grouped.state(group)
        counts = np.zeros(5, np.int64)
        for i in np.flatnonzero(mask):
            for position in index[i]:
                counts[position] += position >= 0
        assert np.array_equal(np.pad(alone["counts"], (0, 5 - alone["counts"].size)), counts)
        assert np.array_equal(np.pad(state["counts"], (0, 5 - state["counts"].size)), counts)
        for position in range(5):
            assert state["sums"][position] == alone["sums"][position]
            chosen = [
                (values[i, e] if weights_per_position else values[i])
                for i in np.flatnonzero(mask)
                for e in range(3)
                if index[i, e] == position
            ]
            assert alone["sums"][position] == ExactSum.from_values(chosen)


def test_a_hundred_thousand_groups_are_each_right(tmp_path):
    """100,000 groups (integer keys): every group's rows, and a sample of 3,000 groups' values
    (and the overall), are those of a metric updated with that group's rows alone."""
    rng = np.random.default_rng(11)
    rows, classes, groups = 300_000, 4, 100_000
    labels, probs = _probs(rng, rows, classes)
    group = rng.permutation(np.arange(rows) % groups) * 7 - 3  # every group present
    flat = pa.array(probs.reshape(-1))
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
            "user": pa.array(group, pa.int64()),
        }
    )
    path = tmp_path / "many.parquet"
    pq.write_table(table, path, row_group_size=70_000)
    result = sm.evaluate(path, ["ce", "acc"], by="user", threads=2)
    assert len(result.groups) == groups
    assert [g["key"]["user"] for g in result.groups] == sorted(set(group.tolist()))
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], [g["key"]["user"] for g in result.groups])
    counts = np.diff([*starts, rows])
    assert [g["rows"] for g in result.groups] == counts.tolist()
    for index in rng.choice(groups, 3_000, replace=False).tolist():
        rows_of = order[starts[index] : starts[index] + counts[index]]
        expected = dict(zip(*_alone_pair(labels[rows_of], probs[rows_of]), strict=True))
        assert _same(result.groups[index]["metrics"], expected), result.groups[index]["key"]
    assert _same(result.metrics, _alone(["ce", "acc"], labels, probs))


def _alone_pair(labels, probs):
    metric = sm.create(["ce", "acc"])
    metric.update(labels, probs)
    return metric.get()


@pytest.mark.parametrize("groups", [3, 5000])  # a count of every cell, or of those reached
@pytest.mark.parametrize("weighted", [False, True])
def test_count_vectors_fold_the_cells_their_rows_reach(groups, weighted):
    """Count vectors (AUC's buckets, the per-class counts) folded from batches into many
    groups count only the (group, position) cells the rows reach: the counts of adding each
    row alone, whichever way, batch after batch, the vectors widening between batches."""
    rng = np.random.default_rng(groups)
    specs = {"counts": Spec("counts")}
    grouped = GroupedState(specs)
    expected = np.zeros((groups, 12), dtype=np.int64)
    for width in (7, 12):
        rows = 300
        codes = rng.integers(0, min(groups, 40), rows)  # the batches meet in the cells
        index = np.where(rng.random(rows) < 0.1, -1, rng.integers(0, width, rows))
        values = rng.integers(0, 4, rows).astype(np.float64) if weighted else None
        grouped.add({"counts": At(index, values)}, codes, groups)
        kept = index >= 0
        added = np.ones(rows, dtype=np.int64) if values is None else values.astype(np.int64)
        np.add.at(expected, (codes[kept], index[kept]), added[kept])
        got = grouped.whole_vector("counts")
        assert np.array_equal(got, expected[:, : got.shape[1]])
        assert not expected[:, got.shape[1] :].any()
