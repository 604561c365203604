"""Every group's values at once (`EvalMetric.group_values`, `EvalMetric.group_arrays`) are the
bits each group's state alone gives (`EvalMetric.name_values` with the run's classes), for
the classification metrics of per-class counts (F1, Precision, Recall, FBeta, MCC, PCC) and
the confusion matrix: many small groups, some empty, some without some classes, weighted and
unweighted rows, every class type, average, ``zero_division`` and ``normalize``; and ``eval
--by`` (with ``--ci`` too) writes the same bytes as group by group."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.metrics import bootstrap
from streammetric.metrics.base import EvalMetric
from streammetric.metrics.state import GroupedState

from ..cli.helpers import invoke

CLASSES = 5
GROUPS = 40


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal float64 values, NaN where NaN, and the same sign of every zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (
        a.shape == b.shape
        and np.array_equal(a, b, equal_nan=True)
        and np.array_equal(np.signbit(a), np.signbit(b))
    )


def rows(class_type: str, n: int, rng: np.random.Generator) -> tuple[Any, Any, np.ndarray]:
    """Labels and preds of ``class_type``, and group codes: groups ``0 .. GROUPS - 1``, every
    fifth without rows, group ``g`` seeing classes below ``CLASSES - g % 3`` only (multiclass:
    true and predicted)."""
    codes = rng.integers(0, GROUPS, n)
    codes = np.where(codes % 5 == 4, codes - 1, codes)  # groups 4, 9, ...: empty
    if class_type == "binary":
        labels = rng.integers(0, 2, n)
        preds = np.round(rng.random(n), 1)  # 0.5 itself: not positive
        return labels, preds, codes
    if class_type == "multilabel":
        labels = rng.integers(0, 2, (n, 3))
        preds = np.round(rng.random((n, 3)), 1)
        labels[codes % 7 == 0] = 0  # some groups without positives
        return labels, preds, codes
    top = CLASSES - codes % 3
    labels = (rng.random(n) * top).astype(np.int64)
    preds = np.where(rng.random(n) < 0.5, labels, (rng.random(n) * top).astype(np.int64))
    return labels, preds, codes


def grouped_state(metric: EvalMetric, class_type: str, weights: str, seed: int) -> GroupedState:
    """The grouped state of two batches of ``class_type`` rows: ``weights`` ``"none"``, ``"all"``
    (every batch weighted, some weights 0) or ``"mixed"`` (the second only); a few empty
    groups beyond the last code."""
    rng = np.random.default_rng(seed)
    state = GroupedState(metric.state_specs())
    for batch in range(2):
        labels, preds, codes = rows(class_type, 300, rng)
        weight = None
        if weights == "all" or (weights == "mixed" and batch):
            weight = rng.choice([0.0, 0.1, 1.0 / 3.0, 1.0, 2.5], labels.shape[0])
        state.add(metric.row_terms(labels, preds, weight), codes, GROUPS)
    state.reserve(GROUPS + 3)
    return state


def per_group(
    metric: EvalMetric, state: GroupedState, like: list[tuple[str, Any]] | None
) -> dict[str, np.ndarray]:
    """Each group's `name_values` alone, stacked as float64 (the path without `group_values`)."""
    pairs = [metric.name_values(state.state(code), like) for code in range(state.size)]
    return {
        str(name): np.array([np.asarray(p[i][1], dtype=np.float64) for p in pairs])
        for i, (name, _) in enumerate(pairs[0])
    }


def check(metric: EvalMetric, state: GroupedState) -> None:
    """`group_arrays` (with the state's own classes and with a run's of more) and
    `group_values` against each group's state alone."""
    like = metric.name_values(state.total())
    arrays = metric.group_arrays(state)
    assert arrays is not None
    expected = per_group(metric, state, like)
    assert arrays.keys() == expected.keys()
    for name in expected:
        assert same_bits(arrays[name], expected[name]), (name, arrays[name], expected[name])
    # a replicate's classes are the run's: a wider `like` (one more class) widens every group
    wider = [(n, _wider(v)) for n, v in like]
    arrays = metric.group_arrays(state, wider)
    assert arrays is not None
    expected = per_group(metric, state, wider)
    for name in expected:
        assert same_bits(arrays[name], expected[name]), (name, arrays[name], expected[name])
    assert same_bits(bootstrap.leaf_values(metric, state, wider)[name], expected[name])
    values = metric.group_values(state)
    if all(np.ndim(v) == 0 for _, v in like):  # numbers: the engine's columns too
        assert values is not None
        for name in expected:
            assert same_bits(values[name], per_group(metric, state, None)[name])
    else:
        assert values is None


def _wider(value: Any) -> Any:
    if not isinstance(value, np.ndarray) or not value.ndim:
        return value
    return np.zeros(tuple(n + 1 for n in value.shape))


SCORES = ["precision", "recall", "f1", "fbeta"]
AVERAGES = ["micro", "macro", "weighted", None]
ZERO_DIVISION = [0, 1, "nan"]


@pytest.mark.parametrize("weights", ["none", "all", "mixed"])
@pytest.mark.parametrize("class_type", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("score", SCORES)
def test_class_scores_of_every_group_at_once_are_each_groups_bits(score, class_type, weights):
    for average, zero_division, num_classes in itertools.product(
        AVERAGES, ZERO_DIVISION, [None, CLASSES]
    ):
        if num_classes is not None and class_type != "multiclass":
            continue
        options: dict[str, Any] = {
            "average": average,
            "class_type": class_type,
            "zero_division": zero_division,
            "num_classes": num_classes,
        }
        metric = sm.create({"metric": score, **options})
        check(metric, grouped_state(metric, class_type, weights, seed=len(str(options))))


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0, 0.3, math.inf])
@pytest.mark.parametrize("average", AVERAGES)
def test_fbeta_of_any_beta(beta, average):
    for weights in ("none", "all"):
        metric = sm.FBeta(beta=beta, average=average, class_type="multiclass")
        check(metric, grouped_state(metric, "multiclass", weights, seed=3))


@pytest.mark.parametrize("weights", ["none", "all", "mixed"])
@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrices_of_every_group_at_once_are_each_groups_bits(normalize, weights):
    for class_type, num_classes in [
        ("multiclass", None),
        ("multiclass", CLASSES),
        ("binary", None),
    ]:
        metric = sm.ConfusionMatrix(
            normalize=normalize, class_type=class_type, num_classes=num_classes
        )
        check(metric, grouped_state(metric, class_type, weights, seed=7))


@pytest.mark.parametrize("weights", ["none", "all", "mixed"])
@pytest.mark.parametrize("class_type", ["binary", "multiclass", "multilabel"])
def test_mcc_of_every_group_at_once_is_each_groups_bits(class_type, weights):
    for average, num_classes in itertools.product(["micro", "macro"], [None, CLASSES]):
        if num_classes is not None and class_type != "multiclass":
            continue
        metric = sm.MCC(average=average, class_type=class_type, num_classes=num_classes)
        check(metric, grouped_state(metric, class_type, weights, seed=len(average)))


@pytest.mark.parametrize("weights", ["none", "all", "mixed"])
def test_pcc_of_every_group_at_once_is_each_groups_bits(weights):
    metric = sm.PCC()
    check(metric, grouped_state(metric, "multiclass", weights, seed=11))


def test_no_groups_and_no_rows():
    for metric in (sm.ConfusionMatrix(), sm.Recall(average=None, class_type="multiclass")):
        state = GroupedState(metric.state_specs())
        assert all(a.shape[0] == 0 for a in metric.group_arrays(state).values())
        state.reserve(3)
        check(metric, state)


# -- the command line --------------------------------------------------------------------------

CLI_METRICS = [
    "f1:average=macro,class_type=multiclass",
    "precision:average=weighted,class_type=multiclass,zero_division=nan",
    "recall:average=none,class_type=multiclass",
    "fbeta:beta=2,average=micro,class_type=multiclass",
    "confusion_matrix",
    "confusion_matrix:normalize=true",
    "mcc:average=macro,class_type=multiclass",
    "mcc:class_type=multiclass",
    "pcc",
]


@pytest.fixture
def group_file(tmp_path: Path) -> Path:
    """60 groups of a few rows, of 4 classes (group g's below 4 - g % 3), with weights."""
    rng = np.random.default_rng(5)
    n = 400
    groups = rng.integers(0, 60, n)
    top = 4 - groups % 3
    labels = (rng.random(n) * top).astype(np.int64)
    probs = rng.dirichlet(np.ones(4), n)
    probs[np.arange(4)[None, :] >= top[:, None]] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    flat = pa.array(probs.astype(np.float32).reshape(-1))
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, 4),
            "g": [f"g{i:02d}" for i in groups],
            "w": rng.choice([0.0, 0.5, 1.0, 3.0], n),
        }
    )
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=100)
    return path


def _outputs(path: Path, extra: list[str]) -> list[str]:
    out = []
    for fmt in ("json", "csv", "table"):
        result = invoke("eval", path, *extra, "--by", "g", "--format", fmt, "--precision", "0")
        assert result.exit_code == 0, result.output + result.stderr
        out.append(result.output + result.stderr)
    return out


@pytest.mark.parametrize("extra", [[], ["--weights", "w"], ["--ci", "0.9", "--bootstrap", "40"]])
def test_eval_by_writes_the_bytes_of_group_by_group(group_file, monkeypatch, extra):
    args = [*itertools.chain.from_iterable(("-m", m) for m in CLI_METRICS), *extra]
    at_once = _outputs(group_file, args)
    with monkeypatch.context() as patch:  # the per-group path: no shortcut anywhere
        patch.setattr(EvalMetric, "group_arrays", lambda self, grouped, like=None: None)
        for klass in (sm.F1, sm.Precision, sm.Recall, sm.FBeta, sm.ConfusionMatrix, sm.MCC, sm.PCC):
            for base in klass.__mro__:
                if "group_values" in base.__dict__ and base is not EvalMetric:
                    patch.setattr(base, "group_values", lambda self, grouped: None)
                if "group_arrays" in base.__dict__:
                    patch.setattr(base, "group_arrays", lambda self, grouped, like=None: None)
        by_group = _outputs(group_file, args)
    assert at_once == by_group
