"""How closely the float32 conventions reproduce the frameworks, row by row.

For random class-index rows (probabilities and logits, float32) prints, per convention and
input, the share of per-row losses bit-identical to the framework's own, the share beyond
2e-7 relative, the largest relative and absolute difference, and the relative difference of
the means. Needs torch and keras (TensorFlow backend) installed; the README's paragraph on
float32 agreement quotes its output. Usage: ``python scripts/framework_agreement.py [ROWS]``.
"""

from __future__ import annotations

import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import keras
    import torch
    import torch.nn.functional as F

    from streammetric.functional.losses import cross_entropy

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((rows, 10)) * 3).astype(np.float32)
    probs = rng.dirichlet(np.ones(10), rows).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    cases = {
        "torch, logits": (
            F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), reduction="none"),
            cross_entropy(labels, logits, from_logits=True, convention="torch", reduction="none"),
        ),
        "keras, logits": (
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True),
            cross_entropy(labels, logits, from_logits=True, convention="keras", reduction="none"),
        ),
        "keras, probabilities": (
            keras.losses.sparse_categorical_crossentropy(labels, probs),
            cross_entropy(labels, probs, convention="keras", reduction="none"),
        ),
    }
    print(f"{rows} rows x 10 classes, float32")
    print("case                  bit-identical  beyond 2e-7  max relative  max absolute  means")
    for name, (theirs, ours) in cases.items():
        want = np.asarray(theirs, dtype=np.float64)
        got = np.asarray(ours, dtype=np.float64)
        absolute = np.abs(got - want)
        relative = absolute / np.abs(want)
        means = abs(got.mean() - want.mean()) / abs(want.mean())
        print(
            f"{name:22s}{np.mean(got == want):13.1%}{np.mean(relative > 2e-7):13.2%}"
            f"{relative.max():14.2e}{absolute.max():14.2e}{means:7.0e}"
        )


if __name__ == "__main__":
    main()
