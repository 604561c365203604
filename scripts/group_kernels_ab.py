"""The C kernels of `eval --by` (group keys, sums and counts per group) of two revisions side
by side, in one process: is a change to them faster?

    .venv/bin/python scripts/group_kernels_ab.py                  # the working tree against HEAD
    .venv/bin/python scripts/group_kernels_ab.py --base 963268f --rounds 9

Builds each revision's kernels as scripts/kernel_ab.py does (one library and module each) and
times, on scripts/bench.py's grouped file (4M rows, 100,000 groups), the kernels' work for the
whole file, each kernel of the two builds one after the other, in a new order each round:

- ``KeyCodes.add_strings`` of the 100,000-string column and ``add_ints`` of the 100,000-int
  column, in 13,107-row calls into one table;
- ``GroupSums.add`` of 4M ``-log(u)`` values into their rows' 100,000 groups, in the same calls,
  and ``GroupSums.ratios`` of those groups;
- ``group_counts`` of every row into five arrays (as ``-m ce -m acc`` counts them): one call per
  array, and one call for all five where the build takes a tuple;
- ``KeyCodes.values`` of every string key in a shuffled order, and ``strings_of`` where the build
  has it.

A kernel one build lacks is timed in the other only. Medians in ms, and tree / base (below 1:
the tree is faster). Both builds must give the same answers, else the script stops. Times on
this shared machine move from run to run; the ratio measured side by side moves less.
"""

from __future__ import annotations

import argparse
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # the grouped benchmark file
from kernel_ab import CFLAGS_HELP, build

CALL_ROWS = 13_107  # rows per call: the engine's slice of 10 float32 scores


def columns(rows: int) -> tuple[list[Any], list[np.ndarray], np.ndarray]:
    """The grouped file's s100k and i100k columns in calls of `CALL_ROWS` rows (the strings as
    their offsets and bytes), and -log(u) values for them."""
    path = bench.make_grouped_file(bench.data_directory() / f"grouped_{rows}.parquet", rows)
    table = pq.read_table(path, columns=["s100k", "i100k"])
    strings, ints = [], []
    for start in range(0, table.num_rows, CALL_ROWS):
        piece = table.slice(start, CALL_ROWS)
        words = piece.column("s100k").combine_chunks()
        _, offsets, data = words.buffers()
        where = np.frombuffer(offsets, np.int32, len(words) + 1, words.offset * 4).copy()
        strings.append((where, data))
        ints.append(piece.column("i100k").to_numpy())
    values = -np.log(np.random.default_rng(1).uniform(0.01, 1.0, table.num_rows))
    return strings, ints, values


class Work:
    """One build's timed calls, and their answers."""

    def __init__(self, kernels: Any, strings: list[Any], ints: list[np.ndarray], values: Any):
        self.k, self.strings, self.ints, self.values = kernels, strings, ints, values
        self.answers: dict[str, Any] = {}
        self.calls: dict[str, Callable[[], Any]] = {
            "KeyCodes.add_strings": self.add_strings,
            "KeyCodes.add_ints": self.add_ints,
            "GroupSums.add": self.sums,
            "GroupSums.ratios": self.ratios,
            "group_counts, 5 calls": self.counts_apart,
            "KeyCodes.values": self.key_values,
        }
        if self._counts_together_works():
            self.calls["group_counts, 1 call of 5"] = self.counts_together
        if hasattr(kernels.KeyCodes, "strings_of"):
            self.calls["KeyCodes.strings_of"] = self.key_strings

    def add_strings(self) -> Any:
        table = self.k.KeyCodes()
        codes = [np.empty(len(o) - 1, np.int64) for o, _ in self.strings]
        for (offsets, data), out in zip(self.strings, codes, strict=True):
            table.add_strings(offsets, data, out)
        self.table, self.codes = table, codes
        return np.concatenate(codes).tobytes()

    def add_ints(self) -> Any:
        table = self.k.KeyCodes()
        codes = [np.empty(len(v), np.int64) for v in self.ints]
        for values, out in zip(self.ints, codes, strict=True):
            table.add_ints(values, out)
        return np.concatenate(codes).tobytes()

    def _codes(self) -> list[np.ndarray]:
        if not hasattr(self, "codes"):
            self.add_strings()
        return self.codes

    def sums(self) -> Any:
        sums, at = self.k.GroupSums(), 0
        for codes in self._codes():
            sums.add(self.values[at : at + len(codes)], codes)
            at += len(codes)
        self.group_sums = sums
        return [sums.get(g) for g in range(0, sums.size, 997)]

    def ratios(self) -> Any:
        if not hasattr(self, "group_sums"):
            self.sums()
        if not hasattr(self, "counts"):
            self.counts = np.bincount(np.concatenate(self._codes())).astype(np.int64)
        return self.group_sums.ratios(self.counts)

    def _outs(self) -> tuple[np.ndarray, ...]:
        size = int(max(c.max() for c in self._codes())) + 1
        return tuple(np.zeros(size, np.int64) for _ in range(5))

    def counts_apart(self) -> Any:
        outs = self._outs()
        for codes in self._codes():
            for out in outs:
                assert self.k.group_counts(codes, None, out)
        return [out.tobytes() for out in outs]

    def _counts_together_works(self) -> bool:
        probe = (np.zeros(1, np.int64), np.zeros(1, np.int64))
        try:
            return bool(self.k.group_counts(np.zeros(1, np.int64), None, probe))
        except TypeError:
            return False

    def counts_together(self) -> Any:
        outs = self._outs()
        for codes in self._codes():
            assert self.k.group_counts(codes, None, outs)
        return [out.tobytes() for out in outs]

    def _order(self) -> np.ndarray:
        if not hasattr(self, "table"):
            self.add_strings()
        order = np.arange(self.table.size, dtype=np.int64)
        np.random.default_rng(2).shuffle(order)
        return order

    def key_values(self) -> Any:
        return self.table.values(self._order()) if hasattr(self.table, "values") else None

    def key_strings(self) -> Any:
        return self.table.strings_of(self._order())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the revision to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=4_000_000, help="rows of the grouped file")
    parser.add_argument("--cflags", default="", help=CFLAGS_HELP)
    args = parser.parse_args()
    strings, ints, values = columns(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        cflags = shlex.split(args.cflags)
        builds = {
            "base": build("base", args.base, Path(tmp), cflags),
            "tree": build("tree", None, Path(tmp), cflags),
        }
        work = {name: Work(kernels, strings, ints, values) for name, kernels in builds.items()}
        if not hasattr(builds["base"].KeyCodes, "values"):
            work["base"].calls.pop("KeyCodes.values")
        for name in work["tree"].calls:
            if name in work["base"].calls:
                base, tree = work["base"].calls[name](), work["tree"].calls[name]()
                if base != tree:
                    raise SystemExit(f"{name}: the two builds answer differently")
        times: dict[str, dict[str, list[float]]] = {name: {} for name in work}
        kernels = list(dict.fromkeys([*work["base"].calls, *work["tree"].calls]))
        sides = list(work)
        for round_ in range(args.rounds):
            for name in kernels:  # each kernel of both builds, one after the other
                random.Random(f"{round_} {name}").shuffle(sides)
                for side in sides:
                    call = work[side].calls.get(name)
                    if call is not None:
                        start = time.perf_counter()
                        call()
                        times[side].setdefault(name, []).append(time.perf_counter() - start)
    print(f"{args.rows:,} rows in {CALL_ROWS:,}-row calls, base {args.base}, {args.rounds} rounds")
    print(f"{'kernel':28s} {'base ms':>9s} {'tree ms':>9s} {'tree/base':>10s}")
    for name in dict.fromkeys([*times["base"], *times["tree"]]):
        base, tree = times["base"].get(name), times["tree"].get(name)
        b = statistics.median(base) * 1e3 if base else None
        t = statistics.median(tree) * 1e3 if tree else None
        ratio = f"{t / b:10.3f}" if b and t else f"{'':10s}"
        print(
            f"{name:28s} {'' if b is None else f'{b:9.1f}':>9s} "
            f"{'' if t is None else f'{t:9.1f}':>9s} {ratio}"
        )


if __name__ == "__main__":
    main()
