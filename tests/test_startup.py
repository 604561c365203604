"""Start-up cost: ``streammetric eval`` imports only what it uses; lazy imports change nothing.

Each test runs a fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# not needed by `eval -m ce` without --checkpoint, -o, --format csv, --serve or --engine dask
NOT_FOR_EVAL = [
    "csv",
    "fractions",
    "hashlib",
    "prometheus_client",
    "tempfile",
    "streammetric.engine.dask",
    "streammetric.engine.watch",
    "streammetric.export",
    "streammetric.functional.calibration",
    "streammetric.functional.classification",
    "streammetric.functional.ranking",
    "streammetric.functional.regression",
    "streammetric.metrics.calibration",
    "streammetric.metrics.classification",
    "streammetric.metrics.regression",
]
LAZY_METRIC_MODULES = [
    "streammetric.metrics.calibration",
    "streammetric.metrics.classification",
    "streammetric.metrics.regression",
]


def python(code: str) -> list[str]:
    """The lines ``code`` prints in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_eval_imports_only_what_it_needs(tmp_path: Path):
    path, report = tmp_path / "preds.parquet", tmp_path / "modules.json"
    probs = pa.FixedSizeListArray.from_arrays(pa.array(np.full(40, 0.25, np.float32)), 4)
    pq.write_table(pa.table({"label": np.zeros(10, np.int64), "probs": probs}), path)
    out = python(
        f"""
        import json, sys
        import click, numpy, pyarrow.parquet  # what these import themselves does not count
        before = set(sys.modules)
        from streammetric.cli import main
        args = ["eval", {str(path)!r}, "-m", "ce", "--format", "json", "--no-progress"]
        main(args, standalone_mode=False)
        with open({str(report)!r}, "w") as handle:
            json.dump(sorted(set(sys.modules) - before), handle)
        """
    )
    assert json.loads("\n".join(out))["rows"] == 10
    assert sorted(set(json.loads(report.read_text())) & set(NOT_FOR_EVAL)) == []


def test_lazy_metrics_load_when_used():
    out = python(
        f"""
        import sys
        import streammetric as sm
        print(any(m in sys.modules for m in {LAZY_METRIC_MODULES!r}))
        print(type(sm.create("acc")).__name__, [m for m in {LAZY_METRIC_MODULES!r} if m in sys.modules])
        print(sm.MAE.__name__, sm.metrics.AUC.__name__)
        print(all(m in sys.modules for m in {LAZY_METRIC_MODULES!r}))
        print("MCC" in dir(sm), "F1" in dir(sm.metrics), "f1_score" in dir(sm.functional))
        print(sm.functional.f1_score.__module__)
        """
    )
    assert out == [
        "False",
        "Accuracy ['streammetric.metrics.classification']",  # only the module that has it
        "MAE AUC",
        "True",
        "True True True",
        "streammetric.functional.classification",
    ]


def test_registry_is_as_if_everything_was_imported():
    show = """
        import streammetric as sm

        @sm.register
        @sm.alias("acc")
        class Accuracy(sm.CrossEntropy):  # a user's metric replaces the built-in one
            pass

        print(type(sm.create("acc")).__module__, type(sm.create("accuracy")).__module__)
        print(sm.create("f1").name, sm.create("mae").name)
        print(sorted(sm.list_metrics().items()))
        """
    lazy = python(show)
    eager = python("import " + ", ".join(LAZY_METRIC_MODULES) + textwrap.dedent(show))
    assert lazy == eager
    assert lazy[:2] == ["__main__ __main__", "f1 mae"]


def test_lazy_tables_are_complete():
    import streammetric as sm

    for package in (sm, sm.metrics, sm.functional):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)


def _entry_point(path: Path, *args: str, thread: bool = False) -> subprocess.CompletedProcess[str]:
    """``streammetric eval PATH ARGS`` through `run`, with an atexit hook that says "teardown"
    (and, with ``thread``, a thread still running when the command ends)."""
    code = f"""
        import atexit, sys, threading, time
        atexit.register(lambda: print("teardown", file=sys.stderr))
        if {thread}:
            threading.Thread(target=time.sleep, args=(0.5,)).start()
        sys.argv = ["streammetric", "eval", {str(path)!r}, *{list(args)!r}]
        from streammetric.cli import run
        run()
        """
    command = [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_entry_point_ends_without_teardown_after_flushing(tmp_path: Path):
    path = tmp_path / "preds.parquet"
    probs = pa.FixedSizeListArray.from_arrays(pa.array(np.full(40, 0.25, np.float32)), 4)
    pq.write_table(pa.table({"label": np.zeros(10, np.int64), "probs": probs}), path)
    done = _entry_point(path, "-m", "ce", "--format", "json", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 10  # a pipe: flushed before the process ended
    assert "teardown" not in done.stderr
    usage = _entry_point(path, "-m", "nonsense")
    assert usage.returncode == 2
    assert usage.stderr.startswith("streammetric: error: unknown metric 'nonsense'")
    assert "teardown" not in usage.stderr
    # something still running: the usual exit, which waits for it and runs the atexit hooks
    waited = _entry_point(path, "-m", "ce", "--format", "json", "--no-progress", thread=True)
    assert waited.returncode == 0 and json.loads(waited.stdout)["rows"] == 10
    assert "teardown" in waited.stderr


def _blas_threads(argv0: str, environ: dict[str, str] | None = None) -> tuple[str, int]:
    """OPENBLAS_NUM_THREADS and the thread count just after ``import streammetric`` in a process
    whose ``sys.argv[0]`` is ``argv0``, leaving out jemalloc's background thread, which pyarrow
    starts in both, sometimes only after the count."""
    import os

    code = f"""
        import os, sys
        sys.argv[0] = {argv0!r}
        import streammetric
        tasks = [open(f"/proc/self/task/{{t}}/comm").read() for t in os.listdir("/proc/self/task")]
        threads = [name for name in tasks if not name.startswith("jemalloc_bg_thd")]
        print(os.environ.get("OPENBLAS_NUM_THREADS"), len(threads))
        """
    # OpenBLAS also takes OMP_NUM_THREADS and GOTO_NUM_THREADS, which a Dask test that ran
    # before in this process may have left set to 1 (distributed's pre-spawn-environ)
    blas = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in blas}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**env, **(environ or {})},
    )
    value, threads = done.stdout.split()
    return value, int(threads)


def test_the_command_starts_no_blas_threads_and_a_library_user_keeps_them():
    import os

    assert (os.cpu_count() or 1) > 1, "OpenBLAS starts one thread per core: needs 2 cores"
    command_value, command_threads = _blas_threads("/venv/bin/streammetric")
    library_value, library_threads = _blas_threads("train.py")
    assert command_value == "1" and library_value == "None"
    assert command_threads < library_threads  # OpenBLAS's own threads are gone
    assert _blas_threads("/venv/bin/streammetric", {"OPENBLAS_NUM_THREADS": "2"})[0] == "2"


def test_the_import_pauses_the_gc_and_restores_it():
    """The collections during ``import streammetric`` (a pass may follow the pause), and whether
    the collector is on after it."""
    counted = """
        import gc, sys
        sys.argv[0] = {argv0!r}
        {before}
        collections = []
        gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(1))
        import streammetric
        print(len(collections), gc.isenabled())
        """
    unpaused = python(counted.format(argv0="train.py", before="gc.disable = lambda: None"))
    assert int(unpaused[0].split()[0]) > 20  # NumPy and pyarrow's imports collect
    for argv0 in ("/venv/bin/streammetric", "train.py"):  # the command, a library user
        count, enabled = python(counted.format(argv0=argv0, before=""))[0].split()
        assert int(count) <= 2 and enabled == "True"
        count, enabled = python(counted.format(argv0=argv0, before="gc.disable()"))[0].split()
        assert int(count) == 0 and enabled == "False"  # a program that turned it off keeps it off


def test_the_command_hides_its_imports_from_the_gc_and_a_library_user_keeps_them_in_sight():
    """In the command, the objects the imports made are frozen (``gc.freeze``): the collector's
    next pass, and every later one, does not go over them. A library user's objects are left
    to the collector."""
    seen = """
        import gc, sys
        sys.argv[0] = {argv0!r}
        import streammetric
        print(gc.get_freeze_count(), len(gc.get_objects()))
        """
    command_frozen, command_seen = map(
        int, python(seen.format(argv0="/venv/bin/streammetric"))[0].split()
    )
    user_frozen, user_seen = map(int, python(seen.format(argv0="train.py"))[0].split())
    assert user_frozen == 0 and user_seen > 10_000  # NumPy, pyarrow and the package
    assert command_frozen > 10_000 and command_seen < 1_000
