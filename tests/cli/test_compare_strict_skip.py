"""``compare --on-invalid skip --strict``: a row whose pair the other side skipped as invalid
is named as such (that side's file and row), not as a row the other side does not have."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .helpers import invoke
from .test_compare import FAST, ROWS, tables
from .test_issue21_cli import one_line_error


def _with_nan_row(table: pa.Table, row: int) -> pa.Table:
    probs = table["probs"].combine_chunks().flatten().to_numpy().reshape(len(table), -1).copy()
    probs[row] = np.nan
    flat = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), probs.shape[1])
    return table.set_column(table.schema.get_field_index("probs"), "probs", flat)


def _run(tmp_path, base: pa.Table, cand: pa.Table):
    pq.write_table(base, tmp_path / "base.parquet", row_group_size=128)
    pq.write_table(cand, tmp_path / "cand.parquet", row_group_size=100)
    return invoke(
        "compare", tmp_path / "base.parquet", tmp_path / "cand.parquet", "-m", "acc",
        "--on-invalid", "skip", "--strict", *FAST,
    )  # fmt: skip


def test_a_baseline_row_whose_candidate_pair_was_skipped(tmp_path):
    base, cand = tables()
    order = np.random.default_rng(4).permutation(ROWS)
    cand = _with_nan_row(cand, 5).take(pa.array(order))
    cand_row = int(np.flatnonzero(order == 5)[0])
    result = _run(tmp_path, base, cand)
    line = one_line_error(
        result, 1, f"{tmp_path / 'base.parquet'}: column `id`, row 5: the candidate's row"
    )
    assert f"({tmp_path / 'cand.parquet'}, row {cand_row}) was skipped as invalid" in line
    assert "no row of the candidate" not in line


def test_a_candidate_row_whose_baseline_pair_was_skipped(tmp_path):
    base, cand = tables()
    result = _run(tmp_path, _with_nan_row(base, 9), cand)
    line = one_line_error(
        result, 1, f"{tmp_path / 'cand.parquet'}: column `id`, row 9: the baseline's row"
    )
    assert f"({tmp_path / 'base.parquet'}, row 9) was skipped as invalid" in line


def test_a_row_the_other_side_lacks_is_still_said_so(tmp_path):
    base, cand = tables()
    result = _run(tmp_path, base, _with_nan_row(cand, 300).slice(1))
    one_line_error(result, 1, "base.parquet: column `id`, row 0: no row of the candidate has")
