"""`streammetric.engine.compare`: McNemar's exact p-value against scipy, the paired-bootstrap
p-value, and the pairing's discordant counts on rows whose b and c are known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import binomtest

from streammetric.engine.compare import bootstrap_p, compare, mcnemar_p
from streammetric.engine.local import Job
from streammetric.io import ColumnSpec
from streammetric.metrics.bootstrap import Resampling


def reference(b: int, c: int) -> float:
    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)


def close(mine: float, ref: float) -> bool:
    """Within 1e-10 relative (two values below 1e-300 are both ~0)."""
    return abs(mine - ref) <= 1e-10 * abs(ref) or (abs(mine) < 1e-300 and abs(ref) < 1e-300)


def test_mcnemar_matches_scipy_on_small_counts():
    for b in range(0, 31):
        for c in range(0, 31):
            mine, ref = mcnemar_p(b, c), reference(b, c)
            assert close(mine, ref), (b, c, mine, ref)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0 and mcnemar_p(1000, 1000) == 1.0
    assert mcnemar_p(3, 9) == mcnemar_p(9, 3)


@pytest.mark.parametrize("n", [101, 10_000, 1_000_000, 3_000_000])
def test_mcnemar_matches_scipy_on_large_counts(n):
    rng = np.random.default_rng(n)
    half = n // 2
    spread = int(np.sqrt(n))
    cases = [(half - d, n - half + d) for d in (0, 1, 2, 3, spread // 2, spread, 3 * spread)]
    cases += [(int(k), n - int(k)) for k in rng.integers(0, n + 1, 6)]
    cases += [(0, n), (1, n - 1)]
    for b, c in cases:
        if b < 0:
            continue
        mine, ref = mcnemar_p(b, c), reference(b, c)
        assert close(mine, ref), (b, c, mine, ref)
    # two standard deviations (sqrt(n) / 2 each) below the mode: about 0.0455, two-sided
    b = half - spread
    assert 0.04 < mcnemar_p(b, n - b) < 0.05


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_p(-1, 3)


def test_bootstrap_p_counts_the_replicates_on_each_side_of_zero():
    deltas = np.array(
        [
            [0.1] * 99,  # all above: 2 * (1 + 0) / 100
            [0.0] * 99,  # all zero: both sides hold all -> 1
            [-0.1] * 9 + [0.1] * 90,  # 9 at or below zero: 2 * 10 / 100
            [np.nan] * 99,
        ]
    )
    p = bootstrap_p(deltas)
    assert p[0] == 2 / 100 and p[1] == 1.0 and p[2] == 2 * 10 / 100 and np.isnan(p[3])
    # NaN replicates are left out of R
    assert bootstrap_p(np.array([1.0, 1.0, 1.0, np.nan])) == 2 / 4


def one_hot(predicted: np.ndarray, classes: int = 3) -> list[np.ndarray]:
    probs = np.full((predicted.shape[0], classes), 0.1)
    probs[np.arange(predicted.shape[0]), predicted] = 0.8
    return list(probs)


def test_pairing_counts_discordant_rows_and_unpaired_rows(tmp_path):
    """Rows built so that b (baseline right, candidate wrong) = 7 and c = 19 among the paired
    rows; 4 baseline rows and 3 candidate rows have no pair."""
    rng = np.random.default_rng(3)
    n = 200
    labels = rng.integers(0, 3, n)
    wrong = (labels + 1) % 3
    base_pred, cand_pred = labels.copy(), labels.copy()
    kind = np.zeros(n, dtype=int)
    kind[:7], kind[7:26], kind[26:60] = 1, 2, 3  # b, c, both wrong; the rest both right
    rng.shuffle(kind)
    cand_pred[kind == 1] = wrong[kind == 1]
    base_pred[kind == 2] = wrong[kind == 2]
    base_pred[kind == 3] = wrong[kind == 3]
    cand_pred[kind == 3] = wrong[kind == 3]
    ids = np.arange(n)
    base = pa.table({"id": ids, "label": labels, "probs": one_hot(base_pred)})
    extra = pa.table(
        {"id": np.arange(1000, 1004), "label": [0] * 4, "probs": one_hot(np.zeros(4, int))}
    )
    pq.write_table(pa.concat_tables([base, extra]), tmp_path / "base.parquet")
    order = rng.permutation(n)
    cand = pa.table({"id": ids[order], "label": labels[order], "probs": one_hot(cand_pred[order])})
    more = pa.table({"id": [-1, -2, -3], "label": [1] * 3, "probs": one_hot(np.ones(3, int))})
    pq.write_table(pa.concat_tables([cand, more]), tmp_path / "cand.parquet", row_group_size=50)

    resampling = Resampling(0.95, 200, 5)
    job = Job(
        paths=[str(tmp_path / "base.parquet")],
        metrics=["acc"],
        columns=ColumnSpec(preds="probs", ids="id"),
        resampling=resampling,
    )
    other = dataclasses.replace(job, paths=[str(tmp_path / "cand.parquet")])
    result = compare(job, other, column="id", threads=2).to_dict()
    assert result["rows"] == n
    assert result["unpaired"] == {"baseline": 4, "candidate": 3}
    entry = result["metrics"]["accuracy"]
    assert entry["test"] == "mcnemar-exact"
    assert entry["p_value"] == pytest.approx(binomtest(7, 26, 0.5).pvalue, rel=1e-12)
    # each side's value is over all its own rows, unpaired ones included
    assert entry["baseline"] == (n - 19 - 34 + 4) / (n + 4)
    assert entry["candidate"] == (n - 7 - 34 + 3) / (n + 3)


@pytest.mark.parametrize("n", [1, 7, 1000, 200_000])
def test_pairing_lookup_is_searchsorted(n):
    from streammetric.engine.compare import Pairing

    rng = np.random.default_rng(n)
    pairing = Pairing("id", [], False)
    pairing.hashes = np.sort(rng.integers(0, 2**64, n, dtype=np.uint64))
    pairing._build_index()
    edges = np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64)
    queries = np.concatenate(
        [
            pairing.hashes,
            pairing.hashes + np.uint64(1),
            rng.integers(0, 2**64, 500, dtype=np.uint64),
            edges,
        ]
    )
    assert (pairing.lookup(queries) == np.searchsorted(pairing.hashes, queries)).all()


def _pair_files(tmp_path, base_ids, cand_ids, row_group_size=64):
    """Two files of one-hot predictions with these ids (labels 0, predictions 0: all right)."""
    paths = []
    for name, ids in (("base", base_ids), ("cand", cand_ids)):
        n = len(ids)
        table = pa.table({"id": ids, "label": np.zeros(n, int), "probs": one_hot(np.zeros(n, int))})
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=row_group_size)
        paths.append(str(tmp_path / f"{name}.parquet"))
    job = Job(
        paths=[paths[0]],
        metrics=["acc", "ce"],
        columns=ColumnSpec(preds="probs", ids="id"),
        resampling=Resampling(0.95, 50, 1),
    )
    return job, dataclasses.replace(job, paths=[paths[1]])


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_ids_in_ascending_order_need_no_sort_and_give_the_same_bits(tmp_path, monkeypatch, threads):
    """Ids that increase through the baseline's rows are told distinct without sorting their
    hashes; the result is the one the sort gives, with any threads."""
    from streammetric.engine import compare as module

    ids = np.arange(1000) * 3 + 7
    base, cand = _pair_files(tmp_path, ids, ids)
    sorts = []
    original = module.np.sort
    monkeypatch.setattr(
        module.np, "sort", lambda a, *k, **kw: sorts.append(a.size) or original(a, *k, **kw)
    )
    fast = compare(base, cand, column="id", threads=threads).to_dict()
    assert 1000 not in sorts
    monkeypatch.setattr(module, "_increasing", lambda ids: None)  # every batch: no order known
    slow = compare(base, cand, column="id", threads=threads).to_dict()
    assert 1000 in sorts
    assert repr(fast) == repr(slow) and fast["rows"] == 1000


@pytest.mark.parametrize("threads", [1, 2])
def test_ids_ascending_within_row_groups_but_repeated_across_them_are_an_error(tmp_path, threads):
    from streammetric._exceptions import InvalidInputError

    ids = np.concatenate([np.arange(100), np.arange(99, 199)])  # 99 in both row groups
    base, cand = _pair_files(tmp_path, ids, np.arange(200), row_group_size=100)
    with pytest.raises(InvalidInputError, match=r"row 100: repeats the id of row 99"):
        compare(base, cand, column="id", threads=threads)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_a_shuffled_candidate_waits_for_the_check_and_pairs_every_row(tmp_path, threads):
    """Candidate rows not at their baseline row's place (read in the same pool as the
    baseline) are looked up once the baseline's ids are checked: the bits of any thread count."""
    ids = np.arange(640)
    order = np.random.default_rng(0).permutation(640)
    base, cand = _pair_files(tmp_path, ids, ids[order], row_group_size=32)
    results = [repr(compare(base, cand, column="id", threads=t).to_dict()) for t in (1, threads)]
    assert results[0] == results[1]
    assert compare(base, cand, column="id", threads=threads).unpaired == {
        "baseline": 0,
        "candidate": 0,
    }


def test_a_baseline_that_fails_stops_the_candidate_waiting_for_it(tmp_path):
    """A bad baseline row fails the run with its own error, while candidate rows that wait for
    the baseline's check (shuffled) do not hang."""
    from streammetric._exceptions import InvalidInputError

    ids = np.arange(640)
    order = np.random.default_rng(1).permutation(640)
    base, cand = _pair_files(tmp_path, ids, ids[order], row_group_size=32)
    table = pq.read_table(base.paths[0])
    labels = table.column("label").to_numpy().copy()
    labels[630] = 7  # a class beyond the predictions' 3: an error in the last row group
    pq.write_table(table.set_column(1, "label", pa.array(labels)), base.paths[0], row_group_size=32)
    for threads in (1, 2, 4):
        with pytest.raises(InvalidInputError, match="row 630"):
            compare(base, cand, column="id", threads=threads)


def test_candidate_ids_of_the_baselines_bytes_are_not_read_and_give_the_same_bits(
    tmp_path, monkeypatch
):
    """A candidate unit whose id column chunk holds the baseline's bytes at the same places
    takes the baseline's hashes there; a unit whose ids differ (one changed id) reads its own.
    Either way the bits are those of reading every id."""
    from streammetric.engine.compare import Pairing
    from streammetric.io import same_column_chunks

    ids = np.arange(500) * 7
    changed = ids.copy()
    changed[260] = -5  # in the third row group of 100: its chunk differs
    base, cand = _pair_files(tmp_path, ids, changed, row_group_size=100)
    original = Pairing.candidate_hashes
    given = []
    monkeypatch.setattr(
        Pairing,
        "candidate_hashes",
        lambda self, unit, column: (
            given.append(original(self, unit, column) is not None) or original(self, unit, column)
        ),
    )
    known = compare(base, cand, column="id", threads=2).to_dict()
    assert sorted(given) == [False] + [True] * 4
    monkeypatch.setattr(Pairing, "candidate_hashes", lambda self, unit, column: None)
    read = compare(base, cand, column="id", threads=2).to_dict()
    assert repr(known) == repr(read)
    assert known["unpaired"] == {"baseline": 1, "candidate": 1}
    # the chunks: the same bytes and type where the ids are the same
    from streammetric.engine.local import JobRun

    base_units, cand_units = JobRun(base).units, JobRun(cand).units
    same = [same_column_chunks(b, c, "id") for b, c in zip(base_units, cand_units, strict=True)]
    assert same == [True, True, False, True, True]
    assert not same_column_chunks(base_units[0], base_units[0], "nonexistent")
    assert same_column_chunks(base_units[0], cand_units[1], "label")  # zeros, 100 rows each
    assert not same_column_chunks(base_units[0], base_units[1], "id")  # other ids


def test_candidate_rows_waiting_for_a_failed_check_fail_with_its_error(tmp_path):
    """A candidate batch that waits for the check of the baseline's ids, which another thread
    ran and which found a repeated id, fails with that error (whichever unit the run reports
    first, it names the repeated id)."""
    from streammetric._exceptions import InvalidInputError
    from streammetric.engine.compare import Pairing
    from streammetric.engine.local import JobRun

    ids = np.arange(200)
    ids[150] = ids[20]
    base, cand = _pair_files(tmp_path, ids, np.arange(200), row_group_size=100)
    runs = JobRun(base), JobRun(cand)
    pairing = Pairing("id", [], False, plans=(runs[0].units, runs[1].units), grouped=False)
    pairing.held_hashes[:] = ids.astype(np.uint64) * np.uint64(2654435761)
    pairing.present[:] = True
    with pytest.raises(InvalidInputError, match="row 150: repeats") as raised:
        pairing.seal()
    with pytest.raises(InvalidInputError) as again:
        pairing._wait_sealed()
    assert again.value is raised.value
