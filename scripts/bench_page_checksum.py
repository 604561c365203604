"""What verifying Parquet page checksums costs ``eval -m ce``, measured side by side.

    .venv/bin/python scripts/bench_page_checksum.py [--rows 2000000] [--classes 10] [--runs 7]

Writes one float32 file with page checksums (row groups of 128k rows) and times
``streammetric.evaluate(path, "ce")`` in this process with verification on (what streammetric
does) and off (``pq.ParquetFile`` patched), alternating, one thread and all threads; prints the
median of each and the ratio on/off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import streammetric as sm


def _write(path: Path, rows: int, classes: int) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(rows, classes)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    flat = pa.array(probs.reshape(-1).astype(np.float32))
    table = pa.table(
        {
            "label": rng.integers(0, classes, rows),
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
        }
    )
    pq.write_table(table, path, row_group_size=128 * 1024, write_page_checksum=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = Path(os.environ.get("STREAMMETRIC_BENCH_DIR", "/tmp/streammetric-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checksummed-{args.rows}x{args.classes}.parquet"
    if not path.exists():
        _write(path, args.rows, args.classes)
    original = pq.ParquetFile

    def unverified(*positional: object, **options: object) -> pq.ParquetFile:
        options["page_checksum_verification"] = False
        return original(*positional, **options)

    for threads in (1, os.cpu_count() or 1):
        times: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.runs):
            for mode in ("on", "off"):
                patch = mock.patch.object(
                    pq, "ParquetFile", unverified if mode == "off" else original
                )
                with patch:
                    start = time.perf_counter()
                    sm.evaluate(path, "ce", threads=threads)
                    times[mode].append(time.perf_counter() - start)
        on, off = statistics.median(times["on"]), statistics.median(times["off"])
        print(
            f"{args.rows} rows x {args.classes} classes, {threads} thread(s): "
            f"verified {on:.3f} s, unverified {off:.3f} s, ratio {on / off:.3f}"
        )


if __name__ == "__main__":
    main()
