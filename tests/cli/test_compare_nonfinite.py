"""``streammetric compare`` where a side's value is not finite (cross-entropy of a row whose
class has probability 0): no p-value is computed from NaN or infinite replicate deltas."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .helpers import invoke
from .test_compare import FAST, tables


def _with_zero_probability(table: pa.Table, row: int) -> pa.Table:
    """``table`` whose row ``row`` gives its label probability 0 (cross-entropy inf)."""
    probs = table["probs"].combine_chunks().flatten().to_numpy().reshape(len(table), -1).copy()
    label = int(table["label"][row].as_py())
    probs[row] = 0.5
    probs[row, label] = 0.0
    probs[row] /= probs[row].sum()
    flat = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), probs.shape[1])
    return table.set_column(table.schema.get_field_index("probs"), "probs", flat)


def _compare(tmp_path, base: pa.Table, cand: pa.Table, *args: str) -> dict:
    pq.write_table(base, tmp_path / "base.parquet")
    pq.write_table(cand, tmp_path / "cand.parquet")
    result = invoke(
        "compare", tmp_path / "base.parquet", tmp_path / "cand.parquet", "-m", "ce", "-m", "acc",
        "--format", "json", *FAST, *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_inf_against_inf_has_no_delta_interval_or_p(tmp_path):
    base, cand = tables()
    entry = _compare(tmp_path, _with_zero_probability(base, 10), _with_zero_probability(cand, 20))[
        "metrics"
    ]["cross-entropy"]
    assert entry["baseline"] == entry["candidate"] == math.inf
    assert math.isnan(entry["delta"])
    assert math.isnan(entry["lower"]) and math.isnan(entry["upper"])
    assert math.isnan(entry["p_value"]), entry


def test_an_infinite_delta_has_no_p_value_but_its_interval(tmp_path):
    base, cand = tables()
    data = _compare(tmp_path, base, _with_zero_probability(cand, 20))
    entry = data["metrics"]["cross-entropy"]
    assert entry["delta"] == math.inf
    assert math.isnan(entry["p_value"]), entry
    assert entry["upper"] == math.inf and math.isfinite(entry["lower"])
    # the other metric is unaffected
    assert 0 < data["metrics"]["accuracy"]["p_value"] <= 1
    # and the other way round
    entry = _compare(tmp_path, _with_zero_probability(base, 20), cand)["metrics"]["cross-entropy"]
    assert entry["delta"] == -math.inf
    assert math.isnan(entry["p_value"]) and entry["lower"] == -math.inf


def test_finite_deltas_keep_their_p_values_also_per_group(tmp_path):
    base, cand = tables()
    data = _compare(tmp_path, base, cand, "--by", "model")
    for scope in [data, *data["groups"]]:
        for entry in scope["metrics"].values():
            assert math.isfinite(entry["delta"]) and 0 < entry["p_value"] <= 1


def test_a_group_without_paired_rows_has_no_p_value(tmp_path):
    """A group of the candidate only (no delta): no test, whichever (McNemar's too)."""
    base, cand = tables()
    extra = cand.slice(0, 5)
    extra = extra.set_column(0, "id", pa.array(np.arange(5) + 10**6))
    extra = extra.set_column(extra.schema.get_field_index("model"), "model", pa.array(["c"] * 5))
    data = _compare(tmp_path, base, pa.concat_tables([cand, extra]), "--by", "model")
    group = next(g for g in data["groups"] if g["key"]["model"] == "c")
    assert group["rows"] == 0
    for entry in group["metrics"].values():
        assert entry["delta"] is None and math.isnan(entry["p_value"]), entry
