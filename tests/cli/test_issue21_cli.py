"""Issue 21 (CLI items): distinct metric names, checks before reading, one-line errors, caps,
width-1 predictions, rows that are not distributions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .helpers import invoke, preds_table, run_cli, samples, write_preds


def probs_file(path: Path, labels: list[int], probs: list[list[float]]) -> Path:
    width = len(probs[0])
    flat = pa.array(np.asarray(probs, dtype=np.float64).reshape(-1))
    table = pa.table({"label": labels, "probs": pa.FixedSizeListArray.from_arrays(flat, width)})
    pq.write_table(table, path)
    return path


def one_line_error(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("streammetric: error")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- item 1: same-named metrics --------------------------------------------------------------


def test_same_named_metrics_get_distinct_names_everywhere_and_the_gate_sees_inf(tmp_path):
    data = probs_file(tmp_path / "p.parquet", [0, 1, 1], [[0.0, 1.0], [0.5, 0.5], [0.3, 0.7]])
    prom, ckpt = tmp_path / "m.prom", tmp_path / "c.ckpt"
    args = ["eval", data, "-m", "ce", "-m", "ce:convention=keras", "--format", "json"]
    result = invoke(*args, "--textfile", prom, "--checkpoint", ckpt)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    exact, keras = "cross-entropy[convention=exact]", "cross-entropy[convention=keras]"
    assert list(metrics) == [exact, keras]
    assert metrics[exact] == float("inf") and 5.7 < metrics[keras] < 5.8
    names = {name for name, _ in samples(prom.read_text())}
    assert {"streammetric_cross_entropy_convention_exact"} <= names
    assert {"streammetric_cross_entropy_convention_keras"} <= names
    assert exact in ckpt.read_text() and keras in ckpt.read_text()
    table = invoke("eval", data, "-m", "ce", "-m", "ce:convention=keras").stdout
    assert exact in table and keras in table
    csv = invoke("eval", data, "-m", "ce", "-m", "ce:convention=keras", "--format", "csv")
    assert csv.stdout.splitlines()[0] == f"rows,{exact},{keras}"
    # the gate reads the exact value (inf), whichever way the threshold names the metric
    for name in ("cross-entropy", "ce", exact):
        gate = invoke(*args, "--fail-above", f"{name}=3")
        assert gate.exit_code == 3 and f"{exact} = inf is above 3.0" in gate.stderr
    gate = invoke(*args, "--fail-above", "ce:convention=keras=6")
    assert gate.exit_code == 0, gate.stderr


def test_an_option_that_is_none_names_the_metric_too(tmp_path):
    """average=None (one value per class) and normalize=None are settings: the names say
    ``average=none``, as -m spells it, not ``precision[]``."""
    path = probs_file(tmp_path / "p.parquet", [0, 1, 2, 1], [[0.7, 0.2, 0.1]] * 4)
    multi = "class_type=multiclass"
    result = invoke(
        "eval", path, "-m", f"precision:average=none,{multi}", "-m", f"precision:average=macro,{multi}",
        "-m", "confusion_matrix", "-m", "confusion_matrix:normalize=true", "--format", "json",
    )  # fmt: skip
    names = list(json.loads(result.stdout)["metrics"])
    assert names == [
        "precision[average=none]",
        "precision[average=macro]",
        "confusion_matrix[normalize=none]",
        "confusion_matrix[normalize=true]",
    ]


def test_a_user_name_wins_and_identical_or_clashing_requests_are_refused(tmp_path):
    data = probs_file(tmp_path / "p.parquet", [0, 1], [[0.5, 0.5], [0.3, 0.7]])
    named = invoke(
        "eval", data, "-m", "ce", "-m", "ce:name=ce_keras,convention=keras", "--format", "json"
    )
    assert list(json.loads(named.stdout)["metrics"]) == ["cross-entropy", "ce_keras"]
    one_line_error(invoke("eval", data, "-m", "ce", "-m", "ce"), 2, "requested twice")
    one_line_error(invoke("eval", data, "-m", "ce", "-m", "cross-entropy"), 2, "requested twice")
    one_line_error(
        invoke("eval", data, "-m", "ce:name=accuracy", "-m", "acc"), 2, "both be named 'accuracy'"
    )
    one_line_error(invoke("eval", data, "-m", "ce:name="), 2, "would have an empty name")


# --- item 12: one line instead of a traceback -----------------------------------------------


def test_group_columns_named_twice_are_one_line(tmp_path):
    data = write_preds(tmp_path / "p.parquet", 200, seed=3)
    one_line_error(
        invoke("eval", data, "--by", "model,model"), 2, "--by names column 'model' twice"
    )


def test_explain_of_an_empty_file_is_one_line(tmp_path):
    empty = tmp_path / "empty.parquet"
    pq.write_table(preds_table(0, seed=1), empty)
    one_line_error(invoke("explain", empty), 1, "no rows to explain in", str(empty))


def test_a_binary_config_file_is_a_usage_error(tmp_path):
    data = write_preds(tmp_path / "p.parquet", 200, seed=3)
    config = tmp_path / "binary.toml"
    config.write_bytes(b"\x00\x01\xff\xfe[eval]\x80")
    result = invoke("eval", data, "--config", config)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "not valid TOML (not UTF-8 text" in result.stderr and "Traceback" not in result.output


def test_a_bad_scheduler_address_is_refused_at_once(tmp_path):
    import time

    data = write_preds(tmp_path / "p.parquet", 200, seed=3)
    start = time.monotonic()  # a process: Dask's client stalled 60 s at exit, then a traceback
    result = run_cli("eval", data, "--engine", "dask", "--scheduler", "garbage")
    assert time.monotonic() - start < 20
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        "streammetric: error: `scheduler` must be [PROTOCOL://]HOST:PORT "
        "(e.g. tcp://10.0.0.5:8786), got 'garbage'"
    ]


def test_the_library_refuses_a_group_column_named_twice(tmp_path):
    import pytest

    from streammetric import ConfigError, evaluate

    data = write_preds(tmp_path / "p.parquet", 50, seed=3)
    with pytest.raises(ConfigError, match="names a column twice"):
        evaluate(data, "ce", by=["model", "model"])


# --- item 13: options that size the state are capped ----------------------------------------


def test_options_that_allocate_are_capped_with_a_usage_error(tmp_path):
    import pytest

    from streammetric import ConfigError, create
    from streammetric.functional.calibration import calibration_error

    data = write_preds(tmp_path / "p.parquet", 100, seed=3)
    one_line_error(invoke("eval", data, "-m", "ece:n_bins=10001"), 2, "`n_bins`", "[1, 10000]")
    one_line_error(
        invoke("eval", data, "-m", "auc:num_thresholds=100001"), 2, "`num_thresholds`", "100000"
    )
    with pytest.raises(ConfigError, match=r"\[1, 10000\]"):
        calibration_error([1], [0.5], n_bins=10_001)
    create({"metric": "ece", "n_bins": 10_000})  # the caps themselves are fine
    create({"metric": "auc", "num_thresholds": 100_000})


# --- item 14: every option checked before anything is read ----------------------------------


def test_an_output_that_cannot_be_written_is_refused_before_reading(tmp_path, monkeypatch):
    from streammetric.engine import local

    data = write_preds(tmp_path / "p.parquet", 100, seed=3)

    def no_reading(*args, **kwargs):  # failure injection: reading must not start
        raise AssertionError("read before the options were checked")

    monkeypatch.setattr(local, "plan", no_reading)
    missing = tmp_path / "missing" / "x.json"
    one_line_error(invoke("eval", data, "-o", missing), 2, f"-o/--output {missing}: no directory")
    one_line_error(
        invoke("watch", tmp_path, "--once", "-o", missing), 2, "-o/--output", "no directory"
    )
    one_line_error(invoke("eval", data, "--fail-above", "acc=1"), 2, "threshold names metric 'acc'")


def test_a_push_url_that_cannot_work_is_refused_before_reading(tmp_path):
    data = write_preds(tmp_path / "p.parquet", 100, seed=3)
    for url, message in [
        ("ftp://example.org/", "expected [http(s)://]HOST[:PORT][/PATH]"),
        ("http://localhost:abc", "is not a URL"),
        ("no-such-host.invalid", "does not resolve"),
    ]:
        result = invoke("eval", data, "--push", url)
        assert result.exit_code == 2, (url, result.output)
        assert message in result.stderr and result.stdout == "", (url, result.output)


# --- item 7: one prediction value per row is binary, for every metric -------------------------

BINARY = ("bce", "brier", "ece", "auc", "f1", "mcc")
PER_CLASS = ("ce", "nll_loss", "perplexity", "acc", "top_k_accuracy:top_k=1")


def width_one_files(folder: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """The same scores as a scalar column, a fixed-size list of 1, a list of 1, a glob of 1."""
    labels, scores = [0, 1, 1, 0, 0], [0.2, 0.8, 0.6, 0.4, 0.7]
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(scores), 1)
    tables = {
        "scalar": ({"label": labels, "pred": scores}, ("--preds", "pred")),
        "fixed": ({"label": labels, "probs": fixed}, ()),
        "list": ({"label": labels, "probs": pa.array([[s] for s in scores])}, ()),
        "glob": ({"label": labels, "p_1": scores}, ("--preds", "p_*")),
    }
    out = {}
    for name, (columns, args) in tables.items():
        pq.write_table(pa.table(columns), folder / f"{name}.parquet")
        out[name] = (folder / f"{name}.parquet", args)
    return out


def test_a_width_one_prediction_is_the_positive_class_score_for_every_metric(tmp_path):
    files = width_one_files(tmp_path)
    for metric in BINARY:
        values = set()
        for path, args in files.values():
            result = invoke("eval", path, *args, "-m", metric, "--format", "json")
            assert result.exit_code == 0, (metric, path, result.output)
            values.add(json.dumps(json.loads(result.stdout)["metrics"]))
        assert len(values) == 1, (metric, values)  # width 1 reads as the scalar column does
    for metric in PER_CLASS:
        for kind in ("fixed", "list", "glob"):
            path, args = files[kind]
            one_line_error(
                invoke("eval", path, *args, "-m", metric),
                1,
                str(path),
                "one prediction value per row is the positive-class score (binary)",
            )
    explained = invoke("explain", files["fixed"][0], "--format", "json")
    assert explained.exit_code == 0 and "binary" in explained.stdout


# --- item 6: rows that are not distributions ----------------------------------------------------


def test_rows_that_do_not_sum_to_one_get_a_note_and_strict_refuses_them(tmp_path):
    data = probs_file(tmp_path / "p.parquet", [0, 1, 1], [[0.9, 0.9], [0.5, 0.5], [1.0, 1.0]])
    result = invoke("eval", data, "-m", "ce", "-m", "perplexity")
    assert result.exit_code == 0, result.output
    assert (
        "streammetric: note: cross-entropy and perplexity are over rows that are not "
        "distributions: 2 rows of probabilities do not sum to 1" in result.stderr
    )
    keras = invoke("eval", data, "-m", "ce", "--convention", "keras").stderr
    assert "the keras convention renormalises them first" in keras
    one_line_error(
        invoke("eval", data, "-m", "acc", "--strict"),
        1,
        f"{data}: column `probs`, row 0: probabilities must sum to 1 (--strict), got 1.8",
    )
    skipped = invoke(
        "eval", data, "-m", "ce", "--strict", "--on-invalid", "skip", "--format", "json"
    )
    assert json.loads(skipped.stdout) == {
        "rows": 1,
        "invalid_rows": 2,
        "metrics": {"cross-entropy": 0.6931471805599453},
    }
    clean = probs_file(tmp_path / "clean.parquet", [0, 1], [[0.25, 0.75], [0.5, 0.5]])
    assert invoke("eval", clean, "-m", "ce", "--strict").exit_code == 0


def test_soft_targets_that_are_all_zero_are_invalid_rows_and_explain_says_so(tmp_path):
    flat = lambda rows: pa.FixedSizeListArray.from_arrays(  # noqa: E731
        pa.array(np.asarray(rows, dtype=np.float64).reshape(-1)), 2
    )
    data = tmp_path / "soft.parquet"
    table = pa.table(
        {
            "label": flat([[1, 0], [0, 0], [0.5, 0.5]]),
            "probs": flat([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7]]),
        }
    )
    pq.write_table(table, data)
    one_line_error(
        invoke("eval", data, "-m", "ce"),
        1,
        f"{data}: column `label`, row 1:",
        "not all 0",
    )
    skipped = invoke("eval", data, "-m", "ce", "--on-invalid", "skip", "--format", "json")
    assert json.loads(skipped.stdout)["invalid_rows"] == 1
    explained = invoke("explain", data)
    assert explained.exit_code == 0 and "clean" not in explained.stdout
    assert "1 row invalid under exact" in explained.stdout
