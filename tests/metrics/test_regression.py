"""Regression metrics through the shared harness, against NumPy / scikit-learn / SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import mean_absolute_error, mean_squared_error, mean_squared_log_error

import streammetric as sm
from tests.helpers.harness import check_metric

rng = np.random.default_rng(7)
Y = rng.normal(size=200)
P = Y + rng.normal(scale=0.5, size=200)
W = rng.random(200)


@pytest.mark.parametrize(
    ("make", "reference"),
    [
        (sm.MAE, lambda y, p, w: mean_absolute_error(y, p, sample_weight=w)),
        (sm.MSE, lambda y, p, w: mean_squared_error(y, p, sample_weight=w)),
        (sm.RMSE, lambda y, p, w: np.sqrt(mean_squared_error(y, p, sample_weight=w))),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_errors_match_sklearn(make, reference, weighted):
    check_metric(make, Y, P, weights=W if weighted else None, reference=reference, rtol=1e-13)


@pytest.mark.parametrize("weighted", [False, True])
def test_msle_matches_sklearn(weighted):
    y, p = np.exp(Y), np.exp(P) - 0.5  # > -1, as the log needs
    check_metric(
        sm.MSLE,
        y,
        p,
        weights=W if weighted else None,
        reference=lambda y, p, w: mean_squared_log_error(y, p, sample_weight=w),
        rtol=1e-13,
    )
    assert sm.functional.mean_squared_log_error(y, p) == sm.MSLE().update(y, p).get()[1]


def test_msle_refuses_values_at_or_below_minus_one_and_skip_drops_their_rows():
    y, p = np.array([0.5, 2.0, 3.0]), np.array([1.0, -1.0, 2.0])
    with pytest.raises(sm.InvalidInputError, match=r"`preds` row 1 must be > -1, got \[-1.0\]"):
        sm.MSLE().update(y, p)
    metric = sm.MSLE()
    assert metric.invalid_rows(y, p).tolist() == [False, True, False]
    assert metric.invalid_rows(y, np.array([1.0, np.inf, 2.0])).tolist() == [False, True, False]
    assert metric.invalid_rows(y, np.abs(p)) is None


def test_msle_on_invalid_skip_evaluates_the_other_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    y, p = np.array([0.5, 2.0, 3.0]), np.array([1.0, -1.0, 2.0])
    pq.write_table(pa.table({"label": y, "preds": p}), tmp_path / "rows.parquet")
    result = sm.evaluate(tmp_path / "rows.parquet", "msle", on_invalid="skip").to_dict()
    assert result["invalid_rows"] == 1
    assert result["metrics"]["msle"] == sm.MSLE().update(y[[0, 2]], p[[0, 2]]).get()[1]


def test_mxnet_documented_examples():
    labels, preds = (
        np.array([2.5, 0.0, 2, 8]).reshape(4, 1),
        np.array([3, -0.5, 2, 7]).reshape(4, 1),
    )
    assert sm.MAE().update([labels], [preds]).get() == ("mae", 0.5)
    assert sm.MSE().update([labels], [preds]).get() == ("mse", 0.375)
    # MXNet's documented 0.612372457981 is sqrt(0.375) in float32; ours is the float64 root
    rmse = sm.RMSE().update([labels], [preds]).get()[1]
    assert rmse == np.sqrt(0.375) and float(np.float32(rmse)) == pytest.approx(
        0.612372457981, rel=1e-11
    )


def test_rmse_is_root_of_global_mse_not_mean_of_batch_roots():
    m = sm.RMSE()
    m.update(np.array([0.0]), np.array([1.0])).update(
        np.array([0.0, 0.0, 0.0]), np.array([3.0, 3.0, 3.0])
    )
    assert m.get()[1] == pytest.approx(np.sqrt((1 + 27) / 4))  # MXNet 1.x: (1 + 3) / 2 = 2
    assert m.num_inst == 4  # per sample, not per batch


def test_multi_output_rows():
    y, p = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    check_metric(sm.MAE, y, p, reference=float(np.abs(y - p).mean()), rtol=1e-13)


def test_pearson_matches_scipy():
    check_metric(
        sm.PearsonCorrelation,
        Y,
        P,
        reference=lambda y, p, w: scipy.stats.pearsonr(y, p)[0],
        rtol=1e-13,
    )


def test_pearson_has_no_cancellation():
    # a huge offset would destroy a naive n*Sxx - Sx**2 in float64
    y = 1e8 + np.arange(1000) * 2.0**-10
    p = y + np.round(np.sin(np.arange(1000)), 3)
    # the offset is removed exactly (y - 1e8 is exact), so scipy sees the same data, well scaled
    check_metric(
        sm.PearsonCorrelation,
        y,
        p,
        reference=lambda y, p, w: scipy.stats.pearsonr(y - 1e8, p - 1e8)[0],
        rtol=1e-12,
    )


def test_loss_metric_averages_elements():
    check_metric(
        sm.Loss, np.zeros(60), rng.random(60), reference=lambda y, p, w: p.mean(), rtol=1e-14
    )


@pytest.mark.parametrize(
    ("labels", "preds", "message"),
    [
        (
            np.zeros(3),
            np.zeros(2),
            "`labels` and `preds` must have the same number of rows, got 3 and 2",
        ),
        (np.array([0.0, np.nan]), np.zeros(2), "`labels` row 1 must be finite, got [nan]"),
        (np.zeros(2), np.array([0.0, np.inf]), "`preds` row 1 must be finite, got [inf]"),
        (np.array(["a", "b"]), np.zeros(2), "`labels` must be numeric, got dtype <U1"),
        (
            np.zeros((2, 2)),
            np.zeros((2, 3)),
            "must have the same shape per row, got (2, 2) and (2, 3)",
        ),
    ],
)
def test_bad_input_is_one_clear_line(labels, preds, message):
    with pytest.raises(sm.InvalidInputError) as info:
        sm.MAE().update(labels, preds)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_weights():
    with pytest.raises(
        sm.InvalidInputError, match=r"`sample_weight` row 1 must be finite and >= 0, got -1.0"
    ):
        sm.MAE().update(np.zeros(2), np.zeros(2), sample_weight=np.array([1.0, -1.0]))
