"""The one harness every metric goes through.

``check_metric(make, labels, preds, reference=...)`` feeds the same rows to fresh metrics in many
ways and asserts:

* the global value equals ``reference`` (a number, or a function of the concatenated arrays);
* the value is the same *bits* whatever the batch sizes, the order of the rows, and the tree in
  which partial metrics are merged;
* ``get()`` follows ``reset_local`` while ``get_global()`` keeps everything; ``reset`` empties;
* ``state_dict`` survives a JSON round trip, ``get_config`` rebuilds an equal metric, pickling works.
"""

from __future__ import annotations

import itertools
import json
import math
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import streammetric as sm

Reference = float | Callable[..., float] | None


def _take(array: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if array is None else array[index]


def flat_values(value: Any) -> list[float]:
    """A metric's value as a list of floats: a list of values (a composite's), a NumPy array
    (one value per class, a confusion matrix: its shape first, as floats, then its values in
    order), or one value."""
    if isinstance(value, list):
        return [v for each in value for v in flat_values(each)]
    if isinstance(value, np.ndarray):
        return [float(n) for n in value.shape] + [float(v) for v in value.ravel()]
    return [value]


def _values(metric: sm.EvalMetric, scope: str = "global") -> list[float]:
    _, value = metric.get_global() if scope == "global" else metric.get()
    return flat_values(value)


def same_bits(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when both lists hold the same float64 bit patterns (NaN equals NaN)."""
    return len(a) == len(b) and all(
        np.float64(x).tobytes() == np.float64(y).tobytes() or (math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


def _feed(
    metric: sm.EvalMetric,
    labels: np.ndarray,
    preds: np.ndarray,
    weights: np.ndarray | None,
    bounds: Sequence[int],
) -> sm.EvalMetric:
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            metric.update(
                labels[start:stop],
                preds[start:stop],
                None if weights is None else weights[start:stop],
            )
    return metric


def _random_bounds(rng: np.random.Generator, n: int) -> list[int]:
    cuts = (
        sorted(
            rng.choice(
                np.arange(1, n), size=min(n - 1, int(rng.integers(0, 6))), replace=False
            ).tolist()
        )
        if n > 1
        else []
    )
    return [0, *cuts, n]


def check_metric(
    make: Callable[[], sm.EvalMetric],
    labels: Any,
    preds: Any,
    *,
    weights: Any = None,
    reference: Reference = None,
    rtol: float = 1e-12,
    atol: float = 0.0,
    permute: bool = True,
    seed: int = 0,
    trials: int = 6,
) -> list[float]:
    """Run every generic check on ``make()`` with these rows; return the global value(s)."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    n = labels.shape[0]
    rng = np.random.default_rng(seed)

    whole = _feed(make(), labels, preds, weights, [0, n])
    expected = _values(whole)

    # reference value
    if reference is not None:
        ref = reference(labels, preds, weights) if callable(reference) else reference
        ref_list = flat_values(list(ref) if isinstance(ref, tuple) else ref)
        np.testing.assert_allclose(expected, ref_list, rtol=rtol, atol=atol, equal_nan=True)

    # same bits under any re-chunking, row order and merge tree
    for _ in range(trials):
        order = rng.permutation(n) if permute else np.arange(n)
        bounds = _random_bounds(rng, n)
        chunked = _feed(make(), labels[order], preds[order], _take(weights, order), bounds)
        assert same_bits(_values(chunked), expected), (bounds, _values(chunked), expected)
        parts = [
            _feed(
                make(),
                labels[order][a:b],
                preds[order][a:b],
                None if weights is None else weights[order][a:b],
                [0, b - a],
            )
            for a, b in itertools.pairwise(bounds)
        ]
        while len(parts) > 1:  # merge in a random tree
            i = int(rng.integers(0, len(parts) - 1))
            parts[i : i + 2] = [parts[i].merge(parts[i + 1])]
        assert same_bits(_values(parts[0]), expected)

    # local vs global windows
    if n >= 2:
        half = n // 2
        windowed = _feed(make(), labels, preds, weights, [0, half])
        windowed.reset_local()
        _feed(
            windowed,
            labels[half:],
            preds[half:],
            None if weights is None else weights[half:],
            [0, n - half],
        )
        only_second = _feed(
            make(),
            labels[half:],
            preds[half:],
            None if weights is None else weights[half:],
            [0, n - half],
        )
        assert same_bits(_values(windowed, "local"), _values(only_second, "local"))
        assert same_bits(_values(windowed), expected)
        assert windowed.global_num_inst == whole.global_num_inst
        assert windowed.num_inst == only_second.num_inst

    # state_dict through JSON, config round trip, pickle
    state = json.loads(json.dumps(whole.state_dict()))
    rebuilt = sm.create(json.loads(json.dumps(whole.get_config())))
    assert rebuilt.get_config() == whole.get_config()
    rebuilt.load_state_dict(state)
    assert same_bits(_values(rebuilt), expected)
    assert same_bits(_values(pickle.loads(pickle.dumps(whole))), expected)

    # reset
    emptied = _feed(make(), labels, preds, weights, [0, n])
    emptied.reset()
    assert _nothing_seen(emptied.get_global()[1]) and emptied.global_num_inst == 0
    return expected


def _nothing_seen(value: Any) -> bool:
    """The value of a metric that saw no rows: NaN (per class too); a matrix of counts is 0."""
    if isinstance(value, list):
        return all(_nothing_seen(v) for v in value)
    if isinstance(value, np.ndarray):
        return bool(np.isnan(value).all() or (value.ndim == 2 and not value.any()))
    return math.isnan(value)
