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
