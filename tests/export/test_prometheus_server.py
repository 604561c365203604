"""A real Prometheus scrapes serve() and stores exactly the values the metric objects hold."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

import streammetric as sm
from streammetric.export import Tracker, serve

from .conftest import PrometheusServer, TlsFiles, wait_until


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def stored(prometheus: PrometheusServer, expr: str) -> dict[str, float]:
    """``{model label: value}`` of an instant query (values parsed exactly from Go's text)."""
    return {r["metric"].get("model", ""): float(r["value"][1]) for r in prometheus.query(expr)}


def wait_for_values(
    prometheus: PrometheusServer, expr: str, expected: dict[str, float], timeout: float = 20.0
) -> dict[str, float]:
    def check() -> Any:
        got = stored(prometheus, expr)
        return (
            got
            if {k: bits(v) for k, v in got.items()} == {k: bits(v) for k, v in expected.items()}
            else None
        )

    return dict(wait_until(check, timeout, f"{expr} == {expected!r}"))


def random_batch(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=size), rng.normal(size=size) * np.pi


def test_prometheus_stores_the_exact_global_values(prometheus: PrometheusServer) -> None:
    rng = np.random.default_rng(5)
    tracker = Tracker(["mae", "rmse"], group_by=["model"])
    run = "exact"
    with serve(tracker, port=prometheus.plain_port, run=run):
        for round_ in range(2):  # values change between scrapes: each round must land exactly
            for model in ("linear", "tree"):
                labels, preds = random_batch(rng, 1000 + round_)
                tracker.update(labels, preds, group=model)
            expected = {
                model: metrics[0].get_global()[1]
                for model in ("linear", "tree")
                for metrics in [tracker.metrics_for(model)]
            }
            query = f'streammetric_mae{{job="streammetric",run="{run}",scope="global"}}'
            got = wait_for_values(prometheus, query, expected)
            assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in expected.items()}
        rmse = {m: tracker.metrics_for(m)[1].get_global()[1] for m in ("linear", "tree")}
        wait_for_values(prometheus, f'streammetric_rmse{{run="{run}",scope="global"}}', rmse)
        rows = stored(prometheus, f'streammetric_rows_total{{run="{run}"}}')
        assert rows == {"linear": 2001.0, "tree": 2001.0}


def test_prometheus_stores_local_windows_and_nan(prometheus: PrometheusServer) -> None:
    tracker = Tracker("mae")
    run = "window"
    with serve(tracker, port=prometheus.plain_port, run=run):
        tracker.update([0.0, 0.0], [0.1, 0.7])
        tracker.reset_local()  # local window empty: NaN
        query = f'streammetric_mae{{run="{run}",scope="local"}}'

        def local_is_nan() -> bool:
            values = stored(prometheus, query)
            return bool(values) and np.isnan(values[""])

        wait_until(local_is_nan, 20.0, f"{query} == NaN")
        tracker.update([0.0], [1.0 / 3.0])
        wait_for_values(prometheus, query, {"": tracker.metrics_for()[0].get()[1]})
        glob = f'streammetric_mae{{run="{run}",scope="global"}}'
        wait_for_values(prometheus, glob, {"": tracker.metrics_for()[0].get_global()[1]})


def test_prometheus_scrapes_tls_with_basic_auth(
    prometheus: PrometheusServer, tls_files: TlsFiles
) -> None:
    if prometheus.tls_port is None:
        pytest.skip("no openssl: Prometheus runs without the TLS job")
    metric = sm.MSE().update(np.arange(7.0), np.arange(7.0) / 3)
    with serve(
        metric,
        port=prometheus.tls_port,
        run="tls",
        tls_cert=tls_files.cert,
        tls_key=tls_files.key,
        basic_auth_file=tls_files.auth_file,
    ):
        query = 'streammetric_mse{job="streammetric_tls",run="tls",scope="global"}'
        wait_for_values(prometheus, query, {"": metric.get_global()[1]})
        up = stored(prometheus, 'up{job="streammetric_tls"}')
        assert up == {"": 1.0}
