"""`scripts/bench.py` still runs: its eval, kernels and pipeline sections on a small file.

The figures themselves are not checked here (speed is measured by running the script, not by
timed tests); only that every section prints every row with a number.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
BUILTINS = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build cache of kernel_ab.py and eval_ab.py for this test session, one for all xdist
    workers (their temporary folders' parent): each source is compiled once per session, never
    taken from an earlier session's or the repository's .bench."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / "kernel-cache"


def _run_ab(
    script: str, args: list[str], tmp_path: Path, kernel_cache: Path
) -> subprocess.CompletedProcess[str]:
    """``scripts/SCRIPT ARGS`` with the benchmark files in ``tmp_path`` and the session's build
    cache: the finished process (its exit code checked)."""
    env = {
        **os.environ,
        "STREAMMETRIC_BENCH_DIR": str(tmp_path),
        "STREAMMETRIC_KERNEL_CACHE": str(kernel_cache),
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT.with_name(script)), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
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
    rate, ratio = rows["no --by"]
    assert float(rate.replace(",", "")) > 0 and float(ratio) == 1
    for name, goal in (("--by s10 (10 strings)", "0.8"), ("--by i100k (100,000 ints)", "0.5")):
        # RATE RATIO   LOWEST MEDIAN HIGHEST; K of N >= GOAL (each round's ratio, one round)
        rate, ratio, lowest, median, highest, met, _, runs, _, at = rows[name]
        assert float(rate.replace(",", "")) > 0 and 0 < float(ratio)
        assert lowest == median == highest.rstrip(";") == ratio  # one round: its ratio
        assert (met, runs, at) == (str(int(float(ratio) >= float(goal))), "1", goal)
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


# eval_ab.py's test comes after this one, on the same worker (scripts/test runs a module's tests
# on one worker), and takes the build kernel_ab.py compiled: no worker waits for the other's.
def test_kernel_ab_compares_two_builds(tmp_path: Path, kernel_cache: Path):
    """`scripts/kernel_ab.py` builds HEAD's kernels and the working tree's, checks that they
    answer alike, and prints both builds' times and their ratio for every kernel."""
    args = ["--rows", "300000", "--rounds", "1", "--reps", "3"]  # 8 slices: each pair timed twice
    args += ["--cflags=-O0"]  # the script's workings, not the build's speed: gcc 3 s, not 26
    done = _run_ab("kernel_ab.py", args, tmp_path, kernel_cache)
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d\s*$", line)]
    whats = {(line[:28].strip(), line[28:43].strip()) for line in lines}
    scans = {"sparse_scan", "sparse_scan with ranks"}
    assert whats == {
        *((what, when) for what in scans for when in ("just decoded", "warm")),
        ("exact_sum (per value)", "warm"),
    }
    half = 0.005  # every figure is printed to 2 decimals
    for base, tree, ratio in ((float(cell) for cell in line[43:].split()) for line in lines):
        assert base > 0 and tree > 0
        assert (tree - half) / (base + half) - half <= ratio <= (tree + half) / (base - half) + half


#: kernel_ab.py's flags, so the build it made is the one taken here
EVAL_AB_ARGS = ["--rows", "40000", "--rounds", "1", "--cflags=-O0"]


def test_eval_ab_times_two_copies_of_the_package(tmp_path: Path, kernel_cache: Path):
    """`scripts/eval_ab.py` builds HEAD's package and the working tree's in their own
    directories, checks that they answer alike, and prints each one's time and the paired ratio."""
    done = _run_ab("eval_ab.py", EVAL_AB_ARGS, tmp_path, kernel_cache)
    times = {line[:22].strip(): line[22:].split() for line in done.stdout.splitlines()[2:5]}
    assert set(times) == {"decoder (8k slices)", "base", "tree"}
    assert all(float(ms) > 0 and float(ratio) > 0 for ms, ratio in times.values())
    assert "tree / base, paired by round: median" in done.stdout


def test_group_kernels_ab_times_the_grouped_kernels_of_two_builds(
    tmp_path: Path, kernel_cache: Path
):
    """`scripts/group_kernels_ab.py` builds HEAD's kernels and the working tree's (kernel_ab.py's
    build, taken from the cache), checks that they answer alike on the grouped file, and prints
    each kernel's time in both and the ratio."""
    args = ["--rows", "40000", "--rounds", "1", "--cflags=-O0"]
    done = _run_ab("group_kernels_ab.py", args, tmp_path, kernel_cache)
    rows = {line[:28].strip(): line[28:].split() for line in done.stdout.splitlines()[2:]}
    assert {"KeyCodes.add_strings", "GroupSums.add", "GroupSums.ratios"} <= set(rows)
    half = 0.05  # the times are printed to 1 decimal, the ratio to 3
    for cells in rows.values():
        base, tree, ratio = map(float, cells)
        assert base > 0 and tree > 0
        assert (tree - half) / (base + half) - 5e-4 <= ratio <= (tree + half) / (base - half) + 5e-4


TINY_KERNELS = """
#include <Python.h>
#include "answer.h"
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "streammetric._kernels", NULL, -1};
PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "answer", ANSWER) < 0) Py_CLEAR(m);
    return m;
}
"""

CACHE_PROBE = """
import importlib.util, json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from kernel_ab import compile_kernels

def built(directory, copy):
    library = Path(copy, "_kernels.so")
    library.parent.mkdir()
    compile_kernels(Path(directory, "_kernels.c"), library)
    spec = importlib.util.spec_from_file_location(copy + "._kernels", library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.answer

def cache():
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in Path(os.environ["STREAMMETRIC_KERNEL_CACHE"]).glob("*.so")}

out = {"a": built("a", "a1"), "after a": cache(), "b": built("b", "b1"), "after b": cache()}
Path("b", "answer.h").write_text("#define ANSWER 2\\n")
out |= {"b changed": built("b", "b2"), "after b changed": cache()}
print(json.dumps(out))
"""


def test_kernel_builds_are_kept_by_what_gcc_compiles(tmp_path: Path):
    """compile_kernels (kernel_ab.py, eval_ab.py) compiles a source once: the same source in
    another folder is the cached library, not compiled again; a changed header is a new build."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "_kernels.c").write_text(textwrap.dedent(TINY_KERNELS))
        (tmp_path / name / "answer.h").write_text("#define ANSWER 1\n")
    env = {**os.environ, "STREAMMETRIC_KERNEL_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", CACHE_PROBE, str(SCRIPT.parent)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["a"], out["b"], out["b changed"]) == (1, 1, 2)
    assert len(out["after a"]) == 1 and out["after b"] == out["after a"]  # same file, not rebuilt
    assert (
        len(out["after b changed"]) == 2
        and out["after a"].items() <= out["after b changed"].items()
    )
