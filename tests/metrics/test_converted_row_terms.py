"""ECE, AUC and Pearson's r say what each row adds (``_row_terms``): grouped, every group's value
is the bits of the metric updated with that group's rows alone; ECE's per-bin sums became three
``sums`` vectors, and states of the first format (one entry per bin) still load."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

import streammetric as sm
from streammetric.metrics.calibration import AUC, ECE
from streammetric.metrics.regression import PearsonCorrelation
from streammetric.metrics.state import GroupedState
from tests.helpers.harness import flat_values, same_bits

rng = np.random.default_rng(23)
ROWS, GROUPS = 500, 7
BINARY = rng.integers(0, 2, ROWS)
PROBS = np.clip(BINARY * 0.35 + rng.random(ROWS) * 0.65, 0.0, 1.0)
CLASSES = rng.integers(0, 4, ROWS)
SCORES = rng.dirichlet(np.ones(4), ROWS)
TARGETS = rng.normal(size=(ROWS, 2)) * 1e3 + 5e6  # a large offset: the exact products matter
OUTPUTS = TARGETS + rng.normal(size=(ROWS, 2))

CASES = [
    (partial(ECE, n_bins=10), BINARY, PROBS, True),
    (partial(ECE, n_bins=7, norm="l2"), CLASSES, SCORES, True),
    (partial(ECE, n_bins=5, norm="max"), CLASSES, SCORES, False),
    (partial(AUC, num_thresholds=20), BINARY, PROBS, True),
    (partial(AUC, num_thresholds=9, curve="PR"), BINARY, PROBS, True),
    (PearsonCorrelation, TARGETS[:, 0], OUTPUTS[:, 0], False),
    (PearsonCorrelation, TARGETS, OUTPUTS, False),
]


@pytest.mark.parametrize(("make", "labels", "preds", "weighted"), CASES)
def test_each_group_is_the_bits_of_its_rows_alone(make, labels, preds, weighted):
    codes = np.minimum(rng.geometric(0.35, ROWS) - 1, GROUPS - 1)
    weights = rng.integers(0, 4, ROWS).astype(np.float64) if weighted else None  # AUC: whole
    template = make()
    assert template.sums_rows()
    grouped = GroupedState(template.state_specs())
    for start in range(0, ROWS, 150):
        rows = slice(start, start + 150)
        w = None if weights is None else weights[rows]
        grouped.add(template.row_terms(labels[rows], preds[rows], w), codes[rows], GROUPS)
    for group in range(GROUPS):
        mask = codes == group
        w = None if weights is None else weights[mask]
        alone = make().update(labels[mask], preds[mask], w).get()[1]
        value = template.compute_state(grouped.state(group))
        assert same_bits(flat_values(value), flat_values(alone)), group
    everything = make().update(labels, preds, weights).get()[1]
    assert same_bits([template.compute_state(grouped.total())], [everything])


def _first_format(state: dict, n_bins: int) -> dict:
    """An ECE state_dict as the first format wrote it: three exact sums per bin."""
    old = json.loads(json.dumps(state))
    for window in ("local", "past"):
        data = old[window]
        for quantity in ("weight", "confidence", "correct"):
            vector = data.pop(f"sum_{quantity}")
            sums = vector["sums"] + [{"mantissa": "0", "shift": 0}] * (n_bins - len(vector["sums"]))
            for index, one in enumerate(sums):
                data[f"sum_{quantity}_{index}"] = one
    return old


def test_ece_states_of_the_first_format_load():
    metric = ECE(n_bins=6).update(CLASSES[:200], SCORES[:200], rng.random(200))
    metric.reset_local()
    metric.update(CLASSES[200:300], SCORES[200:300])
    state = metric.state_dict()
    assert set(state["local"]) == {"sum_weight", "sum_confidence", "sum_correct", "num_inst"}
    old = _first_format(state, 6)
    assert "sum_confidence_5" in old["past"]
    restored = ECE(n_bins=6).load_state_dict(old)
    assert restored.state_dict() == state
    assert same_bits(
        [restored.get()[1], restored.get_global()[1]], [metric.get()[1], metric.get_global()[1]]
    )
    fresh = _first_format(ECE(n_bins=6).state_dict(), 6)  # a first-format state of no rows
    assert ECE(n_bins=6).load_state_dict(fresh).global_num_inst == 0
    del old["local"]["sum_correct_3"]
    with pytest.raises(sm.StateError) as info:
        ECE(n_bins=6).load_state_dict(old)
    assert info.value.field == "local.sum_correct_3"
    bad = _first_format(state, 6)
    bad["past"]["sum_weight_2"] = {"mantissa": "-1", "shift": 0}
    with pytest.raises(sm.StateError) as info:
        ECE(n_bins=6).load_state_dict(bad)
    assert info.value.field == "past.sum_weight"  # a sum of weights, refused below 0


def test_evaluate_by_group_of_binary_metrics(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from streammetric.metrics.specs import build_metrics

    names = np.array(["a", "b", "c", "d"], dtype=object)[rng.integers(0, 4, ROWS)]
    weights = rng.integers(0, 3, ROWS).astype(np.float64)
    path = tmp_path / "binary.parquet"
    table = pa.table(
        {"label": BINARY, "prob": PROBS, "w": weights, "slice": pa.array(names, pa.string())}
    )
    pq.write_table(table, path, row_group_size=120)
    specs = ["ece:n_bins=8", "auc:num_thresholds=30", "precision", "f1:average=weighted", "mcc"]
    result = sm.evaluate(path, specs, labels="label", preds="prob", weights="w", by="slice")
    for group in result.groups:
        mask = names == group["key"]["slice"]
        alone = build_metrics(specs).update(BINARY[mask], PROBS[mask], weights[mask])
        assert same_bits(list(group["metrics"].values()), alone.get()[1]), group["key"]
