"""The run's group index: the C table's lookup of one-column keys (`GroupIndex.codes_of_values`)
numbers keys as Python's (`codes_of`) does, sorts them as Python sorts them, and falls back to
Python for keys the table cannot hold; slices' dictionaries join without hashing when Parquet
grew one dictionary over them."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine.local import _one_array
from streammetric.engine.partial import CellIndex, GroupIndex, _sort_key, sorted_by_key

WORDS = ["b", "a", "é", "Z", "😀", "", "a b", "ß", "z", "\x00", "€"]


@pytest.mark.parametrize(
    "batches",
    [
        [WORDS[:4], WORDS[2:9], WORDS, ["new", "a"]],
        [[3, -1, 2**62], [7, 3, -(2**63)], [0, 7, 1]],
    ],
)
def test_table_lookup_numbers_keys_as_python_does(batches):
    arrow, python = GroupIndex(), GroupIndex()
    for values in batches:
        got = arrow.codes_of_values(pa.array(values))
        assert got.dtype == np.int64
        assert got.tolist() == python.codes_of([(v,) for v in values]).tolist()
    assert arrow.keys == python.keys
    order = arrow.key_order()
    assert order is not None
    assert [arrow.keys[c] for c in order.tolist()] == sorted(arrow.keys)


@pytest.mark.parametrize(
    "keys",
    [
        [(w,) for w in WORDS],  # one string column: the C table's order
        [(3,), (-1,), (2**62,), (0,)],  # one int column: NumPy's
        [("b", 2), ("a", 9), ("b", -1), ("a", 3)],  # two columns of one type each
        [(None,), ("a",), (1,), (float("nan"),), (0.5,), (True,)],  # mixed: `_sort_key`
        [("a",)],  # one group
    ],
)
def test_cells_sort_by_their_groups_keys_then_bucket(keys):
    """A run with intervals and groups numbers (group, bucket) cells; they sort as their keys
    ``(*group key, bucket)`` sort (`_sort_key`), without a key made for each."""
    rng = np.random.default_rng(len(keys))
    cells = CellIndex(buckets=16)
    picked = rng.integers(0, len(keys), 200)
    buckets = rng.integers(0, 16, 200)
    cells.codes_of([(*keys[g], b) for g, b in zip(picked.tolist(), buckets.tolist(), strict=True)])
    order = cells.key_order()
    assert order is not None and sorted(order.tolist()) == list(range(cells.size))
    expected = sorted(range(cells.size), key=lambda code: _sort_key(cells.keys[code]))
    assert order.tolist() == expected
    assert sorted_by_key(cells.keys, np.arange(cells.size)).tolist() == expected


def test_keys_the_table_cannot_hold_fall_back_to_python():
    index = GroupIndex()
    index.codes_of([("a", 1), ("b", 2)])  # two columns (e.g. from a checkpoint)
    assert index.codes_of_values(pa.array(["c", "a"])).tolist() == [2, 3]
    assert index.keys[2:] == [("c",), ("a",)]
    assert index.key_order() is None
    strings = GroupIndex()
    strings.codes_of_values(pa.array(["x"]))
    assert strings.codes_of_values(pa.array([5, 6])).tolist() == [1, 2]  # ints after strings
    assert strings.keys == [("x",), (5,), (6,)]
    assert strings.key_order() is None
    surrogate = GroupIndex()
    surrogate.codes_of([("\ud800",)])  # not UTF-8: the table cannot hold it
    assert surrogate.codes_of_values(pa.array(["y"])).tolist() == [1]


def test_uint64_beyond_int64_keeps_its_keys():
    index = GroupIndex()
    index.codes_of_values(pa.array([5, 6], pa.uint64()))  # the C table's int64 keys
    big = pa.array([2**64 - 1, 5, 2**63], pa.uint64())
    assert index.codes_of_values(big).tolist() == [2, 0, 3]  # Python's path, same numbering
    assert index.keys == [(5,), (6,), (2**64 - 1,), (2**63,)]


def test_large_strings_and_small_ints_find_the_same_keys():
    index = GroupIndex()
    index.codes_of_values(pa.array(["a", "b"], pa.large_string()))
    assert index.codes_of_values(pa.array(["b", "a"])).tolist() == [1, 0]
    ints = GroupIndex()
    ints.codes_of_values(pa.array([5, 9], pa.int8()))
    assert ints.codes_of_values(pa.array([9, 5, 2**40])).tolist() == [1, 0, 2]


def test_threads_adding_keys_together_give_each_key_one_code():
    index = GroupIndex()
    chunks = [pa.array([f"k{(i * 400 + j) % 3000}" for j in range(2000)]) for i in range(8)]
    results: list[np.ndarray] = [np.empty(0)] * len(chunks)

    def work(i: int) -> None:
        results[i] = index.codes_of_values(chunks[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(index.keys) == len(set(index.keys)) == 3000
    for chunk, codes in zip(chunks, results, strict=True):
        assert [index.keys[c][0] for c in codes.tolist()] == chunk.to_pylist()


def test_slices_of_one_grown_dictionary_share_the_last_one():
    whole = pa.array(["a", "b", "c", "d"])
    grown = [
        pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), whole.slice(0, 2)),
        pa.DictionaryArray.from_arrays(pa.array([3, 2, 0], pa.int32()), whole),
    ]
    joined = _one_array(grown)
    assert joined.dictionary.equals(whole)  # nothing hashed: the last dictionary
    assert joined.to_pylist() == ["b", "a", "d", "c", "a"]
    other = [
        pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), pa.array(["z"])),
        pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), whole),
    ]
    assert _one_array(other).to_pylist() == ["z", "b", "a"]  # unified


def test_many_string_groups_from_a_fallen_back_dictionary(tmp_path):
    """Strings whose Parquet dictionary falls back to plain pages (a small dictionary page
    limit): each group's rows and values are those of the rows alone, in Python's order."""
    rng = np.random.default_rng(5)
    rows, classes = 60_000, 3
    words = np.array([f"user-{i}-{'é' if i % 3 else 'z'}" for i in range(20_000)], dtype=object)
    group = words[rng.integers(0, len(words), rows)]
    labels = rng.integers(0, classes, rows)
    probs = rng.dirichlet(np.ones(classes), rows).astype(np.float32)
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), classes),
            "user": pa.array(group, pa.string()),
        }
    )
    path = tmp_path / "users.parquet"
    pq.write_table(table, path, row_group_size=25_000, dictionary_pagesize_limit=4096)
    result = sm.evaluate(path, ["ce", "acc"], by="user", threads=2)
    keys = [g["key"]["user"] for g in result.groups]
    assert keys == sorted(set(group.tolist()))
    for g in result.groups[:: len(keys) // 300]:
        mask = group == g["key"]["user"]
        metric = sm.create(["ce", "acc"])
        metric.update(labels[mask], probs[mask])
        assert g["rows"] == int(mask.sum())
        assert list(g["metrics"].values()) == list(metric.get()[1]), g["key"]


def test_string_and_int_groups_do_not_load_pyarrow_compute(tmp_path):
    """One column of strings (read with its dictionary) or of ints, with few values or many:
    the index's C table numbers the keys and `key_order` sorts them, and the process never
    loads ``pyarrow.compute`` (40-120 ms)."""
    import subprocess
    import sys

    rows = 5_000
    for name, distinct in (("few", 30), ("many", 3_000)):
        table = pa.table(
            {
                "label": np.arange(rows) % 2,
                "probs": np.full((rows, 2), 0.5).tolist(),
                "g": [f"v{i % distinct}" for i in range(rows)],
                "n": [(i % distinct) * 7_919 for i in range(rows)],
            }
        )
        pq.write_table(table, tmp_path / f"{name}.parquet")
    probe = (
        "import sys, streammetric as sm\n"
        "r = sm.evaluate(sys.argv[1], ['ce', 'acc'], by=sys.argv[2])\n"
        "print(len(r.groups), 'pyarrow.compute' in sys.modules)\n"
    )
    for name, expected in (("few", "30 False"), ("many", "3000 False")):
        for column in ("g", "n"):
            out = subprocess.run(
                [sys.executable, "-c", probe, str(tmp_path / f"{name}.parquet"), column],
                capture_output=True,
                text=True,
                check=True,
            )
            assert out.stdout.split() == expected.split(), out.stderr


def test_one_string_column_with_plain_pages_is_read_as_strings(tmp_path):
    """Parquet's pages of a string column that are plain (written without a dictionary, or
    fallen back once a big dictionary filled up) are read as strings when it is the one
    group-by column (the C table hashes them), with the dictionary otherwise; the groups are
    the same either way."""
    from types import SimpleNamespace

    from streammetric.io.reader import _dictionary_pays

    rng = np.random.default_rng(2)
    rows = 40_000
    words = [f"{rng.integers(1 << 62):x}-{i}" for i in range(30_000)]  # ~1 MB: falls back
    table = pa.table(
        {
            "label": np.arange(rows) % 2,
            "probs": np.full((rows, 2), 0.5).tolist(),
            "big": [words[i % len(words)] for i in range(rows)],
            "small": [f"s{i % 7}" for i in range(rows)],
        }
    )
    paths = {}
    for name, options in (("dict", {}), ("plain", {"use_dictionary": False})):
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(table, paths[name], row_group_size=rows, **options)
    unit = SimpleNamespace(index=0)
    with_dictionary = pq.ParquetFile(paths["dict"]).metadata
    assert not _dictionary_pays(with_dictionary, unit, "big")  # a big dictionary page
    assert _dictionary_pays(with_dictionary, unit, "small")
    assert not _dictionary_pays(pq.ParquetFile(paths["plain"]).metadata, unit, "small")
    results = [
        sm.evaluate(paths[name], ["ce", "acc"], by=by, threads=2).to_dict()
        for name in ("dict", "plain")
        for by in ("big", "small", ["small", "big"])
    ]
    assert results[:3] == results[3:]
    assert [len(r["groups"]) for r in results[:3]] == [30_000, 7, rows]


@pytest.mark.parametrize("kind", ["int", "str", "escaped str"])
def test_grouped_json_is_the_groups_dicts(tmp_path, kind):
    """The JSON written from the groups' columns (an int column's keys as its int64 values)
    is `json.dumps` of the groups as dicts, keys of their Python type, in key order."""
    import json

    from streammetric._json import dumps_indented

    rng = np.random.default_rng(4)
    rows = 3000
    values = rng.integers(-(2**62), 2**62, 700)[rng.integers(0, 700, rows)]
    column = pa.array(values) if kind == "int" else pa.array([f"k{v}" for v in values])
    if kind == "escaped str":  # written from the strs, escaped, not from the table's bytes
        column = pa.array([f'k"{v}\\é\n' if v % 5 == 0 else f"k{v}" for v in values])
    probs = rng.dirichlet(np.ones(3), rows)
    table = pa.table(
        {
            "label": rng.integers(0, 3, rows),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 3),
            "g": column,
        }
    )
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path, row_group_size=700)
    result = sm.evaluate(path, ["ce", "acc"], by="g")
    data = result.json_data()
    assert not isinstance(data["groups"], list)  # written by column
    assert dumps_indented(data) == json.dumps(result.to_dict(), indent=2, allow_nan=True)
    keys = [group["key"]["g"] for group in result.groups]
    assert keys == sorted(set(column.to_pylist())) and {type(k) for k in keys} == {
        int if kind == "int" else str
    }


@pytest.mark.parametrize(
    "keys",
    [WORDS, [3, -1, 2**62, -(2**63), 0, 7], [1.5, "x", None, 2]],
    ids=["strings", "ints", "mixed"],
)
def test_partials_of_other_indexes_merge_by_key_column_as_by_tuples(keys, monkeypatch):
    from streammetric.engine.partial import Partial

    rng = np.random.default_rng(11)

    def partial(order: list[int]) -> Partial:
        part = Partial(lambda: sm.create(["ce", "acc"]))
        for position in order:
            labels = rng.integers(0, 3, 5)
            code = int(part.codes_of([(keys[position],)])[0])
            part.add(labels, rng.dirichlet(np.ones(3), 5), None, code)
        return part

    parts = [partial(list(range(len(keys)))), partial(list(range(len(keys)))[:0:-1])]

    def merged() -> dict:
        total = Partial(lambda: sm.create(["ce", "acc"]))
        total.codes_of([(keys[-1],)])  # a key numbered before: other codes than the parts'
        for part in parts:
            total.merge(part)
        return total.to_json()

    by_column = merged()
    monkeypatch.setattr(GroupIndex, "key_column", lambda self, size: None)
    assert merged() == by_column
    assert len(by_column["keys"]) == len(keys)
