"""Precision, Recall, FBeta, F1 (every average), MCC, PCC and ConfusionMatrix, streamed in random
batches with and without ``sample_weight``, against an exact oracle (fractions of the data's
floats) bit for bit and against scikit-learn.

scikit-learn and these metrics compute the same bits where scikit-learn divides exact counts
once: unweighted per-class and micro precision, recall and F-beta (for beta 0.5, 1, 2, whose
``beta**2`` is exact), and the unweighted confusion matrix, normalized or not. Elsewhere it rounds
more often: the macro and weighted averages are float64 means of per-class values each rounded
(K + 1 roundings; the metrics round the exact mean once), and with weights its counts are float
sums (rounded at each addition; the metrics' are exact). There the values agree to a few ulps
(`ULPS`), and each metric value is the correctly rounded exact value (the oracle).
"""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from functools import partial

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import matthews_corrcoef, precision_recall_fscore_support

import streammetric as sm
from streammetric.functional import classification as F
from streammetric.metrics.classification import (
    F1,
    MCC,
    PCC,
    ConfusionMatrix,
    FBeta,
    Precision,
    Recall,
)
from streammetric.metrics.state import GroupedState
from tests.helpers.harness import check_metric, flat_values, same_bits

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.UndefinedMetricWarning",
    "ignore:A single label was found:UserWarning",
    "ignore:invalid value encountered:RuntimeWarning",
)

#: scikit-learn's macro/weighted averages and weighted counts round more often (module docstring)
ULPS = 8
SCORE_METRICS = {"precision": Precision, "recall": Recall, "fbeta": FBeta, "f1": F1}
WEIGHTS = [0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 1e-3, 7.25]


# -- the exact oracle ----------------------------------------------------------------------------
def _exact_counts(pairs, weights, size):
    """Exact weighted per-class tp, fp, fn (Fractions) of (true, predicted) class pairs."""
    tp, fp, fn = ([Fraction(0)] * size for _ in range(3))
    for (true, predicted), weight in zip(pairs, weights, strict=True):
        weight = Fraction(weight)
        if true == predicted:
            tp[true] += weight
        else:
            fp[predicted] += weight
            fn[true] += weight
    return tp, fp, fn


def _exact_ratio(score, tp, fp, fn, beta):
    if score == "precision":
        numerator, denominator = tp, tp + fp
    elif score == "recall" or math.isinf(beta):
        numerator, denominator = tp, tp + fn
    else:
        b2 = Fraction(beta) ** 2
        numerator, denominator = (1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp
    return None if denominator == 0 else numerator / denominator


def _exact_value(counts, score, average, beta, zero_division, classes):
    """scikit-learn's definitions on exact counts, rounded once: ``classes`` are the ones the
    averages see."""
    tp, fp, fn = counts
    if average is None:
        values = [_exact_ratio(score, *c, beta) for c in zip(tp, fp, fn, strict=True)]
        return np.array([zero_division if v is None else float(v) for v in values])
    if not classes:
        return math.nan
    if average == "micro":
        value = _exact_ratio(score, sum(tp), sum(fp), sum(fn), beta)
        return zero_division if value is None else float(value)
    values, supports = [], []
    for c in classes:
        value = _exact_ratio(score, tp[c], fp[c], fn[c], beta)
        if value is None:
            if math.isnan(zero_division):
                continue
            value = Fraction(int(zero_division))
        values.append(value)
        supports.append(tp[c] + fn[c])
    if not values:
        return math.nan
    if average == "weighted" and sum(supports):
        return float(sum(v * s for v, s in zip(values, supports, strict=True)) / sum(supports))
    return float(sum(values) / len(values))


def _close_ulps(ours, theirs, ulps=ULPS):
    ours, theirs = np.atleast_1d(np.asarray(ours, float)), np.atleast_1d(np.asarray(theirs, float))
    assert ours.shape == theirs.shape, (ours, theirs)
    nan = np.isnan(ours)
    assert np.array_equal(nan, np.isnan(theirs)), (ours, theirs)
    spacing = np.spacing(np.maximum(np.abs(ours), np.abs(theirs)))[~nan]
    assert np.all(np.abs(ours - theirs)[~nan] <= ulps * spacing), (ours, theirs)


def _bits(value):
    return flat_values(value)


def _stream(make, labels, preds, weights, bounds):
    """The value after one update per batch, after one update, and of merged batch metrics;
    all must be the same bits."""
    whole = make().update(labels, preds, weights)
    streamed, parts = make(), []
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            w = None if weights is None else weights[start:stop]
            streamed.update(labels[start:stop], preds[start:stop], w)
            parts.append(make().update(labels[start:stop], preds[start:stop], w))
    merged = make()
    for part in reversed(parts):
        merged.merge(part)
    value = whole.get()[1]
    assert same_bits(_bits(streamed.get()[1]), _bits(value))
    assert same_bits(_bits(merged.get_global()[1]), _bits(value))
    state = json.loads(json.dumps(streamed.state_dict()))
    assert same_bits(_bits(make().load_state_dict(state).get_global()[1]), _bits(value))
    return value


# -- data ----------------------------------------------------------------------------------------
@st.composite
def batches(draw, min_classes=1, max_rows=40):
    size = draw(st.integers(min_classes, 5))
    rows = draw(st.integers(1, max_rows))
    true = np.array(draw(st.lists(st.integers(0, size - 1), min_size=rows, max_size=rows)))
    predicted = np.array(draw(st.lists(st.integers(0, size - 1), min_size=rows, max_size=rows)))
    weights = None
    if draw(st.booleans()):
        weights = np.array(draw(st.lists(st.sampled_from(WEIGHTS), min_size=rows, max_size=rows)))
    cuts = sorted(draw(st.lists(st.integers(0, rows), max_size=4)))
    return size, true, predicted, weights, [0, *cuts, rows]


def _seen(true, predicted, weights):
    """The classes seen: as true or predicted class of a row of nonzero weight."""
    keep = np.ones(len(true), bool) if weights is None else weights > 0
    return sorted(set(true[keep].tolist()) | set(predicted[keep].tolist()))


# -- multiclass scores ---------------------------------------------------------------------------
@settings(max_examples=120, deadline=None)
@given(
    batches(),
    st.sampled_from(["precision", "recall", "fbeta", "f1"]),
    st.sampled_from(["micro", "macro", "weighted", None]),
    st.sampled_from([0.0, 1.0, "nan"]),
    st.sampled_from([0.5, 1.0, 2.0, 0.0, math.inf, 1 / 3]),
    st.sampled_from(["indices", "scores", "extra_classes"]),
)
def test_multiclass_scores_are_exact_and_match_sklearn(
    batch, score, average, zero_division, beta, given_classes
):
    size, true, predicted, weights, bounds = batch
    if score != "fbeta":
        beta = 1.0
    num_classes = {"indices": None, "scores": size, "extra_classes": size + 2}[given_classes]
    preds = predicted
    if given_classes == "scores":  # (n, K) scores whose argmax is the predicted class
        preds = np.full((len(predicted), size), 0.25)
        preds[np.arange(len(predicted)), predicted] = 0.75
        if size == 1:
            preds = np.concatenate([preds, np.zeros((len(predicted), 1))], axis=1)
            num_classes = 2
    options = {"average": average, "class_type": "multiclass", "zero_division": zero_division}
    options["num_classes"] = num_classes
    if score == "fbeta":
        options["beta"] = beta
    make = partial(SCORE_METRICS[score], **options)
    value = _stream(make, true, preds, weights, bounds)

    zero = math.nan if zero_division == "nan" else zero_division
    seen = _seen(true, predicted, weights)
    classes = list(range(num_classes)) if num_classes else seen
    width = num_classes or (seen[-1] + 1 if seen else 0)
    w = np.ones(len(true)) if weights is None else weights
    pairs = zip(true.tolist(), predicted.tolist(), strict=True)
    counts = _exact_counts(pairs, w.tolist(), max(width, size))
    counts = tuple(c[:width] for c in counts)
    exact = _exact_value(counts, score, average, beta, zero, classes)
    assert same_bits(_bits(value), _bits(exact)), (value, exact)
    assert isinstance(value, np.ndarray) == (average is None)
    functional = getattr(F, f"{score}_score" if score != "f1" else "f1_score")
    kwargs = {k: v for k, v in options.items() if k != "beta"}
    if score == "fbeta":
        kwargs["beta"] = beta
    assert same_bits(_bits(functional(true, preds, sample_weight=weights, **kwargs)), _bits(value))

    if not classes or (weights is not None and not weights.any()):
        return  # every row has weight 0: scikit-learn refuses such weights
    labels = list(range(width)) if average is None else classes
    sk = precision_recall_fscore_support(
        true,
        predicted,
        beta=beta,
        labels=labels,
        average=average,
        sample_weight=weights,
        zero_division=zero,
    )
    reference = sk[{"precision": 0, "recall": 1}.get(score, 2)]
    if weights is None and average in (None, "micro") and beta in (0.5, 1.0, 2.0, 0.0, math.inf):
        assert same_bits(_bits(np.asarray(reference, float)), _bits(np.asarray(value, float)))
    else:
        _close_ulps(value, reference)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda rows: st.tuples(
            st.lists(st.integers(0, 1), min_size=rows, max_size=rows),
            st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0]), min_size=rows, max_size=rows),
            st.none() | st.lists(st.sampled_from(WEIGHTS), min_size=rows, max_size=rows),
            st.lists(st.integers(0, rows), max_size=3),
        )
    ),
    st.sampled_from(["precision", "recall", "fbeta", "f1"]),
    st.sampled_from(["micro", "macro", "weighted", None]),
    st.sampled_from([0.0, 1.0, "nan"]),
)
def test_binary_scores_match_sklearn(data, score, average, zero_division):
    """Binary: micro and macro are the positive class (scikit-learn's average='binary');
    weighted and None see classes 0 and 1."""
    labels, probs, weights, cuts = data
    labels, probs = np.array(labels), np.array(probs)
    weights = None if weights is None else np.array(weights)
    options = {"average": average, "zero_division": zero_division, "threshold": 0.5}
    if score == "fbeta":
        options["beta"] = 2.0
    make = partial(SCORE_METRICS[score], **options)
    value = _stream(make, labels, probs, weights, [0, *sorted(cuts), len(labels)])
    zero = math.nan if zero_division == "nan" else zero_division
    if weights is not None and not weights.any():
        return  # scikit-learn refuses weights that are all 0
    sk_average, sk_labels = ("binary", None) if average in ("micro", "macro") else (average, [0, 1])
    sk = precision_recall_fscore_support(
        labels,
        probs > 0.5,
        beta=options.get("beta", 1.0),
        labels=sk_labels,
        average=sk_average,
        sample_weight=weights,
        zero_division=zero,
    )
    reference = sk[{"precision": 0, "recall": 1}.get(score, 2)]
    if weights is None and average != "weighted":
        assert same_bits(_bits(np.asarray(reference, float)), _bits(np.asarray(value, float)))
    else:
        _close_ulps(value, reference)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 25).flatmap(
        lambda rows: st.tuples(
            st.integers(2, 4).flatmap(  # scikit-learn reads one column as binary
                lambda width: st.tuples(
                    st.lists(
                        st.lists(st.integers(0, 1), min_size=width, max_size=width),
                        min_size=rows,
                        max_size=rows,
                    ),
                    st.lists(
                        st.lists(
                            st.sampled_from([0.1, 0.4, 0.6, 0.9]), min_size=width, max_size=width
                        ),
                        min_size=rows,
                        max_size=rows,
                    ),
                )
            ),
            st.none() | st.lists(st.sampled_from(WEIGHTS), min_size=rows, max_size=rows),
            st.lists(st.integers(0, rows), max_size=3),
        )
    ),
    st.sampled_from(["precision", "recall", "f1"]),
    st.sampled_from(["micro", "macro", "weighted", None]),
    st.sampled_from([0.0, 1.0, "nan"]),
    st.booleans(),
)
def test_multilabel_scores_match_sklearn(data, score, average, zero_division, fixed):
    (labels, probs), weights, cuts = data
    labels, probs = np.array(labels), np.array(probs)
    weights = None if weights is None else np.array(weights)
    options = {"average": average, "class_type": "multilabel", "zero_division": zero_division}
    if fixed:
        options["num_classes"] = labels.shape[1]
    make = partial(SCORE_METRICS[score], **options)
    value = _stream(make, labels, probs, weights, [0, *sorted(cuts), len(labels)])
    zero = math.nan if zero_division == "nan" else zero_division
    if weights is not None and not weights.any():
        return  # scikit-learn refuses weights that are all 0
    sk = precision_recall_fscore_support(
        labels,
        (probs > 0.5).astype(int),
        average=average,
        sample_weight=weights,
        zero_division=zero,
    )
    reference = sk[{"precision": 0, "recall": 1}.get(score, 2)]
    if weights is None and average in (None, "micro"):
        assert same_bits(_bits(np.asarray(reference, float)), _bits(np.asarray(value, float)))
    else:
        _close_ulps(value, reference)


# -- the confusion matrix ------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(batches(), st.sampled_from([None, "true", "pred", "all"]), st.sampled_from([0, 2, None]))
def test_confusion_matrix_is_exact_and_matches_sklearn(batch, normalize, extra):
    size, true, predicted, weights, bounds = batch
    num_classes = None if extra is None else size + extra
    make = partial(ConfusionMatrix, num_classes=num_classes, normalize=normalize)
    value = _stream(make, true, predicted, weights, bounds)
    seen = _seen(true, predicted, weights)
    width = num_classes or (seen[-1] + 1 if seen else 0)
    counts = weights is None and normalize is None  # int64, as scikit-learn's
    assert value.shape == (width, width) and value.dtype == (np.int64 if counts else np.float64)
    w = np.ones(len(true)) if weights is None else weights
    cells = [[Fraction(0)] * width for _ in range(width)]
    for t, p, x in zip(true.tolist(), predicted.tolist(), w.tolist(), strict=True):
        if t < width and p < width:
            cells[t][p] += Fraction(x)
    exact = np.zeros((width, width))
    for i, j in itertools.product(range(width), repeat=2):
        if normalize is None:
            total = Fraction(1)
        elif normalize == "true":
            total = sum(cells[i])
        elif normalize == "pred":
            total = sum(row[j] for row in cells)
        else:
            total = sum(map(sum, cells))
        exact[i, j] = float(cells[i][j] / total) if total else 0.0
    assert same_bits(_bits(value), _bits(exact))
    functional = F.confusion_matrix(
        true, predicted, num_classes=num_classes, normalize=normalize, sample_weight=weights
    )
    assert same_bits(_bits(functional), _bits(value))
    if width and (weights is None or weights.any()):  # scikit-learn refuses all-0 weights
        reference = sk_confusion_matrix(
            true, predicted, labels=np.arange(width), sample_weight=weights, normalize=normalize
        )
        if weights is None:
            assert same_bits(_bits(reference.astype(float)), _bits(value))
            assert value.dtype == reference.dtype
        else:
            _close_ulps(value, reference)


def test_confusion_matrix_binary_and_scores():
    labels = np.array([0, 1, 1, 0, 1])
    probs = np.array([0.2, 0.8, 0.3, 0.6, 0.9])
    matrix = ConfusionMatrix(class_type="binary", threshold=0.5).update(labels, probs).get()[1]
    assert np.array_equal(matrix, sk_confusion_matrix(labels, probs > 0.5))
    scores = np.stack([1 - probs, probs], axis=1)
    assert np.array_equal(ConfusionMatrix().update(labels, scores).get()[1], matrix)
    empty = ConfusionMatrix(num_classes=3, normalize="all").get()[1]
    assert np.array_equal(empty, np.zeros((3, 3)))
    assert ConfusionMatrix().get()[1].shape == (0, 0)


def test_confusion_matrix_grows_without_renumbering():
    """Classes that appear batch after batch (and a merge of states of different K) add cell
    by cell: the K x K layout does not depend on K."""
    m = ConfusionMatrix()
    m.update([0, 1], [1, 1])
    small = m.state_dict()["local"]["confusion"]
    m.update([4], [2])
    grown = m.state_dict()["local"]["confusion"]
    assert small["shape"] == [4] and grown["shape"] == [19]  # 2 classes: 4 cells; (4, 2): 18
    assert grown["values"][:4] == small["values"]  # the cells of classes 0 and 1 stay put
    other = ConfusionMatrix().update([2, 0], [3, 0])
    m.merge(other)
    expected = sk_confusion_matrix([0, 1, 4, 2, 0], [1, 1, 2, 3, 0], labels=range(5))
    assert np.array_equal(m.get()[1], expected)


# -- MCC and PCC with weights --------------------------------------------------------------------
def _one_vs_rest(y, p, w, average, classes):
    actual, predicted = y.reshape(-1, 1) == classes, p.reshape(-1, 1) == classes
    if average == "micro":
        return matthews_corrcoef(
            actual.ravel(), predicted.ravel(), sample_weight=np.repeat(w, len(classes))
        )
    return float(
        np.mean(
            [
                matthews_corrcoef(actual[:, c], predicted[:, c], sample_weight=w)
                for c in range(len(classes))
            ]
        )
    )


@settings(max_examples=60, deadline=None)
@given(batches(min_classes=2), st.sampled_from(["micro", "macro"]))
def test_weighted_mcc_and_pcc(batch, average):
    _, true, predicted, weights, bounds = batch
    assume(weights is not None and (weights > 0).any())
    mcc = _stream(
        partial(MCC, class_type="multiclass", average=average), true, predicted, weights, bounds
    )
    pcc = _stream(PCC, true, predicted, weights, bounds)
    classes = np.array(_seen(true, predicted, weights))
    reference = _one_vs_rest(true, predicted, weights, average, classes)
    np.testing.assert_allclose(mcc, reference, rtol=1e-9, atol=1e-12)
    sk = matthews_corrcoef(true, predicted, sample_weight=weights)
    assert (math.isnan(pcc) and sk == 0.0) or pcc == pytest.approx(sk, rel=1e-9, abs=1e-12)
    assert same_bits([F.pcc(true, predicted, sample_weight=weights)], [pcc])
    assert same_bits(
        [
            F.matthews_corrcoef(
                true, predicted, class_type="multiclass", average=average, sample_weight=weights
            )
        ],
        [mcc],
    )


def test_weights_of_one_are_the_bits_of_no_weights():
    rng = np.random.default_rng(3)
    labels, preds = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    ones = np.ones(200)
    for make in (
        partial(Precision, class_type="multiclass", average=None),
        partial(FBeta, beta=0.5, class_type="multiclass", average="weighted"),
        partial(MCC, class_type="multiclass", average="macro"),
        PCC,
        partial(ConfusionMatrix, normalize="pred"),
    ):
        plain = make().update(labels, preds).get()[1]
        weighted = make().update(labels, preds, ones).get()[1]
        mixed = make().update(labels[:50], preds[:50]).update(labels[50:], preds[50:], ones[50:])
        assert same_bits(_bits(weighted), _bits(plain))
        assert same_bits(_bits(mixed.get()[1]), _bits(plain))


def test_sequence_labels_weigh_each_element():
    rng = np.random.default_rng(5)
    labels, scores, weights = rng.integers(0, 3, (30, 4)), rng.random((30, 4, 3)), rng.random(30)
    for average in ("micro", "macro", "weighted", None):
        check_metric(
            partial(Recall, class_type="multiclass", average=average),
            labels,
            scores,
            weights=weights,
            reference=lambda y, p, w, average=average: precision_recall_fscore_support(
                y.ravel(), p.argmax(-1).ravel(), average=average, sample_weight=np.repeat(w, 4)
            )[1],
            rtol=1e-14,
        )


# -- grouped state: every group is its rows alone ---------------------------------------------------
GROUPED = [
    partial(Precision, class_type="multiclass", average=None),
    partial(Recall, class_type="multiclass", average="macro", num_classes=6),
    partial(FBeta, beta=2.0, class_type="multiclass", average="weighted", zero_division="nan"),
    partial(F1, class_type="multilabel", average=None),
    partial(MCC, class_type="multiclass", average="macro"),
    partial(MCC, class_type="multilabel"),
    PCC,
    partial(Precision, average=None),
    ConfusionMatrix,
    partial(ConfusionMatrix, num_classes=6, normalize="true"),
    partial(ConfusionMatrix, class_type="binary", normalize="all"),
]


def _grouped_data(make, rng, rows):
    class_type = getattr(make(), "class_type", "multiclass")
    if class_type == "multilabel":
        return rng.integers(0, 2, (rows, 3)), rng.random((rows, 3))
    if class_type == "binary":
        return rng.integers(0, 2, rows), rng.random(rows)
    return rng.integers(0, 6, rows), rng.integers(0, 6, rows)


@pytest.mark.parametrize("make", GROUPED, ids=lambda m: repr(m()))
@pytest.mark.parametrize("weighted", [False, True])
def test_grouped_state_of_each_group_is_its_rows_alone(make, weighted):
    rng = np.random.default_rng(7)
    rows, groups = 300, 9
    labels, preds = _grouped_data(make, rng, rows)
    weights = rng.random(rows) * (rng.random(rows) > 0.2) if weighted else None
    codes = np.minimum(rng.geometric(0.3, rows) - 1, groups - 1)  # groups of unequal sizes
    template = make()
    assert template.sums_rows()
    grouped = GroupedState(template.state_specs())
    for start in range(0, rows, 70):
        part = slice(start, start + 70)
        terms = template.row_terms(
            labels[part], preds[part], None if weights is None else weights[part]
        )
        grouped.add(terms, codes[part], groups)
    for group in range(groups):
        mask = codes == group
        alone = make().update(labels[mask], preds[mask], None if weights is None else weights[mask])
        assert same_bits(_bits(template.compute_state(grouped.state(group))), _bits(alone.get()[1]))
    everything = make().update(labels, preds, weights)
    assert same_bits(_bits(template.compute_state(grouped.total())), _bits(everything.get()[1]))


def test_evaluate_by_group_is_each_groups_rows_alone(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from streammetric.metrics.specs import build_metrics

    rng = np.random.default_rng(11)
    rows, classes = 4000, 5
    labels = rng.integers(0, classes, rows)
    probs = rng.dirichlet(np.ones(classes), rows)
    probs[np.arange(rows), labels] += rng.random(rows)  # better than chance
    probs /= probs.sum(axis=1, keepdims=True)
    weights = rng.random(rows) * (rng.random(rows) > 0.1)
    names = np.array([f"g{g}" for g in range(12)], dtype=object)[rng.integers(0, 12, rows)]
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), classes),
            "w": weights,
            "slice": pa.array(names, pa.string()),
        }
    )
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path, row_group_size=900)
    specs = [
        "precision:average=macro,class_type=multiclass",
        "recall:average=weighted,class_type=multiclass,zero_division=nan",
        "fbeta:beta=2,average=micro,class_type=multiclass,num_classes=5",
        "f1:average=macro,class_type=multiclass",
        "mcc:class_type=multiclass,average=macro",
        "pcc",
    ]
    for weight_column in (None, "w"):
        result = sm.evaluate(path, specs, by="slice", weights=weight_column, threads=2)
        assert len(result.groups) == 12
        for group in result.groups:
            mask = names == group["key"]["slice"]
            alone = build_metrics(specs)
            alone.update(
                labels[mask], probs[mask], None if weight_column is None else weights[mask]
            )
            assert same_bits(list(group["metrics"].values()), alone.get()[1]), group["key"]
        everything = build_metrics(specs).update(
            labels, probs, None if weight_column is None else weights
        )
        assert same_bits(list(result.metrics.values()), everything.get()[1])


# -- state, migration, errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "labels", "preds", "added"),
    [
        (partial(F1, class_type="multiclass", average="macro"), [0, 1, 2, 2], [0, 2, 1, 2], []),
        (partial(MCC, class_type="multiclass"), [0, 1, 2, 2], [0, 2, 1, 2], []),
        (PCC, [0, 1, 2, 2], [0, 2, 1, 2], []),
        (
            partial(F1, class_type="multilabel"),
            [[0, 1], [1, 1], [0, 0]],
            [[0.2, 0.9], [0.7, 0.1], [0.8, 0.3]],
            ["sum_weight"],
        ),
    ],
)
def test_state_dicts_of_the_earlier_format_load(make, labels, preds, added):
    """Before weights, multiclass and multilabel states had no weighted entries (and multilabel
    no sum_weight): such a state loads as rows without weights."""
    metric = make().update(labels, preds)
    metric.reset_local()
    metric.update(labels[:2], preds[:2])
    state = json.loads(json.dumps(metric.state_dict()))
    new = {f"weighted_{n}" for n in ("true_positives", "false_positives", "false_negatives")}
    for window in ("local", "past"):
        assert new | set(added) <= set(state[window])
        for name in (*new, *added):
            del state[window][name]
    restored = make().load_state_dict(state)
    assert restored.state_dict() == metric.state_dict()
    assert same_bits(
        [restored.get()[1], restored.get_global()[1]], [metric.get()[1], metric.get_global()[1]]
    )
    del state["local"]["num_inst"]
    with pytest.raises(sm.StateError) as info:
        make().load_state_dict(state)
    assert info.value.field == "local.num_inst"
    partly = json.loads(json.dumps(metric.state_dict()))
    del partly["past"]["weighted_false_negatives"]  # some new entries but not all: not old
    with pytest.raises(sm.StateError) as info:
        make().load_state_dict(partly)
    assert info.value.field == "past.weighted_false_negatives"


@pytest.mark.parametrize(
    ("make", "mutate", "field"),
    [
        (
            partial(F1, class_type="multiclass"),
            lambda s: s["local"].update(num_inst=1),  # fewer than the unweighted rows
            "local",
        ),
        (
            PCC,
            lambda s: s["local"]["weighted_true_positives"]["sums"][0].update(num_pos_inf=1),
            "local",
        ),
        (
            partial(Precision, class_type="multiclass", num_classes=3),
            lambda s: s["local"].update(true_positives={"shape": [2], "values": [1, 1]}),
            "local.true_positives",
        ),
        (
            ConfusionMatrix,
            lambda s: s["local"]["confusion"]["values"].__setitem__(0, 5),
            "local",
        ),
    ],
)
def test_inconsistent_states_are_refused_naming_the_field(make, mutate, field):
    metric = make().update([0, 1, 2, 2], [0, 2, 1, 2], [1.0, 2.0, 0.5, 1.0])
    metric.update([0, 1], [0, 0])
    state = json.loads(json.dumps(metric.state_dict()))
    if make is ConfusionMatrix:
        state = json.loads(json.dumps(make().update([0, 1], [0, 0]).state_dict()))
    mutate(state)
    with pytest.raises(sm.StateError) as info:
        make().load_state_dict(state)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("make", "labels", "preds", "message"),
    [
        (
            partial(Precision, class_type="multiclass", num_classes=3),
            [0, 3, 1],
            [0, 1, 1],
            "`labels` row 1 must be a class index in [0, 3), got [3]",
        ),
        (
            partial(Recall, class_type="multiclass", num_classes=3),
            [0, 1, 1],
            [0, 1, 4],
            "`preds` row 2 must be a class index in [0, 3), got [4]",
        ),
        (
            partial(F1, class_type="multiclass", num_classes=3),
            [0, 1],
            np.zeros((2, 4)),
            "`preds` must hold num_classes=3 class scores along axis -1, got shape (2, 4)",
        ),
        (
            partial(FBeta, class_type="multilabel", num_classes=3),
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            "`labels` must have num_classes=3 label columns for class_type='multilabel', got 2",
        ),
        (
            partial(ConfusionMatrix, num_classes=2),
            [0, 2],
            [0, 1],
            "`labels` row 1 must be a class index in [0, 2), got [2]",
        ),
        (
            ConfusionMatrix,
            [0, 5000],
            [0, 1],
            "`labels` row 1 must be a class index in [0, 4096) for a confusion matrix without num_classes, got [5000]",
        ),
        (
            partial(ConfusionMatrix, class_type="binary"),
            [0, 2],
            [0.1, 0.7],
            "`labels` row 1 must be 0 or 1 for class_type='binary' (class indices of more classes: "
            "class_type='multiclass'), got [2]",
        ),
    ],
)
def test_bad_input_is_one_invalid_input_line_naming_the_row(make, labels, preds, message):
    with pytest.raises(sm.InvalidInputError) as info:
        make().update(np.asarray(labels), np.asarray(preds))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_invalid_rows_know_num_classes():
    metric = Precision(class_type="multiclass", num_classes=3)
    labels, preds = np.array([0, 3, 1, 2]), np.array([0, 1, 5, 2])
    assert metric.invalid_rows(labels, preds).tolist() == [False, True, True, False]
    metric.update(labels[[0, 3]], preds[[0, 3]])
    matrix = ConfusionMatrix(num_classes=2)
    assert matrix.invalid_rows(np.array([0, 2]), np.array([1, 1])).tolist() == [False, True]
    with pytest.raises(sm.InvalidInputError, match="`sample_weight` row 1 must be finite and >= 0"):
        Precision(class_type="multiclass").update([0, 1], [0, 1], sample_weight=[1.0, -1.0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (partial(Precision, zero_division=2), "`zero_division` must be 0, 1 or 'nan', got 2"),
        (
            partial(Recall, average="samples"),
            "`average` must be one of micro, macro, weighted, None",
        ),
        (partial(FBeta, beta=-1.0), "`beta` must be a number >= 0, got -1.0"),
        (partial(F1, num_classes=0), "`num_classes` must be None or an int >= 1, got 0"),
        (partial(F1, num_classes=3), "`num_classes` must be None or 2 for class_type='binary'"),
        (
            partial(ConfusionMatrix, normalize="rows"),
            "`normalize` must be one of None, true, pred, all",
        ),
        (partial(ConfusionMatrix, num_classes=5000), "<= 4,096"),
        (
            partial(ConfusionMatrix, class_type="multilabel"),
            "`class_type` must be one of binary, multiclass for a confusion matrix",
        ),
        (partial(MCC, average="weighted"), "`average` must be one of micro, macro, got 'weighted'"),
    ],
)
def test_bad_options_are_one_config_error_line(make, message):
    with pytest.raises(sm.ConfigError) as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_names_configs_and_spellings():
    assert [sm.create(n).name for n in ("precision", "recall", "fbeta", "confusion_matrix")] == [
        "precision",
        "recall",
        "fbeta",
        "confusion_matrix",
    ]
    assert Precision(average="None").average is None and Recall(average="none").average is None
    assert Precision(average="none").get_config()["average"] is None
    assert F1(zero_division=float("nan")).get_config()["zero_division"] == "nan"
    assert ConfusionMatrix(normalize=True).get_config()["normalize"] == "true"
    from streammetric.metrics.specs import build_metrics

    built = build_metrics(
        ["precision:average=none,zero_division=nan", "confusion_matrix:normalize=true"]
    )
    assert [m.get_config()["metric"] for m in built.metrics] == ["precision", "confusionmatrix"]
    assert built.metrics[0].average is None and built.metrics[1].normalize == "true"
    assert F1("f1", None, None, "weighted").average == "weighted"  # MXNet's positional order
    assert Precision(class_type="multiclass", num_classes=4, average=None).get()[1].shape == (4,)
    assert np.isnan(Precision(average=None).get()[1]).all()
    assert math.isnan(Recall().get()[1])


def test_rows_of_weight_zero_add_nothing():
    """A class seen only in rows of weight 0 is not seen; all rows of weight 0: no class."""
    labels, preds, weights = np.array([0, 1, 2]), np.array([0, 1, 3]), np.array([1.0, 2.0, 0.0])
    per_class = Precision(class_type="multiclass", average=None)
    assert per_class.update(labels, preds, weights).get()[1].tolist() == [1.0, 1.0]
    macro = Recall(class_type="multiclass", average="macro").update(labels, preds, weights)
    assert macro.get()[1] == 1.0  # classes 0 and 1, not 2 and 3
    zero = np.zeros(3)
    assert Precision(class_type="multiclass", average=None).update(labels, preds, zero).get()[
        1
    ].shape == (0,)
    assert math.isnan(
        F1(class_type="multiclass", average="micro").update(labels, preds, zero).get()[1]
    )
    matrix = ConfusionMatrix().update(labels, preds, zero).get()[1]
    assert matrix.shape == (0, 0)
    assert ConfusionMatrix().update(labels, preds, weights).get()[1].shape == (2, 2)
    assert F.precision_score(
        labels, preds, class_type="multiclass", average=None, sample_weight=zero
    ).shape == (0,)
