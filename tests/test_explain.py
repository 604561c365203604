"""explain(): conventions side by side, diagnostics, one sentence each; the generated doc."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streammetric.explain import Explanation, explain
from streammetric.functional.losses import binary_cross_entropy, cross_entropy

ROOT = Path(__file__).parents[1]
BUILTINS = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]
HARD_TRUE, HARD_PRED = [1, 0], [[0, 1], [0, 1]]


def test_seed_hard_miss_values() -> None:
    report = explain(HARD_TRUE, HARD_PRED)
    assert isinstance(report, Explanation) and report.kind == "categorical"
    assert [r.name for r in report.results][:6] == BUILTINS
    assert report.value("exact") == math.inf
    assert report.value("keras") == pytest.approx(8.059047875479163, rel=1e-12)
    assert report.value("mxnet") == pytest.approx(13.8155, rel=1e-5)
    assert report.value("sklearn") == pytest.approx(18.0218, rel=1e-5)
    assert report.value("sklearn") == pytest.approx(18.021826694558577, rel=1e-12)
    assert report.diagnostics["num_true_prob_zero"] == 1


def test_sentences_are_computed_from_the_data() -> None:
    report = explain(HARD_TRUE, HARD_PRED)
    assert report.result("keras").sentence == (
        "Keras clips probabilities to [1e-7, 1-1e-7]: 1 row had p=0 for its true class, "
        "so its loss is 16.118 instead of inf."
    )
    assert "27.631 instead of inf" in report.result("mxnet").sentence
    assert "36.044 instead of inf" in report.result("sklearn").sentence
    assert "like exact it gives inf" in report.result("torch").sentence
    two_misses = explain([1, 1, 0], [[0, 1], [1, 0], [0, 1]])
    assert "2 rows had p=0 for their true class, so each costs 16.118" in (
        two_misses.result("keras").sentence
    )


def test_rejected_conventions_show_the_error_instead_of_a_value() -> None:
    report = explain([[0, 1]], np.array([[5.0, 7.0]], np.float32))
    exact = report.result("exact")
    assert exact.value is None
    assert exact.error == (
        "`preds` row 0 must hold probabilities in [0, 1] under convention 'exact', got 5.0"
    )
    assert report.result("sklearn").value is None
    assert report.value("keras") == pytest.approx(0.5389965, rel=2e-7)
    assert report.result("keras").sentence.startswith("exact rejects this data; Keras renormalises")
    text = report.to_text()
    assert "error: `preds` row 0 must hold probabilities in [0, 1] under convention 'exact'" in text


def test_values_equal_the_functional_means_with_weights_and_smoothing() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([0.5] * 3, 20)
    labels = rng.integers(0, 3, 20)
    weights = rng.uniform(0.5, 2, 20)
    report = explain(labels, probs, sample_weight=weights, label_smoothing=0.1)
    for name in BUILTINS:
        expected = cross_entropy(
            labels, probs, convention=name, sample_weight=weights, label_smoothing=0.1
        )
        assert report.value(name) == expected


def test_binary_is_detected_and_explained() -> None:
    report = explain([1, 1, 1], [1.0, 1.0, 0.0])
    assert report.kind == "binary"
    assert report.value("tf_keras") == pytest.approx(5.141649490132791, rel=1e-12)
    assert report.value("torch") == pytest.approx(100 / 3)
    assert "clamps each log at -100" in report.result("torch").sentence
    forced = explain([[1, 1, 1]], [[1.0, 1.0, 0.0]], binary=True)
    assert forced.value("tf_keras") == binary_cross_entropy(
        [[1, 1, 1]], [[1.0, 1.0, 0.0]], convention="tf_keras"
    )


def test_from_logits_mentions_softmax_for_probability_only_frameworks() -> None:
    report = explain([1, 0], [[2.0, -30.0], [40.0, -40.0]], from_logits=True)
    assert report.from_logits
    assert "turns logits into probabilities with softmax" in report.result("mxnet").sentence
    assert report.value("torch") == report.value("exact")


def test_conventions_subset_keeps_exact_first() -> None:
    report = explain(HARD_TRUE, HARD_PRED, conventions=["keras", "mxnet"])
    assert [r.name for r in report.results] == ["exact", "keras", "mxnet"]


def test_to_dict_is_json_serialisable() -> None:
    data = explain(HARD_TRUE, HARD_PRED).to_dict()
    encoded = json.dumps(data, allow_nan=False)
    decoded = json.loads(encoded)
    assert decoded["conventions"]["exact"]["value"] == "inf"
    assert decoded["conventions"]["keras"]["value"] == 8.059047875479163
    assert decoded["rows"] == 2 and decoded["kind"] == "categorical"
    assert list(decoded["conventions"])[:6] == BUILTINS


def test_to_text_is_an_aligned_table_and_sentences() -> None:
    text = explain(HARD_TRUE, HARD_PRED).to_text()
    lines = text.splitlines()
    table = lines[: 1 + len(BUILTINS)]
    assert table[0].split() == ["convention", "dtype", "mean"]
    value_column = table[0].index("mean")
    assert all(line[value_column - 2 : value_column] == "  " for line in table)
    assert "keras       float64  8.059047875479163" in text
    assert "2 rows (categorical): 1 row with p=0 for the true class" in text
    assert sum(line.startswith("- ") for line in lines) >= len(BUILTINS)
    assert str(explain(HARD_TRUE, HARD_PRED)) == text


def _load_doc_script():
    path = ROOT / "scripts" / "gen_conventions_doc.py"
    spec = importlib.util.spec_from_file_location("gen_conventions_doc", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_doc_is_deterministic_and_computed_live() -> None:
    module = _load_doc_script()
    text = module.render()
    assert text == module.render()
    assert text.startswith("## Why does my loss differ from Keras/PyTorch/MXNet?\n")
    for figure in ("8.059047875479163", "5.141649490132791", "18.021826694558577", "1.1769392"):
        assert figure in text
    assert "{" not in text


def test_doc_script_runs() -> None:
    script = ROOT / "scripts" / "gen_conventions_doc.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.startswith("## Why does my loss differ")
