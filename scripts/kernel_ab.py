"""The C kernels of two revisions side by side, in one process: is a change to
streammetric/_kernels.c or _kernels_loops.h faster?

    .venv/bin/python scripts/kernel_ab.py              # the working tree against HEAD
    .venv/bin/python scripts/kernel_ab.py --base v0.1  # ... against another revision

Builds each revision's kernels (gcc, with the flags setuptools uses: Python's CFLAGS and
setup.py's) and loads each build under its own module name, then times `sparse_scan` (ce; with
the ranks of accuracy/top-k) and `exact_sum` with the two builds alternating: on each 32k-row
slice right after pyarrow decodes it, as the engine does (the builds take turns, slice by
slice), and warm (one slice, again and again). Medians, ns/row; a ratio below 1 means the
working tree is faster. Both builds must give the same answers, else
the script stops. On this shared machine, times move by up to a third from one run to the
next, but the two builds' ratio, measured side by side, moves by a few %.

A build is kept by what gcc compiles (the preprocessed source, every header it includes, the
command and gcc's version) in $STREAMMETRIC_KERNEL_CACHE (default .bench/kernels): the same
source is compiled once, for both sides when HEAD's C is the working tree's, and for
scripts/eval_ab.py too. Each side still loads its own copy of the library.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import functools
import hashlib
import importlib.util
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # the benchmark file, and how eval reads it (slices)

ROOT = Path(__file__).resolve().parents[1]
CFLAGS_HELP = (
    "compiler flags after setup.py's, for both builds (e.g. -O0: a quick check that the script "
    "works; the times then say nothing about the shipped build)"
)


def sources(revision: str | None) -> list[str]:
    """streammetric/_kernels.c and the headers beside it, in `revision` (None: the working
    tree): each revision builds with the headers it had."""
    if revision is None:
        names = [path.name for path in (ROOT / "streammetric").iterdir()]
    else:
        listed = subprocess.run(
            ["git", "ls-tree", "--name-only", revision, "streammetric/"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        names = [Path(line).name for line in listed.stdout.splitlines()]
    return [
        f"streammetric/{name}"
        for name in sorted(names)
        if name == "_kernels.c" or name.endswith(".h")
    ]


def setup_flags() -> list[str]:
    """The C compiler flags setup.py gives the extension (its `extra_compile_args`)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extra_compile_args":
            return list(ast.literal_eval(node.value))
    raise SystemExit("setup.py has no extra_compile_args")


def cache_directory() -> Path:
    """Where the built kernels are kept (see the module docstring)."""
    return Path(os.environ.get("STREAMMETRIC_KERNEL_CACHE", ROOT / ".bench" / "kernels"))


def compile_kernels(source: Path, library: Path, extra: Sequence[str] = ()) -> None:
    """gcc with the flags setuptools gives the extension (Python's CFLAGS, then setup.py's, then
    `extra`, e.g. --cflags=-O0): without Python's -fwrapv, a variant of the scan ran 1.8x
    slower than setuptools' build of the same source, so both are timed as installed.
    `source` (a _kernels.c, its
    headers beside it) into the extension `library`, a copy of the build kept in
    cache_directory() under the hash of the preprocessed source, the command and gcc's version
    (compiled there first if not yet: one process at a time, the others wait for its result).
    gcc runs in `source`'s directory on its name, so the preprocessed text does not depend on
    where the copy lies."""
    include = sysconfig.get_paths()["include"]
    python_flags = shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    command = ["gcc", *python_flags, *setup_flags(), *extra, "-shared", "-fPIC", f"-I{include}"]
    command.append(source.name)
    key = hashlib.sha256("\0".join(command).encode())
    # -fno-working-directory: with Python's -g, the preprocessed text would name the folder
    for probe in (["gcc", "--version"], [*command, "-E", "-fno-working-directory"]):
        key.update(subprocess.run(probe, cwd=source.parent, capture_output=True, check=True).stdout)
    cache = cache_directory()
    name = key.hexdigest()[:32]
    built = cache / f"{name}.so"
    if not built.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not built.exists():
                partial = cache / f"{name}.{os.getpid()}.tmp"
                subprocess.run([*command, "-o", str(partial)], cwd=source.parent, check=True)
                os.replace(partial, built)
    shutil.copyfile(built, library)


def build(name: str, revision: str | None, directory: Path, cflags: Sequence[str] = ()) -> Any:
    """The kernels of `revision` (None: the working tree) as module `name`._kernels, loaded
    from a library of its own in `directory`/`name` (two copies of one build are two modules)."""
    source = directory / name
    source.mkdir()
    for path in sources(revision):
        if revision is None:
            text = (ROOT / path).read_text()
        else:
            shown = subprocess.run(
                ["git", "show", f"{revision}:{path}"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            text = shown.stdout
        (source / Path(path).name).write_text(text)
    library = source / "_kernels.so"
    compile_kernels(source / "_kernels.c", library, cflags)
    # the init function is the last part's (PyInit__kernels): no need to rename it in the source
    spec = importlib.util.spec_from_file_location(f"{name}._kernels", library)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rank_columns(kernels: Any) -> int:
    """How many ranks per row a build writes: 2 since top-k breaks ties as scikit-learn (argmax's
    order and top-k's, beside each other), 1 before (argmax's order)."""
    probe = (np.ones((1, 2), np.float32), np.zeros(1, np.int64))
    return 2 if kernels.class_ranks(*probe, np.empty((1, 2), np.int64)) else 1


class Calls:
    """The timed calls of one build on one slice, and what they wrote."""

    def __init__(self, kernels: Any, labels: np.ndarray, probs: np.ndarray) -> None:
        n = len(labels)
        self.picked, self.ranks = np.empty(n), np.empty((n, _rank_columns(kernels)), np.int64)
        scan = (probs, labels, self.picked, None, 3.4e-4, 0.1, 1e-12)
        self.scans = {
            "sparse_scan": lambda: kernels.sparse_scan(*scan),
            "sparse_scan with ranks": lambda: kernels.sparse_scan(*scan, self.ranks),
        }
        self.probs = probs
        self.sums = {"exact_sum (per value)": lambda: kernels.exact_sum(self.losses)}

    @functools.cached_property
    def losses(self) -> np.ndarray:  # on first use: reading probs here would warm the slice
        return -np.log(self.probs[:, 0].astype(np.float64))

    def answers(self) -> list[Any]:
        """Every call's answer and the arrays the scans wrote."""
        out = [call() for call in self.scans.values()] + [call() for call in self.sums.values()]
        return [*out, self.picked.tobytes(), self.ranks[:, 0].tobytes()]  # argmax's order


def slices(path: Path, groups: int) -> Any:
    """The full 32k-row slices of the first `groups` row groups, as NumPy, just decoded."""
    for group in range(min(groups, pq.ParquetFile(path).metadata.num_row_groups)):
        for batch in bench.slices(path, group):
            if batch.num_rows == 32768:
                yield (
                    batch.column(0).to_numpy(),
                    batch.column(1).values.to_numpy().reshape(-1, bench.CLASSES),
                )


def timed(call: Any, rows: int) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) / rows * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", default="HEAD", help="the revision to compare with (default HEAD)"
    )
    parser.add_argument("--groups", type=int, default=61, help="row groups decoded per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8_000_000, help="rows of the benchmark file")
    parser.add_argument("--reps", type=int, default=200, help="warm calls per build")
    parser.add_argument("--cflags", default="", help=CFLAGS_HELP)
    args = parser.parse_args()
    path = bench.make_file(bench.data_directory() / f"eval_{args.rows}.parquet", args.rows)
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        builds = {
            "base": build("kernels_base", args.base, Path(tmp), shlex.split(args.cflags)),
            "tree": build("kernels_tree", None, Path(tmp), shlex.split(args.cflags)),
        }
        # just decoded: each slice times one (scan, build) pair, taking turns; then both builds
        # answer on it, and must agree
        turn = 0
        for _ in range(args.rounds):
            for labels, probs in slices(path, args.groups):
                first = Calls(builds["base"], labels, probs)  # views: touch no data
                pairs = [(what, name) for name in builds for what in first.scans]
                what, name = pairs[turn % len(pairs)]
                turn += 1
                mine = first if name == "base" else Calls(builds[name], labels, probs)
                times.setdefault((what, "just decoded", name), []).append(
                    timed(mine.scans[what], len(labels))
                )
                if first.answers() != Calls(builds["tree"], labels, probs).answers():
                    raise SystemExit("the two builds answer differently")
        labels, probs = next(slices(path, 1))
        each = {name: Calls(kernels, labels, probs) for name, kernels in builds.items()}
        for _ in range(args.reps):  # warm: one slice, again and again
            for name, mine in each.items():
                for what, call in {**mine.scans, **mine.sums}.items():
                    times.setdefault((what, "warm", name), []).append(timed(call, len(labels)))
    print(f"## C kernels, {args.base} (base) against the working tree (tree), ns/row, medians")
    print(f"{'what':28s} {'when':14s} {'base':>7s} {'tree':>7s} {'tree/base':>10s}")
    for what, when, name in times:
        if name == "base":
            base, tree = (statistics.median(times[what, when, n]) for n in ("base", "tree"))
            print(f"{what:28s} {when:14s} {base:7.2f} {tree:7.2f} {tree / base:10.2f}")


if __name__ == "__main__":
    main()
