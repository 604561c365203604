"""Compare ``_kernels.log32`` and ``exp32`` with NumPy's float32 ``np.log`` and ``np.exp`` on every
float32 (all 2**32 bit patterns), once per instruction set of the kernels.

The kernels carry NumPy's float32 log and exp of x86-64 CPUs with AVX2 and FMA or AVX-512
(``simd_log_FLOAT``/``simd_exp_FLOAT``), so that the float32 losses of the conventions that
compute in the input's dtype are taken in one pass in C with NumPy's bits; tests/test_kernels.py
checks a sample of 2**22 values and a fingerprint on every run. This is the whole check (about
40 s per instruction set, baseline's library fmaf calls about 5 min); run it with NumPy's
AVX-512 loops off too::

    .venv/bin/python scripts/check_float32_math.py [--isa avx512,avx2,baseline]
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL" .venv/bin/python scripts/check_float32_math.py

It prints the number of differing values per function and instruction set (0 expected where
NumPy runs those loops) and exits 1 if any differ.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from streammetric import _kernels

CHUNK = 1 << 24


def differences(isa: str) -> dict[str, int]:
    _kernels.use_isa(isa)
    counts = {"log": 0, "exp": 0}
    out = np.empty(CHUNK, dtype=np.float32)
    with np.errstate(all="ignore"):
        for start in range(0, 1 << 32, CHUNK):
            x = np.arange(start, start + CHUNK, dtype=np.uint64).astype(np.uint32).view(np.float32)
            for name, numpy_f, kernel in (
                ("log", np.log, _kernels.log32),
                ("exp", np.exp, _kernels.exp32),
            ):
                assert kernel(x, out)
                counts[name] += int(
                    np.count_nonzero(numpy_f(x).view(np.uint32) != out.view(np.uint32))
                )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", default=",".join(_kernels.isas()))
    args = parser.parse_args()
    failed = False
    for isa in args.isa.split(","):
        start = time.perf_counter()
        counts = differences(isa)
        failed |= any(counts.values())
        print(
            f"{isa:9s} differing: log {counts['log']:,}, exp {counts['exp']:,} ({time.perf_counter() - start:.0f} s)"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
