"""Write the sample prediction dumps the README's first command evaluates.

Deterministic (seeded), realistic-looking 10-class predictions from three "models" of different
quality, as a hive-partitioned multi-file dataset:

    sample_data/probs/model=<name>/part-<i>.parquet    label:int64, probs:fixed_size_list<float32>[10]
    sample_data/logits/model=<name>/part-<i>.arrow     label:int64, logits:list<float32> (Arrow IPC)
    sample_data/compare/<name>.parquet                 id:int64, label:int64, probs: one evaluation
                                                       set scored by a baseline and two candidates
                                                       (rows in another order in each file)

Some rows are hard cases on purpose (probability exactly 0 for the true class, rows that do
not sum to 1 in float32), so that the framework conventions differ visibly.

Usage: python scripts/make_sample_data.py [OUT_DIR] [--rows-per-file N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

MODELS = {"baseline": 1.0, "resnet": 2.5, "vit": 3.5}  # how strongly the true class is favoured
CLASSES = 10
FILES_PER_MODEL = 3


def make_logits(
    rng: np.random.Generator, rows: int, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLASSES, rows)
    logits = rng.normal(scale=1.5, size=(rows, CLASSES)).astype(np.float32)
    logits[np.arange(rows), labels] += np.float32(strength)
    return labels, logits


def softmax32(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float32)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def write(out: Path, rows_per_file: int, seed: int = 20261122) -> list[Path]:
    rng = np.random.default_rng(seed)
    written = []
    for model, strength in MODELS.items():
        for part in range(FILES_PER_MODEL):
            labels, logits = make_logits(rng, rows_per_file, strength)
            probs = softmax32(logits)
            hard = rng.choice(rows_per_file, size=max(1, rows_per_file // 2000), replace=False)
            probs[hard] = 0.0  # a confidently wrong prediction: p(true class) == 0
            probs[hard, (labels[hard] + 1) % CLASSES] = 1.0
            flat = pa.array(probs.reshape(-1), type=pa.float32())
            table = pa.table(
                {
                    "label": pa.array(labels),
                    "probs": pa.FixedSizeListArray.from_arrays(flat, CLASSES),
                }
            )
            path = out / "probs" / f"model={model}" / f"part-{part}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, row_group_size=max(1, rows_per_file // 4))
            written.append(path)

            offsets = pa.array(np.arange(0, (rows_per_file + 1) * CLASSES, CLASSES, dtype=np.int32))
            logit_list = pa.ListArray.from_arrays(
                offsets, pa.array(logits.reshape(-1), type=pa.float32())
            )
            ipc = out / "logits" / f"model={model}" / f"part-{part}.arrow"
            ipc.parent.mkdir(parents=True, exist_ok=True)
            feather.write_feather(
                pa.table({"label": pa.array(labels), "logits": logit_list}),
                ipc,
                compression="uncompressed",
                chunksize=max(1, rows_per_file // 4),
            )
            written.append(ipc)
    return written


#: the comparison's candidates: how much more each favours the true class than the baseline
CANDIDATES = {"candidate_small": 0.06, "candidate_large": 0.6}
COMPARE_ROWS = 3_000


def write_comparison(out: Path, seed: int = 20261206) -> list[Path]:
    """One evaluation set of `COMPARE_ROWS` rows scored by a baseline and by candidates that
    share most of its errors (their logits are the baseline's plus a little noise and a little
    more weight on the true class): a paired comparison, with an ``id`` per row, each file's
    rows in its own order."""
    rng = np.random.default_rng(seed)
    labels, logits = make_logits(rng, COMPARE_ROWS, 1.5)
    ids = np.arange(100_000, 100_000 + COMPARE_ROWS)
    scores = {"baseline": logits}
    for name, gain in CANDIDATES.items():
        changed = logits + rng.normal(scale=0.5, size=logits.shape).astype(np.float32)
        changed[np.arange(COMPARE_ROWS), labels] += np.float32(gain)
        scores[name] = changed
    written = []
    for name, values in scores.items():
        order = rng.permutation(COMPARE_ROWS)
        flat = pa.array(softmax32(values[order]).reshape(-1), type=pa.float32())
        table = pa.table(
            {
                "id": pa.array(ids[order]),
                "label": pa.array(labels[order]),
                "probs": pa.FixedSizeListArray.from_arrays(flat, CLASSES),
            }
        )
        path = out / "compare" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, row_group_size=1000)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="sample_data", type=Path)
    parser.add_argument("--rows-per-file", type=int, default=20_000)
    args = parser.parse_args()
    paths = write(args.out, args.rows_per_file)
    write_comparison(args.out)
    print(
        f"wrote {len(paths)} files, {len(paths) // 2 * args.rows_per_file:,} rows per dataset, under {args.out}/"
    )


if __name__ == "__main__":
    main()
