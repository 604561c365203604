"""Benchmarks with ratios measured side by side in one run (these machines are shared and noisy).

    .venv/bin/python scripts/bench.py [--rows 8000000] [--runs 5] [--only eval,ci,report,rss]
    .venv/bin/python scripts/bench.py --only update --mxnet-python /path/to/mxnet/python

* eval: ``streammetric eval -m ce`` (and five metrics at once) on an N-row x 10-class float32
  Parquet file (row groups of 128k rows) against the fastest pyarrow-only decode of the same
  columns with all cores and no metric (whole row groups, or slices of 8k or 32k rows). Whole
  processes, each once per round in a shuffled order (a fixed order favours some), median of
  --runs rounds; the ratio is eval rows/s over decode rows/s (goal >= 0.9 for one metric,
  >= 0.75 for five).
* rss: peak RSS of ``eval`` (five metrics) on a 1M-row and a 6M-row file (goal: within 15%, < 600 MB).
* update: ``update`` per row, per call and in calls per second for 64- and 65,536-row batches:
  ``CrossEntropy`` under each built-in convention and ``Accuracy``, next to a plain NumPy loop
  (the floor) and the peers (scikit-learn, torchmetrics, Keras, MXNet 1.9.1's ``CrossEntropy``
  and ``Accuracy``), each measured by scripts/bench_peers.py under its own interpreter, the
  interpreters alternated in rounds (--update-rounds); the calls per second relative to MXNet's
  same metric, with the goals (>= 2x at 64 rows, >= 1.2x at 65,536). ``--mxnet-python`` names
  MXNet's interpreter (default .bench/venv-mxnet/bin/python); ``--update-base REV`` times that
  revision's package in the same rounds (before/after). ``--setup-peers`` first creates
  .bench/venv-peers (torch 2.13.0 from this machine's disk, torchmetrics, keras, jax) and
  .bench/venv-mxnet (numpy 1.23.5, mxnet 1.9.1); peers that are not installed are left out.
* groups: ``eval -m ce -m acc --by COL`` on a 4M-row file (--rows, if fewer) with string
  columns of 10, 1,000 and 100,000 distinct values and an integer one of 100,000, against the
  same command without ``--by``, whole processes writing the JSON result (goals >= 0.8, 0.7,
  0.5 of the rate without --by): the ratio of the medians, and each round's own ratio (lowest,
  median, highest, and in how many rounds it reached the goal).
* dask: the Dask engine with 1 and 2 local worker processes on a 4-file dataset (same bits).
* kernels: each C kernel per instruction set on one 32k-row slice, and ``update`` (ce; five
  metrics) on each slice of a 2M-row file (--rows, if fewer) right after decoding it and on the
  same slice again.
* pipeline: in one process with two threads, pyarrow alone, pyarrow with only the C pass and
  the exact sum on each slice (the floor of ``-m ce``), and the local engine's ``ce`` and
  five-metric evaluations.

Data files are cached under $STREAMMETRIC_BENCH_DIR (default /tmp/streammetric-bench).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = 10
ROW_GROUP = 128 * 1024
PY = sys.executable
FIVE = [
    "-m",
    "ce",
    "-m",
    "acc",
    "-m",
    "top_k_accuracy:top_k=5",
    "-m",
    "perplexity",
    "-m",
    "nll_loss",
]

DECODERS = {
    # whole-file read with pyarrow's own thread pool
    "pq.read_table": "import pyarrow.parquet as pq, sys; pq.read_table(sys.argv[1], columns=['label', 'probs'], use_threads=True)",
    # row groups on a thread pool, each decoded and dropped (bounded memory, like the engine)
    "row groups x threads": (
        "import pyarrow.parquet as pq, sys, os\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "path = sys.argv[1]; n = pq.ParquetFile(path).metadata.num_row_groups\n"
        "def read(i):\n"
        "    return pq.ParquetFile(path, pre_buffer=False).read_row_group(i, columns=['label', 'probs'], use_threads=False).num_rows\n"
        "with ThreadPoolExecutor(os.cpu_count()) as pool: sum(pool.map(read, range(n)))\n"
    ),
    # the same, each row group decoded in slices (eval reads 32k-row slices; pyarrow alone is
    # often a few % faster still with 8k)
    **{
        f"row-group slices of {size // 1024}k x threads": (
            "import pyarrow.parquet as pq, sys, os\n"
            "from concurrent.futures import ThreadPoolExecutor\n"
            "path = sys.argv[1]; n = pq.ParquetFile(path).metadata.num_row_groups\n"
            "def read(i):\n"
            "    f = pq.ParquetFile(path, pre_buffer=False)\n"
            f"    return sum(b.num_rows for b in f.iter_batches({size}, row_groups=[i], columns=['label', 'probs'], use_threads=False))\n"
            "with ThreadPoolExecutor(os.cpu_count()) as pool: sum(pool.map(read, range(n)))\n"
        )
        for size in (8192, 32768)
    },
}


def data_directory() -> Path:
    """Where the data files are cached (see the module docstring)."""
    return Path(os.environ.get("STREAMMETRIC_BENCH_DIR", "/tmp/streammetric-bench"))


def make_file(path: Path, rows: int, seed: int = 0) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    schema = pa.schema([("label", pa.int64()), ("probs", pa.list_(pa.float32(), CLASSES))])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            labels = rng.integers(0, CLASSES, n)
            logits = rng.normal(size=(n, CLASSES)).astype(np.float32)
            logits[np.arange(n), labels] += 2.0
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            flat = pa.array(probs.astype(np.float32).reshape(-1))
            writer.write_table(
                pa.table(
                    {"label": labels, "probs": pa.FixedSizeListArray.from_arrays(flat, CLASSES)},
                    schema=schema,
                ),
                row_group_size=ROW_GROUP,
            )
    tmp.rename(path)
    return path


# Every process runs with the one OpenBLAS thread that the `streammetric` command gives its own
# process (streammetric/__main__.py): without it, OpenBLAS's spinning thread cost each 45-66 ms.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def run_process(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"benchmark command failed: {' '.join(args)}\n{process.stderr.read().decode() if process.stderr else ''}"
        )
    return elapsed, usage.ru_maxrss * 1024


#: the group-by columns of the grouped file: name -> (distinct values, type)
GROUP_COLUMNS = {
    "s10": (10, "string"),
    "s1k": (1_000, "string"),
    "s100k": (100_000, "string"),
    "i100k": (100_000, "int"),
}


def make_grouped_file(path: Path, rows: int, seed: int = 1) -> Path:
    """The eval file's columns plus the `GROUP_COLUMNS`: each row's group drawn uniformly."""
    if path.exists():
        return path
    base = pq.read_table(make_file(path.with_name(f"eval_{rows}.parquet"), rows))
    rng = np.random.default_rng(seed)
    columns = {}
    for name, (distinct, kind) in GROUP_COLUMNS.items():
        codes = rng.integers(0, distinct, rows)
        if kind == "string":
            words = np.array([f"group-{i:06d}" for i in range(distinct)], dtype=object)
            columns[name] = pa.array(words[codes], pa.string())
        else:
            columns[name] = pa.array(codes * 7919 + 13, pa.int64())
    table = base
    for name, column in columns.items():
        table = table.append_column(name, column)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP * 4)
    tmp.rename(path)
    return path


#: the --by goals (ratio to the same command without --by), by group column
GROUP_GOALS = {"s10": 0.8, "s1k": 0.7, "s100k": 0.5, "i100k": 0.5}


def bench_groups(path: Path, rows: int, runs: int) -> list[tuple[str, float, float, list[float]]]:
    """``eval -m ce -m acc --by COL`` against the same without ``--by`` (whole processes,
    writing the JSON result): rows/s, the ratio of the medians, and each round's ratio (the
    two commands of one round ran minutes apart at most, so a round's ratio sees the same
    machine: their spread says how far a single reading can be trusted)."""
    metrics = ["-m", "ce", "-m", "acc"]
    commands = {"no --by": eval_args(path, metrics)}
    for name, (distinct, kind) in GROUP_COLUMNS.items():
        commands[f"--by {name} ({distinct:,} {kind}s)"] = [*eval_args(path, metrics), "--by", name]
    times = alternated_times(commands, runs)
    plain = times["no --by"]
    out = []
    for name, taken in times.items():
        paired = [p / t for p, t in zip(plain, taken, strict=True)]
        out.append(
            (
                name,
                rows / statistics.median(taken),
                statistics.median(plain) / statistics.median(taken),
                paired,
            )
        )
    return out


def group_goal(name: str) -> float | None:
    """The goal of a `bench_groups` row (``--by s100k (...)``), or None (no --by)."""
    column = name.split()[1] if name.startswith("--by ") else None
    return GROUP_GOALS.get(column) if column else None


def alternated(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall seconds of each command (`alternated_times`)."""
    return {name: statistics.median(t) for name, t in alternated_times(commands, runs).items()}


def alternated_times(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each command in each round: every command once to warm the page cache,
    then ``runs`` rounds of every command once, in a new order each round (side by side, so
    that the machine's noise falls on all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for args in commands.values():
        run_process(args)
    order = list(commands)
    for round_ in range(runs):
        random.Random(round_).shuffle(order)
        for name in order:
            times[name].append(run_process(commands[name])[0])
    return times


def make_pair(directory: Path, rows: int, seed: int = 3) -> tuple[Path, Path]:
    """A baseline and a candidate for ``compare``: the eval file's rows with an ``id`` column
    (row groups as the eval file's), the candidate's probabilities perturbed (Gaussian noise on
    their logarithms, renormalised)."""
    base, cand = (
        directory / f"compare_base_{rows}.parquet",
        directory / f"compare_cand_{rows}.parquet",
    )
    if base.exists() and cand.exists():
        return base, cand
    source = pq.ParquetFile(make_file(directory / f"eval_{rows}.parquet", rows))
    rng = np.random.default_rng(seed)
    writers: list[Any] = [None, None]
    start = 0
    for group in range(source.metadata.num_row_groups):
        table = source.read_row_group(group)
        n = table.num_rows
        ids = pa.array(np.arange(start, start + n, dtype=np.int64))
        start += n
        probs = table.column("probs").combine_chunks()
        p = probs.values.to_numpy().reshape(n, CLASSES).astype(np.float64)
        logp = np.log(np.maximum(p, 1e-12)) + rng.normal(scale=0.3, size=p.shape)
        q = np.exp(logp - logp.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        flat = pa.array(q.astype(np.float32).reshape(-1))
        tables = [
            table.append_column("id", ids),
            pa.table(
                {
                    "label": table.column("label"),
                    "probs": pa.FixedSizeListArray.from_arrays(flat, CLASSES),
                    "id": ids,
                }
            ),
        ]
        for i, (out, one) in enumerate(zip((base, cand), tables, strict=True)):
            if writers[i] is None:
                writers[i] = pq.ParquetWriter(out.with_suffix(".tmp"), one.schema)
            writers[i].write_table(one, row_group_size=n)
    for out, writer in zip((base, cand), writers, strict=True):
        writer.close()
        out.with_suffix(".tmp").rename(out)
    return base, cand


def bench_compare(directory: Path, rows: int, runs: int) -> list[tuple[str, float, float]]:
    """``compare BASE CAND -m ce -m acc`` against one ``eval -m ce -m acc`` of the baseline
    (and the ``eval --ci --id`` each side of a comparison amounts to): seconds and ratios
    (goal: compare <= 2.5x one eval)."""
    base, cand = make_pair(directory, rows)
    metrics = ["-m", "ce", "-m", "acc"]
    plain = eval_args(base, metrics)
    commands = {
        "eval -m ce -m acc (baseline)": plain,
        "  --ci 0.95 --id id": [*plain, "--ci", "0.95", "--id", "id"],
        "compare base cand -m ce -m acc": [
            PY,
            "-m",
            "streammetric",
            "compare",
            str(base),
            str(cand),
            *metrics,
            "--format",
            "json",
        ],
    }
    medians = alternated(commands, runs)
    first = medians["eval -m ce -m acc (baseline)"]
    return [(name, medians[name], medians[name] / first) for name in commands]


def bench_ci(path: Path, runs: int) -> list[tuple[str, float, float]]:
    """``eval -m ce -m acc`` with and without ``--ci 0.95 --bootstrap 1000``: seconds and the
    time ratio (goal: intervals <= 1.5x)."""
    plain = eval_args(path, ["-m", "ce", "-m", "acc"])
    commands = {
        "eval -m ce -m acc": plain,
        "  --ci 0.95 --bootstrap 1000": [*plain, "--ci", "0.95", "--bootstrap", "1000"],
    }
    medians = alternated(commands, runs)
    base = medians["eval -m ce -m acc"]
    return [(name, medians[name], medians[name] / base) for name in commands]


def bench_report(path: Path, runs: int) -> list[tuple[str, float, float]]:
    """``eval -m ce -m acc`` alone, with ``--conventions all`` (the CE under all six conventions
    in the same pass) and with ``--report FILE`` (which implies it): seconds and time ratio."""
    plain = eval_args(path, ["-m", "ce", "-m", "acc"])
    page = Path(tempfile.gettempdir()) / "streammetric-bench-report.html"
    commands = {
        "eval -m ce -m acc": plain,
        "  --conventions all": [*plain, "--conventions", "all"],
        "  --report FILE": [*plain, "--report", str(page)],
    }
    medians = alternated(commands, runs)
    base = medians["eval -m ce -m acc"]
    return [(name, medians[name], medians[name] / base) for name in commands]


def eval_args(path: Path, metrics: list[str], entry: str = "streammetric") -> list[str]:
    """``python -m streammetric eval PATH METRICS``: the command's entry point (``entry``: a
    revision before it had one runs as ``streammetric.cli``)."""
    return [
        PY,
        "-m",
        entry,
        "eval",
        str(path),
        *metrics,
        "--format",
        "json",
        "--no-progress",
    ]


def bench_eval(path: Path, rows: int, runs: int) -> list[tuple[str, float, float]]:
    commands = {name: [PY, "-c", code, str(path)] for name, code in DECODERS.items()}
    commands["eval -m ce"] = eval_args(path, ["-m", "ce"])
    commands["eval, five metrics"] = eval_args(path, FIVE)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for args in commands.values():  # warm the page cache and imports once
        run_process(args)
    order = list(commands)
    for round_ in range(runs):  # every command once per round, in a new order each round:
        random.Random(round_).shuffle(order)  # a fixed order favours some over others
        for name in order:
            times[name].append(run_process(commands[name])[0])
    medians = {name: statistics.median(t) for name, t in times.items()}
    fastest_decode = min(medians[name] for name in DECODERS)
    return [(name, rows / medians[name], fastest_decode / medians[name]) for name in commands]


def bench_rss(directory: Path, runs: int) -> list[tuple[str, float]]:
    out = []
    for rows in (1_000_000, 6_000_000):
        path = make_file(directory / f"rss_{rows}.parquet", rows, seed=1)
        peaks = [run_process(eval_args(path, FIVE))[1] for _ in range(max(1, runs // 2))]
        out.append((f"{rows:,} rows", statistics.median(peaks) / 2**20))
    return out


PEER_VENVS = {
    "venv-peers": ["torch==2.13.0", "torchmetrics", "keras>=3", "jax", "scikit-learn"],
    "venv-mxnet": ["numpy==1.23.5", "mxnet==1.9.1"],
}


def setup_peers(root: Path) -> None:
    for name, packages in PEER_VENVS.items():
        venv = root / name
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True
        )


MXNET_CE, MXNET_ACC = "MXNet 1.9.1 mx.metric.CrossEntropy", "MXNet 1.9.1 mx.metric.Accuracy"
#: update() goals against MXNet 1.9.1 (calls per second, ratio): at least this at each batch size
UPDATE_GOALS = {"64": 2.0, "65536": 1.2}


def bench_update(
    root: Path,
    rounds: int = 3,
    mxnet_python: str | None = None,
    base: str | None = None,
    rows: int | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Each interpreter in turn, ``rounds`` times alternated; the median of each figure. With
    ``base`` (a revision), that revision's package is built in a temporary directory and timed
    in the same rounds (its rows named "... (base)"). ``rows``: bench_peers.py's data (default
    2**20 rows)."""
    script = [str(Path(__file__).with_name("bench_peers.py"))]
    if rows is not None:
        script += ["--rows", str(rows)]
    mxnet_python = mxnet_python or str(root / "venv-mxnet" / "bin" / "python")
    peers_python = str(root / "venv-peers" / "bin" / "python")
    runs: list[tuple[list[str], dict[str, str] | None, str | None]] = [
        ([PY, *script, "--only", "numpy,streammetric"], None, None),
        ([peers_python, *script, "--only", "torch,Keras,scikit"], None, None),
        ([mxnet_python, *script, "--only", "MXNet"], None, None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if base is not None:
            from eval_ab import package  # builds a revision's package (imports this module)

            directory = package(base, Path(tmp) / "base")
            only = ["--only", "streammetric", "--label", " (base)"]
            base_env = {**os.environ, "PYTHONPATH": str(directory)}
            runs.insert(1, ([PY, *script, *only], base_env, str(directory)))
        samples: dict[str, dict[str, list[dict[str, float]]]] = {}
        for _ in range(rounds):
            for args, env, cwd in runs:
                if not Path(args[0]).exists():
                    continue
                out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
                if out.returncode != 0 or not out.stdout.strip():
                    continue
                for name, sizes in json.loads(out.stdout.strip().splitlines()[-1]).items():
                    for size, row in sizes.items():
                        samples.setdefault(name, {}).setdefault(size, []).append(row)
    return {
        name: {
            size: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            for size, rows in sizes.items()
        }
        for name, sizes in samples.items()
    }


def print_update(table: dict[str, dict[str, dict[str, float]]]) -> None:
    """The update() table: per call and per row, calls per second, and the calls per second
    against MXNet's same metric (CrossEntropy; Accuracy for accuracy), with the goals."""
    print(
        f"{'library':52s} {'batch':>6s} {'ns/row':>8s} {'us/call':>9s} {'calls/s':>10s}"
        f" {'x MXNet':>8s} {'goal':>9s}"
    )
    for name, sizes in table.items():
        peer = table.get(MXNET_ACC if "Accuracy" in name else MXNET_CE)
        for size, row in sizes.items():
            versus, goal = "       -", ""
            if peer and size in peer:
                ratio = peer[size]["us_per_call"] / row["us_per_call"]
                versus = f"{ratio:8.2f}"
                wanted = UPDATE_GOALS.get(size)
                if name.startswith("streammetric") and "(base)" not in name and wanted:
                    goal = f">={wanted:g} " + ("met" if ratio >= wanted else "NOT")
            print(
                f"{name:52s} {size:>6s} {row['ns_per_row']:8.1f} {row['us_per_call']:9.2f}"
                f" {1e6 / row['us_per_call']:10,.0f} {versus} {goal:>9s}"
            )
    print(
        "(x MXNet: calls per second relative to MXNet 1.9.1's CrossEntropy, or Accuracy for"
        " accuracy; above 1 is faster)"
    )


def bench_dask(directory: Path) -> dict[int, float]:
    from streammetric.engine.dask import bench_dask as run

    paths = [
        str(make_file(directory / f"dask_{i}.parquet", 1_000_000, seed=10 + i)) for i in range(4)
    ]
    return run(paths, ["ce", "acc"], workers=(1, 2))


def slices(path: Path, group: int, size: int = 32768) -> Any:
    """The label and probs columns of one row group in slices of ``size`` rows (eval reads
    32k-row slices)."""
    reader = pq.ParquetFile(path, pre_buffer=False)
    return reader.iter_batches(
        size, row_groups=[group], columns=["label", "probs"], use_threads=False
    )


def bench_kernels(path: Path, reps: int = 20) -> list[tuple[str, str, float]]:
    """ns/row of each C kernel on one 32k-row slice, per instruction set (best of ``reps``), and
    of ``update`` (ce; five metrics) on each slice right after decoding it and on it again."""
    from streammetric import _kernels as kernels
    from streammetric.metrics.specs import build_metrics

    parquet = pq.ParquetFile(path, pre_buffer=False)
    first = next(parquet.iter_batches(32768, row_groups=[0], columns=["label", "probs"]))
    labels, probs = first.column(0).to_numpy(), first.column(1).values.to_numpy().reshape(-1, 10)
    n = len(labels)
    picked, ranks, logs = np.empty(n), np.empty((n, 2), dtype=np.int64), np.empty(n)
    losses = -np.log(probs[:, 0].astype(np.float64))
    shifted = -losses  # log-probabilities: the arguments of a log-softmax's exp
    scan = (probs, labels, picked, None, 3e-4, 1e-3, 1e-12)

    def best(call: Any) -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return min(times) / n * 1e9

    out = []
    previous = kernels.isa()
    for isa in kernels.isas():
        kernels.use_isa(isa)
        out += [
            (isa, "sparse_scan", best(lambda: kernels.sparse_scan(*scan))),
            (isa, "sparse_scan with ranks", best(lambda: kernels.sparse_scan(*scan, ranks))),
            (isa, "class_ranks", best(lambda: kernels.class_ranks(probs, labels, ranks))),
            (isa, "exact_sum (per value)", best(lambda: kernels.exact_sum(losses))),
            (isa, "-log (per value)", best(lambda: kernels.log(picked, logs, True))),
            (isa, "exp (per value)", best(lambda: kernels.exp(shifted, logs))),
            (isa, "log1p (per value)", best(lambda: kernels.log1p(picked, logs))),
        ]
    kernels.use_isa(previous)
    out += [
        (
            "numpy",
            "-log (per value)",
            best(lambda: np.negative(np.log(picked, out=logs), out=logs)),
        ),
        ("numpy", "exp (per value)", best(lambda: np.exp(shifted, out=logs))),
        ("numpy", "log1p (per value)", best(lambda: np.log1p(picked, out=logs))),
    ]
    from streammetric.io import plan, resolve_units
    from streammetric.io.reader import _make_batch

    units = plan([str(path)])
    resolved = resolve_units(units)
    assert resolved is not None
    for name, specs in (("ce", ["ce"]), ("five metrics", FIVE[1::2])):
        metrics = build_metrics(specs, {})
        decode = convert = convert_again = fresh = again = 0.0
        rows = 0
        for unit in units:  # as the engine reads (wall clock)
            batches = slices(path, unit.index or 0)
            while True:
                start = time.perf_counter()
                batch = next(batches, None)
                decoded = time.perf_counter()
                if batch is None:
                    break
                arrays = _make_batch(batch, unit, resolved, row_offset=0, on_invalid="raise")
                converted = time.perf_counter()
                _make_batch(batch, unit, resolved, row_offset=0, on_invalid="raise")
                start_update = time.perf_counter()
                metrics.update(arrays.labels, arrays.preds)
                middle = time.perf_counter()
                metrics.update(arrays.labels, arrays.preds)
                decode += decoded - start
                convert += converted - decoded
                convert_again += start_update - converted
                fresh, again = fresh + middle - start_update, again + time.perf_counter() - middle
                rows += batch.num_rows
        out += [
            ("-", f"pyarrow decode ({name} pass)", decode / rows * 1e9),
            ("-", "to NumPy (engine), just decoded", convert / rows * 1e9),
            ("-", "to NumPy (engine), again", convert_again / rows * 1e9),
            (previous, f"update, {name}, just decoded", fresh / rows * 1e9),
            (previous, f"update, {name}, again", again / rows * 1e9),
        ]
    return out


def bench_pipeline(path: Path, runs: int) -> list[tuple[str, float]]:
    """Where eval's time goes, in this process, two threads: pyarrow alone (32k- and 8k-row
    slices), pyarrow with only the C kernels and the log on each slice (no engine: the floor of
    ``-m ce``), and the local engine with less and less of each batch's update left out (ms,
    median of ``runs`` rounds in shuffled orders)."""
    from concurrent.futures import ThreadPoolExecutor

    from streammetric import _kernels as kernels
    from streammetric.accumulate import exact_sum_units
    from streammetric.engine import local

    groups = pq.ParquetFile(path).metadata.num_row_groups

    def on_threads(read: Callable[[int], Any]) -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(read, range(groups)))

    def decode(size: int) -> None:
        on_threads(lambda group: sum(batch.num_rows for batch in slices(path, group, size)))

    def kernels_only() -> None:
        """What ``-m ce`` computes per slice, with as little Python as NumPy views allow."""

        def read(group: int) -> int:
            picked, total = np.empty(32768), 0
            for batch in slices(path, group):
                rows = batch.num_rows
                labels = np.frombuffer(batch.column(0).buffers()[1], np.int64, rows)
                flat = batch.column(1).values
                probs = np.frombuffer(flat.buffers()[1], np.float32, rows * CLASSES)
                losses = picked[:rows]
                kernels.sparse_scan(  # -log p[y] into losses, as the clean pass takes it
                    probs.reshape(rows, CLASSES), labels, losses, None, 3e-4, 0.1, 1e-12, None, True
                )
                total += exact_sum_units(losses)
            return total

        on_threads(read)

    def engine(metrics: list[str]) -> None:
        local.evaluate(path, metrics, threads=2)

    steps: dict[str, Callable[[], None]] = {
        "pyarrow alone": functools.partial(decode, 32768),
        "pyarrow alone, 8k-row slices": functools.partial(decode, 8192),
        "pyarrow + C kernels and log only": kernels_only,
        "eval -m ce": functools.partial(engine, ["ce"]),
        "eval, five metrics": functools.partial(engine, FIVE[1::2]),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for round_ in range(runs):
        random.Random(round_).shuffle(order)
        for name in order:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return [(name, statistics.median(t) * 1000) for name, t in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--only", default="eval,groups,ci,report,compare,rss,update,dask,kernels,pipeline"
    )
    parser.add_argument("--setup-peers", action="store_true", help="create the peers' venvs first")
    parser.add_argument(
        "--mxnet-python",
        help="the interpreter with MXNet 1.9.1 for the update section "
        "(default: .bench/venv-mxnet/bin/python)",
    )
    parser.add_argument(
        "--update-rounds", type=int, default=3, help="alternated rounds of the update section"
    )
    parser.add_argument(
        "--update-base", help="a revision whose update() is timed in the same rounds (before/after)"
    )
    parser.add_argument("--update-rows", type=int, help="rows of the update section's data")
    args = parser.parse_args()
    directory = data_directory()
    peers_root = Path(__file__).resolve().parents[1] / ".bench"
    parts = set(args.only.split(","))
    if args.setup_peers:
        setup_peers(peers_root)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, pyarrow {pa.__version__}, numpy {np.__version__}"
    )
    if "eval" in parts:
        path = make_file(directory / f"eval_{args.rows}.parquet", args.rows)
        print(
            f"\n## eval throughput: {args.rows:,} rows x {CLASSES} float32, median of {args.runs} rounds, shuffled order"
        )
        print(f"{'command':34s} {'rows/s':>14s} {'vs fastest decode':>18s}")
        for name, rate, ratio in bench_eval(path, args.rows, args.runs):
            print(f"{name:34s} {rate:14,.0f} {ratio:18.2f}")
    if "groups" in parts:
        rows = min(args.rows, 4_000_000)
        path = make_grouped_file(directory / f"grouped_{rows}.parquet", rows)
        print(
            f"\n## eval -m ce -m acc --by COL: {rows:,} rows x {CLASSES} float32, median of "
            f"{args.runs} rounds, shuffled order (goal vs no --by: >= 0.8 at 10 groups, >= 0.7 "
            "at 1,000, >= 0.5 at 100,000)"
        )
        print(
            f"{'command':34s} {'rows/s':>14s} {'vs no --by':>11s}   "
            "each round's ratio: lowest, median, highest; rounds at the goal"
        )
        for name, rate, ratio, paired in bench_groups(path, rows, args.runs):
            goal = group_goal(name)
            spread = ""
            if goal is not None:
                met = sum(r >= goal for r in paired)
                spread = (
                    f"   {min(paired):.2f} {statistics.median(paired):.2f} {max(paired):.2f}; "
                    f"{met} of {len(paired)} >= {goal}"
                )
            print(f"{name:34s} {rate:14,.0f} {ratio:11.2f}{spread}")
    if "ci" in parts:
        path = make_file(directory / f"eval_{args.rows}.parquet", args.rows)
        print(
            f"\n## intervals: {args.rows:,} rows x {CLASSES} float32, median of {args.runs} "
            "rounds, shuffled order (goal: <= 1.5x the time without intervals)"
        )
        print(f"{'command':34s} {'seconds':>10s} {'time ratio':>11s}")
        for name, seconds, ratio in bench_ci(path, args.runs):
            print(f"{name:34s} {seconds:10.3f} {ratio:11.2f}")
    if "report" in parts:
        path = make_file(directory / f"eval_{args.rows}.parquet", args.rows)
        print(
            f"\n## conventions and the report: {args.rows:,} rows x {CLASSES} float32, median of "
            f"{args.runs} rounds, shuffled order"
        )
        print(f"{'command':34s} {'seconds':>10s} {'time ratio':>11s}")
        for name, seconds, ratio in bench_report(path, args.runs):
            print(f"{name:34s} {seconds:10.3f} {ratio:11.2f}")
    if "compare" in parts:
        print(
            f"\n## compare: two {args.rows:,}-row x {CLASSES} float32 files paired by an id "
            f"column, median of {args.runs} rounds, shuffled order (goal: <= 2.5x one eval)"
        )
        print(f"{'command':34s} {'seconds':>10s} {'vs eval':>8s}")
        for name, seconds, ratio in bench_compare(directory, args.rows, args.runs):
            print(f"{name:34s} {seconds:10.3f} {ratio:8.2f}")
    if "kernels" in parts:
        rows = min(args.rows, 2_000_000)
        path = make_file(directory / f"eval_{rows}.parquet", rows)
        print("\n## C kernels and update(), one thread, 10-class float32, 32k-row slices")
        print(f"{'isa':9s} {'what':36s} {'ns/row':>8s}")
        for isa, name, ns in bench_kernels(path):
            print(f"{isa:9s} {name:36s} {ns:8.2f}")
    if "pipeline" in parts:
        path = make_file(directory / f"eval_{args.rows}.parquet", args.rows)
        print(
            f"\n## where eval's time goes: {args.rows:,} rows, in one process, 2 threads, "
            f"median of {args.runs} rounds"
        )
        steps = bench_pipeline(path, args.runs)
        print(f"{'step':34s} {'ms':>8s} {'vs pyarrow alone':>17s}")
        for step, ms in steps:
            print(f"{step:34s} {ms:8.1f} {steps[0][1] / ms:17.2f}")
    if "rss" in parts:
        print("\n## peak RSS of eval with five metrics (row groups of 128k rows)")
        results = bench_rss(directory, args.runs)
        for name, mib in results:
            print(f"{name:28s} {mib:10.1f} MiB")
        print(f"{'6M / 1M':28s} {results[1][1] / results[0][1]:10.2f}")
    if "update" in parts:
        print(
            f"\n## update(): 10-class float32 probabilities, int64 labels, median of "
            f"{args.update_rounds} alternated rounds (goal vs MXNet 1.9.1: >= 2x the calls/s at 64 "
            "rows, >= 1.2x at 65,536)"
        )
        table = bench_update(
            peers_root, args.update_rounds, args.mxnet_python, args.update_base, args.update_rows
        )
        print_update(table)
    if "dask" in parts:
        print("\n## Dask engine, 4 files x 1M rows, ce + acc (cluster start excluded)")
        for workers, seconds in bench_dask(directory).items():
            print(
                f"{workers} worker(s)                  {seconds:8.3f} s  {4e6 / seconds:12,.0f} rows/s"
            )


if __name__ == "__main__":
    main()
