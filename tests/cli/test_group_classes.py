"""Every group and every bootstrap replicate has the run's classes: a group (or a replicate)
without a row of some class scores it as scikit-learn does with the run's classes as
``labels`` (``zero_division``, a row and column of 0s in a confusion matrix), in JSON, the
table, CSV, the Prometheus exposition and ``--ci``'s intervals."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

import streammetric as sm

from .helpers import invoke
from .test_vector_output import exposition_series

CLASSES = 4


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """600 rows of classes 0-3 in models a and b; model c has no row of class 3, true or
    predicted (its scores for class 3 are the lowest)."""
    rng = np.random.default_rng(21)
    rows = 600
    models = rng.choice(["a", "b", "c"], rows)
    labels = rng.integers(0, CLASSES, rows)
    c = models == "c"
    labels[c] = rng.integers(0, CLASSES - 1, c.sum())
    probs = rng.dirichlet(np.ones(CLASSES), rows)
    probs[c, CLASSES - 1] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    flat = pa.array(probs.astype(np.float32).reshape(-1))
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, CLASSES),
            "model": models,
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=150)
    return path


def rows_of(path: Path, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(path)
    labels = table["label"].to_numpy()
    predicted = np.stack(table["probs"].to_numpy(zero_copy_only=False)).argmax(axis=1)
    if model is None:
        return labels, predicted
    keep = table["model"].to_numpy(zero_copy_only=False) == model
    return labels[keep], predicted[keep]


def ok(*args: Any) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output + result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("zero_division", ["0", "1", "nan"])
def test_a_group_without_a_class_has_it_as_sklearn_with_the_runs_labels(data, zero_division):
    metrics = [
        "-m",
        f"precision:average=none,class_type=multiclass,zero_division={zero_division}",
        "-m",
        f"recall:average=none,class_type=multiclass,zero_division={zero_division}",
        "-m",
        "confusion_matrix",
    ]
    result = json.loads(ok("eval", data, *metrics, "--by", "model", "--format", "json").stdout)
    labels_c, _ = rows_of(data, "c")
    assert CLASSES - 1 not in labels_c  # the case under test
    zero = float(zero_division) if zero_division != "nan" else np.nan
    for group in result["groups"]:
        labels, predicted = rows_of(data, group["key"]["model"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            precision, recall, _, _ = precision_recall_fscore_support(
                labels,
                predicted,
                labels=range(CLASSES),
                average=None,
                zero_division=zero,
            )
        values = group["metrics"]
        assert list(values["precision"]) == [str(c) for c in range(CLASSES)]
        assert [repr(v) for v in values["precision"].values()] == [
            repr(float(v)) for v in precision
        ]
        assert [repr(v) for v in values["recall"].values()] == [repr(float(v)) for v in recall]
        expected = confusion_matrix(labels, predicted, labels=range(CLASSES))
        assert values["confusion_matrix"] == expected.tolist()
    c = next(g for g in result["groups"] if g["key"]["model"] == "c")
    assert repr(c["metrics"]["recall"][str(CLASSES - 1)]) == repr(zero)

    text = ok("eval", data, *metrics, "--by", "model", "--format", "csv").stdout
    row_c = next(row for row in csv.DictReader(io.StringIO(text)) if row["model"] == "c")
    assert row_c[f"recall[class={CLASSES - 1}]"] == repr(zero)
    assert row_c[f"confusion_matrix[true_class={CLASSES - 1},pred_class=0]"] == "0"


def test_the_exposition_has_every_class_in_every_group(data, tmp_path):
    prom = tmp_path / "out.prom"
    metric = "recall:average=none,class_type=multiclass"
    ok("eval", data, "-m", metric, "--by", "model", "--textfile", prom)
    series = exposition_series(prom.read_text(), "streammetric_recall")
    for model in ("a", "b", "c"):
        classes = {
            dict(k)["class"]
            for k in series
            if dict(k).get("model") == model and ("scope", "global") in k
        }
        assert classes == {str(c) for c in range(CLASSES)}
    missing = (("class", str(CLASSES - 1)), ("model", "c"), ("scope", "global"))
    assert series[missing] == 0.0  # zero_division


@pytest.mark.parametrize("by", [(), ("--by", "model")])
def test_intervals_of_per_class_values_when_replicates_lack_a_class(data, tmp_path, by):
    """A class of one row is missing from most replicates, and from model c entirely: every
    group's intervals still have the run's classes."""
    table = pq.read_table(data)
    labels = table["label"].to_numpy().copy()
    probs = np.stack(table["probs"].to_numpy(zero_copy_only=False))
    labels[labels == CLASSES - 1] = 0
    probs[:, CLASSES - 1] = 0.0  # class 3 neither true nor predicted ...
    labels[7], probs[7] = CLASSES - 1, [0.1, 0.1, 0.1, 0.7]  # ... but in row 7 (model a or b)
    flat = pa.array(probs.astype(np.float32).reshape(-1))
    table = table.set_column(0, "label", pa.array(labels))
    table = table.set_column(1, "probs", pa.FixedSizeListArray.from_arrays(flat, CLASSES))
    rare = tmp_path / "rare.parquet"
    pq.write_table(table, rare)
    metrics = ["-m", "recall:average=none,class_type=multiclass", "-m", "confusion_matrix"]
    args = ["eval", rare, *metrics, *by, "--ci", "0.9", "--bootstrap", "40", "--format", "json"]
    result = json.loads(ok(*args).stdout)
    classes = [str(c) for c in range(CLASSES)]
    for scope in [result, *result.get("groups", [])]:
        recall = scope["intervals"]["recall"]
        assert list(recall["lower"]) == list(recall["upper"]) == classes
        assert all(recall["lower"][c] <= recall["upper"][c] for c in classes)
        matrix = scope["intervals"]["confusion_matrix"]
        assert np.shape(matrix["lower"]) == np.shape(matrix["upper"]) == (CLASSES, CLASSES)


def test_bootstrap_intervals_have_the_classes_of_the_value():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 200)
    labels[0] = 3  # one row of class 3: most replicates lack it
    preds = rng.integers(0, 3, 200)
    preds[0] = 3
    boot = sm.Bootstrap(sm.Recall(class_type="multiclass", average=None), replicates=50)
    boot.update(labels, preds)
    _, value = boot.get()
    _, lower, upper = boot.get_interval()
    assert value.shape == lower.shape == upper.shape == (4,)
    assert np.all(lower <= upper)


def test_more_classes_under_the_binary_default_name_the_option(data):
    result = invoke("eval", data, "-m", "recall:average=none")  # labels 0-3
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "column `label`, row 0" in result.stderr
    assert "class_type='multiclass'" in result.stderr
    with pytest.raises(sm.InvalidInputError, match="class_type='multiclass'") as raised:
        sm.Recall().update([0, 1], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])  # 0/1 labels, 3 scores
    assert raised.value.argument == "preds"


@pytest.mark.parametrize(
    "order",
    [
        ("f1:average=macro,class_type=multiclass", "acc", "mcc:class_type=multiclass"),
        ("ece", "ce", "recall:average=none,class_type=multiclass,num_classes=4", "acc"),
    ],
)
def test_a_metric_between_per_group_metrics_is_in_every_group(data: Path, order: tuple[str, ...]):
    """Metrics valued for every group at once (acc, ce) between metrics valued group by group
    (f1, mcc, ece, per-class): each group has every metric, in the run's order, each the value
    of the group's rows alone; the table and CSV print (a KeyError traceback before)."""
    args = ["eval", data, *(x for m in order for x in ("-m", m)), "--by", "model"]
    done = invoke(*args, "--format", "json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    names = list(result["metrics"])
    table = pq.read_table(data)
    for group in result["groups"]:
        assert list(group["metrics"]) == names
        (model,) = group["key"].values()
        own = data.parent / f"only_{model}.parquet"
        pq.write_table(table.filter(pa.compute.equal(table["model"], model)), own)
        alone = invoke("eval", own, *args[2:-2], "--format", "json")
        assert alone.exit_code == 0, alone.output
        assert json.loads(alone.stdout)["metrics"] == group["metrics"]
    for fmt in ("table", "csv"):
        shown = invoke(*args, "--format", fmt)
        assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output
