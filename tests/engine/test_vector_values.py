"""Vector-valued metrics through the engine: per-class values and matrices in `Result`, per
group, named classes, and a checkpointed run resumed (see tests/helpers/vector_metrics.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine import Job, run_job
from streammetric.engine.result import ClassValues, json_value
from streammetric.io import ColumnSpec

from .conftest import classification_table

pytestmark = pytest.mark.usefixtures("vector_metrics")

METRICS = ["acc", "vector_test_hit_rate", "vector_test_confusion:num_classes=5"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Two files: five classes in split a and b, and a split ``x`` with classes 0-2 only."""
    folder = tmp_path / "cls"
    folder.mkdir()
    pq.write_table(classification_table(900, seed=1), folder / "p0.parquet", row_group_size=200)
    few = classification_table(300, seed=2)
    few = few.filter(pa.array(few["label"].to_numpy() < 3))
    few = few.set_column(2, "split", pa.array(["x"] * few.num_rows))
    table = pa.concat_tables([classification_table(600, seed=3), few])
    pq.write_table(table, folder / "p1.parquet", row_group_size=250)
    return folder


def reference(labels: np.ndarray, probs: np.ndarray) -> tuple[dict[str, float], list[list[int]]]:
    """Per-class hit rates (of the 5 classes; NaN without rows) and the 5 x 5 confusion
    counts, from the rows directly."""
    predicted = probs.argmax(axis=1)
    rates = {
        str(c): float(np.mean(predicted[labels == c] == c)) if (labels == c).any() else math.nan
        for c in range(5)
    }
    confusion = np.zeros((5, 5), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return rates, confusion.tolist()


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Same keys, same floats (NaN equals NaN)."""
    return {k: repr(v) for k, v in a.items()} == {k: repr(v) for k, v in b.items()}


def rows_of(folder: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(path) for path in sorted(folder.glob("*.parquet")))


def test_json_value_keeps_numbers_and_gives_classes_and_matrices() -> None:
    assert json_value(np.float64(0.1)) == 0.1 and type(json_value(np.float64(0.1))) is float
    assert type(json_value(np.array(2.5))) is float  # a 0-d array is a number
    value = json_value(np.array([0.5, np.nan, 0.25]))
    assert isinstance(value, ClassValues) and list(value) == ["0", "1", "2"]
    assert value["0"] == 0.5 and math.isnan(value["1"])
    counts = json_value(np.array([[3, 1], [0, 2]], dtype=np.int64))
    assert counts == [[3, 1], [0, 2]] and all(type(v) is int for row in counts for v in row)
    assert json_value(np.array([[0.5, 1.0]])) == [[0.5, 1.0]]
    assert json_value(np.array([1.0, 2.0]), ["cat", "dog"]) == {"cat": 1.0, "dog": 2.0}
    assert json_value({"a": 1}) == {"a": 1} and json_value([1, 2]) == [1, 2]  # as before
    with pytest.raises(sm.ConfigError, match=r"1 class names given, but the value has 2 classes"):
        json_value(np.array([1.0, 2.0]), ["cat"])


def test_per_class_values_overall_and_per_group(data: Path) -> None:
    result = sm.evaluate(data, METRICS, labels="label", preds="probs", by="split")
    table = rows_of(data)
    labels = table["label"].to_numpy()
    probs = np.stack(table["probs"].to_numpy(zero_copy_only=False))
    rates, confusion = reference(labels, probs)
    assert same(result.metrics["class_hit_rate"], rates)
    assert result.metrics["test_confusion"] == confusion
    assert isinstance(result.metrics["accuracy"], float)
    splits = table["split"].to_numpy(zero_copy_only=False)
    for group in result.groups or []:
        rows = splits == group["key"]["split"]
        rates, confusion = reference(labels[rows], probs[rows])
        assert same(group["metrics"]["class_hit_rate"], rates)
        assert group["metrics"]["test_confusion"] == confusion
    x = next(g for g in result.groups or [] if g["key"]["split"] == "x")  # classes 0-2 only
    assert [math.isnan(v) for v in x["metrics"]["class_hit_rate"].values()] == [0, 0, 0, 1, 1]
    text = json.dumps(result.to_dict(), allow_nan=True)
    assert json.loads(text)["metrics"]["class_hit_rate"] == result.metrics["class_hit_rate"]


def test_to_dict_names_the_classes_of_per_class_values(data: Path) -> None:
    result = sm.evaluate(data, METRICS, labels="label", preds="probs", by="split")
    names = ["ant", "bee", "cat", "dog", "eel"]
    named = result.to_dict(names)
    assert named["metrics"]["class_hit_rate"] == dict(
        zip(names, result.metrics["class_hit_rate"].values(), strict=True)
    )
    assert named["metrics"]["test_confusion"] == result.metrics["test_confusion"]  # a list
    for group in named["groups"]:
        assert list(group["metrics"]["class_hit_rate"]) == names
    assert list(result.metrics["class_hit_rate"]) == list("01234")  # the result is unchanged
    assert result.to_dict() == result.to_dict(None)
    with pytest.raises(
        sm.ConfigError, match=r"^4 class names given, but class_hit_rate has 5 classes \(0 to 4\)"
    ):
        result.to_dict(names[:4])


def test_a_checkpointed_run_resumes_to_the_same_result(data: Path, tmp_path: Path) -> None:
    job = Job(
        paths=[str(data)],
        metrics=METRICS,
        columns=ColumnSpec(labels="label", preds="probs", by=("split",)),
    )
    reference = json.dumps(run_job(job, threads=2).to_dict())
    checkpoint = tmp_path / "ck.json"
    seen: list[int] = []

    def crash_after_three_units(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(job, threads=1, checkpoint=checkpoint, progress=crash_after_three_units)
    assert 0 < len(json.loads(checkpoint.read_text())["done"]) < 7
    assert json.dumps(run_job(job, threads=2, checkpoint=checkpoint).to_dict()) == reference
    assert json.dumps(run_job(job, checkpoint=checkpoint).to_dict()) == reference  # all done


def test_named_classes_of_shorter_values_and_matrices_checked() -> None:
    result = sm.Result(
        rows=4,
        invalid_rows=0,
        metrics={"recall": json_value(np.array([0.5, 1.0])), "cm": [[1, 0, 0], [0, 1, 0]]},
        groups=[{"key": {"m": "a"}, "rows": 4, "metrics": {"recall": json_value(np.ones(1))}}],
    )
    named = result.to_dict(["ant", "bee", "cat"])
    assert named["metrics"]["recall"] == {"ant": 0.5, "bee": 1.0}
    assert named["groups"][0]["metrics"]["recall"] == {"ant": 1.0}
    assert named["metrics"]["cm"] == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(sm.ConfigError, match=r"^2 class names given, but cm has 3 classes"):
        result.to_dict(["ant", "bee"])
