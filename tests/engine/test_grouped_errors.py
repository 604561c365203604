"""Bad input under ``--by``: the error names the file, the column and the file's row, as
without groups, whatever the number of groups and the thread count (the rows' terms are
computed before the rows are grouped)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric import InvalidInputError


@pytest.mark.parametrize("groups", [None, 3, 400])
@pytest.mark.parametrize("metric", ["ce", "acc", "top_k_accuracy:top_k=2", "mae"])
def test_a_bad_label_is_located_in_the_file_with_groups(tmp_path, groups, metric):
    rows = 3_000
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, rows)
    labels[2_345] = 9
    probs = rng.dirichlet(np.ones(3), rows)
    columns = {"label": labels, "probs": probs.tolist()}
    if metric == "mae":
        columns = {"label": labels.astype(float), "probs": probs[:, 0]}
        columns["label"][2_345] = np.nan
    if groups:
        columns["g"] = [f"k{v}" for v in rng.integers(0, groups, rows)]
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=700)
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(path, metric, by="g" if groups else None, threads=2)
    error = caught.value
    assert (error.path, error.column, error.row) == (str(path), "label", 2_345)
