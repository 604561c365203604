"""``explain=``: the cross-entropy family keeps its loss under other conventions in its state,
and ``explain()`` sets them side by side over a stream: the values of `streammetric.explain`
on all the rows at once, whatever the batching, merged, saved and loaded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streammetric import create
from streammetric._exceptions import ConfigError
from streammetric.explain import explain
from streammetric.metrics.cross_entropy import (
    BinaryCrossEntropy,
    CrossEntropy,
    NegativeLogLikelihood,
    Perplexity,
)

ALL = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]


def same(a: float | None, b: float | None) -> bool:
    """Equal bits (NaN equals NaN; None only equals None)."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def categorical(rows: int = 500, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    """float32 probabilities with the cases that make conventions differ: a true class at
    p = 0, one at p = 1, rows not summing to 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    probs = rng.dirichlet(np.ones(classes), rows).astype(np.float32)
    probs[0] = 0
    probs[0, (labels[0] + 1) % classes] = 1  # p = 0 for the true class
    probs[1] = 0
    probs[1, labels[1]] = 1  # p = 1
    probs[2:6] *= np.float32(1.01)  # not distributions
    weights = rng.random(rows)
    return labels, probs, weights


def batches(n: int, sizes: list[int]) -> list[slice]:
    out, start, i = [], 0, 0
    while start < n:
        size = sizes[i % len(sizes)]
        out.append(slice(start, min(n, start + size)))
        start += size
        i += 1
    return out


def streamed(metric, labels, preds, weights=None, sizes=(7, 64, 1)):
    for part in batches(len(labels), list(sizes)):
        if weights is None:
            metric.update(labels[part], preds[part])
        else:
            metric.update(labels[part], preds[part], weights[part])
    return metric.explain()


def check_equal(stream, batch) -> None:
    assert [r.name for r in stream.results] == [r.name for r in batch.results]
    for mine, theirs in zip(stream.results, batch.results, strict=True):
        assert same(mine.value, theirs.value), (mine.name, mine.value, theirs.value)
        assert (mine.error is None) == (theirs.error is None), mine.name
        assert mine.diagnostics == theirs.diagnostics, mine.name
        assert mine.dtype == theirs.dtype, mine.name  # float32 rows: keras computes in float32
        if "instead of inf" not in theirs.sentence:  # (a row's own loss is not kept)
            assert mine.sentence == theirs.sentence, mine.name
    assert stream.diagnostics == batch.diagnostics
    assert stream.rows == batch.rows and stream.kind == batch.kind


@pytest.mark.parametrize("weighted", [False, True])
def test_class_indices_equal_explain_on_all_rows(weighted: bool) -> None:
    labels, probs, weights = categorical()
    w = weights if weighted else None
    stream = streamed(CrossEntropy(explain="all"), labels, probs, w)
    check_equal(stream, explain(labels, probs, sample_weight=w))
    assert math.isinf(stream.value("exact")) and math.isfinite(stream.value("keras"))
    assert "1 row had p=0 for its true class" in stream.result("keras").sentence


def test_one_hot_targets_and_logits() -> None:
    labels, probs, _ = categorical(seed=1)
    onehot = np.eye(4)[labels]
    check_equal(streamed(CrossEntropy(explain="all"), onehot, probs), explain(onehot, probs))
    logits = np.log(np.clip(probs, 1e-3, None)).astype(np.float32) * 3
    metric = CrossEntropy(explain="all", from_logits=True)
    check_equal(streamed(metric, labels, logits), explain(labels, logits, from_logits=True))


def test_binary() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300).astype(np.float64)
    probs = rng.random(300)
    probs[:3] = [0.0, 1.0, 0.5]
    labels[:2] = [1, 0]  # p = 0 for the true label, twice
    stream = streamed(BinaryCrossEntropy(explain="all"), labels, probs)
    check_equal(stream, explain(labels, probs))
    assert stream.kind == "binary"


def test_the_metrics_own_value_and_bits_do_not_change() -> None:
    labels, probs, _ = categorical(seed=3)
    for klass in (CrossEntropy, NegativeLogLikelihood, Perplexity):
        plain, explained = klass(convention="keras"), klass(convention="keras", explain="all")
        for part in batches(len(labels), [33]):
            plain.update(labels[part], probs[part])
            explained.update(labels[part], probs[part])
        assert plain.get() == explained.get()
        table = explained.explain()
        assert table.value("keras") == plain.get()[1]
        for name in ALL:  # each entry is that convention's own metric over the same rows
            alone = klass(convention=name, on_invalid="skip")
            alone.update(labels, probs)
            assert same(table.value(name), alone.get()[1]), (klass.__name__, name)


def test_merge_and_state_dict_round_trip() -> None:
    labels, probs, weights = categorical(seed=4)
    a, b = CrossEntropy(explain=["keras", "torch"]), CrossEntropy(explain=["keras", "torch"])
    a.update(labels[:200], probs[:200], weights[:200])
    b.update(labels[200:], probs[200:], weights[200:])
    a.merge(b)
    whole = explain(labels, probs, sample_weight=weights, conventions=["keras", "torch"])
    check_equal(a.explain(), whole)
    loaded = create(a.get_config()).load_state_dict(a.state_dict())
    check_equal(loaded.explain(), whole)


def test_a_convention_that_rejects_rows_shows_as_rejecting() -> None:
    labels = np.array([0, 1, 1])
    probs = np.array([[0.3, 0.7], [1.2, -0.2], [0.4, 0.6]])  # row 1 is outside [0, 1]
    metric = CrossEntropy(convention="keras", explain=["exact"])  # keras computes it
    metric.update(labels, probs)
    table = metric.explain()
    batch = explain(labels, probs, conventions=["keras"])
    assert batch.result("exact").error is not None  # exact rejects the data ...
    assert table.value("exact") is None  # ... and so does the streamed table
    assert "reject 1 row" in table.result("exact").error
    assert same(table.value("keras"), batch.value("keras"))
    assert math.isfinite(metric.get()[1])  # the metric itself is unaffected


def test_bad_explain_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown convention 'kers'"):
        CrossEntropy(explain=["kers"])
    with pytest.raises(ConfigError, match="`explain` must be"):
        CrossEntropy(explain=3)
    with pytest.raises(ConfigError, match="make it with explain="):
        CrossEntropy().update(np.array([0]), np.array([[1.0, 0.0]])).explain()
    assert CrossEntropy().explanation() is None
    assert create({"metric": "ce", "explain": "all"}).get_config()["explain"] == "all"


def test_the_dtype_column_follows_the_inputs() -> None:
    labels, probs, _ = categorical(seed=5)
    metric = CrossEntropy(explain="all")
    metric.update(labels[:100], probs[:100])  # float32
    assert metric.explain().result("keras").dtype == "float32"
    assert metric.explain().result("exact").dtype == "float64"
    metric.update(labels[100:], probs[100:].astype(np.float64))
    assert metric.explain().result("keras").dtype == "as input"  # the rule: rows differ
