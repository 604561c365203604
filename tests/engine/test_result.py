"""`Result` with its groups by column (`Table`): the dicts are built only when read, and the
command's JSON is the same text as from the dicts."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric._json import Table, dumps_indented


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(4)
    rows = 2_000
    table = pa.table(
        {
            "label": rng.integers(0, 3, rows),
            "probs": rng.dirichlet(np.ones(3), rows).tolist(),
            "model": rng.choice(["a", "b", "c"], rows),
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    return path


def test_groups_come_by_column_and_read_as_dicts(data):
    result = sm.evaluate(data, ["ce", "acc"], by="model")
    assert isinstance(result.json_data()["groups"], Table)  # not built for the command
    groups = result.groups
    assert [g["key"] for g in groups] == [{"model": m} for m in "abc"]
    assert list(groups[0]) == ["key", "rows", "metrics"]
    assert list(groups[0]["metrics"]) == ["cross-entropy", "accuracy"]
    assert sum(g["rows"] for g in groups) == result.rows == 2_000
    assert result.json_data()["groups"] is groups  # once built, the dicts
    fresh = sm.evaluate(data, ["ce", "acc"], by="model")
    assert dumps_indented(fresh.json_data()) == json.dumps(result.to_dict(), indent=2)
    assert fresh == result


def test_per_class_values_and_class_names_go_through_the_dicts(data):
    result = sm.evaluate(data, ["recall:class_type=multiclass,average=none", "acc"], by="model")
    names = ["x", "y", "z"]
    text = dumps_indented(result.json_data(names))
    assert json.loads(text) == json.loads(json.dumps(result.to_dict(names)))
    assert json.loads(text)["groups"][0]["metrics"]["recall"].keys() == set(names)
    plain = sm.evaluate(data, ["recall:class_type=multiclass,average=none"], by="model")
    assert json.loads(dumps_indented(plain.json_data())) == json.loads(json.dumps(plain.to_dict()))
