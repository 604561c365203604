"""``eval --ci``'s bounds as Prometheus gauges: ``streammetric_<name>_ci_lower`` and
``..._ci_upper``, per group and class like the values, equal to the JSON result's bounds."""

from __future__ import annotations

import json
import math
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.cli.helpers import invoke, write_preds


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "run"))
            out[(sample.name, labels)] = sample.value
    return out


def test_the_bounds_are_gauges_equal_to_the_json_bounds(tmp_path: Path) -> None:
    data = write_preds(tmp_path / "preds.parquet", 3000, seed=3)
    prom, result = tmp_path / "out.prom", tmp_path / "out.json"
    args = [*("eval", data, "-m", "ce", "-m", "acc", "-m", "f1:average=None,class_type=multiclass")]
    args += ["--by", "model", "--ci", "0.9", "--bootstrap", "200", "--format", "json"]
    done = invoke(*args, "--textfile", prom, "-o", result)
    assert done.exit_code == 0, done.output
    data_json = json.loads(result.read_text())
    samples = _samples(prom)
    scopes = [((), data_json["intervals"])] + [
        ((("model", g["key"]["model"]),), g["intervals"]) for g in data_json["groups"]
    ]
    names = {"cross-entropy": "cross_entropy", "accuracy": "accuracy", "f1": "f1"}
    checked = 0
    for labels, bounds in scopes:
        for name, ends in bounds.items():
            for side in ("lower", "upper"):
                family = f"streammetric_{names[name]}_ci_{side}"
                value = ends[side]
                if isinstance(value, dict):  # per class: a `class` label
                    for cls, number in value.items():
                        key = tuple(sorted([*labels, ("class", cls), ("level", "0.9")]))
                        assert samples[(family, key)] == number
                        checked += 1
                else:
                    key = tuple(sorted([*labels, ("level", "0.9")]))
                    got = samples[(family, key)]
                    assert got == value or (math.isnan(got) and math.isnan(value))
                    checked += 1
    assert checked == 3 * 2 * (2 + 4)  # 3 scopes x 2 bounds x (2 numbers + 4 classes)
    lower = samples[("streammetric_accuracy_ci_lower", (("level", "0.9"),))]
    upper = samples[("streammetric_accuracy_ci_upper", (("level", "0.9"),))]
    value = samples[("streammetric_accuracy", (("scope", "global"),))]
    assert lower < value < upper


def test_no_interval_gauges_without_ci(tmp_path: Path) -> None:
    data = write_preds(tmp_path / "preds.parquet", 500, seed=4)
    prom = tmp_path / "out.prom"
    done = invoke("eval", data, "-m", "acc", "--textfile", prom)
    assert done.exit_code == 0, done.output
    assert not [name for name, _ in _samples(prom) if "_ci_" in name]


def test_groups_that_appear_later_with_threads_and_an_export(tmp_path: Path) -> None:
    """Units finish on 2 threads numbering groups in one index while the exporter merges each
    unit's groups: a unit's partial names fewer groups than the index by then (it crashed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    models = ["x", "y"] * 20 + ["x", "y", "z"] * 20  # z first in the third row group
    probs = rng.dirichlet(np.ones(3), len(models))
    table = pa.table(
        {"label": rng.integers(0, 3, len(models)), "probs": probs.tolist(), "model": models}
    )
    path = tmp_path / "later.parquet"
    pq.write_table(table, path, row_group_size=20)
    args = ["eval", path, "-m", "acc", "--by", "model", "--ci", "0.9", "--format", "json"]
    plain = invoke(*args, "--threads", "1")
    for _ in range(3):  # the race, when it was one, failed every time with 2 threads
        prom = tmp_path / "out.prom"
        done = invoke(*args, "--threads", "2", "--textfile", prom)
        assert done.exit_code == 0, done.output
        assert done.stdout == plain.stdout
        assert ("streammetric_accuracy_ci_lower", (("level", "0.9"), ("model", "z"))) in _samples(
            prom
        )
