"""`streammetric eval` of two revisions side by side, as whole processes: is a change faster?

    .venv/bin/python scripts/eval_ab.py                              # the working tree against HEAD
    .venv/bin/python scripts/eval_ab.py --base c993f20 --rounds 25 -m ce -m acc
    .venv/bin/python scripts/eval_ab.py --base e7e2dfc -m ce -m acc --by i100k  # groups
    .venv/bin/python scripts/eval_ab.py --base c8c58a6 --tree 237423f --by s100k  # a commit

Copies each revision's package into a temporary directory (`git archive`; the working tree as
it is), builds its C extensions (_kernels.c, and _text.c where there is one) with the flags
setuptools uses (kernel_ab.py's compile_kernels: a source already built is taken from its
cache) and compiles its bytecode, then times
`python -m streammetric eval` (`streammetric.cli` for a revision without the entry point
`streammetric/__main__.py`) of scripts/bench.py's file (with ``--by COL``: its grouped file of
4M rows, or --rows, and a column of `bench.GROUP_COLUMNS`) with each copy, alternated in
shuffled rounds with pyarrow's fastest decoder there (8k-row slices) and, as a control, the base
copy a second time ("base again"): medians, each one's ratio to the decoder, and the median of
the paired ratios tree / base with its 95% confidence interval (distribution-free: order
statistics of the rounds' ratios). The control's own ratio, base again / base, is what the same
code measures against itself in these rounds: a tree / base ratio is a difference only where
its interval clears 1 by more than the control's spread. Every process runs in the
temporary directory with PYTHONPATH at its copy: run in the repository, Python would import the
working tree's package whatever PYTHONPATH says (the current directory comes first on sys.path
for `-m` and `-c`). Both copies must print the same JSON, else the script stops.
"""

from __future__ import annotations

import argparse
import math
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # the benchmark file, its decoders and the environment of every process
from kernel_ab import CFLAGS_HELP, compile_kernels

ROOT = Path(__file__).resolve().parents[1]


def package(revision: str | None, directory: Path, cflags: Sequence[str] = ()) -> Path:
    """`revision`'s streammetric (None: the working tree) in `directory`, built and compiled."""
    directory.mkdir()
    if revision is None:
        shutil.copytree(
            ROOT / "streammetric",
            directory / "streammetric",
            ignore=shutil.ignore_patterns("__pycache__", "*.so"),
        )
    else:
        archive = subprocess.run(
            ["git", "archive", revision, "streammetric"], cwd=ROOT, capture_output=True, check=True
        )
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(directory, filter="data")
    source = directory / "streammetric"
    for c_source in sorted(source.glob("_*.c")):  # _kernels.c, and _text.c since it came
        library = source / f"{c_source.stem}{sysconfig.get_config_var('EXT_SUFFIX')}"
        compile_kernels(c_source, library, cflags)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(source)], check=True)
    return directory


def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the revision to compare with")
    parser.add_argument(
        "--tree", help="the revision to time against it (default: the working tree)"
    )
    parser.add_argument("--rows", type=int, help="default: 8M, 4M with --by")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("-m", "--metric", action="append", help="eval's -m (default: ce)")
    parser.add_argument("--by", choices=sorted(bench.GROUP_COLUMNS), help="eval's --by")
    parser.add_argument("--cflags", default="", help=CFLAGS_HELP)
    parser.add_argument(
        "--eval-args",
        default="",
        help="more eval arguments, e.g. '--max-groups 100000 --textfile x.prom' (relative "
        "paths are in a temporary folder)",
    )
    args = parser.parse_args()
    if args.by:
        args.rows = args.rows or 4_000_000
        path = bench.make_grouped_file(
            bench.data_directory() / f"grouped_{args.rows}.parquet", args.rows
        )
    else:
        args.rows = args.rows or 8_000_000
        path = bench.make_file(bench.data_directory() / f"eval_{args.rows}.parquet", args.rows)
    metrics = [arg for metric in args.metric or ["ce"] for arg in ("-m", metric)]
    if args.by:
        metrics += ["--by", args.by]
    metrics += shlex.split(args.eval_args)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cflags = shlex.split(args.cflags)
        copies = {
            "base": package(args.base, work / "base", cflags),
            "tree": package(args.tree, work / "tree", cflags),
        }
        decoder = [bench.PY, "-c", bench.DECODERS["row-group slices of 8k x threads"], str(path)]
        commands = {"decoder (8k slices)": (decoder, bench.ENV)}
        for name, copy in copies.items():
            env = {**bench.ENV, "PYTHONPATH": str(copy)}
            entry = "streammetric"  # the entry point; before it was there, the cli module
            if not (copy / "streammetric" / "__main__.py").exists():
                entry = "streammetric.cli"
            commands[name] = (bench.eval_args(path, metrics, entry), env)
        commands["base again"] = commands["base"]  # the control: the same code, timed again
        answers = {name: run(*commands[name], work)[1] for name in copies}  # warm, and compare
        if answers["base"] != answers["tree"]:
            raise SystemExit(f"the two revisions answer differently:\n{answers}")
        run(*commands["decoder (8k slices)"], work)
        times: dict[str, list[float]] = {name: [] for name in commands}
        order = list(commands)
        for round_ in range(args.rounds):
            random.Random(round_).shuffle(order)
            for name in order:
                times[name].append(run(*commands[name], work)[0])
    medians = {name: statistics.median(t) for name, t in times.items()}
    decode = medians["decoder (8k slices)"]
    tree = f"tree {args.tree}" if args.tree else "the working tree"
    print(
        f"{args.rows:,} rows, {' '.join(metrics)}, base {args.base}, {tree}, {args.rounds} rounds"
    )
    print(f"{'command':22s} {'ms':>8s} {'vs decoder':>11s}")
    for name, seconds in medians.items():
        print(f"{name:22s} {seconds * 1000:8.1f} {decode / seconds:11.3f}")
    for name, label in (("tree", "tree / base"), ("base again", "control: base again / base")):
        paired = [t / b for t, b in zip(times[name], times["base"], strict=True)]
        low, high = median_interval(paired)
        faster = sum(ratio < 1 for ratio in paired)
        print(
            f"{label}, paired by round: median {statistics.median(paired):.3f}, 95% interval "
            f"{low:.3f}-{high:.3f} (faster in {faster} of {len(paired)})"
        )


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of ``values``: the k-th lowest and k-th
    highest, k the largest rank whose binomial tail (n values, p = 1/2) is at most the error
    on each side (too few values for one: the lowest and highest)."""
    ordered, n = sorted(values), len(values)
    tail, k, below = (1 - confidence) / 2, 0, 0.0
    while k < n // 2:
        below += math.comb(n, k) / 2**n  # P(fewer than k + 1 values below the median)
        if below > tail:
            break
        k += 1
    k = max(k, 1)
    return ordered[k - 1], ordered[n - k]


if __name__ == "__main__":
    main()
