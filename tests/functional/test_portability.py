"""The cross-entropy family gives the same bits whatever NumPy's loops a CPU dispatches to.

NumPy's float64 ``exp``, ``log`` and ``log1p`` differ in the last bit between its AVX-512 loops and
its AVX2/baseline ones, so a Dask cluster mixing CPUs would differ in the last bits wherever they
enter a loss. Every float64 ``exp``, ``log`` and ``log1p`` of the exact convention goes through
``_kernels`` instead. This runs the same losses in a process whose NumPy has its AVX-512 loops
turned off (``NPY_DISABLE_CPU_FEATURES``) and compares the bits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = """
import sys
import numpy as np
import streammetric.functional as F

rng = np.random.default_rng(5)
logits = (rng.normal(size=(20_000, 10)) * 4).astype(np.float32)
labels = rng.integers(0, 10, 20_000)
binary = rng.normal(size=(20_000, 3)) * 6
targets = rng.integers(0, 2, (20_000, 3)).astype(np.float64)
probs = rng.random((20_000, 3))
out = {
    "ce from logits": F.cross_entropy(labels, logits, from_logits=True, reduction="none"),
    "ce from float64 logits": F.cross_entropy(labels, logits.astype(np.float64) * 1.37, from_logits=True, reduction="none"),
    "bce from logits": F.binary_cross_entropy(targets, binary, from_logits=True, reduction="none"),
    "bce from probabilities": F.binary_cross_entropy(targets, probs, reduction="none"),
    "perplexity": np.array([F.perplexity(labels, logits, from_logits=True)]),
    "calibration from logits": np.array([F.calibration_error(labels, logits.astype(np.float64), from_logits=True)]),
    "PR AUC from logits": np.array([F.binned_auc(targets[:, 0], binary[:, 0], curve="PR", from_logits=True)]),
}
np.savez(sys.argv[1], **out)
"""


def _avx512_features() -> list[str]:
    """The AVX-512 features NumPy dispatches to on this CPU (names differ between versions)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [
        name
        for name in __cpu_dispatch__
        if (name.startswith("AVX512") or name == "X86_V4") and __cpu_features__.get(name)
    ]


def _run(path: str, disabled: list[str]) -> dict[str, np.ndarray]:
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(disabled)}
    subprocess.run([sys.executable, "-c", SCRIPT, path], env=env, check=True, timeout=120)
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def test_losses_are_the_same_bits_with_and_without_numpys_avx512_loops(tmp_path):
    disabled = _avx512_features()
    if not disabled:
        pytest.skip("this CPU has no AVX-512: NumPy dispatches to one kind of loop only")
    plain = _run(str(tmp_path / "plain.npz"), [])
    without = _run(str(tmp_path / "without.npz"), disabled)
    assert plain.keys() == without.keys()
    for name in plain:
        assert np.array_equal(plain[name], without[name]), name


#: the modules whose numbers could depend on the CPU: the kernels, every metric, the losses and
#: conventions (golden vectors), the clean pass, and the package's doctests
EMULATED = [
    "tests/test_kernels.py",
    "tests/metrics",
    "tests/functional/test_losses.py",
    "tests/functional/test_conventions.py",
    "tests/engine/test_grouped_state.py",
    "streammetric/functional",
    "streammetric/metrics",
]


@pytest.mark.slow
def test_the_numeric_tests_pass_as_on_an_avx2_only_cpu():
    """This CPU running as one without AVX-512: NumPy's AVX-512 loops off and our kernels capped
    at AVX2 (``STREAMMETRIC_MAX_ISA``). Their expected values (fingerprints, golden vectors,
    figures from scikit-learn and MXNet) were recorded once; an AVX2-only machine must meet them
    too, and this is how an AVX-512 machine checks it."""
    disabled = _avx512_features()
    if not disabled:
        pytest.skip("this CPU has no AVX-512: the whole suite runs as on an AVX2-only CPU")
    root = Path(__file__).parents[2]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"NPY_DISABLE_CPU_FEATURES": " ".join(disabled), "STREAMMETRIC_MAX_ISA": "avx2"}
    probe = "from streammetric import _kernels; import sys; sys.exit(_kernels.isas() != ['avx2', 'baseline'])"
    assert subprocess.run([sys.executable, "-c", probe], env=env, cwd=root).returncode == 0
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*command, *EMULATED], env=env, cwd=root, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout.splitlines()[-1] and " failed" not in run.stdout
