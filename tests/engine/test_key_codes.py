"""The C table of one-column keys (`_kernels.KeyCodes`) and the `GroupIndex` that owns it: every
key gets the code a Python dict would give it, whichever way it came (a column of ints or
strings, a dictionary array, Python tuples from `codes_of`), across calls, threads and growth."""

from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from streammetric._kernels import KeyCodes
from streammetric.engine.partial import GroupIndex

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Reference:
    """Python's numbering: a dict of key tuples, codes in order of first appearance."""

    def __init__(self) -> None:
        self.codes: dict[tuple[Any, ...], int] = {}
        self.keys: list[tuple[Any, ...]] = []

    def codes_of(self, values: list[Any]) -> list[int]:
        out = []
        for value in values:
            key = (value,)
            if key not in self.codes:
                self.codes[key] = len(self.keys)
                self.keys.append(key)
            out.append(self.codes[key])
        return out


def _strings(rng: random.Random, count: int, pool: int) -> list[str]:
    alphabet = "ab€é😀\x00 Zz"
    words = ["".join(rng.choices(alphabet, k=rng.randrange(0, 6))) for _ in range(pool)]
    return [rng.choice(words) for _ in range(count)]


def _ints(rng: random.Random, count: int, pool: int) -> list[int]:
    values = [
        INT64_MIN,
        INT64_MAX,
        0,
        -1,
        1,
        *(rng.randrange(INT64_MIN, INT64_MAX) for _ in range(pool)),
    ]
    return [rng.choice(values) for _ in range(count)]


@pytest.mark.parametrize("hash_bits", [64, 4])
def test_key_codes_numbers_ints_and_strings_as_a_dict_does(hash_bits):
    """(With 4 bits of hash, every key collides with others: probing and comparing decide.)"""
    rng = random.Random(1)
    table, reference = KeyCodes(hash_bits=hash_bits), Reference()
    for call in range(60):
        if call % 2:
            values: list[Any] = _ints(rng, rng.randrange(0, 400), 300)
            out = np.empty(len(values), dtype=np.int64)
            numbered = table.add_ints(np.array(values, dtype=np.int64), out)
        else:
            values = _strings(rng, rng.randrange(0, 400), 300)
            array = pa.array(values, pa.string())
            offsets = np.frombuffer(array.buffers()[1], np.int32, len(array) + 1)
            out = np.empty(len(values), dtype=np.int64)
            numbered = table.add_strings(offsets, array.buffers()[2] or b"", out)
        before = len(reference.keys)
        assert out.tolist() == reference.codes_of(values)
        assert numbered == (before, len(reference.keys))  # the new codes, in order
        assert table.keys(*numbered) == reference.keys[before:]
    assert table.size == len(reference.keys)
    assert table.keys(0, table.size) == reference.keys
    backwards = np.arange(table.size, dtype=np.int64)[::-1].copy()
    assert table.values(backwards) == [value for (value,) in reference.keys[::-1]]
    with pytest.raises(IndexError):
        table.values(np.array([table.size], dtype=np.int64))
    assert table.strings == sum(isinstance(v, str) for (v,) in reference.keys)
    assert table.order(np.empty(table.size, dtype=np.int64)) is False  # ints and strings


@pytest.mark.parametrize(("ints_first", "hash_bits"), [(False, 64), (True, 64), (False, 3)])
def test_key_codes_tells_strings_apart_by_every_byte(ints_first, hash_bits):
    """Strings of 0 to 40 bytes that differ in one byte only, or in trailing NUL bytes
    only, each get their own code; the bytes are read up to the end of a buffer that has no
    padding after the last string, and a table may hold ints first. With 3 bits of hash, keys
    collide all the time: then only the comparison of their bytes tells them apart."""
    rng = random.Random(5)
    words = {"\x00" * n for n in range(41)}
    for n in range(41):
        words.add("k" * n)
        words.update("k" * i + "j" + "k" * (n - i - 1) for i in range(n))
        words.add("k" * n + "\x00")
    values = [rng.choice(sorted(words)) for _ in range(4000)] + sorted(words)
    rng.shuffle(values)
    table, reference = KeyCodes(hash_bits=hash_bits), Reference()
    if ints_first:
        ints = list(range(-50, 50))
        table.add_ints(np.array(ints, dtype=np.int64), np.empty(len(ints), dtype=np.int64))
        reference.codes_of(ints)
    for start in range(0, len(values), 777):
        chunk = values[start : start + 777]
        data = "".join(chunk).encode()  # exactly the strings' bytes
        offsets = np.cumsum([0] + [len(v.encode()) for v in chunk]).astype(np.int32)
        out = np.empty(len(chunk), dtype=np.int64)
        table.add_strings(offsets, data, out)
        assert out.tolist() == reference.codes_of(chunk)
    assert table.keys(0, table.size) == reference.keys


def test_key_codes_grows_past_many_resizes():
    table = KeyCodes()
    values = np.random.default_rng(3).permutation(300_000).astype(np.int64) * 7_919 - 2**40
    out = np.empty_like(values)
    for start in range(0, values.shape[0], 9_999):  # new keys on every call
        part = slice(start, start + 9_999)
        assert table.add_ints(values[part], out[part]) == (start, min(start + 9_999, 300_000))
    assert out.tolist() == list(range(300_000))
    again = np.empty_like(values)
    assert table.add_ints(values[::-1].copy(), again) == (300_000, 300_000)
    assert again.tolist() == list(range(300_000))[::-1]
    words = [f"w{v}é" for v in range(200_000)]
    array = pa.array(words, pa.large_string())
    codes = np.empty(len(words), dtype=np.int64)
    offsets = np.frombuffer(array.buffers()[1], np.int64, len(array) + 1)
    assert table.add_strings(offsets, array.buffers()[2], codes) == (300_000, 500_000)
    assert codes.tolist() == list(range(300_000, 500_000))
    assert table.keys(499_999, 500_000) == [("w199999é",)]


def test_key_codes_answers_none_for_buffers_it_cannot_read():
    table = KeyCodes()
    out = np.empty(2, dtype=np.int64)
    assert table.add_ints(np.array([1, 2], dtype=np.int32), out) is None
    assert table.add_ints(np.array([1, 2, 3]), out) is None  # lengths differ
    assert table.add_strings(np.array([0, 1, 9], dtype=np.int32), b"ab", out) is None  # past end
    assert table.add_strings(np.array([0, 2, 1], dtype=np.int32), b"ab", out) is None  # backwards
    assert table.add_strings(np.array([0, 1], dtype=np.int32), b"ab", out) is None  # one short
    assert table.size == 0


def test_key_codes_refuses_strings_that_are_not_utf8_and_numbers_nothing():
    table = KeyCodes()
    out = np.empty(3, dtype=np.int64)
    for bad in (b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80"):
        data = b"ok" + b"new" + bad  # two good strings numbered before the bad one
        offsets = np.array([0, 2, 5, len(data)], dtype=np.int32)
        with pytest.raises(ValueError, match="UTF-8"):
            table.add_strings(offsets, data, out)
        assert table.size == 0
    data = "ok€😀".encode()
    assert table.add_strings(np.array([0, 2, len(data)], dtype=np.int32), data, out[:2]) == (0, 2)
    assert table.keys(0, 2) == [("ok",), ("€😀",)]


def test_key_codes_adds_python_keys_until_one_it_cannot_hold():
    table = KeyCodes()
    assert table.add_keys([(5,), ("5",), (INT64_MIN,), ("",)]) == 4
    assert table.add_keys([(6,), (True,)]) == 1  # a bool is not an int key here
    assert table.add_keys([(2**63,)]) == 0  # beyond int64
    assert table.add_keys([("\ud800",)]) == 0  # no UTF-8
    assert table.add_keys([(1.0,), (None,), ("a", 1), ["a"]]) == 0
    assert table.add_keys([(5,)]) == 0  # known already: it would not get the next code
    assert table.keys(0, table.size) == [(5,), ("5",), (INT64_MIN,), ("",), (6,)]
    out = np.empty(3, dtype=np.int64)
    assert table.add_ints(np.array([6, 5, 7]), out) == (5, 6)
    assert out.tolist() == [4, 0, 5]


def test_key_codes_orders_keys_as_python_sorts_them():
    rng = random.Random(7)
    strings = KeyCodes()
    words = sorted(set(_strings(rng, 3_000, 3_000)) | {"\uffff", "\U00010000", "a" * 5_000})
    rng.shuffle(words)
    strings.add_keys([(w,) for w in words])
    order = np.empty(strings.size, dtype=np.int64)
    assert strings.order(order)
    assert [words[c] for c in order.tolist()] == sorted(words)  # code points: UTF-8 bytes
    ints = KeyCodes()
    ints.add_keys([(v,) for v in [3, INT64_MAX, -1, INT64_MIN, 0]])
    values = np.empty(5, dtype=np.int64)
    assert ints.ints(values) and values.tolist() == [3, INT64_MAX, -1, INT64_MIN, 0]
    assert ints.order(order[:5]) and order[:5].tolist() == [3, 2, 4, 0, 1]
    assert not strings.ints(np.empty(strings.size, dtype=np.int64))


@pytest.mark.parametrize("prefix", ["", "group-", "x" * 40, "é€"])
def test_key_codes_orders_strings_sharing_prefixes_and_nul_bytes(prefix):
    """The radix sort on the 8 bytes after the shared prefix, ties broken by the whole
    strings: zero bytes, strings that are prefixes of others, long equal runs."""
    rng = random.Random(len(prefix))
    tails = {"", "\x00", "\x00\x00", "a", "a\x00", "ab", "\x7f", "\x80", "😀", "\uffff"}
    alphabet = ["\x00", "\x01", "a", "b", "é", "😀", "\uffff", "z"]
    while len(tails) < 4_000:
        tails.add("".join(rng.choices(alphabet, k=rng.choice([1, 7, 8, 9, 15, 16, 17, 30]))))
    words = [prefix + tail for tail in tails]
    rng.shuffle(words)
    table = KeyCodes()
    assert table.add_keys([(w,) for w in words]) == len(words)
    order = np.empty(len(words), dtype=np.int64)
    assert table.order(order)
    assert [words[c] for c in order.tolist()] == sorted(words)
    single = KeyCodes()
    single.add_keys([(prefix,)])
    assert single.order(order[:1]) and order[0] == 0


def _column(values: list[Any], how: str) -> pa.Array | pa.ChunkedArray:
    """``values`` as the engine may meet them: plain, large strings, sliced, chunked, or a
    dictionary array whose dictionary repeats values."""
    kind = pa.string() if values and isinstance(values[0], str) else pa.int64()
    if how == "plain":
        return pa.array(values, kind)
    if how == "large":
        return pa.array(values, pa.large_string() if kind == pa.string() else pa.int32())
    if how == "sliced":
        padded = pa.array([values[0] if values else None, *values, None], kind)
        return padded.slice(1, len(values))
    if how == "chunked":  # (numbered chunk by chunk: one sliced from a longer array, one empty)
        half = len(values) // 2
        rest = pa.array([values[0] if values else None, *values[half:], None], kind)
        return pa.chunked_array(
            [pa.array(values[:half], kind), pa.array([], kind), rest.slice(1, len(values) - half)],
            kind,
        )
    distinct = list(dict.fromkeys(values))
    dictionary = pa.array(distinct + distinct[:3], kind)  # repeated entries
    where = {v: i for i, v in enumerate(distinct)}
    indices = [
        where[v] if i % 2 or where[v] >= 3 else where[v] + len(distinct)
        for i, v in enumerate(values)
    ]
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), dictionary)


@pytest.mark.parametrize("how", ["plain", "large", "sliced", "chunked", "dictionary"])
def test_group_index_codes_of_column_matches_python(how):
    rng = random.Random(hash(how) % 1000)
    index, reference = GroupIndex(), Reference()
    for call in range(30):
        kind = call % 3
        values = (
            _strings(rng, rng.randrange(0, 300), 200)
            if kind
            else [v for v in _ints(rng, rng.randrange(0, 300), 200) if -(2**31) <= v < 2**31]
        )
        column = _column(values, how)
        codes = index.codes_of_column(column)
        assert codes is not None and codes.dtype == np.int64
        assert codes.tolist() == reference.codes_of(values)
        assert index.keys == reference.keys
    assert index.codes_of([(v,) for v in ["é", 0]]).tolist() == reference.codes_of(["é", 0])
    assert index.key_order() is None  # ints and strings: Python sorts them (`Partial`)


def test_codes_of_and_the_c_table_agree_whichever_comes_first():
    index, reference = GroupIndex(), Reference()
    rng = random.Random(11)
    for call in range(200):
        values = _strings(rng, rng.randrange(0, 50), 120)
        way = call % 3
        if way == 0:
            got = index.codes_of([(v,) for v in values])
        elif way == 1:
            got = index.codes_of_values(pa.array(values, pa.string()))
        else:
            got = index.codes_of_column(pa.array(values, pa.string()).dictionary_encode())
        assert got is not None
        assert got.tolist() == reference.codes_of(values), call
    assert index.keys == reference.keys
    order = index.key_order()
    assert order is not None
    assert [index.keys[c] for c in order.tolist()] == sorted(index.keys)


def test_empty_columns_and_extremes():
    index = GroupIndex()
    for empty in (
        pa.array([], pa.string()),
        pa.array([], pa.int64()),
        pa.array([], pa.large_string()),
    ):
        codes = index.codes_of_column(empty)
        assert codes is not None and codes.tolist() == []
    assert index.codes_of_column(pa.array(["x", "y"]).slice(2)).tolist() == []
    extremes = pa.array([INT64_MAX, INT64_MIN, 0, INT64_MAX], pa.int64())
    assert index.codes_of_values(extremes).tolist() == [0, 1, 2, 0]
    uint = pa.array([2**63 - 1, 0], pa.uint64())  # within int64: the same keys
    assert index.codes_of_values(uint).tolist() == [0, 2]
    big = "é" * 1_000_000 + "!"
    assert index.codes_of_values(
        pa.array([big, "", big[:-1], big], pa.large_string())
    ).tolist() == [3, 4, 5, 3]
    assert index.keys[3:] == [(big,), ("",), (big[:-1],)]
    assert index.codes_of([(big,), ("",), (INT64_MIN,)]).tolist() == [3, 4, 1]
    assert index.codes_of_column(pa.array(["a", None])) is None  # nulls: Python's path


def test_keys_the_table_cannot_hold_retire_it_and_python_numbers_the_rest():
    index = GroupIndex()
    index.codes_of_values(pa.array([1, 2]))
    assert index.codes_of([(True,)]).tolist() == [0]  # Python: True == 1, the same key
    assert index.codes_of([(2.5,), (2.0,)]).tolist() == [2, 1]  # 2.0 == 2
    assert index.codes_of_column(pa.array([3])) is None  # retired (2.5 is not an int)
    assert index.codes_of_values(pa.array([3, 1])).tolist() == [3, 0]
    assert index.keys == [(1,), (2,), (2.5,), (3,)]
    assert index.key_order() is None


def test_threads_numbering_through_every_path_give_each_key_one_code():
    index = GroupIndex()
    rng = random.Random(5)
    batches = []
    for i in range(48):
        values: list[Any] = _strings(rng, 3_000, 5_000) if i % 2 else _ints(rng, 3_000, 5_000)
        batches.append(values)
    results: list[Any] = [None] * len(batches)

    def work(worker: int) -> None:
        for i in range(worker, len(batches), 4):
            values = batches[i]
            if i % 3 == 0:
                results[i] = index.codes_of([(v,) for v in values])
            elif i % 3 == 1:
                results[i] = index.codes_of_values(pa.array(values))
            else:
                results[i] = index.codes_of_column(pa.array(values).dictionary_encode())

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(index.keys) == len(set(index.keys))
    assert len(index.keys) == len({(v,) for values in batches for v in values})
    for values, codes in zip(batches, results, strict=True):
        assert [index.keys[c] for c in codes.tolist()] == [(v,) for v in values]
    # the C table holds every key with its code, however it came
    assert index.codes_of_values(
        pa.array([v for (v,) in index.keys if isinstance(v, str)])
    ).tolist() == [c for c, (v,) in enumerate(index.keys) if isinstance(v, str)]
