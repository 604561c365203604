"""MXNet 1.9.1's ``mx.metric`` constructors: every argument is accepted, in MXNet's order.

The signatures and the numbers below were recorded from the real MXNet 1.9.1 (numpy 1.23.5),
so these tests do not need MXNet: ``inspect.signature(mx.metric.<Class>.__init__)``, the class
and ``.name`` of ``mx.metric.create(<name>)``, and ``metric.get()`` after updating with the data
below as float32 NDArrays (``mx.nd.array(np.asarray(x, dtype=np.float32))``), one update per
batch. ``scripts/compare_mxnet.py`` compares more cases with a live MXNet.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest

import streammetric as sm

REQUIRED = inspect.Parameter.empty
_IO = [("output_names", None), ("label_names", None)]

# inspect.signature(mx.metric.<Class>.__init__) in MXNet 1.9.1, without `self`
MXNET_SIGNATURES: dict[str, list[tuple[str, Any]]] = {
    "Accuracy": [("axis", 1), ("name", "accuracy"), *_IO],
    "TopKAccuracy": [("top_k", 1), ("name", "top_k_accuracy"), *_IO],
    "F1": [("name", "f1"), *_IO, ("average", "macro")],
    "MCC": [("name", "mcc"), *_IO, ("average", "macro")],
    "PCC": [("name", "pcc"), *_IO, ("has_global_stats", True)],
    "Perplexity": [("ignore_label", REQUIRED), ("axis", -1), ("name", "perplexity"), *_IO],
    "MAE": [("name", "mae"), *_IO],
    "MSE": [("name", "mse"), *_IO],
    "RMSE": [("name", "rmse"), *_IO],
    "CrossEntropy": [("eps", 1e-12), ("name", "cross-entropy"), *_IO],
    "NegativeLogLikelihood": [("eps", 1e-12), ("name", "nll-loss"), *_IO],
    "PearsonCorrelation": [("name", "pearsonr"), *_IO, ("average", "macro")],
    "Loss": [("name", "loss"), *_IO],
    "Torch": [("name", "torch"), *_IO],
    "Caffe": [("name", "caffe"), *_IO],
    "CustomMetric": [
        ("feval", REQUIRED),
        ("name", None),
        ("allow_extra_outputs", False),
        *_IO,
    ],
    "CompositeEvalMetric": [("metrics", None), ("name", "composite"), *_IO],
    "EvalMetric": [("name", REQUIRED), *_IO],  # and **kwargs, which take has_global_stats
}

# Our defaults that differ from MXNet 1.9.1's, on purpose (README: Differences from MXNet 1.x)
OUR_DEFAULTS = {
    ("CrossEntropy", "eps"): None,  # the exact convention; eps=1e-12 gives MXNet's -log(p + eps)
    ("NegativeLogLikelihood", "eps"): None,
    ("Perplexity", "ignore_label"): None,  # required in MXNet; None ignores nothing
    ("F1", "average"): "micro",  # binary: both averages are the score of the global counts
    ("MCC", "average"): "micro",
    ("PearsonCorrelation", "average"): "micro",  # both averages are the global r
    ("EvalMetric", "name"): None,  # the class's default_name; required if it has none
}

# mx.metric.create(name) in MXNet 1.9.1: (class, .name); perplexity with ignore_label=None,
# top_k_accuracy with top_k=2 (MXNet asserts top_k > 1)
MXNET_CREATE = {
    "acc": ("Accuracy", "accuracy"),
    "accuracy": ("Accuracy", "accuracy"),
    "top_k_accuracy": ("TopKAccuracy", "top_k_accuracy_2"),
    "top_k_acc": ("TopKAccuracy", "top_k_accuracy_2"),
    "topkaccuracy": ("TopKAccuracy", "top_k_accuracy_2"),
    "f1": ("F1", "f1"),
    "mcc": ("MCC", "mcc"),
    "pcc": ("PCC", "pcc"),
    "perplexity": ("Perplexity", "perplexity"),
    "mae": ("MAE", "mae"),
    "mse": ("MSE", "mse"),
    "rmse": ("RMSE", "rmse"),
    "ce": ("CrossEntropy", "cross-entropy"),
    "crossentropy": ("CrossEntropy", "cross-entropy"),
    "nll_loss": ("NegativeLogLikelihood", "nll-loss"),
    "negativeloglikelihood": ("NegativeLogLikelihood", "nll-loss"),
    "pearsonr": ("PearsonCorrelation", "pearsonr"),
    "pearsoncorrelation": ("PearsonCorrelation", "pearsonr"),
    "loss": ("Loss", "loss"),
    "torch": ("Torch", "torch"),
    "caffe": ("Caffe", "caffe"),
    "composite": ("CompositeEvalMetric", "composite"),
    "compositeevalmetric": ("CompositeEvalMetric", "composite"),
}


def _feval(label: np.ndarray, pred: np.ndarray) -> float:
    return float(np.abs(label - pred).sum())


# a valid, non-default value per MXNet argument, for positional and keyword calls
VALUES: dict[str, Any] = {
    "name": "given",
    "output_names": ["out"],
    "label_names": ["label"],
    "top_k": 5,
    "average": "macro",
    "has_global_stats": False,
    "eps": 1e-3,
    "ignore_label": 0,
    "feval": _feval,
    "allow_extra_outputs": True,
    "metrics": ["acc", "ce"],
}
AXIS = {"Accuracy": -1, "Perplexity": 1}  # each class's non-default axis


def _values(klass: str) -> list[Any]:
    return [AXIS[klass] if p == "axis" else VALUES[p] for p, _ in MXNET_SIGNATURES[klass]]


def _state(metric: sm.EvalMetric) -> dict[str, Any]:
    if isinstance(metric, sm.CustomMetric):  # no JSON config: compare what it keeps
        return {"name": metric.name, "extra": metric._allow_extra_outputs, "f": metric._feval}
    return metric.get_config()


def _shimmed(klass: type) -> bool:
    """Whether the class has keyword-only options and EvalMetric's MXNet shim."""
    return hasattr(klass.__init__, "_keyword_init")


@pytest.mark.parametrize("klass", sorted(MXNET_SIGNATURES))
def test_mxnet_arguments_in_mxnets_order_with_its_defaults(klass):
    """MXNet's positional order is the class's ``mxnet_positional`` (its options keyword-only,
    positional calls mapped by the base class's shim) or, for a class without the shim
    (EvalMetric itself), its signature's."""
    cls = getattr(sm, klass)
    parameters = inspect.signature(cls).parameters
    theirs = MXNET_SIGNATURES[klass]
    names = [name for name, _ in theirs]
    if _shimmed(cls):
        assert cls.mxnet_positional == tuple(names)
        assert {p.kind for p in parameters.values()} == {inspect.Parameter.KEYWORD_ONLY}
    else:
        assert list(parameters)[: len(names)] == names
        for name in names:
            assert parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
    for name, default in theirs:
        assert parameters[name].default == OUR_DEFAULTS.get((klass, name), default), name


@pytest.mark.parametrize("klass", sorted(MXNET_SIGNATURES))
def test_every_mxnet_argument_is_taken_by_position_and_by_keyword(klass):
    values = _values(klass)
    names = [name for name, _ in MXNET_SIGNATURES[klass]]
    by_position = getattr(sm, klass)(*values)
    by_keyword = getattr(sm, klass)(**dict(zip(names, values, strict=True)))
    assert _state(by_position) == _state(by_keyword)
    if klass in ("CustomMetric", "EvalMetric"):
        return
    config = by_position.get_config()
    for name, value in zip(names, values, strict=True):
        if name == "metrics":
            assert [c["metric"] for c in config["metrics"]] == ["accuracy", "crossentropy"]
        else:
            assert config[name] == value, name
    assert sm.create(config).get_config() == config  # and the config rebuilds it


def test_the_positional_calls_of_mxnet_code():
    assert sm.Perplexity(None).get_config()["ignore_label"] is None
    assert sm.TopKAccuracy(5).name == "top_k_accuracy_5"
    assert sm.CrossEntropy(1e-12).get_config()["eps"] == 1e-12
    assert sm.NegativeLogLikelihood(1e-12).get_config()["eps"] == 1e-12
    assert sm.Accuracy(-1).axis == -1
    assert sm.F1("f1", None, None, "macro").average == "macro"
    assert sm.PCC("pcc", None, None, False).get_config()["has_global_stats"] is False
    assert sm.create("perplexity", None).name == "perplexity"
    assert sm.create("top_k_accuracy", 5).name == "top_k_accuracy_5"
    assert sm.create("pearsonr", average="micro").average == "micro"
    assert sm.create("pearsonr", "r", None, None, "macro").average == "macro"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: sm.MAE("a", None, None, 1), r"MAE takes at most 3 positional arguments \(name, "),
        (lambda: sm.Perplexity(None, -1, "p", None, None, 2), r"at most 5 positional arguments"),
        (lambda: sm.ECE(5), r"ECE takes keyword arguments only, got 1 positional argument$"),
        (lambda: sm.BinaryCrossEntropy("b"), "BinaryCrossEntropy takes keyword arguments only"),
        (lambda: sm.CrossEntropy(1e-3, eps=1e-3), "got `eps` both by position and by keyword"),
        (lambda: sm.create("mae", "a", None, None, 1), "MAE takes at most 3 positional"),
        (lambda: sm.create("mae", bogus=1), "bad arguments for metric MAE: .*bogus"),
        (lambda: sm.create(_feval, "f", False, None, None, 1), "CustomMetric takes at most 5"),
        (lambda: sm.create(_feval, bogus=1), "bad arguments for metric CustomMetric"),
    ],
)
def test_the_shim_refuses_what_mxnet_would_not_take(make, message):
    with pytest.raises(sm.ConfigError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_every_other_argument_is_keyword_only():
    with pytest.raises(TypeError, match="bogus"):
        sm.MAE(bogus=1)
    assert sm.MAE().name == "mae" and sm.Torch("t").name == "t"
    assert sm.create(_feval, "f").name == "f"  # MXNet's create(feval, name)
    for klass in (sm.MAE, sm.RMSE, sm.Torch, sm.CrossEntropy, sm.AUC, sm.CompositeEvalMetric):
        kinds = {p.kind for p in inspect.signature(klass).parameters.values()}
        assert kinds == {inspect.Parameter.KEYWORD_ONLY}, klass
    assert str(inspect.signature(sm.RMSE)) == (
        "(*, name: 'str' = 'rmse', output_names: 'list[str] | None' = None, "
        "label_names: 'list[str] | None' = None) -> 'None'"
    )


def test_every_built_in_metric_has_the_shim():
    """Every built-in metric declares its MXNet order (``()`` when MXNet has no such metric)
    and takes keywords only; no class repeats its base class's constructor to pass it on."""
    from streammetric._metric_table import METRICS

    for row in METRICS:
        klass = getattr(sm, row.cls)
        assert _shimmed(klass), row.cls
        kinds = {p.kind for p in inspect.signature(klass).parameters.values()}
        assert kinds == {inspect.Parameter.KEYWORD_ONLY}, row.cls


def test_the_class_scores_share_one_constructor():
    """F1, Precision and Recall have no constructor of their own: `_ClassScore`'s, named after
    the class's ``default_name``; FBeta's adds ``beta`` and passes the rest on."""
    from streammetric.metrics.classification import _ClassScore, _OutcomeMetric

    for klass in (sm.F1, sm.Precision, sm.Recall):
        assert klass.__init__._keyword_init is _ClassScore.__init__, klass
    assert sm.MCC.__init__._keyword_init is _OutcomeMetric.__init__._keyword_init
    shown = list(inspect.signature(sm.FBeta).parameters)
    assert shown == ["beta", *inspect.signature(sm.F1).parameters]
    assert [sm.F1().name, sm.Precision().name, sm.Recall().name, sm.FBeta().name] == [
        "f1",
        "precision",
        "recall",
        "fbeta",
    ]
    assert sm.Precision(name="p", average="macro").get_config()["average"] == "macro"
    assert sm.FBeta(beta=2, class_type="multiclass").get_config()["beta"] == 2.0
    with pytest.raises(sm.ConfigError, match="Precision takes keyword arguments only"):
        sm.Precision("p")
    with pytest.raises(sm.ConfigError, match="F1 takes at most 4 positional arguments"):
        sm.F1("f1", None, None, "macro", "multiclass")  # class_type: by keyword
    assert sm.MCC(class_type="multiclass", num_classes=3).num_classes == 3


def test_a_user_subclass_keeps_its_own_constructor():
    class Halved(sm.CrossEntropy):  # MXNet style: its own positional constructor
        def __init__(self, scale, name="halved"):
            self.scale = scale
            super().__init__(None, name, convention="keras")

    metric = Halved(0.5)
    assert (metric.scale, metric.name, metric.convention.name) == (0.5, "halved", "keras")

    class Plain(sm.MAE):  # no constructor: MAE's, keyword-only, MXNet's positional order
        pass

    assert Plain("p").name == "p" and Plain().name == "mae"

    class Named(sm.MAE):
        default_name = "named"

    assert Named().name == "named" and Named("n", ["out"]).output_names == ["out"]


@pytest.mark.parametrize("name", sorted(MXNET_CREATE))
def test_mxnets_registered_names(name):
    klass, display = MXNET_CREATE[name]
    metric = sm.create(name, 2) if "top" in name else sm.create(name)
    assert (type(metric).__name__, metric.name) == (klass, display)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: sm.PearsonCorrelation(average="weighted"), "`average` must be one of"),
        (lambda: sm.MCC(average=None), "`average` must be one of"),
        (lambda: sm.F1(average="samples"), "`average` must be one of"),
        (lambda: sm.PCC(has_global_stats="no"), "`has_global_stats` must be True or False"),
        (lambda: sm.Perplexity(0.5), "`ignore_label` must be an int or None"),
        (lambda: sm.Perplexity(None, "last"), "`axis` must be an int"),
        (lambda: sm.CrossEntropy(-1.0), "`eps` must be a finite number >= 0 or None"),
        (lambda: sm.NegativeLogLikelihood("1e-12"), "`eps` must be a finite number >= 0"),
        (lambda: sm.Accuracy(0), "`axis` must be a nonzero int"),
        (lambda: sm.TopKAccuracy(0), "`top_k` must be an int >= 1"),
        (lambda: sm.MAE(output_names="out"), "`output_names` must be None or a list of str"),
        (lambda: sm.Loss(label_names=[0]), "`label_names` must be None or a list of str"),
        (lambda: sm.create("pearsonr", average="x"), "`average` must be one of"),
        (lambda: sm.create("torch", eps=1.0), "bad arguments for metric Torch"),
    ],
)
def test_bad_values_raise_one_config_error_line(make, message):
    with pytest.raises(sm.ConfigError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


# -- the values' meaning, against numbers recorded from MXNet 1.9.1 -------------------------

PEARSON_BATCHES = [
    ([0.5, 1.5, 2.0, 3.5, 4.0], [0.75, 1.25, 2.5, 3.0, 4.5]),
    ([1.0, -2.0, 0.25, 5.0], [1.5, -1.0, 0.0, 4.0]),
    ([2.0, 2.5, -1.0], [1.0, 3.5, -0.5]),
]
# MXNet 1.9.1 PearsonCorrelation(average=...).get() after one update per batch above, or after
# one update with all rows
MX_PEARSON = {
    ("micro", "3 batches"): 0.9411347849883507,
    ("micro", "1 batch"): 0.9411347849883507,
    ("macro", "3 batches"): 0.9320099418174493,  # the mean of 3 per-batch coefficients
    ("macro", "1 batch"): 0.9411347849883507,
}


def _feed(metric: sm.EvalMetric, batches: list[tuple[Any, Any]], one_batch: bool) -> float:
    if one_batch:
        batches = [tuple(np.concatenate([np.asarray(b[i]) for b in batches]) for i in (0, 1))]
    for labels, preds in batches:
        metric.update(np.asarray(labels, dtype=np.float64), np.asarray(preds, dtype=np.float64))
    return metric.get()[1]


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_pearsonr_average_is_the_global_r_on_any_batching(average):
    several = _feed(sm.PearsonCorrelation(average=average), PEARSON_BATCHES, False)
    one = _feed(sm.PearsonCorrelation(average=average), PEARSON_BATCHES, True)
    assert several == one  # the same bits
    assert several == pytest.approx(MX_PEARSON["micro", "3 batches"], rel=1e-15)
    assert one == pytest.approx(MX_PEARSON[average, "1 batch"], rel=1e-15)
    # MXNet's "macro" on several batches averages per-batch values: documented, not followed
    assert abs(several - MX_PEARSON["macro", "3 batches"]) > 5e-3


def _two_columns(p: list[float]) -> list[list[float]]:
    return [[1 - v, v] for v in p]


BINARY_BATCHES = [
    ([0, 1, 1, 0, 1], _two_columns([0.75, 0.875, 0.25, 0.125, 0.625])),
    ([1, 1, 0, 0], _two_columns([0.875, 0.25, 0.625, 0.375])),
    ([0, 1, 0, 1, 1, 1], _two_columns([0.25, 0.75, 0.125, 0.875, 0.625, 0.25])),
]
# MXNet 1.9.1 F1/MCC(average=...).get() (get_global() is the same), as MX_PEARSON
MX_BINARY = {
    ("F1", "micro", "3 batches"): 0.7058823529411765,
    ("F1", "micro", "1 batch"): 0.7058823529411765,
    ("F1", "macro", "3 batches"): 0.6746031746031745,  # the mean of per-batch F1s
    ("F1", "macro", "1 batch"): 0.7058823529411765,
    ("MCC", "micro", "3 batches"): 0.32732683535398854,
    ("MCC", "micro", "1 batch"): 0.32732683535398854,
    ("MCC", "macro", "3 batches"): 0.2912578159510714,  # the mean of per-batch MCCs
    ("MCC", "macro", "1 batch"): 0.32732683535398854,
}


@pytest.mark.parametrize("klass", ["F1", "MCC"])
@pytest.mark.parametrize("average", ["micro", "macro"])
def test_binary_f1_and_mcc_average_match_mxnet_where_it_is_batch_independent(klass, average):
    several = _feed(getattr(sm, klass)(average=average), BINARY_BATCHES, False)
    one = _feed(getattr(sm, klass)(average=average), BINARY_BATCHES, True)
    assert several == one
    assert several == pytest.approx(MX_BINARY[klass, "micro", "3 batches"], rel=1e-15)
    assert one == pytest.approx(MX_BINARY[klass, average, "1 batch"], rel=1e-15)
    assert abs(several - MX_BINARY[klass, "macro", "3 batches"]) > 0.03  # documented


CLASS_LABELS = [0, 1, 2, 2, 1, 0]
CLASS_PROBS = [
    [0.5, 0.25, 0.25],
    [0.0, 0.75, 0.25],
    [0.25, 0.75, 0.0],
    [0.125, 0.125, 0.75],
    [0.5, 0.375, 0.125],
    [0.625, 0.25, 0.125],
]
# MXNet 1.9.1 Perplexity(ignore_label, axis).get(), one batch: the same for axis -1 and 1
MX_PERPLEXITY = {None: 73.02967739070989, 2: 1.8365990531792145, 0: 466.617877624839}
# MXNet 1.9.1 CrossEntropy(eps).get() and NegativeLogLikelihood(eps).get() (equal), one batch
MX_CE = {1e-12: 5.058394114176433, 1e-3: 1.6030292510986328, 0.25: 0.3795852263768514}


def _class_data() -> tuple[np.ndarray, np.ndarray]:
    return np.array(CLASS_LABELS), np.array(CLASS_PROBS, dtype=np.float32)


@pytest.mark.parametrize("ignore_label", [None, 2, 0])
@pytest.mark.parametrize("axis", [-1, 1])
def test_perplexity_ignore_label_and_axis(ignore_label, axis):
    labels, probs = _class_data()
    metric = sm.Perplexity(ignore_label, axis, convention="mxnet")  # MXNet's max(1e-10, p)
    value = metric.update([labels], [probs]).get()[1]
    # MXNet sums the batch's -log p in float32: 2.5e-7 relative for ignore_label=0
    assert value == pytest.approx(MX_PERPLEXITY[ignore_label], rel=5e-7)


def test_perplexity_axis_is_the_class_axis():
    # MXNet 1.9.1 rejects labels (n, T) with scores (n, T, k) ("Shape inconsistent"); its axis
    # is "the axis from prediction that was used to compute softmax", as here
    rng = np.random.default_rng(3)
    labels, probs = rng.integers(0, 3, (4, 5)), rng.dirichlet(np.ones(3), (4, 5))
    expected = sm.Perplexity(None, -1).update([labels], [probs]).get()
    assert sm.Perplexity(None, 1).update([labels], [np.moveaxis(probs, 2, 1)]).get() == expected
    assert sm.Perplexity(None, 2).update([labels], [probs]).get() == expected


@pytest.mark.parametrize("eps", sorted(MX_CE))
@pytest.mark.parametrize("klass", ["CrossEntropy", "NegativeLogLikelihood"])
def test_cross_entropy_eps(klass, eps):
    labels, probs = _class_data()
    value = getattr(sm, klass)(eps).update([labels], [probs]).get()[1]
    assert value == pytest.approx(MX_CE[eps], rel=2e-7)  # MXNet sums in float32


def test_accuracy_axis_and_top_k():
    labels, probs = _class_data()
    # MXNet 1.9.1: 0.6666666666666666 for each, 2-D and (2, 3, 3) scores with labels (2, 3)
    for axis in (1, -1):
        assert sm.Accuracy(axis).update([labels], [probs]).get()[1] == 2 / 3
    labels3, probs3 = labels.reshape(2, 3), probs.reshape(2, 3, 3)
    assert sm.Accuracy(2).update([labels3], [probs3]).get()[1] == 2 / 3
    assert sm.Accuracy(-1).update([labels3], [probs3]).get()[1] == 2 / 3
    assert sm.Accuracy(1).update([labels3], [np.moveaxis(probs3, 2, 1)]).get()[1] == 2 / 3
    # MXNet 1.9.1 TopKAccuracy(2): ('top_k_accuracy_2', 0.8333333333333334)
    assert sm.TopKAccuracy(2).update([labels], [probs]).get() == ("top_k_accuracy_2", 5 / 6)


# MXNet 1.9.1 PCC(has_global_stats=...): (get(), get_global()) after an update with the first
# three rows, reset_local() and an update with the last three
MX_PCC = {True: (0.6123724356957946, 0.5222329678670935), False: (0.6123724356957946,) * 2}


@pytest.mark.parametrize("has_global_stats", [True, False])
def test_pcc_has_global_stats(has_global_stats):
    labels, probs = _class_data()
    metric = sm.PCC(has_global_stats=has_global_stats).update([labels[:3]], [probs[:3]])
    metric.reset_local()
    metric.update([labels[3:]], [probs[3:]])
    local, global_ = metric.get()[1], metric.get_global()[1]
    assert (local, global_) == pytest.approx(MX_PCC[has_global_stats], rel=1e-15)
    assert metric.get_global_name_value() == [("pcc", global_)]
    assert metric.global_num_inst == (6 if has_global_stats else 3)


class Mean(sm.EvalMetric):
    """A user metric written as for MXNet: the base class takes ``has_global_stats``."""

    def __init__(self, name="mean", output_names=None, label_names=None, has_global_stats=False):
        super().__init__(name, output_names, label_names, has_global_stats=has_global_stats)

    def _update_state(self, state, label, pred, weight):
        self._add_weighted(state, np.asarray(pred, dtype=np.float64).ravel(), weight)


@pytest.mark.parametrize("has_global_stats", [True, False])
def test_base_class_has_global_stats(has_global_stats):
    metric = Mean(has_global_stats=has_global_stats).update([0], [np.array([1.0, 3.0])])
    metric.reset_local()
    metric.update([0], [np.array([8.0])])
    assert metric.get() == ("mean", 8.0)
    assert metric.get_global() == ("mean", 4.0 if has_global_stats else 8.0)
    assert (metric.global_num_inst, metric.global_sum_metric) == (
        (3, 12.0) if has_global_stats else (1, 8.0)
    )
    # as MXNet's, the base class keeps has_global_stats out of the config
    assert "has_global_stats" not in metric.get_config()
    assert not math.isnan(metric.get_global()[1])


@pytest.mark.parametrize("klass", ["Torch", "Caffe"])
def test_torch_and_caffe_are_losses(klass):
    # MXNet 1.9.1 Torch().get() / Caffe().get() after update(None, [[1, 2], [3, 6]]): 3.0
    metric = sm.create(klass.lower()).update(None, [np.array([1.0, 2.0]), np.array([3.0, 6.0])])
    assert metric.get() == (klass.lower(), 3.0)
    assert isinstance(metric, sm.Loss) and metric.higher_is_better is False
