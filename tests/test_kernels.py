"""The C kernels against plain-Python/NumPy references: same sums, counts and ranks, bit for bit,
and log, log1p and exp within 0.502, 0.502 and 0.51 ulp of exact decimal ones, the same bits on
every CPU.

Every test runs once per instruction set this CPU has (``isas()``: AVX-512, AVX2, baseline).
Shapes sweep the vector widths (4 to 16 float32, 2 to 8 float64 lanes) so that full vectors,
partial last vectors, the buffer's last rows (whose partial vector is copied, not read past the
end) and the chunks of the scan (256 rows) are all exercised.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streammetric import _kernels
from streammetric._kernels import class_ranks, exact_sum, sparse_loss, sparse_scan
from streammetric.conventions import GUARDS, Convention
from streammetric.functional._ce_core import LOGITS_SUM_TOLERANCE
from streammetric.functional._ce_fast import _margin

UNIT = Fraction(1, 2**1074)
LN2 = 0.6931471805599453  # log(2) rounded to the nearest double, as a literal
# sha256 of the results of log, exp and log1p over their fixed arguments, and of the arguments
# themselves (so that a mismatch says which of the two differs); recorded once, and every
# instruction set on every machine must give these bits.
LOG_FINGERPRINT = "5edf057c6a7177d4ef881214165b5eb09c19215cae303d86cda50e15338d2215"
EXP_FINGERPRINT = "5e4a720c9e9509b96dfcd26720b614ea230f446c9466443acf5fcdc1835a0b9c"
LOG1P_FINGERPRINT = "fec78b4a21af59a963e6b2af38ea273bd139e8168a714df66b866246f4413338"
ARGUMENT_FINGERPRINTS = {
    "_positive_doubles": "eca1b94a7f764a8bb79cf7e1b7c20e73b6565c927013f49c3ff3819a5030fa01",
    "_exp_arguments": "97898c57987b3e70708f9b15e4262eae28ef4c0cef15e26406cea3004ba0a864",
    "_log1p_arguments": "e18c9e3412b5c6f02705f6d8fa7b58842b8fe943cccf98de04d3b344b2590517",
}


@pytest.fixture(autouse=True, params=_kernels.isas())
def isa(request):
    """Run the test with the loops of each instruction set this CPU has."""
    previous = _kernels.isa()
    _kernels.use_isa(request.param)
    yield request.param
    _kernels.use_isa(previous)


def test_isas_are_named_and_checked():
    assert _kernels.isas()[-1] == "baseline" and _kernels.isa() in _kernels.isas()
    with pytest.raises(ValueError, match="not available"):
        _kernels.use_isa("sse9")


def _units(values: list[float]) -> int:
    total = sum((Fraction(v) for v in values if math.isfinite(v)), Fraction(0)) / UNIT
    assert total.denominator == 1
    return int(total)


# --- exact_sum --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=40))
def test_exact_sum_is_the_exact_sum_and_counts_the_rest(values):
    units, pos_inf, neg_inf, nan = exact_sum(np.array(values, dtype=np.float64))
    assert units == _units(values)
    assert pos_inf == sum(v == math.inf for v in values)
    assert neg_inf == sum(v == -math.inf for v in values)
    assert nan == sum(math.isnan(v) for v in values)


@pytest.mark.parametrize(
    "values",
    [
        [],
        [5e-324, -5e-324, 5e-324],  # subnormals
        [2.2250738585072014e-308, 2.225073858507201e-308],  # smallest normal, largest subnormal
        [1.7976931348623157e308] * 7 + [-1.7976931348623157e308] * 3,  # beyond float range
        [1e300, 1.0, -1e300, 1e-300],
        [-0.0, 0.0, -0.0],
        [0.1] * 4099,  # every lane, and a remainder
    ],
)
def test_exact_sum_edges(values):
    assert exact_sum(np.array(values, dtype=np.float64))[0] == _units(values)


@pytest.mark.parametrize("spread", [0, 10, 100, 600])  # decades: one 128-bit sum, or digits too
def test_exact_sum_across_batches_of_mixed_magnitudes(spread):
    rng = np.random.default_rng(spread)
    values = rng.standard_normal(3001) * 10.0 ** rng.integers(
        -spread // 2 - 1, spread // 2 + 1, 3001
    )
    values[1500] = math.inf  # one batch takes the value-by-value path
    values[::97] = 0.0
    units, pos_inf, _, _ = exact_sum(values)
    assert (units, pos_inf) == (_units(values.tolist()), 1)


@pytest.mark.parametrize("exponent", [-960, -955, -954, -953, -900, 0, 1009, 1010, 1011, 1012])
def test_exact_sum_at_the_ends_of_the_split_range(exponent):
    """Batches whose largest value is about 2**exponent: split in three parts, or one by one
    at the ends of the range (where the parts' units or constants would leave float64)."""
    rng = np.random.default_rng(exponent + 2000)
    values = np.ldexp(rng.uniform(-1, 1, 2100), exponent - rng.integers(0, 70, 2100))
    values[::7] = np.ldexp(1.0 - 2.0**-52, exponent)  # the largest magnitude below 2**exponent
    values[3::11] = np.ldexp(rng.uniform(0.5, 1, values[3::11].size), exponent - 64)  # the edge
    values[5::13] = 0.0
    values[6::17] = -0.0
    assert exact_sum(values)[0] == _units(values.tolist())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=12),
    st.integers(1, 3000),
    st.integers(0, 2**32),
)
def test_exact_sum_of_long_arrays(pool, n, seed):
    values = np.random.default_rng(seed).choice(np.array(pool), n)
    assert exact_sum(values)[0] == _units(values.tolist())


def test_exact_sum_takes_only_contiguous_float64():
    assert exact_sum(np.zeros(3, dtype=np.float32)) is None
    assert exact_sum(np.zeros(6)[::2]) is None
    assert exact_sum(b"abc") is None


# --- sparse_scan --------------------------------------------------------------------------------


def _reference_scan(pred, labels, tol_a, tol_b):
    """What the general path computes: NumPy's float64 row sums, p[y], and the counts."""
    distance = np.abs(np.sum(pred.astype(np.float64), axis=-1) - 1)
    picked = pred[np.arange(len(labels)), labels]
    return (
        int(np.count_nonzero(distance > tol_a)),
        int(np.count_nonzero(distance > tol_b)),
        int(np.count_nonzero(picked == 0)),
        int(np.count_nonzero(picked == 1)),
    )


def _probabilities(rng, n, k, dtype):
    pred = rng.random((n, k)).astype(dtype)
    pred /= pred.sum(axis=1, keepdims=True)
    pred[: n // 4] = rng.random((n // 4, k)).astype(dtype)  # not normalised
    pred[n // 4 : n // 4 + 3] = 0
    pred[n // 4 : n // 4 + 3, 0] = 1  # p = 1 or 0
    return pred


@pytest.mark.parametrize(
    ("dtype", "picked_dtype", "label_dtype"),
    [
        (np.float32, np.float64, np.int64),
        (np.float32, np.float32, np.int32),
        (np.float64, np.float64, np.int32),
        (np.float64, np.float64, np.int64),
    ],
)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 49])
@pytest.mark.parametrize("n", [1, 2, 3, 41, 300])
def test_sparse_scan_counts_as_numpy(dtype, picked_dtype, label_dtype, k, n):
    rng = np.random.default_rng(k * 100 + n)
    pred = _probabilities(rng, n, k, dtype)
    labels = rng.integers(0, k, n).astype(label_dtype)
    labels[: min(n, 3)] = 0
    tol = float(np.sqrt(np.finfo(dtype).eps))
    picked = np.full(n, np.nan, dtype=picked_dtype)
    far_a, far_b, zeros, ones, unsure = sparse_scan(
        pred, labels, picked, None, tol, LOGITS_SUM_TOLERANCE, _margin(k)
    )
    sure_rows = np.delete(np.arange(n), unsure)  # the rows on a tolerance edge are the caller's
    ref = _reference_scan(pred[sure_rows], labels[sure_rows], tol, LOGITS_SUM_TOLERANCE)
    assert (far_a, far_b) == ref[:2]
    assert (zeros, ones) == _reference_scan(pred, labels, tol, 1.0)[2:4]
    assert picked.tobytes() == pred[np.arange(n), labels].astype(picked_dtype).tobytes()
    # the same pass can also rank the true classes, as class_ranks does
    ranks = np.full((n, 2), -1, dtype=np.int64)
    ranked = sparse_scan(pred, labels, picked, None, tol, LOGITS_SUM_TOLERANCE, _margin(k), ranks)
    assert ranked == (far_a, far_b, zeros, ones, unsure)
    assert ranks.tolist() == _reference_ranks(pred, labels).tolist()
    # and take -log p[y] in the same pass, the bits `log` gives
    if picked_dtype == np.float64:
        logs = np.full(n, np.nan)
        args = (None, tol, LOGITS_SUM_TOLERANCE, _margin(k), None, True)
        assert sparse_scan(pred, labels, logs, *args) == ranked
        assert logs.tobytes() == _log(picked, negate=True).tobytes()


def test_sparse_scan_lists_rows_on_a_tolerance_edge():
    tol = 2.0**-26  # sqrt(eps) of float64, exactly
    pred = np.array(
        [[0.5, 0.5 + tol], [0.5, 0.5 + tol + 2**-50], [0.5, 0.5 - tol - 2**-50], [0.25, 0.75]]
    )
    result = sparse_scan(pred, np.array([0, 1, 0, 1]), np.empty(4), None, tol, 0.5, _margin(2))
    assert result is not None
    assert result[:2] == (0, 0) and result[4] == [0, 1, 2]


@pytest.mark.parametrize("k", [2, 4, 7, 10, 16])
def test_sparse_scan_decides_float32_rows_on_a_tolerance_edge_as_numpy(k):
    """Float32 rows of one vector are summed in float32 by a tree across rows: rows whose sums
    sit on a tolerance, to within float32 rounding, must be left to the caller, not miscounted."""
    rng = np.random.default_rng(k)
    tol = float(np.sqrt(np.finfo(np.float32).eps))
    targets = np.array([1 + tol, 1 - tol, 1 + LOGITS_SUM_TOLERANCE, 1 - LOGITS_SUM_TOLERANCE])
    sums = rng.choice(targets, (4096, 1)) + rng.uniform(-1e-5, 1e-5, (4096, 1))
    pred = rng.random((4096, k)) + 0.5
    pred = (pred / pred.sum(axis=1, keepdims=True) * sums).astype(np.float32)
    labels = rng.integers(0, k, 4096)
    far_a, far_b, _, _, unsure = sparse_scan(
        pred, labels, np.empty(4096), None, tol, LOGITS_SUM_TOLERANCE, _margin(k)
    )
    sure_rows = np.delete(np.arange(4096), unsure)
    ref = _reference_scan(pred[sure_rows], labels[sure_rows], tol, LOGITS_SUM_TOLERANCE)
    assert (far_a, far_b) == ref[:2]
    assert len(unsure) < 4096 // 4  # most rows are decided here


def test_sparse_scan_writes_float32_picks_for_float32_rows():
    pred = np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)
    picked = np.zeros(2, dtype=np.float32)
    assert sparse_scan(pred, np.array([1, 1], dtype=np.int32), picked, None, 1e-3, 1e-2, 0.0)
    assert picked.tolist() == [0.75, 0.0]
    # float64 rows cannot be written to float32 without rounding: declined
    assert (
        sparse_scan(pred.astype(np.float64), np.array([1, 1]), picked, None, 1e-3, 1e-2, 0) is None
    )
    # nor logarithms to float32
    assert sparse_scan(pred, np.array([1, 1]), picked, None, 1e-3, 1e-2, 0, None, True) is None


def test_sparse_scan_logs_of_float32_are_log_of_the_same_doubles():
    """For float32 rows the scan's log leaves out the steps a float32 value does not need (it is
    not subnormal as a double, and has no low part): the same bits as `log`, here on 2**22
    values spread over every float32 in [0, 1] (all 1,065,353,217 were checked once)."""
    bits = np.arange(0, 0x3F800001, 254, dtype=np.uint32)
    p = np.concatenate([bits.view(np.float32), np.float32([0.0, 1.0, 2**-149, 2**-126, 0.5])])
    pred = np.zeros((len(p), 2), dtype=np.float32)
    pred[:, 0] = p
    logs = np.empty(len(p))
    assert sparse_scan(pred, np.zeros(len(p), dtype=np.int64), logs, None, 1e-3, 0.1, 0, None, True)
    assert logs.tobytes() == _log(p.astype(np.float64), negate=True).tobytes()


@pytest.mark.parametrize(
    ("row", "label", "ignore"),
    [
        ([0.5, np.nan], 0, None),
        ([0.5, np.inf], 0, None),
        ([1.5, -0.5], 0, None),
        ([-0.0, 1.0], 1, None),  # -0.0: the general path's business
        ([1.0 + 2**-52, 0.0], 1, None),
        ([0.5, 0.5], 2, None),  # label out of range
        ([0.5, 0.5], -1, None),
        ([0.5, 0.5], 1, 1),  # ignored label
    ],
)
@pytest.mark.parametrize("position", [0, 5, 19, 39])  # rows in blocks of 16, the copied last row
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_scan_declines_dirty_batches(row, label, ignore, position, dtype):
    pred = np.full((40, 2), 0.5, dtype=dtype)
    labels = np.zeros(40, dtype=np.int64)
    pred[position], labels[position] = np.array(row, dtype=np.float64).astype(dtype), label
    if dtype == np.float32 and row == [1.0 + 2**-52, 0.0]:
        pred[position, 0] = np.nextafter(np.float32(1), np.float32(2))  # above 1 in float32
    assert sparse_scan(pred, labels, np.empty(40), ignore, 1e-3, 1e-2, 0.0) is None


def test_sparse_scan_declines_what_it_cannot_read():
    pred, labels, out = np.full((4, 2), 0.5), np.zeros(4, dtype=np.int64), np.empty(4)
    assert sparse_scan(pred, labels, out, None, 1e-3, 1e-2, 0, np.empty(4, dtype=np.int32)) is None
    assert sparse_scan(pred, labels, out, None, 1e-3, 1e-2, 0, np.empty(3, dtype=np.int64)) is None
    assert sparse_scan(pred.T.copy().T, labels, out, None, 1e-3, 1e-2, 0) is None  # not C order
    assert sparse_scan(pred, labels.astype(np.int16), out, None, 1e-3, 1e-2, 0) is None
    assert sparse_scan(pred, labels[:3], out, None, 1e-3, 1e-2, 0) is None  # row mismatch
    assert sparse_scan(pred, labels, out[:3], None, 1e-3, 1e-2, 0) is None
    assert sparse_scan(pred.astype(np.float16), labels, out, None, 1e-3, 1e-2, 0) is None


# --- sparse_loss --------------------------------------------------------------------------------

#: every guard, and keras' renormalisation (after the guard), as conventions
LOSS_CONVENTIONS = [
    Convention("exact", "", out_of_range="invalid"),
    Convention("torch", "", dtype="input"),
    Convention("clip", "", eps=1e-7, guard="clip", dtype="input"),
    Convention("add", "", eps=1e-12, guard="add", dtype="input"),
    Convention("clip_add", "", eps=1e-3, guard="clip_add", dtype="input"),
    Convention("floor", "", eps=1e-3, guard="floor", dtype="input"),
    Convention("log_clamp", "", guard="log_clamp", log_floor=-5.0, dtype="input"),
    Convention("keras", "", eps=1e-7, guard="clip", renormalize_sparse="after", dtype="input"),
    Convention("after_none", "", renormalize_sparse="after", dtype="input"),
    Convention("after_clamp", "", guard="log_clamp", log_floor=-3.0, renormalize_sparse="after"),
    Convention(
        "after_floor", "", eps=1e-2, guard="floor", renormalize_sparse="after", dtype="input"
    ),
]


def _loss_args(conv: Convention, dtype: Any, kind: str = "categorical") -> tuple[Any, ...]:
    compute = conv.compute_dtype(dtype)
    eps = conv.eps_for(compute, kind=kind)
    return (
        GUARDS.index(conv.guard_for(kind)),
        conv.renormalize_sparse == "after",
        compute == np.float32,
        float(eps),
        float(1 - eps),
        float(compute.type(conv.log_floor)),
    )


@pytest.mark.parametrize("conv", LOSS_CONVENTIONS, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("n", "k"),
    [
        (1, 1),
        (3, 2),
        (41, 7),
        (300, 10),
        (70, 16),
        (260, 17),
        (33, 64),
        (40, 128),
        (9, 129),
        (5, 300),
    ],
)
def test_sparse_loss_is_the_general_paths_loss(conv, dtype, n, k):
    """Each row's loss, bit for bit, and the guard's count, as the general path computes them
    (NumPy: its float32 log, sums and renormalisation), and sparse_scan's counts; rows of up to
    128 values go column by column (in the scan's pass; float32 rows of up to a vector's lanes
    transposed in registers, the rest of the block value by value), longer ones row by row
    (after it), and with ranks the renormalisation runs after the scan too. A renormalisation
    after a log clamp is left to the general path."""
    from streammetric.functional._ce_fast import float32_logs_agree
    from streammetric.functional.losses import _general_terms

    if conv.compute_dtype(dtype) == np.float32 and not float32_logs_agree():
        pytest.skip("NumPy's float32 log is not its AVX2/AVX-512 one here")
    rng = np.random.default_rng(n * 1000 + k)
    pred = _probabilities(rng, n, k, dtype)
    pred[n // 2 :: 3] *= dtype(1e-3)  # small values, which the guards change
    labels = rng.integers(0, k, n)
    tol = float(np.sqrt(np.finfo(dtype).eps))
    if conv.guard == "log_clamp" and conv.renormalize_sparse == "after":
        with pytest.raises(ValueError, match="log clamp"):
            sparse_loss(
                pred, labels, np.empty(n), None, tol, 1.0, 0.0, None, *_loss_args(conv, dtype)
            )
        return
    scanned = sparse_scan(pred, labels, np.empty(n), None, tol, LOGITS_SUM_TOLERANCE, _margin(k))
    general = _general_terms(labels, pred, conv, False, 0.0, None, None, -1, "categorical")
    args = (None, tol, LOGITS_SUM_TOLERANCE, _margin(k))
    for ranks in (None, np.full((n, 2), -1, dtype=np.int64)):
        out = np.full(n, np.nan)
        found = sparse_loss(pred, labels, out, *args, ranks, *_loss_args(conv, dtype))
        assert found is not None
        assert found[:4] == scanned[:4] and found[5] == scanned[4]
        assert found[4] == general.diagnostics["num_guarded"]
        assert out.tobytes() == general.numerator.tobytes()
        if ranks is not None:
            assert ranks.tolist() == _reference_ranks(pred, labels).tolist()
    if conv.compute_dtype(dtype) == np.float32:  # and in float32, as class weights need it
        out32 = np.full(n, np.nan, dtype=np.float32)
        assert sparse_loss(pred, labels, out32, *args, None, *_loss_args(conv, dtype))
        assert out32.astype(np.float64).tobytes() == general.numerator.tobytes()


@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize(
    ("row", "label", "ignore"),
    [
        ([0.5, np.nan], 0, None),
        ([1.5, -0.5], 0, None),
        ([-0.0, 1.0], 1, None),
        ([0.5, 0.5], 2, None),
        ([0.5, 0.5], 1, 1),
    ],
)
@pytest.mark.parametrize("position", [0, 19, 299])
def test_sparse_loss_declines_dirty_batches(after, row, label, ignore, position):
    pred = np.full((300, 2), 0.5, dtype=np.float32)
    labels = np.zeros(300, dtype=np.int64)
    pred[position], labels[position] = row, label
    loss = (1, after, True, 1e-7, 1 - 1e-7, -100.0)
    assert sparse_loss(pred, labels, np.empty(300), ignore, 1e-3, 0.1, 1e-12, None, *loss) is None


def test_sparse_loss_declines_what_it_cannot_read():
    pred, labels = np.full((4, 2), 0.5), np.zeros(4, dtype=np.int64)
    loss32, loss64 = (0, False, True, 0.0, 1.0, -100.0), (0, False, False, 0.0, 1.0, -100.0)
    args = (None, 1e-3, 0.1, 0.0, None)
    assert sparse_loss(pred, labels, np.empty(4), *args, *loss32) is None  # float32 of float64
    assert sparse_loss(pred, labels, np.empty(4, dtype=np.float32), *args, *loss64) is None
    assert sparse_loss(pred, labels, np.empty(3), *args, *loss64) is None
    assert sparse_loss(pred, labels.astype(np.int16), np.empty(4), *args, *loss64) is None
    with pytest.raises(ValueError, match="guard"):
        sparse_loss(pred, labels, np.empty(4), *args, 6, False, False, 0.0, 1.0, -100.0)
    with pytest.raises(TypeError, match="14 arguments"):
        sparse_loss(pred, labels, np.empty(4))


# --- NumPy's float32 log and exp ----------------------------------------------------------------

#: sha256 of log32 and exp32 of every 4099th float32 bit pattern (NaNs and infinities among
#: them), as NumPy 2.4's AVX-512 loops give them: every instruction set on every machine must
LOG32_FINGERPRINT = "38a1fdcb12e07530f035698960fa4edcbec9dbbac9a769448fdbf0dca7d759f5"
EXP32_FINGERPRINT = "cbf5ac1dc9afeb6aafa73e83d6c9c9fdd8e64c1a363bf08332fcda2fe2441d28"


def _float32_patterns(step: int) -> np.ndarray:
    return np.arange(0, 2**32, step, dtype=np.uint64).astype(np.uint32).view(np.float32)


def _kernel32(kernel: Any, values: np.ndarray) -> np.ndarray:
    out = np.full_like(values, np.nan)
    assert kernel(values, out)
    return out


def test_log32_and_exp32_give_the_same_bits_on_every_cpu():
    values = _float32_patterns(4099)
    assert _digest(values) == "fd3962e5470e01341ccaed230276c8853a5330a27789674925cd5f51d0fb4492"
    assert _digest(_kernel32(_kernels.log32, values)) == LOG32_FINGERPRINT
    assert _digest(_kernel32(_kernels.exp32, values)) == EXP32_FINGERPRINT


def _numpy_has_its_float32_loops() -> bool:
    """Whether NumPy's float32 log and exp run its AVX2/AVX-512 loops here (x86-64 with AVX2
    and FMA, or AVX-512), not the C library's."""
    import platform

    from numpy._core._multiarray_umath import __cpu_features__ as features

    return platform.machine().lower() in ("x86_64", "amd64") and bool(
        features.get("AVX512F") or (features.get("AVX2") and features.get("FMA3"))
    )


def test_log32_and_exp32_are_numpys():
    """NumPy's own float32 log and exp where it runs its AVX2/AVX-512 loops: the bits of 2**22
    float32 values over the whole range here (every float32 was compared once, on AVX-512 and
    AVX2: scripts/check_float32_math.py), so the float32 losses can be taken in the scan."""
    from streammetric.functional._ce_fast import float32_logs_agree

    if not _numpy_has_its_float32_loops():
        assert not float32_logs_agree()  # the library checks too, and keeps NumPy's path
        pytest.skip("NumPy calls the C library's float32 log and exp here")
    assert float32_logs_agree()
    values = np.concatenate(
        [_float32_patterns(1021), np.float32([0, -0.0, np.inf, -np.inf, np.nan, 1, 2**-149])]
    )
    with np.errstate(all="ignore"):
        for numpy_f, kernel in ((np.log, _kernels.log32), (np.exp, _kernels.exp32)):
            expected = numpy_f(values)
            assert _kernel32(kernel, values).tobytes() == expected.tobytes(), numpy_f.__name__


def test_log32_and_exp32_take_float32_buffers_only():
    x = np.ones(4, dtype=np.float32)
    assert not _kernels.log32(x.astype(np.float64), np.empty(4, dtype=np.float32))
    assert not _kernels.exp32(x, np.empty(3, dtype=np.float32))
    assert not _kernels.exp32(x, np.empty(4))
    assert _kernels.log32(x, x) and x.tolist() == [0.0] * 4  # in place


# --- class_ranks --------------------------------------------------------------------------------


def _reference_ranks(scores, labels):
    """Position of the true class in a stable descending sort of each row (argmax's order), and
    in scikit-learn's top-k order (``argsort(scores, kind="mergesort")[:, ::-1]``: the last of
    equal scores first)."""
    first = np.argsort(-scores, axis=1, kind="stable")
    last = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1]
    return np.stack(
        [np.argmax(order == labels[:, None], axis=1) for order in (first, last)], axis=1
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 31, 32, 33, 49])
def test_class_ranks_as_a_stable_sort(dtype, label_dtype, k):
    rng = np.random.default_rng(k)
    n = 53
    scores = rng.integers(-3, 4, (n, k)).astype(dtype)  # many ties, negative scores
    labels = rng.integers(0, k, n).astype(label_dtype)
    ranks = np.full((n, 2), -1, dtype=np.int64)
    assert class_ranks(scores, labels, ranks)
    assert ranks.tolist() == _reference_ranks(scores, labels).tolist()
    assert not class_ranks(scores, labels, np.empty(n, dtype=np.int64))  # one rank per row


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("position", [0, 52])
def test_class_ranks_declines_non_finite_scores_and_bad_labels(bad, position):
    scores, labels = np.zeros((53, 3)), np.zeros(53, dtype=np.int64)
    ranks = np.empty((53, 2), dtype=np.int64)
    scores[position, 2] = bad
    assert not class_ranks(scores, labels, ranks)
    scores[position, 2] = 0
    assert class_ranks(scores, labels, ranks)
    labels[position] = 3
    assert not class_ranks(scores, labels, ranks)


# --- log --------------------------------------------------------------------------------------


def _ulps_from(true: Decimal, y: float) -> float:
    """How far y is from `true`, in ulps of the double nearest to it (subnormal ulps below
    2**-1022)."""
    nearest = float(true)
    unit = math.ulp(nearest) if abs(nearest) >= 2.0**-1022 else 5e-324
    return float(abs(Decimal(y) - true) / Decimal(unit))


def _ulps_from_log(x: float, y: float) -> float:
    """How far y is from the true log(x) (decimal, 40 digits)."""
    with localcontext() as context:
        context.prec = 40
        return _ulps_from(Decimal(x).ln(), y)


def _apply(kernel: Any, values: np.ndarray, *flag: bool) -> np.ndarray:
    """`kernel(values, out, *flag)` into a fresh array (not zeros, so nothing is left unwritten
    unnoticed)."""
    out = np.full_like(values, 7.0)
    assert kernel(values, out, *flag)
    return out


def _log(values: np.ndarray, negate: bool = False) -> np.ndarray:
    return _apply(_kernels.log, values, negate)


def _positive_doubles() -> np.ndarray:
    """Positive finite doubles by fixed recipes, no RNG: each side of every table interval's
    bounds (the top 8 bits of the significand counted from 0.6875), within 2**-52 of 1 both
    ways, subnormals, powers of two, and spreads of bit patterns over the whole range and over
    [2**-10, 1]."""
    bounds = np.array([0x3FE6000000000000 + (i << 44) for i in range(512)], dtype=np.uint64)
    near = (bounds[:, None] + np.array([-1, 0, 1, 99], dtype=np.int64).astype(np.uint64)).ravel()
    one = np.uint64(0x3FF0000000000000)
    spread = (np.arange(1, 20_000, dtype=np.uint64) * np.uint64(0x0006_1A80_1F0F_0F0D)) % np.uint64(
        0x7FF0000000000000
    )
    probabilities = np.uint64(0x3F50000000000000) + np.arange(20_000, dtype=np.uint64) * np.uint64(
        0x0000_0831_2345_6789
    )
    bits = np.concatenate(
        [
            near,
            one + np.arange(-300, 300).astype(np.uint64),
            np.arange(1, 300, dtype=np.uint64) * 997,
            np.arange(1, 2046, dtype=np.uint64) << np.uint64(52),
            spread,
            probabilities,
        ]
    )
    values = bits.view(np.float64)
    return values[np.isfinite(values) & (values > 0)]


def test_log_is_within_half_an_ulp_and_a_bit():
    values = _positive_doubles()[::7].copy()
    logs = _log(values)
    worst = max(map(_ulps_from_log, values.tolist(), logs.tolist()))
    assert worst < 0.502


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, exclude_min=True, allow_infinity=False, width=64))
def test_log_of_any_positive_double(x):
    assert _ulps_from_log(x, float(_log(np.array([x]))[0])) < 0.502


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(values.tobytes()).hexdigest()


def test_log_gives_the_same_bits_on_every_cpu():
    """The fingerprint of the logs of `_positive_doubles`: any instruction set on any machine
    must give these bits, since the arithmetic is IEEE in the order written."""
    assert _digest(_positive_doubles()) == ARGUMENT_FINGERPRINTS["_positive_doubles"]
    assert _digest(_log(_positive_doubles())) == LOG_FINGERPRINT


def test_log_edges_negation_and_in_place():
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, -5e-324, 1.0, 5e-324, 2.0])
    logs = _log(specials)
    assert logs[:2].tolist() == [-np.inf, -np.inf] and logs[2] == np.inf
    assert np.isnan(logs[3:7]).all() and math.copysign(1, logs[7]) == 1 and logs[7] == 0
    assert logs[8] == math.log(5e-324) and logs[9] == math.log(2)
    values = _positive_doubles()[:1000]
    assert np.array_equal(_log(values, negate=True), -_log(values))
    in_place = values.copy()
    assert _kernels.log(in_place, in_place, True) and np.array_equal(in_place, -_log(values))


@pytest.mark.parametrize(
    "call",
    [
        lambda values, out: _kernels.log(values, out, False),
        _kernels.exp,
        _kernels.log1p,
    ],
    ids=["log", "exp", "log1p"],
)
def test_math_declines_what_it_cannot_read(call):
    out = np.zeros(3)
    for values in (
        np.ones(3, dtype=np.float32),
        np.ones(6)[::2],
        np.ones(4),
        b"abcdefghijklmnopqrstuvwx",
    ):
        assert not call(values, out)
    assert not call(np.ones(3), np.zeros(3, dtype=np.float32))
    assert (out == 0).all()


def test_math_tables_are_what_the_generator_writes():
    script = Path(__file__).parents[1] / "scripts" / "make_math_tables.py"
    assert subprocess.run([sys.executable, str(script), "--check"]).returncode == 0


# --- exp and log1p ----------------------------------------------------------------------------


def _exp(values: np.ndarray) -> np.ndarray:
    return _apply(_kernels.exp, values)


def _log1p(values: np.ndarray) -> np.ndarray:
    return _apply(_kernels.log1p, values)


def _true_exp(x: float) -> Decimal:
    with localcontext() as context:
        context.prec = 40
        return Decimal(x).exp()


def _true_log1p(x: float) -> Decimal:
    with localcontext() as context:
        context.prec = 40
        d = Decimal(x)
        if abs(x) < 1e-9:  # 1 + x would round away x's low digits at 40 digits
            return d - d * d / 2 + d * d * d / 3 - d**4 / 4
        return (1 + d).ln()


def _exp_arguments() -> np.ndarray:
    """Finite arguments whose exp is finite, by fixed recipes: each side of every table step
    (multiples of log(2) / 128), near 0, the subnormal results, near overflow, and spreads.
    Only IEEE adds and multiplies of literal constants (see `_geometric`)."""
    steps = np.arange(-137_000, 131_000, 97) * (LN2 / 128)
    near = (steps[:, None] + np.array([-1e-9, 0.0, 1e-9])).ravel()
    return np.concatenate(
        [
            near[(near > -745.13) & (near < 709.78)],
            np.linspace(-1e-6, 1e-6, 2001),
            np.linspace(-745.13, -708.3, 3001),
            np.linspace(709.0, 709.78, 1001),
            np.linspace(-40.0, 0.0, 20_001),
        ]
    )


def _geometric(low: float, high: float, n: int) -> np.ndarray:
    """n positive doubles from `low` up to about `high`, spaced evenly in their bit patterns
    (so nearly evenly in the logarithm), with integer arithmetic only. NumPy's ``geomspace`` and
    ``exp`` would do here, but their last bits depend on the loops NumPy picks for the CPU
    (AVX-512 or not), and these arguments must be the same bits on every machine."""
    lo, hi = (int(np.array(v).view(np.uint64)) for v in (low, high))
    step = np.uint64((hi - lo) // (n - 1))
    return (np.uint64(lo) + step * np.arange(n, dtype=np.uint64)).view(np.float64)


def _log1p_arguments() -> np.ndarray:
    """Arguments above -1 by fixed recipes: near -1, near 0 both ways, exps of -|logits| down
    to exp(-40) (softplus), 1 - p for probabilities (binary cross-entropy), and large values.
    Only integer arithmetic on bit patterns and IEEE adds and multiplies (see `_geometric`)."""
    tiny = _geometric(1e-300, 1e-3, 3001)
    return np.concatenate(
        [
            -1 + _geometric(1e-16, 0.5, 2001),
            tiny,
            -tiny,
            _geometric(4e-18, 1.0, 4001),
            -np.linspace(0, 1, 4001, endpoint=False),
            _geometric(1.0, 1e300, 2001),
        ]
    )


def _worst_ulps(true: Any, values: np.ndarray, results: np.ndarray) -> float:
    pairs = zip(values.tolist(), results.tolist(), strict=True)
    return max(_ulps_from(true(x), y) for x, y in pairs)


def test_exp_is_within_half_an_ulp_and_a_bit():
    values = _exp_arguments()[::5].copy()
    assert _worst_ulps(_true_exp, values, _exp(values)) < 0.51


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-745.13, max_value=709.78, width=64))
def test_exp_of_any_double(x):
    assert _ulps_from(_true_exp(x), float(_exp(np.array([x]))[0])) < 0.51


def test_log1p_is_within_half_an_ulp_and_a_bit():
    values = _log1p_arguments()[::3].copy()
    assert _worst_ulps(_true_log1p, values, _log1p(values)) < 0.502


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1, max_value=1e300, exclude_min=True, width=64))
def test_log1p_of_any_double(x):
    assert _ulps_from(_true_log1p(x), float(_log1p(np.array([x]))[0])) < 0.502


def test_exp_and_log1p_give_the_same_bits_on_every_cpu():
    """As for the log: the arguments first (built without NumPy's CPU-dependent functions),
    then the results."""
    assert _digest(_exp_arguments()) == ARGUMENT_FINGERPRINTS["_exp_arguments"]
    assert _digest(_log1p_arguments()) == ARGUMENT_FINGERPRINTS["_log1p_arguments"]
    assert _digest(_exp(_exp_arguments())) == EXP_FINGERPRINT
    assert _digest(_log1p(_log1p_arguments())) == LOG1P_FINGERPRINT


def test_the_fingerprints_hold_with_numpys_avx512_loops_off(isa):
    """What an AVX2-only CPU runs: NumPy's AVX-512 loops turned off (``NPY_DISABLE_CPU_FEATURES``)
    and our AVX2 or baseline loops (with ours on AVX-512: a NumPy built without AVX-512). A NumPy
    function among the arguments' recipes (``np.exp``, ``np.geomspace``) made this fail; on a CPU
    without AVX-512 it is the same run as the tests above."""
    from tests.functional.test_portability import _avx512_features

    disabled = _avx512_features()
    if not disabled:
        pytest.skip("this CPU has no AVX-512: the tests above already ran as on an AVX2-only CPU")
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from streammetric import _kernels
from tests import test_kernels as t
_kernels.use_isa({isa!r})
t.test_log_gives_the_same_bits_on_every_cpu()
t.test_exp_and_log1p_give_the_same_bits_on_every_cpu()
"""
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(disabled)}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_exp_and_log1p_edges():
    exps = _exp(
        np.array(
            [
                0.0,
                -0.0,
                np.inf,
                -np.inf,
                np.nan,
                709.782712893384,
                709.7827128933841,
                -745.1332191019411,
                -745.1332191019412,
                -1000.0,
                1000.0,
            ]
        )
    )
    assert exps[:4].tolist() == [1.0, 1.0, np.inf, 0.0] and np.isnan(exps[4])
    assert exps[5] == math.exp(709.782712893384) and exps[6] == np.inf
    assert exps[7] == 5e-324 and exps[8:10].tolist() == [0.0, 0.0] and exps[10] == np.inf
    logs = _log1p(np.array([0.0, -0.0, -1.0, -1.5, np.inf, -np.inf, np.nan, 5e-324, 1e308]))
    assert math.copysign(1, logs[0]) == 1 and math.copysign(1, logs[1]) == -1
    assert logs[2] == -np.inf and np.isnan(logs[[3, 5, 6]]).all() and logs[4] == np.inf
    assert logs[7] == 5e-324 and logs[8] == math.log(1e308)
    in_place = _log1p_arguments()
    expected = _log1p(in_place)
    assert _kernels.log1p(in_place, in_place) and np.array_equal(in_place, expected)


def test_group_counts_is_bincount_and_refuses_what_it_cannot_count():
    from streammetric.metrics.state import add_rows

    rng = np.random.default_rng(7)
    codes = rng.integers(0, 300, 5000)
    mask = rng.random(5000) < 0.4
    for kind in (np.int64, np.int32):
        out = np.zeros(300, dtype=np.int64)
        assert _kernels.group_counts(codes.astype(kind), mask, out)
        assert np.array_equal(out, np.bincount(codes[mask], minlength=300))
        assert _kernels.group_counts(codes.astype(kind), None, out)  # added to what is there
        assert np.array_equal(out, np.bincount(codes[mask], minlength=300) + np.bincount(codes))
    out = np.zeros(299, dtype=np.int64)
    negative = codes.copy()
    negative[3] = -1
    assert not _kernels.group_counts(codes, None, out) and not out.any()  # a code beyond out
    assert not _kernels.group_counts(negative, None, np.zeros(300, np.int64))
    assert not _kernels.group_counts(codes, mask[:10], np.zeros(300, np.int64))  # lengths
    assert not _kernels.group_counts(codes, mask.astype(np.uint8), np.zeros(300, np.int64))
    assert not _kernels.group_counts(codes.astype(float), None, np.zeros(300, np.int64))
    assert _kernels.group_counts(codes[:0], None, np.zeros(0, np.int64))  # nothing to count
    # the Python side falls back to NumPy for what the kernel refuses (strided codes): the
    # same counts, added in place
    out = np.arange(300, dtype=np.int64)
    add_rows(out, codes[::2], mask[::2])
    assert np.array_equal(out, np.arange(300) + np.bincount(codes[::2][mask[::2]], minlength=300))
    add_rows(out[:300], codes[1::2])
    assert np.array_equal(
        out,
        np.arange(300)
        + np.bincount(codes[::2][mask[::2]], minlength=300)
        + np.bincount(codes[1::2], minlength=300),
    )


def test_group_counts_into_several_arrays_in_one_pass():
    """A tuple of up to 8 arrays (of any lengths above the codes) each takes the counts, in
    one pass; nothing changes unless every one can take them; `add_rows` counts into more."""
    from streammetric.metrics.state import add_rows

    rng = np.random.default_rng(9)
    codes = rng.integers(0, 300, 5000)
    mask = rng.random(5000) < 0.4
    for kind in (np.int64, np.int32):
        outs = tuple(np.full(300 + k, k, dtype=np.int64) for k in range(8))
        assert _kernels.group_counts(codes.astype(kind), mask, outs)
        for k, out in enumerate(outs):
            assert np.array_equal(out, k + np.bincount(codes[mask], minlength=300 + k))
    fits, short = np.zeros(300, np.int64), np.zeros(299, np.int64)
    assert not _kernels.group_counts(codes, None, (fits, short)) and not fits.any()
    assert not _kernels.group_counts(codes, None, (fits, fits.astype(np.int32))) and not fits.any()
    assert not _kernels.group_counts(codes, None, tuple(np.zeros(300, np.int64) for _ in range(9)))
    assert not _kernels.group_counts(codes, None, ())
    many = tuple(np.zeros(300, dtype=np.int64) for _ in range(11))
    add_rows(many, codes, mask)
    assert all(np.array_equal(out, np.bincount(codes[mask], minlength=300)) for out in many)


def test_weigh_cells_adds_each_cells_value_times_its_buckets_weights():
    from streammetric._kernels import weigh_cells

    rng = np.random.default_rng(5)
    cells, entries, buckets, replicates, groups = 700, 3, 64, 37, 25
    values = rng.integers(-(2**30), 2**30, (cells, entries)).astype(np.float64)
    values[rng.random((cells, entries)) < 0.2] = 0.0  # zeros add nothing
    group, bucket = rng.integers(0, groups, cells), rng.integers(0, buckets, cells)
    across = rng.poisson(1.0, (buckets, replicates)).astype(np.float64)
    out = np.zeros((entries, groups, replicates))
    assert weigh_cells(values, group, bucket, across, out, entries, replicates)
    expected = np.zeros((entries, groups, replicates))
    np.add.at(expected, (slice(None), group), (values.T[:, :, None] * across[bucket][None]))
    assert np.array_equal(out, expected)  # integers below 2**53: exact in any order
    for bad_group, bad_bucket in ((group.max() + groups, bucket), (group, bucket - buckets)):
        untouched = np.zeros_like(out)
        assert not weigh_cells(
            values, bad_group, bad_bucket, across, untouched, entries, replicates
        )
        assert not untouched.any()  # nothing written when a cell is out of range
    assert not weigh_cells(values, group, bucket, across, out, entries + 1, replicates)
