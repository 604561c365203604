"""A `Partial`'s JSON (checkpoints, the Dask engine's payloads) is written by column: each state
entry one column over the groups (a list, or for count vectors and exact sums a few lists), no
metric object per group; it round-trips exactly, and the forms of earlier checkpoints (a list
of values per entry; group by group) are still read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine.partial import Partial
from streammetric.metrics.state import column_items

METRICS = [
    "ce",
    "acc",
    "confusion_matrix",
    "precision:average=none,class_type=multiclass",
    "loss",  # no row terms: one object per group (`_ObjectStates`)
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """600 rows, 4 classes, 150 groups (most lack a class), half the rows weighted, some
    rows with no probability on the true class."""
    rng = np.random.default_rng(7)
    rows = 600
    probs = rng.dirichlet(np.ones(4), rows).astype(np.float32)
    labels = rng.integers(0, 4, rows)
    probs[::37] = np.eye(4, dtype=np.float32)[(labels[::37] + 1) % 4]  # p[y] = 0: diagnostics
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 4),
            "g": [f"k{v:03d}" for v in rng.integers(0, 150, rows)],
            "w": np.where(np.arange(rows) % 2 == 0, 1.0, rng.random(rows) * 3),
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=100)
    return path


def _group_by_group(partial: Partial) -> dict:
    """The partial as earlier checkpoints held it: [key, rows, state_dict] per group."""
    return {
        "rows": partial.rows,
        "invalid_rows": partial.invalid_rows,
        "groups": [
            [
                list(partial.keys[code]),
                int(partial._rows[code]),
                partial.group_metric(code).state_dict(),
            ]
            for code in partial.sorted_codes()
        ],
    }


def _per_value(written: dict) -> dict:
    """``written`` with every column a list of the groups' values, as checkpoints held them
    before count vectors and exact sums were written whole."""
    states = [
        {name: column_items(c) for name, c in columns.items()} for columns in written["states"]
    ]
    return {**written, "states": states}


def _reloaded(partial: Partial, data: dict) -> Partial:
    fresh = Partial(partial._new)
    fresh.load_json(json.loads(json.dumps(data, allow_nan=True)))
    return fresh


@pytest.mark.parametrize("weights", [None, "w"])
def test_the_state_by_column_round_trips_and_the_group_by_group_form_is_read(data, weights):
    result = sm.evaluate(data, METRICS, by="g", weights=weights, threads=2)
    stored = result.partial
    assert stored is not None and len(stored.sorted_codes()) > 100
    written = stored.to_json()
    assert len(written["keys"]) == len(written["group_rows"]) == len(stored.sorted_codes())
    groups = len(written["keys"])
    for leaf, columns in zip(stored.leaves, written["states"], strict=True):
        assert set(columns) == set(leaf.state_specs())
        assert all(len(column_items(column)) == groups for column in columns.values())
    kinds = {name: spec.kind for leaf in stored.leaves for name, spec in leaf.state_specs().items()}
    whole = {
        name for columns in written["states"] for name, c in columns.items() if isinstance(c, dict)
    }
    assert {kinds[name] for name in whole} == {"counts", "sum"}  # e.g. diagnostics, sum_metric
    for form in (written, _per_value(written), _group_by_group(stored)):
        loaded = _reloaded(stored, form)
        assert loaded.to_json() == written
        again = loaded.result([], grouped=True, by=("g",))
        assert json.dumps(again.to_dict(), allow_nan=True) == json.dumps(
            result.to_dict(), allow_nan=True
        )


def test_no_metric_object_is_made_per_group(data, monkeypatch):
    stored = sm.evaluate(data, METRICS[:-1], by="g", weights="w").partial
    assert stored is not None

    def refuse(self, code):
        raise AssertionError("a metric object per group")

    monkeypatch.setattr(Partial, "group_metric", refuse)
    written = stored.to_json()
    assert _reloaded(stored, written).to_json() == written


def test_a_bad_value_in_a_column_names_its_group(data):
    stored = sm.evaluate(data, ["confusion_matrix"], by="g").partial
    assert stored is not None
    written = _per_value(stored.to_json())
    written["states"][0]["confusion"][3] = {"shape": [2], "values": [1, -1]}
    with pytest.raises(sm.StateError) as caught:
        _reloaded(stored, written)
    assert caught.value.field.startswith("states[0][3].confusion")
    written = stored.to_json()
    written["states"][0]["num_inst"][5] += 1  # no longer the sum of its cells
    with pytest.raises(sm.StateError) as caught:
        _reloaded(stored, written)
    assert caught.value.field == "states[0][5]"


@pytest.mark.parametrize(
    ("leaf", "entry", "value", "field"),
    [
        (0, "num_inst", -1, "states[0][3].num_inst"),
        (0, "num_inst", True, "states[0][3].num_inst"),
        (0, "num_inst", 2**63, "states[0][3].num_inst"),
        (0, "num_inst", 2.0, "states[0][3].num_inst"),
        (1, "sum_metric", -2, "states[1][3].sum_metric"),
        (1, "sum_metric", {"mantissa": "1", "shift": 3000}, "states[1][3].sum_metric.shift"),
        (0, "diagnostics", {"shape": [2], "values": [0, 0]}, "states[0][3].diagnostics"),
        (0, "diagnostics", {"shape": [9], "values": [0] * 8 + [-1]}, "states[0][3].diagnostics"),
        (0, "diagnostics", {"shape": [9], "values": [0] * 9, "x": 1}, "states[0][3].diagnostics"),
        (0, "diagnostics", [0] * 9, "states[0][3].diagnostics"),
    ],
)
def test_a_bad_value_in_a_column_read_whole_names_its_group(data, leaf, entry, value, field):
    stored = sm.evaluate(data, ["ce", "acc"], by="g").partial
    assert stored is not None
    written = _per_value(stored.to_json())
    assert entry in written["states"][leaf]
    written["states"][leaf][entry][3] = value
    fresh = Partial(stored._new)
    with pytest.raises(sm.StateError) as caught:
        fresh.load_json(written)
    assert caught.value.field == field
    assert fresh.rows == 0 and not fresh.present().size  # nothing loaded


def test_columns_loaded_into_a_partial_holding_groups_are_added(data):
    stored = sm.evaluate(data, ["ce", "acc", "confusion_matrix"], by="g", weights="w").partial
    assert stored is not None
    twice = _reloaded(stored, stored.to_json())
    twice.load_json(stored.to_json())
    merged = _reloaded(stored, stored.to_json()).merge(stored)
    assert any(stored.to_json()["states"][0]["diagnostics"]["values"])
    assert twice.to_json() == merged.to_json()
    assert twice.rows == 2 * stored.rows


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda p: p["keys"].__setitem__(4, list(p["keys"][2])), "keys[4]"),
        (lambda p: p["group_rows"].__setitem__(4, -1), "group_rows[4]"),
        (lambda p: p["group_rows"].__setitem__(4, 1.0), "group_rows[4]"),
        (lambda p: p["keys"].__setitem__(4, "k004"), "keys[4]"),
        (lambda p: p["keys"].__setitem__(4, [["k004"]]), "keys[4]"),
    ],
)
def test_bad_keys_and_rows_are_named(data, edit, field):
    stored = sm.evaluate(data, ["ce", "acc"], by="g").partial
    assert stored is not None
    written = stored.to_json()
    edit(written)
    with pytest.raises(sm.StateError) as caught:
        Partial(stored._new).load_json(written)
    assert caught.value.field == field


def _edit_sum(written: dict, name: str, field: str, value: object) -> None:
    written["states"][0][name][field][3] = value


def _edit_diagnostic(written: dict, value: object) -> None:
    column = written["states"][0]["diagnostics"]
    column["values"][3 * column["shape"][1] + 2] = value


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (
            lambda w: _edit_sum(w, "sum_metric", "mantissa", "12x"),
            "states[0][3].sum_metric.mantissa",
        ),
        (lambda w: _edit_sum(w, "sum_metric", "mantissa", 12), "states[0][3].sum_metric.mantissa"),
        (lambda w: _edit_sum(w, "sum_metric", "shift", -1), "states[0][3].sum_metric.shift"),
        (lambda w: _edit_sum(w, "sum_metric", "shift", 3000), "states[0][3].sum_metric.shift"),
        (lambda w: _edit_sum(w, "sum_weight", "mantissa", "-1"), "states[0][3].sum_weight"),
        (
            lambda w: w["states"][0]["sum_metric"].update(
                num_nan=[0, 0, 0, -1] + [0] * (len(w["keys"]) - 4)
            ),
            "states[0][3].sum_metric.num_nan",
        ),
        (lambda w: w["states"][0]["sum_metric"]["shift"].pop(), "states[0].sum_metric.shift"),
        (lambda w: w["states"][0]["sum_metric"].update(x=[]), "states[0].sum_metric"),
        (lambda w: w["states"][0]["sum_metric"].pop("shift"), "states[0].sum_metric"),
        (lambda w: _edit_diagnostic(w, -1), "states[0][3].diagnostics"),
        (lambda w: _edit_diagnostic(w, 1.5), "states[0][3].diagnostics"),
        (lambda w: _edit_diagnostic(w, 2**63), "states[0][3].diagnostics"),
        (lambda w: w["states"][0]["diagnostics"]["values"].pop(), "states[0].diagnostics.values"),
        (
            lambda w: w["states"][0]["diagnostics"]["shape"].__setitem__(0, 7),
            "states[0].diagnostics.shape",
        ),
        (
            lambda w: w["states"][0]["diagnostics"]["shape"].__setitem__(1, 4),
            "states[0].diagnostics.values",
        ),
        (
            lambda w: w["states"][0]["diagnostics"].update(shape=[150]),
            "states[0].diagnostics.shape",
        ),
    ],
)
def test_a_bad_value_in_a_column_written_whole_names_its_group(data, edit, field):
    """Count vectors and exact sums written whole (a few lists per column): a bad value is
    named by its group, a column of the wrong shape by its field, and nothing is loaded."""
    stored = sm.evaluate(data, ["ce"], by="g", weights="w").partial
    assert stored is not None
    written = stored.to_json()
    assert len(written["keys"]) > 100
    assert isinstance(written["states"][0]["diagnostics"], dict)
    assert isinstance(written["states"][0]["sum_metric"], dict)
    assert isinstance(written["states"][0]["sum_weight"], dict)  # weighted: exact sums
    edit(written)
    fresh = Partial(stored._new)
    with pytest.raises(sm.StateError) as caught:
        fresh.load_json(json.loads(json.dumps(written)))
    assert caught.value.field == field
    assert fresh.rows == 0 and not fresh.present().size  # nothing loaded


def test_nonfinite_counts_of_exact_sums_written_whole_round_trip(data):
    """A column of exact sums lists the counts of infinities and NaN only where some group
    has one, and reads them back into their groups."""
    stored = sm.evaluate(data, ["ce"], by="g").partial  # p[y] = 0 in 17 rows: ce = inf
    assert stored is not None
    written = stored.to_json()
    column = written["states"][0]["sum_metric"]
    assert set(column) == {"mantissa", "shift", "num_pos_inf"}
    assert sum(column["num_pos_inf"]) == len(range(0, 600, 37))
    assert 0 in column["num_pos_inf"]
    loaded = _reloaded(stored, written)
    assert loaded.to_json() == written
    assert _reloaded(stored, _per_value(written)).to_json() == written
