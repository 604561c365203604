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
BUILTINS = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]


def test_bench_sections_print_every_row(tmp_path: Path):
    env = {**os.environ, "STREAMMETRIC_BENCH_DIR": str(tmp_path)}
    args = ["--rows", "40000", "--runs", "1", "--only", "eval,groups,kernels,pipeline"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900
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
    for name in (
        "pyarrow alone",
        "pyarrow + C kernels and log only",
        "eval -m ce",
        "eval, five metrics",
    ):
        assert any(line.startswith(name) for line in done.stdout.splitlines()), name
    for name in ("no --by", "--by s10 (10 strings)", "--by i100k (100,000 ints)"):
        rate, ratio = rows[name]
        assert float(rate.replace(",", "")) > 0 and 0 < float(ratio)
    kernels = [line.split() for line in done.stdout.splitlines() if line.startswith("avx512 ")]
    assert not kernels or all(float(cells[-1]) > 0 for cells in kernels)
    for name in ("sparse_scan", "to NumPy (engine), just decoded", "update, ce, just decoded"):
        assert name in done.stdout, name


def test_update_section_prints_every_metric(tmp_path: Path):
    """The update section times CrossEntropy under each built-in convention and Accuracy (MXNet
    is not installed at this path: no ratios then)."""
    args = ["--only", "update", "--update-rounds", "1", "--update-rows", "131072"]
    args += ["--mxnet-python", str(tmp_path / "no-mxnet" / "python")]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("streammetric")]
    # NAME BATCH NS/ROW US/CALL CALLS/S - (no ratio to MXNet, no goal)
    names = {" ".join(cells[:-5]) for cells in rows}
    conventions = [f"streammetric CrossEntropy convention={c}" for c in BUILTINS[1:]]
    assert names == {"streammetric CrossEntropy", "streammetric Accuracy", *conventions}
    assert len(rows) == 2 * len(names)
    for cells in rows:
        assert cells[-5] in ("64", "65536") and float(cells[-3]) > 0 and cells[-1] == "-"


def test_kernel_ab_compares_two_builds(tmp_path: Path):
    """`scripts/kernel_ab.py` builds HEAD's kernels and the working tree's, checks that they
    answer alike, and prints both builds' times and their ratio for every kernel."""
    env = {**os.environ, "STREAMMETRIC_BENCH_DIR": str(tmp_path)}
    args = ["--rows", "300000", "--rounds", "1", "--reps", "3"]  # 8 slices: each pair timed twice
    done = subprocess.run(
        [sys.executable, str(SCRIPT.with_name("kernel_ab.py")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d\s*$", line)]
    whats = {(line[:28].strip(), line[28:43].strip()) for line in lines}
    scans = {"sparse_scan", "sparse_scan with ranks"}
    assert whats == {
        *((what, when) for what in scans for when in ("just decoded", "warm")),
        ("exact_sum (per value)", "warm"),
    }
    for base, tree, ratio in (line[43:].split() for line in lines):
        assert float(base) > 0 and float(tree) > 0
        assert abs(float(ratio) - float(tree) / float(base)) < 0.02


def test_eval_ab_times_two_copies_of_the_package(tmp_path: Path):
    """`scripts/eval_ab.py` builds HEAD's package and the working tree's in their own
    directories, checks that they answer alike, and prints each one's time and the paired ratio."""
    env = {**os.environ, "STREAMMETRIC_BENCH_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT.with_name("eval_ab.py")), "--rows", "40000", "--rounds", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    times = {line[:22].strip(): line[22:].split() for line in done.stdout.splitlines()[2:5]}
    assert set(times) == {"decoder (8k slices)", "base", "tree"}
    assert all(float(ms) > 0 and float(ratio) > 0 for ms, ratio in times.values())
    assert "tree / base, paired by round: median" in done.stdout
