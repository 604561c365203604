"""Issue 21: every Arrow type that can be a group key groups exactly, prints as JSON and
round-trips through a checkpoint; NaN is one group; other types are refused in one line."""

from __future__ import annotations

import datetime
import decimal
import json

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import streammetric as sm
from streammetric._exceptions import InvalidInputError
from streammetric.cli import main
from streammetric.engine.partial import Partial

ROWS = 60
NS = 1_700_000_000_123_456_789


def _values(kind: pa.DataType) -> tuple[list, list]:
    """Three distinct values of ``kind`` (cycled over the rows, with nulls) and their JSON keys."""
    t = pa.types
    if t.is_integer(kind):
        top = np.iinfo(kind.to_pandas_dtype()).max
        return [0, 7, int(top)], [0, 7, int(top)]
    if t.is_floating(kind):
        return [0.5, -1.25, 3.0], [0.5, -1.25, 3.0]
    if t.is_boolean(kind):
        return [True, False, True], [True, False]
    if t.is_string(kind) or t.is_large_string(kind):
        return ["a", "b", "c"], ["a", "b", "c"]
    if t.is_dictionary(kind):
        return ["x", "y", "z"], ["x", "y", "z"]
    if t.is_date(kind):
        days = [datetime.date(2024, 5, 1), datetime.date(1969, 12, 31), datetime.date(2024, 5, 2)]
        return days, ["2024-05-01", "1969-12-31", "2024-05-02"]
    if t.is_timestamp(kind):  # two values in one microsecond: only nanoseconds tell them apart
        suffix = "+02:00" if kind.tz else ""
        local = "2023-11-15T00:13:20" if kind.tz else "2023-11-14T22:13:20"
        return [NS, NS + 1, 0], [
            f"{local}.123456789{suffix}",
            f"{local}.123456790{suffix}",
            ("1970-01-01T02:00:00.000000000+02:00" if kind.tz else "1970-01-01T00:00:00.000000000"),
        ]
    if t.is_time(kind):
        return [0, 45_296_000_000_001, 1], ["00:00:00.000000000", "12:34:56.000000001",
                                             "00:00:00.000000001"]  # fmt: skip
    if t.is_duration(kind):
        return [90_000, -1, 0], ["PT90.000S", "-PT0.001S", "PT0.000S"]
    if t.is_decimal(kind):
        return [decimal.Decimal("12.50"), decimal.Decimal("-0.01"), decimal.Decimal("0.00")], [
            "12.50", "-0.01", "0.00",
        ]  # fmt: skip
    if t.is_fixed_size_binary(kind):
        return [b"hi", b"\xff\x00", b"ok"], ["aGk=", "/wA=", "b2s="]
    if t.is_binary(kind) or t.is_large_binary(kind):
        return [b"hi", b"\xff\x00\x01", b""], ["aGk=", "/wAB", ""]
    if t.is_null(kind):
        return [None, None, None], []
    raise AssertionError(kind)


GROUPABLE = [
    *(getattr(pa, f"{s}int{b}")() for s in ("", "u") for b in (8, 16, 32, 64)),
    pa.float32(), pa.float64(), pa.bool_(), pa.string(), pa.large_string(),
    pa.dictionary(pa.int32(), pa.string()), pa.date32(), pa.date64(),
    pa.timestamp("ns"), pa.timestamp("ns", tz="+02:00"), pa.time64("ns"), pa.duration("ms"),
    pa.decimal128(6, 2), pa.binary(), pa.large_binary(), pa.binary(2), pa.null(),
]  # fmt: skip


def _table(kind: pa.DataType, seed: int) -> tuple[pa.Table, list]:
    rng = np.random.default_rng(seed)
    raw, keys = _values(kind)
    cycle = [raw[i % 3] if i % 4 else None for i in range(ROWS)]
    if pa.types.is_dictionary(kind):
        column = pa.array(cycle, pa.string()).dictionary_encode()
    elif pa.types.is_timestamp(kind) or pa.types.is_time(kind) or pa.types.is_duration(kind):
        column = pa.array(cycle, pa.int64()).cast(kind)
    else:
        column = pa.array(cycle, kind)
    probs = rng.dirichlet(np.ones(3), ROWS)
    table = pa.table(
        {
            "label": rng.integers(0, 3, ROWS),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 3),
            "key": column,
        }
    )
    return table, keys


@pytest.mark.parametrize("kind", GROUPABLE, ids=str)
def test_every_groupable_type_prints_as_json_and_round_trips_a_checkpoint(tmp_path, kind):
    first, keys = _table(kind, seed=1)
    second, _ = _table(kind, seed=2)
    paths = [tmp_path / "a.arrow", tmp_path / "b.arrow"]
    feather.write_feather(first, paths[0])
    feather.write_feather(second, paths[1])
    out = CliRunner().invoke(
        main, ["eval", *map(str, paths), "-m", "ce", "--by", "key", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    printed = json.loads(out.stdout)
    got = [group["key"]["key"] for group in printed["groups"]]
    assert got[-1] is None and got[:-1] == sorted(set(keys), key=lambda v: (type(v).__name__, v))
    assert sum(group["rows"] for group in printed["groups"]) == 2 * ROWS
    # a checkpoint's JSON of the first file, resumed with the second: the same groups and bits
    stored = sm.evaluate(paths[0], "ce", by="key").partial
    assert stored is not None
    resumed = Partial(stored._new)
    resumed.load_json(json.loads(json.dumps(stored.to_json(), allow_nan=True)))
    later = sm.evaluate(paths[1], "ce", by="key").partial
    assert later is not None
    resumed.merge(later)
    whole = sm.evaluate(paths, "ce", by="key")
    assert resumed.result([], grouped=True, by=("key",)).to_dict() == whole.to_dict()
    assert json.loads(json.dumps(whole.to_dict())) == printed


@pytest.mark.parametrize(
    "kind",
    [
        pa.list_(pa.int64()),
        pa.struct([("a", pa.int64())]),
        pa.map_(pa.string(), pa.int64()),
        pa.month_day_nano_interval(),
    ],
    ids=str,
)
def test_nested_and_interval_group_keys_are_refused_in_one_line(tmp_path, kind):
    values = {
        "list": [[1]],
        "struct": [{"a": 1}],
        "map": [[("k", 1)]],
        "month_day_nano_interval": [pa.MonthDayNano([1, 2, 3])],
    }
    raw = next(v for k, v in values.items() if str(kind).startswith(k))
    table = pa.table(
        {
            "label": [0],
            "probs": pa.array([[0.5, 0.5]], pa.list_(pa.float64(), 2)),
            "key": pa.array(raw, kind),
        }
    )
    path = tmp_path / "nested.arrow"
    feather.write_feather(table, path)
    with pytest.raises(InvalidInputError, match=r"column `key`: type .* cannot be grouped by"):
        sm.evaluate(path, "ce", by="key")


def _nan_table(rows: int = 1100) -> pa.Table:
    rng = np.random.default_rng(0)
    key = np.where(np.arange(rows) % 3 == 0, np.nan, np.where(np.arange(rows) % 3 == 1, 0.0, -0.0))
    probs = rng.dirichlet(np.ones(2), rows)
    other_nan = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), np.float64)[0]
    key[5] = other_nan  # a NaN with another payload is the same group
    return pa.table(
        {
            "label": rng.integers(0, 2, rows),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 2),
            "key": pa.array(key, mask=np.arange(rows) % 50 == 49),
        }
    )


@pytest.mark.parametrize("row_group_size", [100, 500])
def test_nan_keys_are_one_group_and_negative_zero_is_zero(tmp_path, row_group_size):
    path = tmp_path / "nan.parquet"
    pq.write_table(_nan_table(), path, row_group_size=row_group_size)
    result = sm.evaluate(path, "ce", by="key")
    keys = [group["key"]["key"] for group in result.groups or []]
    assert len(keys) == 3 and keys[0] == 0.0 and str(keys[0]) == "0.0"
    assert np.isnan(keys[1]) and keys[2] is None
    # the exporter takes the groups (one label value each) instead of failing
    prom = tmp_path / "out.prom"
    out = CliRunner().invoke(
        main, ["eval", str(path), "-m", "ce", "--by", "key", "--textfile", str(prom)]
    )
    assert out.exit_code == 0, out.output
    assert prom.read_text().count('streammetric_rows_total{key="nan"') == 1
