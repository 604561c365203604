"""Issue 21 (io): no silently wrong number, no traceback, no hang on odd inputs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric._exceptions import ConfigError, InvalidInputError

CLASSES = 12


def _stacked_table(rows: int = 240, seed: int = 0) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, rows)
    probs = rng.dirichlet(np.ones(CLASSES), rows)
    probs[np.arange(rows), labels] += 2.0
    probs /= probs.sum(axis=1, keepdims=True)
    # the order pandas' sort_index(axis=1) gives: p_0, p_1, p_10, p_11, p_2, ...
    names = sorted(f"p_{k}" for k in range(CLASSES))
    columns = {"label": pa.array(labels)}
    columns.update({name: pa.array(probs[:, int(name[2:])]) for name in names})
    return pa.table(columns), labels, probs


def test_a_prediction_glob_stacks_columns_by_the_number_in_their_names(tmp_path):
    table, labels, probs = _stacked_table()
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path)
    expected = float(-np.log(probs[np.arange(len(labels)), labels]).mean())
    result = sm.evaluate(path, ["ce", "acc"], preds="p_*")
    assert result.metrics["cross-entropy"] == pytest.approx(expected, rel=1e-12)
    assert result.metrics["accuracy"] == 1.0
    explicit = ",".join(f"p_{k}" for k in range(CLASSES)).split(",")
    assert (
        sm.evaluate(path, ["ce"], preds=explicit).metrics
        == sm.evaluate(path, ["ce"], preds="p_*").metrics
    )
    # an explicit list keeps the user's order (here: reversed, so accuracy drops)
    reversed_ = sm.evaluate(path, ["acc"], preds=explicit[::-1])
    assert reversed_.metrics["accuracy"] < 0.5


@pytest.mark.parametrize(
    ("names", "rule"),
    [
        (["p_1", "p_01", "p_2"], "same number 1"),
        (["p_0", "p_1", "p_3"], "no column has number 2"),
        (["p_0", "p_1", "p_x"], "`p_x` is not a number"),
    ],
)
def test_an_ambiguous_glob_order_is_refused(tmp_path, names, rule):
    columns = {"label": pa.array([0, 1])} | {name: pa.array([0.5, 0.25]) for name in names}
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(ConfigError, match=rule) as caught:
        sm.evaluate(path, ["ce"], preds="p_*")
    assert str(caught.value).startswith(f"{path}: prediction glob `p_*`")


def _corrupt_a_page(path, row_group: int, column: str) -> None:
    """Flip a byte in the middle of a column chunk's data page (plain encoded, uncompressed)."""
    metadata = pq.read_metadata(path)
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    chunk = metadata.row_group(row_group).column(names.index(column))
    position = chunk.data_page_offset + chunk.total_compressed_size // 2
    with open(path, "r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ 0x40]))


def test_a_corrupted_page_with_a_checksum_is_one_line_not_a_wrong_number(tmp_path):
    from tests.cli.helpers import preds_table

    path = tmp_path / "corrupt.parquet"
    table = preds_table(300, seed=3)
    options = {"row_group_size": 100, "use_dictionary": False, "compression": "none"}
    pq.write_table(table, path, write_page_checksum=True, **options)
    clean = sm.evaluate(path, ["ce"]).metrics
    _corrupt_a_page(path, 1, "probs.list.element")
    with pytest.raises(InvalidInputError) as caught:
        sm.evaluate(path, ["ce"])
    message = str(caught.value)
    assert message.startswith(f"{path}: row group 1 (rows 100-199): ") and "\n" not in message
    assert "checksum" in message.lower()
    # the same file written without checksums cannot be checked: it reads (no checksum to verify)
    unchecked = tmp_path / "plain.parquet"
    pq.write_table(table, unchecked, **options)
    assert sm.evaluate(unchecked, ["ce"]).metrics == clean
