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


def test_skip_scans_a_clean_batch_once(tmp_path, monkeypatch):
    """``on_invalid="skip"``: the rows' invalid mask and their terms come from one scan of a
    batch without bad rows (the statistics are shared); with bad rows, the kept rows are
    scanned again. Values as without skipping, less the bad rows."""
    from streammetric.functional import _ce_fast

    rng = np.random.default_rng(8)
    rows = 4_000
    labels = rng.integers(0, 3, rows)
    probs = rng.dirichlet(np.ones(3), rows)
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"label": labels, "probs": probs.tolist()}), path)
    scans = []
    scan = _ce_fast.sparse_loss

    def counted(*args, **kwargs):
        scans.append(1)
        return scan(*args, **kwargs)

    monkeypatch.setattr(_ce_fast, "sparse_loss", counted)
    skipped = sm.evaluate(path, ["ce", "acc"], on_invalid="skip", threads=1)
    clean_scans = len(scans)
    scans.clear()
    plain = sm.evaluate(path, ["ce", "acc"], threads=1)
    assert clean_scans == len(scans) > 0  # one scan a batch, as without skipping
    assert skipped.to_dict() == plain.to_dict()
    labels[7] = 5  # a bad row: dropped, the rest scanned again
    pq.write_table(pa.table({"label": labels, "probs": probs.tolist()}), path)
    scans.clear()
    dropped = sm.evaluate(path, ["ce", "acc"], on_invalid="skip", threads=1)
    assert len(scans) == 2 * clean_scans and dropped.invalid_rows == 1
    keep = np.arange(rows) != 7
    alone = sm.create(["ce", "acc"])
    alone.update(labels[keep], probs[keep])
    assert list(dropped.metrics.values()) == list(alone.get()[1])
