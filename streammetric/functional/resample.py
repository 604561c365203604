"""The bootstrap's randomness: row identities hashed into buckets, and each replicate's weight of
each bucket, both from counter-based hashes (no generator state), so that they are the same bits
whatever the batching, threads, engine, platform or NumPy version.

A row's weight in replicate ``r`` is the Poisson(1) count ``weights(seed, R)[r, bucket(row)]``:
it depends only on (seed, row identity, r). Rows are hashed into `BUCKETS` buckets; the metric
state is kept per bucket (one more dimension of the state, exact like every other), and a
replicate's state is the buckets' states added with its weights. The cost of intervals is then a
hash per row and a sum per (bucket, replicate), not rows x replicates. Resampling buckets of rows
assigned at random is the bootstrap of clusters of independent rows (the "random groups" of
survey sampling): it estimates the same sampling distribution as resampling rows, with
``BUCKETS`` independent units instead of ``n`` (see the README's "Confidence intervals").

>>> b = buckets_of(hash_positions("a.parquet", np.arange(5), seed=0))
>>> b.dtype, bool((b >= 0).all() and (b < BUCKETS).all())
(dtype('int64'), True)
>>> w = poisson_weights(seed=0, replicates=3)
>>> w.shape, w.dtype
((3, 1024), dtype('int64'))
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import Any

import numpy as np
import pyarrow as pa

from .._arrow import as_numpy
from .._exceptions import ConfigError
from .._kernels import hash_ints as _hash_ints
from .._kernels import hash_strings as _hash_strings

__all__ = [
    "BUCKETS",
    "DEFAULT_REPLICATES",
    "buckets_of",
    "check_replicates",
    "hash_ids",
    "hash_positions",
    "min_replicates",
    "percentile_interval",
    "poisson_weights",
]

#: buckets rows are hashed into (a power of two: the top bits of a row's hash)
BUCKETS = 1024
_BUCKET_SHIFT = 64 - (BUCKETS.bit_length() - 1)
DEFAULT_REPLICATES = 1000
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser on a Python int (the kernels' ``mix64``)."""
    x &= _MASK
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _key(seed: int, salt: int) -> int:
    return _mix(_mix((seed & _MASK) ^ salt) + _GOLDEN)


def _hash_u64(values: np.ndarray, key: int) -> np.ndarray:
    values = np.ascontiguousarray(values)
    if values.dtype.kind not in "iu" or values.dtype.itemsize != 8:
        values = values.astype(np.int64)
    out = np.empty(values.shape[0], dtype=np.uint64)
    if not _hash_ints(values.reshape(-1), key, out):  # pragma: no cover - made to fit
        raise TypeError("hash_ints refused 1-D 8-byte integers")
    return out


def _hash_bytes(name: str, key: int) -> int:
    data = np.frombuffer(name.encode("utf-8"), dtype=np.uint8)
    out = np.empty(1, dtype=np.uint64)
    if not _hash_strings(np.array([0, data.shape[0]], dtype=np.int64), data, key, out):
        raise TypeError("hash_strings refused a string")  # pragma: no cover
    return int(out[0])


def hash_positions(name: str, rows: np.ndarray, seed: int) -> np.ndarray:
    """The identity hash of rows known by position: row ``rows[i]`` of the file ``name`` (its
    path relative to the PATH argument)."""
    return _hash_u64(rows, _hash_bytes(name, _key(seed, 1)))


def hash_ids(ids: Any, seed: int) -> np.ndarray:
    """The identity hash of each row's id: integers (any width, by value) or strings/binary
    (by their UTF-8 bytes), as an Arrow array (chunked or not) or NumPy array. A null id, or
    an id of another type, is a `TypeError`/`ValueError` the caller words."""
    if isinstance(ids, pa.ChunkedArray):
        parts = [hash_ids(chunk, seed) for chunk in ids.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    if isinstance(ids, pa.Array):
        if ids.null_count:
            raise ValueError("ids must not be null")
        if pa.types.is_dictionary(ids.type):
            return hash_ids(ids.dictionary, seed)[as_numpy(ids.indices)]
        kind = ids.type
        if pa.types.is_integer(kind):
            return hash_ids(as_numpy(ids), seed)
        if pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind):
            ids = ids.cast(pa.large_binary())
        if not pa.types.is_large_binary(ids.type):
            raise TypeError(f"ids must be integers or strings, not {kind}")
        _, offsets, data = ids.buffers()
        offsets_np = np.frombuffer(offsets, dtype=np.int64)[ids.offset : ids.offset + len(ids) + 1]
        data_np = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        out = np.empty(len(ids), dtype=np.uint64)
        if not _hash_strings(np.ascontiguousarray(offsets_np), data_np, _key(seed, 3), out):
            raise ValueError("string offsets out of range")  # pragma: no cover - Arrow checked
        return out
    array = np.asarray(ids)
    if array.dtype.kind in "iu":
        if array.dtype.kind == "u" and array.dtype.itemsize < 8:
            array = array.astype(np.int64)
        array = array.reshape(-1)
        hashes = _hash_u64(array, _key(seed, 2))
        if array.dtype == np.uint64:  # beyond int64: not the negative ints of the same bits
            beyond = array >= np.uint64(1 << 63)
            if beyond.any():
                hashes[beyond] = _hash_u64(array[beyond], _key(seed, 5))
        return hashes
    if array.dtype.kind in "OUS":
        return hash_ids(pa.array(array.reshape(-1).tolist()), seed)
    raise TypeError(f"ids must be integers or strings, not {array.dtype}")


def buckets_of(hashes: np.ndarray) -> np.ndarray:
    """Each row's bucket (int64 in ``0 .. BUCKETS - 1``): the top bits of its hash.

    The shifted hashes are below ``BUCKETS``, so their bits are the int64 values: a view, not
    a cast (``astype`` holds a second array of the batch's size while the first is alive,
    which made glibc's heap give back and fault in its top pages at every batch: 170 us
    instead of 4 us for 32k rows)."""
    return (np.asarray(hashes, dtype=np.uint64) >> np.uint64(_BUCKET_SHIFT)).view(np.int64)


def _poisson_thresholds() -> np.ndarray:
    """P(Poisson(1) <= k) * 2**53 for k = 0, 1, ..., as integers, from decimal arithmetic (the
    same on every platform, unlike libm's exp)."""
    with localcontext() as ctx:
        ctx.prec = 50
        term = Decimal(-1).exp()
        total, out, k = Decimal(0), [], 0
        while True:
            total += term
            threshold = int(total * (1 << 53))
            if threshold >= (1 << 53) or k >= 30:
                break
            out.append(threshold)
            k += 1
            term /= k
        return np.array(out, dtype=np.uint64)


_THRESHOLDS = _poisson_thresholds()


def poisson_weights(seed: int, replicates: int, buckets: int = BUCKETS) -> np.ndarray:
    """Replicate ``r``'s weight of bucket ``k`` (``[r, k]``, int64): Poisson(1) counts by
    inverse CDF of a 53-bit uniform from the hash of (seed, r, k)."""
    cells = np.arange(replicates * buckets, dtype=np.uint64)
    uniform = _hash_u64(cells, _key(seed, 4)) >> np.uint64(11)
    counts = np.zeros(cells.shape[0], dtype=np.int64)
    for threshold in _THRESHOLDS:  # count the thresholds at or below each uniform
        above = uniform >= threshold
        if not above.any():
            break
        counts += above
    return counts.reshape(replicates, buckets)


def min_replicates(level: float) -> int:
    """The fewest replicates whose percentile interval at ``level`` is one: ``R`` such that
    ``(R + 1) * alpha >= 1``, ``alpha = (1 - level) / 2`` (39 at 0.95, 19 at 0.9, 199 at
    0.99). The interval's ends are then the replicates' ``alpha`` and ``1 - alpha`` quantiles,
    inside the replicates (order statistic ``(R + 1) alpha`` from each end, in the usual
    bootstrap convention); with fewer, there is no replicate that far out: both ends are the
    smallest and largest replicates (or, for one replicate, that replicate alone: an interval
    that need not hold the value), whose coverage is ``(R - 1) / (R + 1)`` whatever ``level``
    says (19 at 0.95: 0.9).

    >>> min_replicates(0.95), min_replicates(0.9), min_replicates(0.99), min_replicates(0.5)
    (39, 19, 199, 3)
    """
    bound = 2 / (1 - level) - 1  # 1 / alpha - 1
    near = round(bound)  # an integer but for the rounding of ``1 - level`` (0.95: 38.99...)
    return max(1, near if abs(bound - near) <= 1e-6 * bound else math.ceil(bound))


def check_replicates(level: float, replicates: int, what: str = "replicates") -> None:
    """A `ConfigError` unless ``replicates`` make a percentile interval at ``level``
    (`min_replicates`); ``what`` names them in the message (``--bootstrap``)."""
    need = min_replicates(level)
    if replicates < need:
        raise ConfigError(
            f"{what} {replicates}: a {level:g} percentile interval needs at least {need} "
            f"bootstrap replicates (its {100 * (1 - level) / 2:g}% and "
            f"{100 * (1 + level) / 2:g}% quantiles must lie among them)"
        )


def percentile_interval(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of replicate values (the last axis): the ``(1 - level) / 2``
    and ``(1 + level) / 2`` quantiles, linearly interpolated as NumPy's default quantile does,
    over the replicates whose value is not NaN (a replicate that drew no row of a group has
    none); NaN where no replicate has a value. Equal neighbours (e.g. two infinities) give
    themselves, not ``inf - inf``."""
    alpha = (1 - level) / 2
    ordered = np.sort(np.asarray(values, dtype=np.float64), axis=-1)  # NaN last
    counts = (~np.isnan(ordered)).sum(axis=-1)
    return _quantile(ordered, counts, alpha), _quantile(ordered, counts, 1 - alpha)


def _quantile(ordered: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """NumPy's ``quantile(method="linear")`` of the first ``counts`` values of each sorted
    row, the same bits for finite values; an infinite neighbour gives itself."""
    last = np.maximum(counts - 1, 0)
    position = last * q  # NumPy's virtual index (method 7 of Hyndman and Fan)
    below = np.clip(np.floor(position), 0, last).astype(np.int64)
    above = np.minimum(below + 1, last)
    t = np.where(position > below, position - below, 0.0)
    a = np.take_along_axis(ordered, below[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(ordered, above[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        diff = b - a
        out = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)  # NumPy's _lerp
    out = np.where(np.isinf(a) & ~np.isinf(b), a, out)  # between -inf and a number: -inf
    out = np.where(np.isinf(b) & ~np.isinf(a) & (t > 0), b, out)
    out = np.where((a == b) | (t == 0), a, out)
    return np.where(counts > 0, out, np.nan)
