"""The C writer of tables (streammetric._text) gives json.dumps(records, indent=2,
allow_nan=True)'s text: floats as float.__repr__, strings as the standard escaper, columns as
lists or NumPy arrays."""

from __future__ import annotations

import itertools
import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streammetric import _json, _text
from streammetric._json import Table, _string, _template, dumps_indented

_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def reprs(values: np.ndarray) -> list[str]:
    return [_SPECIAL.get(text, text) for text in map(float.__repr__, values.tolist())]


def from_bits(bits: list[int]) -> np.ndarray:
    return np.array(bits, dtype=np.uint64).view(np.float64)


EDGES = [
    0.0,
    5e-324,
    1e-323,
    2.2250738585072014e-308,  # the smallest normal
    2.225073858507201e-308,  # the largest subnormal
    1.7976931348623157e308,
    1e16,
    1e15,
    9007199254740992.0,
    9007199254740993.0,
    1e-7,
    1e-5,
    1e-4,
    0.0001,
    0.1,
    0.2,
    0.3,
    1 / 3,
    2 / 3,
    123456789012345680.0,
    1e22,
    1e23,
    5e-310,
    math.pi,
    math.nan,
    math.inf,
]


def test_floats_are_written_as_float_repr():
    rng = np.random.default_rng(7)
    exponents = np.arange(2047, dtype=np.uint64) << np.uint64(52)
    fractions = [0, 1, 2, 3, 12345, 2**51, 2**52 - 2, 2**52 - 1]
    tens = np.array([10.0**k for k in range(-323, 309)])
    finite = np.array([edge for edge in EDGES if math.isfinite(edge) and edge < 1e308])
    sets = [
        rng.integers(0, 2**64, 200_000, dtype=np.uint64, endpoint=False).view(np.float64),
        rng.random(50_000),
        rng.integers(1, 1000, 50_000) / rng.integers(1, 1000, 50_000),
        rng.integers(-(2**62), 2**62, 50_000).astype(np.float64),
        np.concatenate([exponents | np.uint64(f) for f in fractions]).view(np.float64),
        from_bits(list(range(20_000))),  # subnormals from 0 up
        tens,
        np.nextafter(tens, np.inf),
        np.nextafter(tens, -np.inf),
        np.array(EDGES),
        np.nextafter(finite, np.inf),
        np.nextafter(finite, -np.inf),
    ]
    for values in sets:
        values = np.concatenate([values, -values])
        assert _text.float_texts(values) == reprs(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_any_floats_are_written_as_float_repr(values):
    array = np.array(values, dtype=np.float64)
    assert _text.float_texts(array) == reprs(array)


def test_nans_of_any_sign_and_payload_are_nan():
    nans = from_bits(
        [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFFFFFFFFFFFFFFF]
    )
    assert _text.float_texts(nans) == ["NaN"] * 4


floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([*EDGES, -0.0, -5e-324])
ints = st.integers() | st.integers(-(2**200), 2**200) | st.sampled_from([2**63, -(2**63), 2**64])
texts = st.text(
    st.characters(codec=None)  # any code point: controls, quotes, backslashes, non-BMP
    | st.sampled_from(['"', "\\", "\n", "\t", "\x00", "\x7f", "é", "\u2028", "😀", "\U0010ffff"]),
    max_size=8,
)
scalars = st.none() | st.booleans() | ints | floats | texts
shapes = st.recursive(
    st.just(None),
    lambda inner: st.dictionaries(texts, inner, min_size=1, max_size=3),
    max_leaves=6,
).filter(lambda shape: isinstance(shape, dict))


def numbered(shape: dict, start: int = 0) -> tuple[dict, int]:
    """The shape with its leaves numbered in order (their columns), and the count."""
    out = {}
    for key, sub in shape.items():
        if isinstance(sub, dict):
            out[key], start = numbered(sub, start)
        else:
            out[key], start = start, start + 1
    return out, start


@st.composite
def tables(draw):
    """A Table: nested keys, each column a list of one kind or mixed, or a NumPy array."""
    shape, count = numbered(draw(shapes))
    rows = draw(st.integers(0, 70))
    columns = []
    for _ in range(count):
        kind = draw(st.sampled_from(["float", "int", "str", "bool", "mixed", "f64", "i64", "b"]))
        if kind in ("f64", "i64", "b"):
            values = draw(
                st.lists(
                    {"f64": floats, "i64": st.integers(-(2**63), 2**63 - 1), "b": st.booleans()}[
                        kind
                    ],
                    min_size=rows,
                    max_size=rows,
                )
            )
            dtype = {"f64": np.float64, "i64": np.int64, "b": np.bool_}[kind]
            column = np.array(values, dtype=dtype)
            if draw(st.booleans()):  # a strided view
                column = np.repeat(column, 2)[::2]
            columns.append(column)
        else:
            leaf = {"float": floats, "int": ints, "str": texts, "bool": st.booleans()}.get(
                kind, scalars
            )
            columns.append(draw(st.lists(leaf, min_size=rows, max_size=rows)))
    return Table(shape, columns)


@settings(max_examples=200, deadline=None)
@given(tables(), st.integers(0, 3))
def test_a_table_is_json_dumps_of_its_records_at_any_depth(table, depth):
    value: object = table
    expected: object = table.records()
    for level in range(depth):  # nested in dicts and lists, as a result holds its groups
        value = {"level": level, "items": [value]} if level % 2 else {"groups": value}
        expected = {"level": level, "items": [expected]} if level % 2 else {"groups": expected}
    assert dumps_indented(value) == json.dumps(expected, indent=2, allow_nan=True)


@settings(max_examples=200, deadline=None)
@given(tables(), st.integers(1, 9), st.integers(0, 2))
def test_a_long_table_in_pieces_is_the_same_text(table, rows, depth):
    """A Table longer than `TABLE_ROWS` is written that many items a piece, each piece made
    when asked for (by C, or as its dicts where C does not write a leaf, or with its strings
    as strs where they need escaping): the pieces, joined, are json.dumps's text, and none
    cuts an item."""
    value: object = table
    expected: object = table.records()
    for level in range(depth):
        value = {"level": level, "items": [value]} if level % 2 else {"groups": value}
        expected = {"level": level, "items": [expected]} if level % 2 else {"groups": expected}
    with mock.patch.object(_json, "TABLE_ROWS", rows):
        pieces = list(_json.dumps_parts(value))
    assert "".join(pieces) == json.dumps(expected, indent=2, allow_nan=True)
    if len(table) > rows:  # the table's pieces, and one each side of them (or none at depth 0)
        assert len(pieces) == -(-len(table) // rows) + (2 if depth else 0)


def test_a_long_tables_pieces_come_from_c_or_its_dicts_part_by_part():
    """In a long table, a part with a leaf C does not write (a list), or strings to escape, is
    written another way, and only that part."""
    from streammetric._json import Strings

    words = ["a", "b", 'q"uote', "d", "e", "f", "é", "h"]
    offsets = np.cumsum([0] + [len(w.encode()) for w in words]).astype(np.int64)
    strings = Strings(offsets, "".join(words).encode())
    mixed = [1.0, 2.0, 3.0, [4, 5], 6.0, 7.0, 8.0, np.float64(9.0)]
    table = Table({"k": 0, "v": 1}, [strings, mixed])
    with mock.patch.object(_json, "TABLE_ROWS", 2):
        pieces = list(_json.dumps_parts({"groups": table}))
    assert "".join(pieces) == json.dumps({"groups": table.records()}, indent=2)
    assert len(pieces) == 6 and pieces[1].startswith("[") and pieces[2].startswith(",")
    assert pieces[4].endswith("]")


def test_the_c_writer_writes_any_range_of_items():
    pieces, order = [""], []
    table = Table({"n": 0, "s": 1}, [np.arange(7), [f"s{i}" for i in range(7)]])
    assert _template(table.shape, "\n  ", pieces, order)
    whole = _text.table(pieces, order, table.columns, "\n  ", "\n", _string)
    for cuts in ([0, 7], [0, 1, 7], [0, 3, 4, 7], list(range(8))):
        parts = [
            _text.table(pieces, order, table.columns, "\n  ", "\n", _string, a, b)
            for a, b in itertools.pairwise(cuts)
        ]
        assert "".join(parts) == whole
    for start, stop in ((0, 0), (3, 2), (-1, 2), (0, 8)):
        with pytest.raises(ValueError):
            _text.table(pieces, order, table.columns, "\n  ", "\n", _string, start, stop)


@settings(max_examples=100, deadline=None)
@given(tables())
def test_the_c_writer_takes_every_table_of_plain_values(table):
    """No fallback: every column above is written by _text.table itself."""
    pieces, order = [""], []
    assert _template(table.shape, "\n  ", pieces, order)
    text = _text.table(pieces, order, table.columns, "\n  ", "\n", _string)
    assert text == json.dumps(table.records(), indent=2, allow_nan=True)


def test_records_of_numpy_columns_are_plain_python_values():
    table = Table(
        {"key": {"k": 0}, "n": 1, "v": 2, "ok": 3},
        [["a", "b"], np.array([1, 2]), np.array([0.5, np.nan]), np.array([True, False])],
    )
    records = table.records()
    assert records[1] == {"key": {"k": "b"}, "n": 2, "v": records[1]["v"], "ok": False}
    assert [type(v) for v in (records[0]["n"], records[0]["v"], records[0]["ok"])] == [
        int,
        float,
        bool,
    ]
    assert math.isnan(records[1]["v"])
    assert len(table) == 2


@pytest.mark.parametrize(
    "column",
    [
        [1.5, [1, 2]],  # a list leaf
        [1.5, {"a": 1}],
        [np.float64(1.5), 2.0],  # NumPy scalars (subclasses): the standard encoder's business
        [True, np.int64(3)],
        np.array([1.5, 2.5], dtype=np.float32),  # arrays of other types
        np.array([1, 2], dtype=np.int32),
        np.array([[1.0], [2.0]]),  # 2-D
        (1.5, 2.5),  # not a list
    ],
)
def test_other_leaves_are_left_to_the_caller(column):
    assert _text.table(["{", "}"], [0], [column], "\n  ", "\n", _string) is None
    value = {"groups": Table({"v": 0}, [column])}
    plain = {"groups": Table({"v": 0}, [column]).records()}
    try:
        expected = json.dumps(plain, indent=2, allow_nan=True)
    except TypeError:
        with pytest.raises(TypeError):
            dumps_indented(value)
    else:
        assert dumps_indented(value) == expected


def test_a_column_of_string_bytes_is_written_as_its_strs_are():
    """A column given as Arrow-style (offsets, bytes) (`Strings`, as the key table gives a
    result's keys) is written from its bytes when they need no escaping, and refused (None:
    the caller writes its strs) when they do or when its offsets do not fit the bytes."""
    from streammetric._json import Strings

    words = ["", "a", "group-000017", "x" * 70, ""]
    offsets = np.cumsum([0] + [len(w) for w in words]).astype(np.int64)
    data = "".join(words).encode()
    strings = Strings(offsets, data)
    assert strings.tolist() == words and len(strings) == len(words)
    pieces, inner = ['{"k": ', "}"], "\n  "
    expected = _text.table(pieces, [0], [words], inner, "\n", _string)
    assert _text.table(pieces, [0], [(offsets, data)], inner, "\n", _string) == expected
    table = Table({"k": 0, "v": 1}, [strings, np.arange(5.0)])
    assert dumps_indented([table]) == json.dumps([table.records()], indent=2)
    for escaped in ['say "hi"', "back\\slash", "é", "tab\there"]:
        column = Strings(np.array([0, len(escaped.encode())]), escaped.encode())
        assert (
            _text.table(pieces, [0], [(column.offsets, column.data)], inner, "\n", _string) is None
        )
        table = Table({"k": 0}, [column])
        assert dumps_indented([table]) == json.dumps([[{"k": escaped}]], indent=2)
    end = len(data)
    for bad in ([1, 1, 13, end, end, end], [0, 13, 1, end, end, end], [0, 1, 13, end, end, 99]):
        bad_offsets = np.array(bad, dtype=np.int64)
        assert _text.table(pieces, [0], [(bad_offsets, data)], inner, "\n", _string) is None


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError):
        _text.table(["", "", ""], [0, 1], [[1, 2], np.array([1.0])], "\n  ", "\n", _string)


def test_no_items_is_an_empty_list():
    assert _text.table(["{", "}"], [0], [[]], "\n  ", "\n", _string) == "[]"
    assert _text.table(["{", "}"], [0], [np.zeros(0)], "\n  ", "\n", _string) == "[]"
    assert dumps_indented({"groups": Table({"v": 0}, [np.zeros(0)])}) == '{\n  "groups": []\n}'


def test_a_long_string_and_a_huge_int_fit():
    big = 7**5000  # 4,226 digits, under int's 4,300-digit str limit
    text = "x" * 1_000_000 + "é"
    table = Table({"s": 0, "n": 1}, [[text, "y" * 300_000], [big, -big]])
    expected = json.dumps(table.records(), indent=2)
    assert dumps_indented(table) == expected


def test_ints_beyond_the_str_limit_raise_as_json_dumps_does():
    huge = 10**5000
    with pytest.raises(ValueError):
        json.dumps([{"n": huge}])
    with pytest.raises(ValueError):
        dumps_indented(Table({"n": 0}, [[huge]]))


def test_float_repr_matches_for_every_power_of_two():
    values = [struct.unpack("<d", struct.pack("<Q", e << 52))[0] for e in range(1, 2047)]
    array = np.array(values)
    assert _text.float_texts(array) == reprs(array)


def test_text_tables_are_what_the_generator_writes():
    script = Path(__file__).parents[1] / "scripts" / "make_text_tables.py"
    assert subprocess.run([sys.executable, str(script), "--check"]).returncode == 0
