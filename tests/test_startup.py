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

# not needed by `eval -m ce` of a file without --checkpoint, --ci, -o, --format csv, --serve or
# --engine dask
NOT_FOR_EVAL = [
    "csv",
    "fractions",
    "hashlib",
    "prometheus_client",
    "tempfile",
    "streammetric.engine.checkpoint",
    "streammetric.engine.dask",
    "streammetric.engine.watch",
    "streammetric.export.prometheus",  # the package itself is light: names and lazy attributes
    "streammetric.export._tracker",
    "streammetric.functional.calibration",
    "streammetric.functional.classification",
    "streammetric.functional.ranking",
    "streammetric.functional.regression",
    "streammetric.io.memory",  # in-memory inputs
    "streammetric.metrics.bootstrap",  # --ci
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


def test_eval_by_one_int_or_string_column_does_not_load_pyarrow_compute(tmp_path: Path):
    """``eval --by`` one column of ints or strings (many values: strings read with their
    dictionary, ints as they are): the group index's C table numbers and sorts the keys, so
    ``pyarrow.compute`` (~45 ms to import) is never loaded."""
    path = tmp_path / "grouped.parquet"
    rows = 20_000
    probs = pa.FixedSizeListArray.from_arrays(pa.array(np.full(rows * 4, 0.25, np.float32)), 4)
    table = pa.table(
        {
            "label": np.zeros(rows, np.int64),
            "probs": probs,
            "n": (np.arange(rows) * 7_919) % 9_973,
            "s": [f"g-{i % 5_000}" for i in range(rows)],
        }
    )
    pq.write_table(table, path, row_group_size=5_000)
    for column, groups in (("n", 9_973), ("s", 5_000)):
        out = python(
            f"""
            import json, sys
            from streammetric.cli import main
            args = ["eval", {str(path)!r}, "-m", "ce", "-m", "acc", "--by", {column!r},
                    "--format", "json", "--no-progress", "--threads", "2"]
            main(args, standalone_mode=False)
            print("pyarrow.compute" in sys.modules)
            """
        )
        assert out[-1] == "False", column
        assert len(json.loads("\n".join(out[:-1]))["groups"]) == groups


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
    """``streammetric eval PATH ARGS`` through the entry point, with an atexit hook that says "teardown"
    (and, with ``thread``, a thread still running when the command ends)."""
    code = f"""
        import atexit, sys, threading, time
        atexit.register(lambda: print("teardown", file=sys.stderr))
        if {thread}:
            threading.Thread(target=time.sleep, args=(3,)).start()  # outlives the command
        sys.argv = ["streammetric", "eval", {str(path)!r}, *{list(args)!r}]
        from streammetric.__main__ import run
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


BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")
# the process's threads but jemalloc's background thread, which pyarrow starts, sometimes only
# after the count
THREADS = """
    def threads():
        tasks = [open(f"/proc/self/task/{t}/comm").read() for t in os.listdir("/proc/self/task")]
        return len([name for name in tasks if not name.startswith("jemalloc_bg_thd")])
    """


def _probe(code: str, environ: dict[str, str] | None = None) -> list[str]:
    """The words ``code`` prints in a fresh interpreter whose environment sets none of OpenBLAS's
    thread counts but ``environ``'s (a Dask test that ran before in this process may have left
    OMP_NUM_THREADS and GOTO_NUM_THREADS, which OpenBLAS also reads, set to 1)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in BLAS}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(THREADS) + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**env, **(environ or {})},
    )
    return done.stdout.split()


LIBRARY = """
    import gc, os, sys
    {before}
    enabled = gc.isenabled()
    collections = []
    gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(1))
    import streammetric as sm
    print("numpy" in sys.modules, gc.isenabled() == enabled, os.environ.get("OPENBLAS_NUM_THREADS"))
    sm.create(["ce", "acc"]).update([0, 1], [[0.25, 0.75], [0.5, 0.5]])  # NumPy, the metrics
    print(gc.isenabled() == enabled, gc.get_freeze_count(), os.environ.get("OPENBLAS_NUM_THREADS"))
    print(len(collections), threads())
    """

COMMAND = """
    import gc, os, sys
    from streammetric.__main__ import load  # streammetric's own __init__: a few small modules
    collections = []
    gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(1))
    command = load()
    print(command.__module__, os.environ.get("OPENBLAS_NUM_THREADS"), len(collections))
    print(gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()), threads())
    """


def test_import_streammetric_leaves_the_gc_and_openblas_alone():
    """``import streammetric`` loads no NumPy, and neither it nor using the metrics pauses,
    freezes or turns off the garbage collector or sets OPENBLAS_NUM_THREADS."""
    first, then, counts = _chunks(_probe(LIBRARY.format(before="")), 3, 3, 2)
    assert first == ["False", "True", "None"] and then == ["True", "0", "None"]
    assert int(counts[0]) > 0  # the collector ran while NumPy and the metrics loaded
    first, then, counts = _chunks(_probe(LIBRARY.format(before="gc.disable()")), 3, 3, 2)
    assert first == ["False", "True", "None"] and then == ["True", "0", "None"]
    assert counts[0] == "0"  # a program that turned it off keeps it off
    assert _probe(LIBRARY.format(before=""), {"OPENBLAS_NUM_THREADS": "3"})[2] == "3"


def _chunks(words: list[str], *sizes: int) -> list[list[str]]:
    out, start = [], 0
    for size in sizes:
        out.append(words[start : start + size])
        start += size
    assert start == len(words), words
    return out


def test_the_entry_point_sets_openblas_and_freezes_the_gc_before_numpy_loads():
    """The command (`streammetric.__main__.load`): one OpenBLAS thread unless the environment
    says otherwise, so OpenBLAS starts none of its own; the collector paused while the modules
    load, then on again with every object they made frozen, out of its passes."""
    import os

    assert (os.cpu_count() or 1) > 1, "OpenBLAS starts one thread per core: needs 2 cores"
    module, blas, collections, enabled, frozen, seen, threads = _probe(COMMAND)
    assert (module, blas, enabled) == ("streammetric.cli", "1", "True")
    assert collections == "0"  # the imports (NumPy, pyarrow, click, ...) make some 60 without
    assert int(frozen) > 10_000 and int(seen) < 1_000
    library_threads = int(_probe(LIBRARY.format(before=""))[-1])
    assert int(threads) < library_threads  # OpenBLAS's own threads are gone
    assert _probe(COMMAND, {"OPENBLAS_NUM_THREADS": "2"})[1] == "2"


def test_the_console_script_and_python_m_streammetric_are_the_entry_point():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"streammetric": "streammetric.__main__:run"}
    done = subprocess.run(
        [sys.executable, "-m", "streammetric", "metrics"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("accuracy") and "conventions:" in done.stdout


def test_lazy_attributes_are_what_the_eager_package_had():
    """Submodules load when named; ``sm.explain`` is the function even when the submodule of
    that name was imported first (Python sets a package's attribute to each submodule it loads)."""
    out = python(
        """
        import sys
        import streammetric.explain
        import streammetric as sm
        print(callable(sm.explain), sm.explain.__module__, sm.Explanation.__name__)
        print(sm.engine.__name__, sm.accumulate.ExactSum is sm.ExactSum, sm.np.__name__)
        print(hasattr(sm, "nonsense"), "streammetric.nonsense" in sys.modules)
        from streammetric import CrossEntropy, explain
        print(CrossEntropy.__name__, explain is sm.explain)
        """
    )
    assert out == [
        "True streammetric.explain Explanation",
        "streammetric.engine True np_metric",
        "False False",
        "CrossEntropy True",
    ]


def test_grouped_runs_do_not_import_pandas(tmp_path: Path):
    """pyarrow imports pandas (~0.3 s) in ``pa.array``, ``pa.scalar``, ``fill_null`` and
    ``np.asarray`` of an array: ``--by`` over many keys (Arrow's lookup from 2,048), hive
    partitions, ``--on-invalid skip`` and ``--ci`` build their arrays without them
    (`streammetric._arrow`)."""
    rows = 6000
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), rows).astype(np.float32)
    probs[5] = np.nan  # an invalid row, skipped
    for part in ("a", "b"):
        folder = tmp_path / "data" / f"model={part}"
        folder.mkdir(parents=True)
        table = pa.table(
            {
                "label": rng.integers(0, 4, rows),
                "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 4),
                "user": pa.array([f"u{i}" for i in rng.integers(0, 5000, rows)]),
                "item": rng.integers(0, 5000, rows),
            }
        )
        pq.write_table(table, folder / "part-0.parquet", row_group_size=1000)
    out = python(
        f"""
        import sys
        from streammetric.cli import main
        base = ["eval", {str(tmp_path / "data")!r}, "-m", "ce", "-m", "acc", "--no-progress",
                "--on-invalid", "skip", "--format", "json", "-o", {str(tmp_path / "r.json")!r}]
        for extra in (["--by", "user"], ["--by", "item,model"], ["--by", "model", "--ci", "0.9"]):
            main(base + extra, standalone_mode=False)
        print("pandas" in sys.modules)
        """
    )
    assert out == ["False"]
