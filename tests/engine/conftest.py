"""Small prediction files for engine and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest


def regression_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=rows)
    return pa.table(
        {
            "y": y,
            "pred": y + rng.normal(scale=0.3, size=rows),
            "w": rng.random(rows),
            "split": rng.choice(["train", "test", "val"], rows),
        }
    )


def classification_table(rows: int, seed: int, classes: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes)).astype(np.float32)
    logits[np.arange(rows), labels] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    flat = pa.array(probs.astype(np.float32).reshape(-1))
    return pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
            "split": rng.choice(["a", "b"], rows),
        }
    )


@pytest.fixture
def regression_dir(tmp_path: Path) -> Path:
    """A hive dataset: model=<m>/part-<i>.parquet, several row groups each."""
    root = tmp_path / "reg"
    for m, model in enumerate(["alpha", "beta"]):
        for part in range(3):
            path = root / f"model={model}" / f"part-{part}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(regression_table(1500, seed=10 * m + part), path, row_group_size=400)
    return root


@pytest.fixture
def regression_concat(regression_dir: Path) -> pa.Table:
    import pyarrow.dataset as ds

    return ds.dataset(regression_dir, partitioning="hive").to_table()


@pytest.fixture
def ipc_file(tmp_path: Path) -> Path:
    path = tmp_path / "preds.arrow"
    feather.write_feather(
        regression_table(2000, seed=5), path, compression="uncompressed", chunksize=300
    )
    return path
