"""`scripts/bench.py` still runs: its eval, kernels and pipeline sections on a small file.

The figures themselves are not checked here (speed is measured by running the script, not by
timed tests); only that every section prints every row with a number.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


def test_bench_sections_print_every_row(tmp_path: Path):
    env = {**os.environ, "STREAMMETRIC_BENCH_DIR": str(tmp_path)}
    args = ["--rows", "40000", "--runs", "1", "--only", "eval,kernels,pipeline"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    rows = {
        line[:34].strip(): line[34:].split()
        for line in done.stdout.splitlines()
        if re.search(r"\d\s*$", line)
    }
    for name in ("row-group slices of 32k x threads", "eval -m ce", "eval, five metrics"):
        rate, ratio = rows[name]
        assert float(rate.replace(",", "")) > 0 and 0 < float(ratio)
    for name in ("pyarrow alone", "engine, + sparse_scan", "eval -m ce", "eval, five metrics"):
        assert any(line.startswith(name) for line in done.stdout.splitlines()), name
    kernels = [line.split() for line in done.stdout.splitlines() if line.startswith("avx512 ")]
    assert not kernels or all(float(cells[-1]) > 0 for cells in kernels)
    for name in ("sparse_scan", "to NumPy (engine), just decoded", "update, ce, just decoded"):
        assert name in done.stdout, name
