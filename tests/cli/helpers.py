"""Small prediction files, the ``streammetric`` command as a subprocess, Prometheus read-back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client.parser import text_string_to_metric_families

from tests.export.conftest import PrometheusServer, wait_until

METRICS = ("-m", "ce", "-m", "acc")
NAMES = {"cross-entropy": "streammetric_cross_entropy", "accuracy": "streammetric_accuracy"}


def preds_table(rows: int, seed: int, classes: int = 4) -> pa.Table:
    """``label``, ``probs`` (fixed-size list of float32) and ``model`` (a or b) columns."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), labels] += 1.0
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    flat = pa.array(probs.reshape(-1))
    return pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
            "model": rng.choice(["a", "b"], rows),
        }
    )


def write_preds(path: Path, rows: int, seed: int, row_group_size: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(preds_table(rows, seed), path, row_group_size=row_group_size)
    return path


def parquet_bytes(rows: int, seed: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(preds_table(rows, seed), sink, row_group_size=100)
    return bytes(sink.getvalue().to_pybytes())


class Cli:
    """``python -m streammetric.cli ARGS`` in the background; stdout/stderr kept in files."""

    def __init__(self, args: Sequence[Any], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = folder / "stdout.txt", folder / "stderr.txt"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            command = [sys.executable, "-m", "streammetric.cli", *map(str, args)]
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            self.popen = subprocess.Popen(command, stdout=out, stderr=err, env=env)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_for_stderr(self, text: str, timeout: float = 20.0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None and text not in self.stderr:
                raise AssertionError(f"exited {self.popen.returncode}: {self.stderr}")
            return text in self.stderr

        wait_until(seen, timeout, f"{text!r} on stderr")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"did not end on signal {signum}: {self.stderr}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()


def invoke(*args: Any) -> Any:
    """``streammetric ARGS`` in-process (click's runner), stdout and stderr kept apart."""
    from click.testing import CliRunner

    from streammetric.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def run_cli(*args: Any) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streammetric.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def wait_for_json(path: Path, process: Cli, timeout: float = 30.0) -> dict[str, Any]:
    def ready() -> Any:
        if process.popen.poll() is not None and not path.exists():
            raise AssertionError(f"exited {process.popen.returncode}: {process.stderr}")
        return path.exists() and json.loads(path.read_text())

    return dict(wait_until(ready, timeout, f"{path}"))


def expected_series(result: dict[str, Any], name: str, by: str = "model") -> dict[str, float]:
    """``{by value (overall: ""): global value}`` of one metric in a JSON result."""
    out = {"": result["metrics"][name]}
    for group in result.get("groups") or []:
        out[str(group["key"][by])] = group["metrics"][name]
    return out


def reprs(values: dict[str, float]) -> dict[str, str]:
    return {key: repr(value) for key, value in values.items()}


def stored(prometheus: PrometheusServer, expr: str, by: str = "model") -> dict[str, float]:
    return {r["metric"].get(by, ""): float(r["value"][1]) for r in prometheus.query(expr)}


def wait_for_stored(
    prometheus: PrometheusServer, expr: str, expected: dict[str, float], timeout: float = 30.0
) -> None:
    """Wait until the instant query ``expr`` gives exactly ``expected`` (same float reprs)."""

    def check() -> Any:
        got = stored(prometheus, expr)
        return reprs(got) == reprs(expected) or None

    wait_until(check, timeout, f"{expr} == {expected!r}")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def gauge_values(
    text: str, name: str, scope: str = "global", by: str = "model"
) -> dict[str, float]:
    """``{by value or "": value}`` of one gauge in exposition text (extra labels ignored)."""
    out = {}
    for (sample, labels), value in samples(text).items():
        found = dict(labels)
        if sample == name and found.get("scope") == scope:
            out[found.get(by, "")] = value
    return out
