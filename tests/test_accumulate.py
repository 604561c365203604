"""ExactSum: correctly rounded (== math.fsum), order- and chunk-independent, exact JSON state."""

from __future__ import annotations

import copy
import itertools
import json
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from streammetric import StateError
from streammetric.accumulate import ExactSum, GroupedExactSum, exact_sum_units, units_to_float

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
float_arrays = arrays(np.float64, st.integers(0, 300), elements=finite)


@settings(max_examples=300, deadline=None)
@given(float_arrays)
def test_equals_fsum_bit_for_bit(values):
    try:
        expected = math.fsum(values)
    except OverflowError:  # fsum overflows in an intermediate step; the exact sum is still defined
        return
    assert ExactSum.from_values(values).value == expected


@settings(max_examples=200, deadline=None)
@given(float_arrays, st.lists(st.integers(0, 300), max_size=6), st.randoms(use_true_random=False))
def test_same_bits_whatever_chunks_order_and_merge_tree(values, cuts, rnd):
    whole = ExactSum.from_values(values)
    order = list(range(len(values)))
    rnd.shuffle(order)
    shuffled = values[order]
    bounds = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    parts = [ExactSum.from_values(shuffled[a:b]) for a, b in itertools.pairwise(bounds)]
    while len(parts) > 1:
        i = rnd.randrange(len(parts) - 1)
        parts[i : i + 2] = [parts[i].merge(parts[i + 1])]
    assert parts[0] == whole and parts[0].units == whole.units


def test_cancellation_is_exact():
    assert ExactSum.from_values([1e308, 1.0, -1e308]).value == 1.0
    assert ExactSum.from_values([1e-300, 1e300, -1e300]).value == 1e-300
    assert ExactSum.from_values([5e-324] * 3).value == 1.5e-323


def test_extreme_magnitudes_and_overflow():
    assert ExactSum.from_values([1.7e308, 1.7e308]).value == math.inf  # the true sum overflows
    assert (
        ExactSum.from_values([1.7e308, 1.7e308, -1.7e308]).value == 1.7e308
    )  # fsum gives inf here


def test_large_batches_cross_chunk_boundaries():
    rng = np.random.default_rng(1)
    values = -np.log(rng.random(300_000))
    assert ExactSum.from_values(values).value == math.fsum(values)
    stream = ExactSum()
    for part in np.array_split(values, 4000):  # small updates go through the buffer
        stream.add(part)
    assert stream.value == math.fsum(values)


def test_non_finite_values_follow_ieee_whatever_the_order():
    assert ExactSum.from_values([1.0, math.inf]).value == math.inf
    assert ExactSum.from_values([-math.inf, 1.0]).value == -math.inf
    assert math.isnan(ExactSum.from_values([math.inf, -math.inf]).value)
    assert math.isnan(ExactSum.from_values([1.0, math.nan]).value)
    buffered = ExactSum()
    buffered.add([math.inf])  # still in the buffer when read
    assert buffered.value == math.inf


def test_never_a_running_float32():
    total = ExactSum()
    for value in np.full(10_000, 0.1, dtype=np.float32):
        total.add(value)  # NumPy 2: 0.0 + np.float32(x) would stay float32
    assert total.value == math.fsum([float(np.float32(0.1))] * 10_000)


def test_json_and_pickle_round_trip():
    values = np.random.default_rng(2).normal(size=1000) * 1e10
    total = ExactSum.from_values(np.append(values, math.inf))
    state = json.loads(json.dumps(total.to_json()))
    assert ExactSum.from_json(state) == total
    assert pickle.loads(pickle.dumps(total)) == total


def test_bad_state_is_a_clear_error():
    with pytest.raises(StateError, match=r"`sum\.units` is not a field of an exact sum state"):
        ExactSum.from_json({"units": 3})
    with pytest.raises(StateError, match="`sum` must be an exact sum state"):
        ExactSum.from_json(3)


def test_ratio_is_correctly_rounded():
    total = ExactSum.from_values([1.0, 2.0])
    assert total.ratio(3) == 1.0
    # the exact sum is divided, not the rounded one: the mean of three 0.1s is 0.1
    assert ExactSum.from_values([0.1] * 3).ratio(3) == float(Fraction(0.1) * 3 / 3) == 0.1
    assert math.fsum([0.1] * 3) / 3 != 0.1
    assert math.isnan(ExactSum().ratio(0)) and math.isnan(ExactSum().ratio(ExactSum()))
    # a mean over no weight is NaN whatever its numerator, as over no row (PyTorch's too)
    assert math.isnan(ExactSum.from_values([1.0]).ratio(ExactSum()))
    assert math.isnan(ExactSum.from_values([1.0]).ratio(0))


def test_units_helpers():
    assert exact_sum_units(np.array([0.25, 0.25])) == 1 << 1073
    assert units_to_float(-(1 << 1074)) == -1.0
    assert units_to_float(1 << 3000) == math.inf


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ({"mantissa": "1", "shift": 10**12}, "shift"),  # would allocate 125 GB
        ({"mantissa": "1", "shift": 2**40}, "shift"),
        ({"mantissa": "1", "shift": -1}, "shift"),
        ({"mantissa": "1", "shift": True}, "shift"),
        ({"mantissa": "1", "shift": 1.5}, "shift"),
        ({"mantissa": "9" * 5000, "shift": 0}, "mantissa"),  # more digits than any float64 sum
        ({"mantissa": "1" + "0" * 700, "shift": 0}, "mantissa"),
        ({"mantissa": "3", "shift": 2199}, "mantissa"),  # 2**2200 units: beyond any sum
        ({"mantissa": " 1_0", "shift": 0}, "mantissa"),
        ({"mantissa": 1, "shift": 0}, "mantissa"),
        ({"mantissa": "1", "shift": 0, "num_nan": -2}, "num_nan"),
        ({"mantissa": "1", "shift": 0, "num_pos_inf": "3"}, "num_pos_inf"),
        ({"mantissa": "1", "shift": 0, "units": 3}, "units"),
        (["1", 0], None),
    ],
)
def test_a_bad_or_huge_state_is_refused_at_once_naming_the_field(state, field):
    with pytest.raises(StateError) as caught:
        ExactSum.from_json(state, "sum_metric")
    assert caught.value.field == ("sum_metric" if field is None else f"sum_metric.{field}")
    assert f"`{caught.value.field}`" in str(caught.value) and "\n" not in str(caught.value)


def test_every_float64_sum_still_loads():
    biggest = ExactSum.from_values([np.finfo(np.float64).max] * 1000)
    biggest.add([-np.finfo(np.float64).tiny / 2**52])  # the smallest subnormal, too
    for total in (biggest, ExactSum.from_values([-1e308] * 3), ExactSum()):
        assert ExactSum.from_json(json.loads(json.dumps(total.to_json()))) == total


# --- the segmented sum: GroupedExactSum ---------------------------------------------------------

any_floats = arrays(
    np.float64,
    st.integers(0, 400),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
)


def _reference(values: np.ndarray, codes: np.ndarray, group: int) -> ExactSum:
    return ExactSum.from_values(values[codes == group])


@settings(max_examples=200, deadline=None)
@given(any_floats, st.integers(1, 9), st.lists(st.integers(0, 400), max_size=5), st.data())
def test_each_group_is_the_exact_sum_of_its_values_whatever_the_batching(
    values, groups, cuts, data
):
    codes = np.array(
        data.draw(st.lists(st.integers(0, groups - 1), min_size=len(values), max_size=len(values))),
        dtype=np.int64,
    )
    whole = GroupedExactSum()
    whole.add(values, codes)
    batched = GroupedExactSum()
    bounds = [0, *sorted(min(c, len(values)) for c in cuts), len(values)]
    for start, stop in itertools.pairwise(bounds):
        batched.add(values[start:stop], codes[start:stop].astype(np.int32))
    for group in range(groups + 1):
        expected = _reference(values, codes, group)
        assert whole[group] == expected and batched[group] == expected
        assert whole[group].units == expected.units
    assert len(whole) == (int(codes.max()) + 1 if len(codes) else 0)


@settings(max_examples=100, deadline=None)
@given(any_floats, st.integers(1, 6), st.data())
def test_merging_with_a_mapping_gives_the_sums_of_one_numbering(values, groups, data):
    """Two units of work number their groups in their own order; merging maps them into one."""
    codes = np.array(
        data.draw(st.lists(st.integers(0, groups - 1), min_size=len(values), max_size=len(values))),
        dtype=np.int64,
    )
    half = len(values) // 2
    permutation = np.array(data.draw(st.permutations(range(groups))), dtype=np.int64)
    first, second = GroupedExactSum(), GroupedExactSum()
    first.add(values[:half], codes[:half])
    second.add(values[half:], np.argsort(permutation)[codes[half:]])  # its own numbering
    total = GroupedExactSum().merge(second, permutation[: len(second)]).merge(first)
    for group in range(groups):
        assert total[group] == _reference(values, codes, group)


def test_grouped_sums_cancel_and_reach_the_ends_of_the_range():
    big = np.finfo(np.float64).max
    values = np.array([big, big, -big, 1.0, -1e-300, 5e-324, 5e-324, big, 1e16, -1e16])
    codes = np.array([0, 0, 0, 1, 1, 2, 2, 3, 4, 4])
    sums = GroupedExactSum()
    for _ in range(1000):  # many adds of the largest magnitude into one group's digits
        sums.add(values, codes)
    assert sums[0].units == 1000 * exact_sum_units(np.array([big]))
    assert sums[0].value == math.inf  # the exact sum is beyond float64, finite values only
    assert sums[1].value == math.fsum([1.0, -1e-300] * 1000)
    assert sums[2].units == 2000 and sums[4].value == 0.0
    assert sums[3].units == 1000 * exact_sum_units(np.array([big]))


def test_grouped_special_values_json_and_bad_codes():
    sums = GroupedExactSum()
    sums.add([np.inf, np.nan, -np.inf, 2.5], [1, 1, 0, 3])
    assert math.isnan(sums[1].value) and sums[0].value == -math.inf and sums[2].value == 0.0
    assert [s.num_nan for s in sums.sums()] == [0, 1, 0, 0]
    again = GroupedExactSum.from_json(json.loads(json.dumps(sums.to_json())))
    assert again.to_json() == sums.to_json() and len(again) == 4
    with pytest.raises(ValueError, match=">= 0"):
        sums.add([1.0], [-1])
    with pytest.raises(ValueError, match="one group code per value"):
        sums.add([1.0, 2.0], [0])
    with pytest.raises(StateError, match=r"sums\[1\]\.shift"):
        GroupedExactSum.from_json([{"mantissa": "1", "shift": 0}, {"mantissa": "1", "shift": -1}])
    assert sums.to_json()[3] == ExactSum.from_values([2.5]).to_json()


def test_grouped_sums_pickle_and_copy():
    """A metric state holds them (a vector of weighted per-class sums): pickling and copying
    keep every group, the empty ones at the end included, and share nothing."""
    sums = GroupedExactSum()
    sums.add([np.inf, 0.1, 1e300, -1e300], [1, 0, 0, 0])
    sums._add_sum(4, ExactSum())
    for again in (pickle.loads(pickle.dumps(sums)), copy.deepcopy(sums), copy.copy(sums)):
        assert again.to_json() == sums.to_json() and len(again) == 5
        again.add([1.0], [0])
        assert again[0] != sums[0]
    assert len(pickle.loads(pickle.dumps(GroupedExactSum()))) == 0


def test_grouped_sums_start_empty_on_a_block_another_one_freed():
    """A new GroupSums starts with every group empty, whatever the memory it is given held
    (the allocator hands freed blocks out again)."""
    from streammetric.accumulate import GroupedExactSum

    groups = 20_000  # ~1.8 MB of groups
    codes = np.arange(groups, dtype=np.int64)
    for round_ in range(3):
        first = GroupedExactSum()
        first.add(np.full(groups, 1e300), codes)
        first.add(np.array([np.inf, np.nan]), np.array([0, 1]))
        del first
        second = GroupedExactSum()
        second.add(np.full(groups, 0.5 + round_), codes)
        assert len(second) == groups
        assert all(second[g].value == 0.5 + round_ for g in (0, 1, groups // 2, groups - 1))
        assert second[1].num_nan == 0 and second[0].num_pos_inf == 0
        del second
        grown = GroupedExactSum()  # grows, copying its groups
        for size in (10, 13_000, 30_000):
            grown.add(np.ones(1), np.array([size - 1]))
        assert [grown[g].value for g in (0, 9, 12_999, 29_999, 29_998)] == [0, 1.0, 1.0, 1.0, 0]


# --- compact groups: windows of digits, promoted to full accumulators -------------------------

# Values of every magnitude (subnormals, huge, +-0, inf, NaN), and runs of one narrow range (the
# groups' windows) with now and then a value far outside it (a promotion in the middle).
narrow = st.one_of(
    st.floats(1e-8, 20.0),
    st.floats(-20.0, -1e-8),
    st.sampled_from([0.0, -0.0, 0.6931471805599453, 4.0, 3.9999999999999996]),
)
wide = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from(
        [1e300, -1e300, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
    ),
    st.floats(min_value=-1e-300, max_value=1e-300),
)
mixed_arrays = arrays(
    np.float64,
    st.integers(0, 300),
    elements=st.one_of(narrow, narrow, narrow, wide),
)


def _codes(data: st.DataObject, n: int, groups: int) -> np.ndarray:
    return np.array(
        data.draw(st.lists(st.integers(0, groups - 1), min_size=n, max_size=n)), dtype=np.int64
    )


def _assert_groups(sums: GroupedExactSum, expected: list[ExactSum]) -> None:
    for group, want in enumerate(expected):
        got = sums[group]
        assert got.units == want.units
        assert (got.num_pos_inf, got.num_neg_inf, got.num_nan) == (
            want.num_pos_inf,
            want.num_neg_inf,
            want.num_nan,
        )
        assert got == want


@settings(max_examples=200, deadline=None)
@given(mixed_arrays, st.integers(1, 40), st.lists(st.integers(0, 300), max_size=4), st.data())
def test_compact_groups_equal_exact_sums_for_values_of_every_magnitude(values, groups, cuts, data):
    codes = _codes(data, len(values), groups)
    sums = GroupedExactSum()
    bounds = [0, *sorted(min(c, len(values)) for c in cuts), len(values)]
    for start, stop in itertools.pairwise(bounds):
        sums.add(values[start:stop], codes[start:stop])
    _assert_groups(sums, [_reference(values, codes, g) for g in range(groups + 1)])


def test_a_group_promoted_in_the_middle_keeps_its_exact_sum():
    """Tiny values set a group's window; 1e300 leaves it (the group goes to a full accumulator),
    and the tiny values after it, the cancelling -1e300 and a subnormal are still exact."""
    runs = [
        np.full(500, 1e-3),
        np.array([1e300, 0.1, -0.0, 5e-324]),
        np.full(700, 2.5e-2),
        np.array([-1e300, np.inf, 3.0]),
        -np.full(300, 1e-3),
    ]
    sums = GroupedExactSum()
    seen: list[float] = []
    for run in runs:
        sums.add(run, np.zeros(len(run), dtype=np.int64))
        sums.add(run[::-1], np.ones(len(run), dtype=np.int32))  # another group, other order
        seen.extend(run)
        want = ExactSum.from_values(np.array(seen))
        _assert_groups(sums, [want, want])
    finite_only = ExactSum.from_values(np.array([v for v in seen if math.isfinite(v)]))
    assert sums[0].units == finite_only.units and sums[0].value == math.inf  # the inf counts


def test_sums_growing_far_above_their_first_values_stay_in_the_window_and_exact():
    """The window's top digit takes the carries: 100,000 values near 4 sum to 2**19 (digits
    above the first value's), then the sum cancels back to below the first value."""
    values = np.concatenate([np.full(100_000, 3.75), np.array([1e-9]), np.full(100_000, -3.75)])
    sums = GroupedExactSum()
    for start in range(0, len(values), 4096):
        sums.add(values[start : start + 4096], np.zeros(len(values[start : start + 4096]), int))
    assert sums[0].units == exact_sum_units(np.array([1e-9])) and sums[0].value == 1e-9


@settings(max_examples=100, deadline=None)
@given(mixed_arrays, mixed_arrays, st.integers(1, 12), st.integers(1, 12), st.data())
def test_compact_merges_with_and_without_a_mapping(first_values, second_values, n1, n2, data):
    """Windows at one base add digits; other bases, promoted groups and empty groups meet too,
    and a mapping may send several groups to one."""
    first_codes = _codes(data, len(first_values), n1)
    second_codes = _codes(data, len(second_values), n2)
    first, second = GroupedExactSum(), GroupedExactSum()
    first.add(first_values, first_codes)
    second.add(second_values, second_codes)
    # without a mapping: group i into group i
    plain = GroupedExactSum().merge(first).merge(second)
    groups = max(n1, n2) + 1
    _assert_groups(
        plain,
        [
            ExactSum.from_values(
                np.concatenate([first_values[first_codes == g], second_values[second_codes == g]])
            )
            for g in range(groups)
        ],
    )
    # a mapping, not one to one: second's groups land on a few of first's
    mapping = np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=len(second), max_size=len(second))),
        dtype=np.int64,
    )
    mapped = GroupedExactSum().merge(first).merge(second, mapping)
    mapped_codes = mapping[second_codes] if len(second) else second_codes
    _assert_groups(
        mapped,
        [
            ExactSum.from_values(
                np.concatenate([first_values[first_codes == g], second_values[mapped_codes == g]])
            )
            for g in range(max(n1, 5) + 1)
        ],
    )
    # merging into itself doubles every group
    first._sums.merge(first._sums)
    _assert_groups(
        first,
        [
            ExactSum.from_values(np.concatenate([first_values[first_codes == g]] * 2))
            for g in range(n1 + 1)
        ],
    )
    # and adding after a merge goes on exactly
    plain.add(first_values, first_codes)
    _assert_groups(
        plain,
        [
            ExactSum.from_values(
                np.concatenate(
                    [
                        first_values[first_codes == g],
                        second_values[second_codes == g],
                        first_values[first_codes == g],
                    ]
                )
            )
            for g in range(groups)
        ],
    )


@settings(max_examples=100, deadline=None)
@given(mixed_arrays, st.integers(1, 20), mixed_arrays, st.data())
def test_compact_add_units_round_trips_and_goes_on(values, groups, more, data):
    """A saved state comes back through add_units (into a fresh one, and onto groups holding
    values already): the same sums, and adds after it stay exact."""
    codes = _codes(data, len(values), groups)
    more_codes = _codes(data, len(more), groups)
    sums = GroupedExactSum()
    sums.add(values, codes)
    again = GroupedExactSum()
    for g in range(len(sums)):
        again._sums.add_units(g, *sums._sums.get(g))
    _assert_groups(again, [_reference(values, codes, g) for g in range(groups + 1)])
    restored = pickle.loads(pickle.dumps(sums))
    restored.add(more, more_codes)
    again.add(more, more_codes)
    onto = GroupedExactSum()
    onto.add(more, more_codes)
    for g in range(len(sums)):
        onto._sums.add_units(g, *sums._sums.get(g))
    both = np.concatenate([values, more])
    both_codes = np.concatenate([codes, more_codes])
    expected = [_reference(both, both_codes, g) for g in range(groups + 1)]
    for result in (restored, again, onto):
        _assert_groups(result, expected)


def test_add_units_of_sums_a_window_cannot_hold():
    sums = GroupedExactSum()
    big = exact_sum_units(np.array([1.7976931348623157e308])) * 1000
    for units in (big, -big, 1, -1, 2**2000 + 1, -(2**1100) - 2**40, 0):
        sums._sums.add_units(0, units)
        sums._sums.add_units(1, units)
        sums.add(np.array([0.25, -5e-324]), np.array([1, 1]))
    total = big - big + 1 - 1 + 2**2000 + 1 - 2**1100 - 2**40
    assert sums[0].units == total
    assert sums[1].units == total + 7 * exact_sum_units(np.array([0.25, -5e-324]))
    with pytest.raises(OverflowError):
        sums._sums.add_units(2, 2**2300)


@settings(max_examples=100, deadline=None)
@given(mixed_arrays, st.integers(1, 20), mixed_arrays, st.data())
def test_add_units_of_many_groups_is_add_units_of_each(values, groups, more, data):
    """`GroupedExactSum.add_units` (one C call for a column of sums, codes in any order and
    repeated) gives every group the bits of one `add_units` per sum."""
    codes = _codes(data, len(values), groups)
    sums = GroupedExactSum()
    sums.add(values, codes)
    finite = [sums._sums.get(g)[0] for g in range(len(sums))]
    targets = np.array(
        data.draw(st.lists(st.integers(0, groups + 3), min_size=len(finite), max_size=len(finite))),
        dtype=np.int64,
    )
    one_by_one, at_once = GroupedExactSum(), GroupedExactSum()
    for target in (one_by_one, at_once):
        target.add(more, _codes(data, len(more), groups))
    at_once._sums = pickle.loads(pickle.dumps(one_by_one))._sums  # the same start
    for g, units in zip(targets.tolist(), finite, strict=True):
        one_by_one._sums.add_units(g, units)
    at_once.add_units(targets, finite)
    assert len(at_once) == len(one_by_one)
    assert [at_once._sums.get(g) for g in range(len(at_once))] == [
        one_by_one._sums.get(g) for g in range(len(one_by_one))
    ]


@pytest.mark.parametrize(
    ("codes", "units", "error"),
    [
        (np.array([0, 1], dtype=np.int32), [1, 2], TypeError),
        (np.array([[0, 1]]), [1, 2], TypeError),
        (np.array([0, -1]), [1, 2], ValueError),
        (np.array([0, 1]), [1], ValueError),
        (np.array([0, 1]), [1, 2.0], TypeError),
        (np.array([0, 1]), [1, True], TypeError),
        (np.array([0, 1]), [1, 2**2300], OverflowError),
    ],
)
def test_add_units_of_many_groups_adds_nothing_if_one_is_bad(codes, units, error):
    sums = GroupedExactSum()
    sums.add(np.array([0.5, 3.0]), np.array([0, 1]))
    before = [sums._sums.get(g) for g in range(len(sums))]
    with pytest.raises(error):
        sums._sums.add_units_many(codes, units)
    assert [sums._sums.get(g) for g in range(len(sums))] == before


@settings(max_examples=100, deadline=None)
@given(mixed_arrays, st.integers(1, 20), st.data())
def test_compact_ratios_are_exact_sum_ratios(values, groups, data):
    codes = _codes(data, len(values), groups)
    sums = GroupedExactSum()
    sums.add(values, codes)
    counts = np.array(
        data.draw(st.lists(st.integers(0, 10**6), min_size=groups + 2, max_size=groups + 2)),
        dtype=np.int64,
    )
    ratios = np.frombuffer(sums._sums.ratios(counts), dtype=np.float64)
    for g, count in enumerate(counts):
        want = _reference(values, codes, g).ratio(int(count))
        assert ratios[g] == want or (math.isnan(ratios[g]) and math.isnan(want))
        assert math.copysign(1.0, ratios[g]) == math.copysign(1.0, want) or math.isnan(want)


@settings(max_examples=100, deadline=None)
@given(mixed_arrays, st.integers(1, 20), st.data())
def test_compact_ratios_of_chosen_groups_are_those_groups_ratios(values, groups, data):
    """`ratios(counts, codes)`: item i is group codes[i] over counts[i] (codes in any order,
    repeated, beyond the groups), the bits `ratios` of every group gives."""
    codes = _codes(data, len(values), groups)
    sums = GroupedExactSum()
    sums.add(values, codes)
    every = groups + 3
    counts = np.array(
        data.draw(st.lists(st.integers(0, 10**6), min_size=every, max_size=every)), dtype=np.int64
    )
    whole = np.frombuffer(sums._sums.ratios(counts), dtype=np.float64)
    chosen = np.array(
        data.draw(st.lists(st.integers(0, every - 1), min_size=0, max_size=30)), dtype=np.int64
    )
    picked = np.frombuffer(sums._sums.ratios(counts[chosen], chosen), dtype=np.float64)
    assert picked.tobytes() == whole[chosen].tobytes()


def test_compact_ratios_read_by_threads_at_once():
    """`ratios` runs with the GIL released and only reads: threads taking ratios of the same
    sums at once all get its bits."""
    import threading

    rng = np.random.default_rng(4)
    sums = GroupedExactSum()
    sums.add(rng.normal(size=400_000) * 1e3, rng.integers(0, 200_000, 400_000))
    counts = rng.integers(0, 50, 200_000).astype(np.int64)
    reference = sums._sums.ratios(counts)
    codes = np.arange(200_000, dtype=np.int64)
    got: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: got.append(sums._sums.ratios(counts, codes)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [reference] * 4


@pytest.mark.parametrize(
    ("codes", "error"),
    [
        (np.array([0, -1]), ValueError),
        (np.array([0]), ValueError),
        (np.array([0, 1], dtype=np.int32), ValueError),
        ("01", TypeError),
    ],
)
def test_compact_ratios_refuse_bad_codes(codes, error):
    sums = GroupedExactSum()
    sums.add(np.array([0.5, 3.0]), np.array([0, 1]))
    with pytest.raises(error):
        sums._sums.ratios(np.ones(2, dtype=np.int64), codes)


def test_many_compact_groups():
    rng = np.random.default_rng(7)
    groups = 20_000
    values = -np.log(rng.uniform(0.01, 1.0, 200_000))
    values[rng.integers(0, len(values), 50)] = 1e300  # a few groups promoted
    values[rng.integers(0, len(values), 50)] = 5e-324
    codes = rng.integers(0, groups, len(values))
    sums, halves = GroupedExactSum(), [GroupedExactSum(), GroupedExactSum()]
    sums.add(values, codes)
    halves[0].add(values[::2], codes[::2])
    halves[1].add(values[1::2], codes[1::2])
    merged = GroupedExactSum().merge(halves[0]).merge(halves[1])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(groups + 1))
    for g in range(0, groups, 97):
        want = ExactSum.from_values(values[order[bounds[g] : bounds[g + 1]]])
        assert sums[g].units == want.units and merged[g].units == want.units
    counts = np.bincount(codes, minlength=groups).astype(np.int64)
    assert (
        np.frombuffer(sums._sums.ratios(counts), dtype=np.float64).tobytes()
        == np.frombuffer(merged._sums.ratios(counts), dtype=np.float64).tobytes()
    )


def test_ratios_round_ties_and_near_ties_as_exact_division():
    """`ratios` stops its long division once the quotient has 97 bits: quotients exactly half
    an ulp (ties, to even) or a unit beyond it, at every scale and for counts on both sides of
    2**32 (below it the division steps in 64 bits), still round as Fraction does."""
    cases = []
    for scale in (-1074, -1000, -60, 0, 40, 200, 900):
        for count in (
            2,
            3,
            6,
            7,
            1000,
            2**32 - 1,
            2**32 + 1,
            2**40 + 1,
        ):  # (64-bit steps below 2**32)
            for lead in (2**52, 2**52 + 1, 2**53 - 1, 2**53 + 1):  # 53 bits: ties
                # sum = count * (lead + 1/2) * 2**scale, nudged by a unit of 2**-1074 or
                # by powers of two far below the quotient's 53 bits (a remainder, then,
                # with no nonzero digit under it)
                total = Fraction(count * (2 * lead + 1), 2) * Fraction(2) ** scale
                units = total * Fraction(2) ** 1074
                if units.denominator != 1:
                    continue
                length = int(units).bit_length()
                for shift in {0, max(0, length - 130), max(0, length - 100), max(0, length - 70)}:
                    for sign in (-1, 0, 1):
                        cases.append((int(units) + sign * 2**shift, count))
    for count in (3, 7, 1000, 2**40 + 1):  # quotients of 4 digits or more, ties but for a
        for lead in (2**52, 2**52 + 1):  # remainder with no nonzero digit under it
            for digit in (1, 5, 20):
                for rest in (0, 1, count - 1):
                    tie = (2 * lead + 1) << (100 - 54)
                    cases.append(((count * tie + rest) << (32 * digit), count))
    rng = np.random.default_rng(5)
    for units, count in cases:
        # the sum as float64 values: units split into parts exactly representable
        values, rest = [], units
        while rest:
            part = float(Fraction(rest) * Fraction(2) ** -1074)
            if math.isinf(part):
                break
            values.append(part)
            rest -= int(Fraction(part) * Fraction(2) ** 1074)
        if rest or len(values) > 60:
            continue
        values_array = np.array(rng.permutation(values), dtype=np.float64)
        sums = GroupedExactSum()
        sums.add(values_array, np.zeros(len(values_array), dtype=np.int64))
        got = np.frombuffer(sums._sums.ratios(np.array([count], dtype=np.int64)), np.float64)[0]
        want = float(Fraction(units, count) * Fraction(2) ** -1074)
        assert got == want, (units, count, got, want)
    assert len(cases) > 1000


@settings(max_examples=150, deadline=None)
@given(mixed_arrays, st.integers(1, 12), st.data())
def test_json_columns_of_any_sums_are_their_to_json(values, groups, data):
    """The C parts of each group's JSON (sums of any sign and size, non-finite counts, whole
    counts up to 2**63 - 1 added, groups beyond) are `ExactSum.to_json`'s, field by field."""
    from streammetric.accumulate import NONFINITE, ExactSum

    codes = _codes(data, len(values), groups)
    sums = GroupedExactSum()
    sums.add(values, codes)
    asked = data.draw(st.lists(st.integers(0, groups + 2), min_size=1, max_size=20))
    counts = data.draw(
        st.lists(
            st.one_of(st.just(0), st.integers(0, 2**63 - 1)),
            min_size=len(asked),
            max_size=len(asked),
        )
    )
    columns = sums.json_columns(np.array(asked), np.array(counts))
    for i, (group, count) in enumerate(zip(asked, counts, strict=True)):
        one = sums[group]
        one.add_count(count)
        item = {name: column[i] for name, column in columns.items()}
        expected = one.to_json()
        assert {k: v for k, v in item.items() if k not in NONFINITE or v} == expected
        assert ExactSum.from_json(expected).units == one.units


def test_json_columns_are_each_groups_to_json_with_its_count_added():
    from streammetric.accumulate import ExactSum, GroupedExactSum

    rng = np.random.default_rng(2)
    values = rng.normal(size=200) * 10.0 ** rng.integers(-30, 30, 200)
    values[[3, 50]] = np.inf
    values[7] = -np.inf
    values[9] = np.nan
    codes = rng.integers(0, 12, 200)
    sums = GroupedExactSum()
    sums.add(values, codes)
    groups = [0, 5, 11, 14, 3]  # 14: beyond the groups added to
    counts = [0, 7, 2**40, 3, 0]
    expected = []
    for group, count in zip(groups, counts, strict=True):
        one = sums[group]
        one.add_count(count)
        expected.append(one.to_json())
    columns = sums.json_columns(groups, counts)
    assert set(columns) == {"mantissa", "shift"}.union(*expected)  # counts where one is not 0
    assert all(len(column) == len(groups) for column in columns.values())
    per_group = [
        dict(zip(columns, item, strict=True)) for item in zip(*columns.values(), strict=True)
    ]
    assert [
        {k: v for k, v in item.items() if v or k in ("mantissa", "shift")} for item in per_group
    ] == expected
    assert any("num_pos_inf" in item for item in expected)
    finite = GroupedExactSum()
    finite.add(np.where(np.isfinite(values), values, 0.0), codes)
    assert set(finite.json_columns(groups, counts)) == {"mantissa", "shift"}
    assert ExactSum.from_json(expected[2]).units == sums[11].units + 2**40 * 2**1074
