"""`streammetric` CLI: formats, config files, thresholds, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from streammetric.cli import main
from tests.engine.conftest import regression_table


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "preds.parquet"
    pq.write_table(regression_table(500, seed=1), path, row_group_size=100)
    return path


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_json_table_csv_agree(data):
    as_json = json.loads(
        run(
            "eval",
            data,
            "-m",
            "mae",
            "-m",
            "mse",
            "--labels",
            "y",
            "--preds",
            "pred",
            "--format",
            "json",
            "--by",
            "split",
        ).output
    )
    assert set(as_json) == {"rows", "invalid_rows", "metrics", "groups"} and as_json["rows"] == 500
    table = run(
        "eval", data, "-m", "mae", "-m", "mse", "--labels", "y", "--preds", "pred", "--by", "split"
    ).output
    assert f"{as_json['metrics']['mae']:#.6g}" in table and "split" in table.splitlines()[0]
    csv = run(
        "eval", data, "-m", "mae", "--labels", "y", "--preds", "pred", "--format", "csv"
    ).output.splitlines()
    assert csv == ["rows,mae", f"500,{as_json['metrics']['mae']!r}"]


def test_output_file(data, tmp_path):
    out = tmp_path / "result.json"
    result = run(
        "eval", data, "-m", "mae", "--labels", "y", "--preds", "pred", "--format", "json", "-o", out
    )
    assert result.exit_code == 0 and result.output == ""
    assert json.loads(out.read_text())["rows"] == 500
    # written atomically, yet with a new file's permissions (not the temp file's 0o600) ...
    umask = os.umask(0o027)
    try:
        fresh = tmp_path / "fresh.json"
        run("eval", data, "-m", "mae", "--labels", "y", "--preds", "pred", "-o", fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    finally:
        os.umask(umask)
    # ... and a replaced file keeps its own
    out.chmod(0o604)
    run("eval", data, "-m", "mae", "--labels", "y", "--preds", "pred", "-o", out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o604


def test_output_file_is_the_printed_text(data, tmp_path, monkeypatch):
    """``-o`` holds what stdout shows (the text and its newline), however many pieces either
    is encoded in, non-ASCII text across the pieces' ends included."""
    from streammetric import _files

    args = ["eval", data, "-m", "mae", "--labels", "y", "--preds", "pred", "--by", "split"]
    printed = run(*args)
    out = tmp_path / "result.txt"
    for piece in (7, 1 << 20):
        monkeypatch.setattr(_files, "_PIECE", piece)
        assert run(*args).output == printed.output
        run(*args, "-o", out)
        assert out.read_text() == printed.output
        text = "é€😀x" * 11
        _files.write_atomic(out, text, end="\n")
        assert out.read_bytes() == (text + "\n").encode()


def test_config_file_sets_defaults_and_the_command_line_wins(data, tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text(
        '[eval]\nmetrics = ["mae", "rmse"]\nlabels = "y"\npreds = "pred"\nformat = "json"\n'
    )
    from_config = json.loads(run("eval", data, "--config", config).output)
    assert list(from_config["metrics"]) == ["mae", "rmse"]
    overridden = json.loads(run("eval", data, "--config", config, "-m", "mse").output)
    assert list(overridden["metrics"]) == ["mse"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--fail-above", "mae=0.0001"], 3, "threshold crossed: mae = "),
        (["--fail-below", "mae=100"], 3, "is below 100.0"),
        (["--fail-above", "mae"], 2, "'mae' is not METRIC=VALUE"),
        (["--fail-above", "nope=1"], 2, "threshold names metric 'nope'"),
        (["-m", "bogus"], 2, "unknown metric 'bogus'"),
        (["-m", "mae:bogus=1"], 2, "bad arguments for metric MAE"),
        (["--labels", "nope"], 2, "nope"),
    ],
)
def test_exit_codes_and_one_line_errors(data, args, code, message):
    base = ["eval", data, "--labels", "y", "--preds", "pred", "-m", "mae"]
    if "--labels" in args:
        base = ["eval", data, "--preds", "pred", "-m", "mae"]
    result = CliRunner().invoke(main, [str(a) for a in base + args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.with_name("missing.parquet"), "missing.parquet: no such file or directory"),
        (lambda p: (p.write_bytes(p.read_bytes()[:300]), p)[1], "preds.parquet"),
    ],
)
def test_bad_files_exit_1_with_one_line(data, setup, message):
    path = setup(data)
    result = CliRunner().invoke(
        main, ["eval", str(path), "--labels", "y", "--preds", "pred", "-m", "mae"]
    )
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_broken_config_is_a_usage_error(data, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[eval\n")
    result = CliRunner().invoke(main, ["eval", str(data), "--config", str(config)])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    config.write_text("[eval]\nbogus = 1\n")
    result = CliRunner().invoke(main, ["eval", str(data), "--config", str(config)])
    assert result.exit_code == 2 and "unknown key 'bogus' in [eval]" in result.output


def test_metrics_command_lists_names_and_conventions():
    result = run("metrics")
    assert (
        "mae" in result.output and "pearsonr" in result.output and "conventions:" in result.output
    )


def test_eval_ce_and_accuracy_match_numpy_on_probs_and_logits(tmp_path):
    import numpy as np
    import pyarrow as pa

    from tests.engine.conftest import classification_table

    table = classification_table(3000, seed=4)
    pq.write_table(table, tmp_path / "probs.parquet", row_group_size=700)
    labels = table["label"].to_numpy()
    probs = np.asarray(table["probs"].combine_chunks().flatten()).reshape(-1, 5).astype(np.float64)
    out = json.loads(
        run("eval", tmp_path / "probs.parquet", "-m", "ce", "-m", "acc", "--format", "json").output
    )
    picked = probs[np.arange(len(labels)), labels]
    assert out["metrics"]["cross-entropy"] == pytest.approx(-np.log(picked).mean(), rel=1e-13)
    assert out["metrics"]["accuracy"] == float((probs.argmax(axis=1) == labels).mean())

    logits = np.log(probs)
    flat = pa.array(logits.reshape(-1))
    pq.write_table(
        pa.table({"label": labels, "logits": pa.FixedSizeListArray.from_arrays(flat, 5)}),
        tmp_path / "logits.parquet",
    )
    result = CliRunner().invoke(
        main, ["eval", str(tmp_path / "logits.parquet"), "-m", "ce", "--format", "json"]
    )
    assert "column `logits` implies --from-logits" in result.stderr
    from scipy.special import logsumexp

    expected = (logsumexp(logits, axis=1) - logits[np.arange(len(labels)), labels]).mean()
    assert json.loads(result.stdout)["metrics"]["cross-entropy"] == pytest.approx(
        expected, rel=1e-13
    )


def test_explain_the_seed_example(tmp_path):
    import pyarrow as pa

    pq.write_table(
        pa.table({"label": [1, 0], "probs": [[0.0, 1.0], [0.0, 1.0]]}), tmp_path / "seed.parquet"
    )
    text = run("explain", tmp_path / "seed.parquet").output
    lines = {line.split()[0]: line.split()[-1] for line in text.splitlines()[1:7]}
    assert lines["exact"] == "inf" and lines["keras"].startswith("8.059047875")
    assert lines["mxnet"].startswith("13.8155") and lines["sklearn"].startswith("18.0218")
    assert "Keras clips probabilities to [1e-7, 1-1e-7]: 1 row had p=0 for its true class" in text
    as_json = json.loads(
        run("explain", tmp_path / "seed.parquet", "-c", "keras", "--format", "json").output
    )
    assert as_json["conventions"]["keras"]["value"] == 8.059047875479163


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"label": [1.0, 0.0], "probs": [[0.0, 1.0], [0.0, 1.0]]},
            "column `label` holds floats, but predictions `probs` have one score per class",
        ),
        (
            {"label": [1, 5], "probs": [[0.0, 1.0], [0.0, 1.0]]},
            "column `label`, row 1: must be a class index in [0, 2), got 5",
        ),
        (
            {"label": [1, 0], "probs": [[0.0, 1.0], [-0.5, 1.5]]},
            "column `probs`, row 1: must hold probabilities in [0, 1]",
        ),
        (
            {"label": [1, 0, 1], "probs": [[0.0, 1.0], [0.5], [0.2, 0.8]]},
            "column `probs`, row 1: list has 1 values, expected 2",
        ),
    ],
)
def test_bad_class_data_is_one_line_exit_1(tmp_path, table, message):
    import pyarrow as pa

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(table), path)
    result = CliRunner().invoke(main, ["eval", str(path), "-m", "ce"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and str(path) in result.output


def test_cli_default_run_matches_the_exporter_and_eval_does_not_load_it():
    import subprocess
    import sys

    from streammetric import cli_export, export

    assert cli_export.DEFAULT_RUN == export.DEFAULT_RUN
    code = "import sys, streammetric.cli; print('prometheus_client' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


def test_json_in_pieces_is_the_joined_text(monkeypatch):
    """`rendered` gives a result's JSON in pieces made as they are written (its groups' table
    `TABLE_ROWS` groups a piece), whose lists of numbers (a confusion matrix's rows) are still
    put on one line: the pieces make the same text."""
    import numpy as np
    import pyarrow as pa

    import streammetric as sm
    from streammetric import cli_common

    rng = np.random.default_rng(3)
    rows = 3000
    probs = rng.dirichlet(np.ones(3), rows)
    table = pa.table(
        {
            "label": rng.integers(0, 3, rows),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 3),
            "g": rng.integers(0, 200, rows),
        }
    )
    from streammetric import _json

    for metrics in (["ce", "acc"], ["ce", "confusion_matrix"]):
        data = sm.evaluate(table, metrics, by="g").json_data()
        whole = cli_common.render(data, "json")
        with monkeypatch.context() as patched:
            patched.setattr(_json, "TABLE_ROWS", 16)
            pieces = list(cli_common.rendered(data, "json"))
        assert "".join(pieces) == whole
        if "confusion_matrix" in metrics:  # a matrix row on one line
            assert re.search(r"\[[\d.]+(, [\d.]+)+\]", whole)
        else:  # the text around the groups, and the groups in 13 pieces
            assert len(pieces) == 2 + -(-200 // 16)
