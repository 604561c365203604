"""The bootstrap's randomness (`streammetric.functional.resample`): row identities hashed the
same way whatever their container or integer width, buckets in range, Poisson(1) weights, and
the percentile interval as NumPy's quantile."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from streammetric.functional.resample import (
    BUCKETS,
    buckets_of,
    hash_ids,
    hash_positions,
    percentile_interval,
    poisson_weights,
)

INTS = np.array([0, 1, -5, 7, 2**31 - 1, -(2**31), 123456789], dtype=np.int64)
STRINGS = ["a", "", "héllo", "row-17", "a", "日本語", "x" * 300]


def test_pinned_hashes():
    """Cross-platform regression guard: these values were computed once (x86-64 Linux) and
    pinned; a change of the hash (or its bytes on another platform) changes every interval of
    every published result, so it must show here."""
    assert hash_ids(np.array([0, 1, -5, 2**40]), 0).tolist() == [
        15202905161893589797,
        9817213357740388514,
        12034338493436782240,
        11893636725084319405,
    ]
    assert hash_ids(pa.array(["a", "", "héllo"]), 7).tolist() == [
        4866859883749242192,
        2545613413657786623,
        3791321921822874255,
    ]
    assert hash_positions("a.parquet", np.arange(3), 0).tolist() == [
        14930226907251014559,
        13986133695034303004,
        2073921979739804342,
    ]
    assert poisson_weights(0, 2)[:, :8].tolist() == [
        [1, 2, 0, 0, 0, 2, 1, 1],
        [0, 1, 3, 0, 0, 2, 0, 0],
    ]


def test_hashing_is_deterministic_and_depends_on_the_seed():
    first = hash_ids(INTS, 3)
    assert first.dtype == np.uint64 and first.shape == INTS.shape
    assert np.array_equal(first, hash_ids(INTS.copy(), 3))
    assert not np.array_equal(first, hash_ids(INTS, 4))
    assert len(set(first.tolist())) == len(INTS)  # distinct ids, distinct hashes
    strings = hash_ids(pa.array(STRINGS), 3)
    assert np.array_equal(strings, hash_ids(pa.array(STRINGS), 3))
    assert strings[0] == strings[4]  # equal ids, equal hashes
    assert len(set(strings.tolist())) == len(set(STRINGS))
    positions = hash_positions("p/a.parquet", np.arange(10), 3)
    assert np.array_equal(positions, hash_positions("p/a.parquet", np.arange(10), 3))
    assert not np.array_equal(positions, hash_positions("p/b.parquet", np.arange(10), 3))
    assert not np.array_equal(positions, hash_positions("p/a.parquet", np.arange(10), 4))
    # a row's hash does not depend on the other rows asked with it
    assert np.array_equal(positions[4:7], hash_positions("p/a.parquet", np.arange(4, 7), 3))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_integers_hash_by_value_whatever_their_width(dtype):
    info = np.iinfo(dtype)
    values = INTS[(INTS >= info.min) & (INTS <= info.max)]
    reference = hash_ids(values.astype(np.int64), 11)
    assert np.array_equal(hash_ids(values.astype(dtype), 11), reference)
    arrow_type = pa.from_numpy_dtype(np.dtype(dtype))
    assert np.array_equal(hash_ids(pa.array(values, arrow_type), 11), reference)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unsigned_integers_hash_by_value(dtype):
    values = np.array([0, 1, 7, 200], dtype=np.int64)
    reference = hash_ids(values, 11)
    assert np.array_equal(hash_ids(values.astype(dtype), 11), reference)
    assert np.array_equal(hash_ids(pa.array(values.astype(dtype)), 11), reference)


def test_strings_whatever_their_encoding_or_container():
    reference = hash_ids(pa.array(STRINGS, pa.string()), 5)
    for array in [
        pa.array(STRINGS, pa.large_string()),
        pa.array([s.encode("utf-8") for s in STRINGS], pa.binary()),
        pa.array([s.encode("utf-8") for s in STRINGS], pa.large_binary()),
        pa.array(STRINGS).dictionary_encode(),
        pa.chunked_array([STRINGS[:3], STRINGS[3:]]),
        pa.chunked_array(  # chunks of one dictionary type, each with its own dictionary
            [pa.array(STRINGS[:2]).dictionary_encode(), pa.array(STRINGS[2:]).dictionary_encode()]
        ),
    ]:
        assert np.array_equal(hash_ids(array, 5), reference), array.type
    assert np.array_equal(hash_ids(np.array(STRINGS), 5), reference)  # NumPy unicode
    assert np.array_equal(hash_ids(np.array(STRINGS, dtype=object), 5), reference)
    # a slice (non-zero offset into the buffers) hashes its own rows
    assert np.array_equal(hash_ids(pa.array(STRINGS).slice(2, 3), 5), reference[2:5])
    assert np.array_equal(hash_ids(pa.array(STRINGS, pa.large_binary()).slice(1), 5), reference[1:])
    # strings and integers are different ids even when they print alike
    assert hash_ids(pa.array(["1"]), 5)[0] != hash_ids(np.array([1]), 5)[0]


def test_chunked_and_empty_integers():
    chunked = pa.chunked_array([INTS[:2], INTS[2:5], INTS[5:]])
    assert np.array_equal(hash_ids(chunked, 2), hash_ids(INTS, 2))
    empty = hash_ids(pa.chunked_array([], pa.int64()), 2)
    assert empty.shape == (0,) and empty.dtype == np.uint64
    assert hash_ids(np.zeros(0, np.int64), 2).shape == (0,)


@pytest.mark.parametrize(
    "ids",
    [
        pa.array([1, None, 3]),
        pa.array(["a", None]),
        pa.array(["a", None, "a"]).dictionary_encode(),
        pa.chunked_array([[1, 2], [None]]),
    ],
    ids=["int", "string", "dictionary", "chunked"],
)
def test_null_ids_raise(ids):
    with pytest.raises(ValueError, match="null"):
        hash_ids(ids, 0)


@pytest.mark.parametrize(
    "ids", [pa.array([1.5, 2.0]), np.array([1.5]), np.array([True]), pa.array([True])]
)
def test_ids_of_other_types_raise(ids):
    with pytest.raises(TypeError):
        hash_ids(ids, 0)


def test_buckets_cover_their_range_evenly():
    buckets = buckets_of(hash_ids(np.arange(200_000), 9))
    assert buckets.dtype == np.int64
    assert buckets.min() >= 0 and buckets.max() < BUCKETS == 1024
    counts = np.bincount(buckets, minlength=BUCKETS)
    assert counts.shape == (BUCKETS,)
    # ~195 rows a bucket: a chi-square over 1023 degrees of freedom (mean 1023, sd ~45)
    expected = 200_000 / BUCKETS
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert 1023 - 6 * 45 < chi2 < 1023 + 6 * 45, chi2
    # the top bits: the largest and smallest hashes land in the last and first bucket
    extremes = np.array([0, 2**54 - 1, 2**54, 2**64 - 1], dtype=np.uint64)
    assert buckets_of(extremes).tolist() == [0, 0, 1, 1023]


def test_poisson_weights_have_mean_and_variance_one():
    weights = poisson_weights(seed=0, replicates=400)  # 409,600 draws
    assert weights.shape == (400, BUCKETS) and weights.dtype == np.int64
    n = weights.size
    # Poisson(1): mean 1 (sd of the sample mean 1/sqrt(n) ~ 0.0016), variance 1 (the sample
    # variance's sd sqrt((mu4 - 1)/n) = sqrt(3/n) ~ 0.0027, mu4 = 1 + 3 = 4): 5 sds each
    assert abs(weights.mean() - 1) < 5 / np.sqrt(n)
    assert abs(weights.var() - 1) < 5 * np.sqrt(3 / n)
    assert weights.min() == 0
    # P(0) = P(1) = 1/e, P(2) = 1/(2e): each within 5 binomial sds
    for k, p in [(0, np.exp(-1)), (1, np.exp(-1)), (2, np.exp(-1) / 2)]:
        share = float((weights == k).mean())
        assert abs(share - p) < 5 * np.sqrt(p * (1 - p) / n), (k, share)


def test_poisson_weights_same_seed_same_bits_other_seed_other_weights():
    a = poisson_weights(seed=5, replicates=30)
    assert np.array_equal(a, poisson_weights(seed=5, replicates=30))
    assert not np.array_equal(a, poisson_weights(seed=6, replicates=30))
    # replicate r's weights do not depend on how many replicates were asked for
    assert np.array_equal(a[:10], poisson_weights(seed=5, replicates=10))
    # replicates are not copies of one another
    assert len({row.tobytes() for row in a}) == 30


@pytest.mark.parametrize("level", [0.95, 0.9, 0.8, 0.5, 0.99, 0.683])
@pytest.mark.parametrize("shape", [(1000,), (7, 200), (3, 4, 13), (5, 1), (2, 2)])
def test_percentile_interval_is_numpy_quantile_bit_for_bit(level, shape):
    rng = np.random.default_rng(abs(hash((level, shape))) % 2**32)
    values = rng.normal(size=shape) * rng.choice([1e-300, 1.0, 1e300], size=shape)
    values.flat[:: max(1, values.size // 3)] = 0.25  # ties
    lower, upper = percentile_interval(values, level)
    alpha = (1 - level) / 2
    expected_lower = np.quantile(values, alpha, axis=-1)
    expected_upper = np.quantile(values, 1 - alpha, axis=-1)
    assert lower.tobytes() == np.asarray(expected_lower, dtype=np.float64).tobytes()
    assert upper.tobytes() == np.asarray(expected_upper, dtype=np.float64).tobytes()


def test_percentile_interval_leaves_out_nan_replicates():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(4, 300))
    values[0, ::7] = np.nan
    values[1, :299] = np.nan  # one value left
    values[2, :] = np.nan  # none
    lower, upper = percentile_interval(values, 0.9)
    for row in (0, 1, 3):
        kept = values[row][~np.isnan(values[row])]
        assert lower[row] == np.quantile(kept, 0.05) and upper[row] == np.quantile(kept, 0.95)
    assert lower[1] == upper[1] == values[1, 299]
    assert np.isnan(lower[2]) and np.isnan(upper[2])


def test_percentile_interval_with_infinite_neighbours():
    values = np.array([[-np.inf] * 10 + [1.0] * 10, [np.inf] * 20, [1.0] * 19 + [np.inf]])
    lower, upper = percentile_interval(values, 0.9)
    assert lower.tolist() == [-np.inf, np.inf, 1.0]
    assert upper.tolist() == [1.0, np.inf, np.inf]
    assert not np.isnan(lower).any() and not np.isnan(upper).any()


def test_uint64_ids_beyond_int64_are_not_the_negative_ints_of_the_same_bits():
    big = np.array([2**64 - 1, 2**63, 5], dtype=np.uint64)
    same_bits = big.view(np.int64)  # -1, -2**63, 5
    hashed, other = hash_ids(big, seed=0), hash_ids(same_bits, seed=0)
    assert hashed[0] != other[0] and hashed[1] != other[1]
    assert hashed[2] == other[2]  # 5 is 5 whatever the type
    assert np.array_equal(hash_ids(pa.array(big), seed=0), hashed)
