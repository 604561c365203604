"""Per-class values and matrices through every output of ``eval`` and ``watch``: the table, CSV,
JSON, ``--class-names``, thresholds, log lines, checkpoints and the Prometheus exposition
(``--textfile``, ``--serve``). The metrics are tests/helpers/vector_metrics.py's."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

import streammetric as sm
from streammetric.cli_common import check_thresholds, format_metric, render
from tests.conftest import REPO
from tests.export.conftest import http_get, wait_until
from tests.helpers.vector_metrics import CLI_PREFIX

from .helpers import invoke, write_preds

pytestmark = pytest.mark.usefixtures("vector_metrics")

METRICS = ("-m", "acc", "-m", "vector_test_hit_rate", "-m", "vector_test_confusion")
NAMES = ("--class-names", "ant,bee,cat")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """8 rows, 3 classes. True/predicted: a: 0/0 0/1 1/1 2/2, b: 1/1 2/2 2/0 1/1 (model b has
    no row of class 0: its hit rate is NaN)."""
    labels, predicted = [0, 0, 1, 1, 2, 2, 2, 1], [0, 1, 1, 1, 2, 0, 2, 1]
    probs = np.full((8, 3), 0.1)
    probs[np.arange(8), predicted] = 0.8
    table = pa.table(
        {
            "label": labels,
            "probs": pa.array(probs.tolist(), type=pa.list_(pa.float32(), 3)),
            "model": list("aaabbbab"),
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=3)
    return path


def ok(*args: Any) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output + result.stderr
    return result


TABLE = """\
model  rows  accuracy
(all)     8  0.750000
a         4  0.750000
b         4  0.750000

model  class  class_hit_rate
(all)  ant          0.500000
(all)  bee           1.00000
(all)  cat          0.666667
a      ant          0.500000
a      bee           1.00000
a      cat           1.00000
b      ant               nan
b      bee           1.00000
b      cat          0.500000

test_confusion (all): rows true class, columns predicted class
true\\pred  ant  bee  cat
ant          1    1    0
bee          0    3    0
cat          1    0    2

test_confusion model=a: rows true class, columns predicted class
true\\pred  ant  bee  cat
ant          1    1    0
bee          0    1    0
cat          0    0    1

test_confusion model=b: rows true class, columns predicted class
true\\pred  ant  bee  cat
ant          0    0    0
bee          0    2    0
cat          1    0    1
"""


def test_the_table_has_the_numbers_then_a_row_per_class_then_each_matrix(data):
    assert ok("eval", data, *METRICS, "--by", "model", *NAMES).stdout == TABLE
    plain = ok("eval", data, *METRICS, "--precision", "3").stdout.split("\n\n")
    assert plain[0] == "rows  accuracy\n   8     0.750"
    assert (
        plain[1]
        == "class  class_hit_rate\n0               0.500\n1                1.00\n2               0.667"
    )
    assert plain[2].splitlines()[:2] == [
        "test_confusion: rows true class, columns predicted class",
        "true\\pred  0  1  2",
    ]


def test_json_keys_per_class_values_by_class_overall_and_per_group(data):
    text = ok("eval", data, *METRICS, "--by", "model", *NAMES, "--format", "json").stdout
    result = json.loads(text)
    assert result["metrics"]["class_hit_rate"] == {"ant": 0.5, "bee": 1.0, "cat": 2 / 3}
    assert result["metrics"]["test_confusion"] == [[1, 1, 0], [0, 3, 0], [1, 0, 2]]
    assert '"test_confusion": [\n      [1, 1, 0],\n      [0, 3, 0],\n' in text  # a row a line
    b = result["groups"][1]
    assert b["key"] == {"model": "b"} and list(b["metrics"]["class_hit_rate"]) == [
        "ant",
        "bee",
        "cat",
    ]
    assert math.isnan(b["metrics"]["class_hit_rate"]["ant"])
    api = sm.evaluate(data, ["acc", "vector_test_hit_rate", "vector_test_confusion"], by="model")
    assert json.dumps(result) == json.dumps(api.to_dict(["ant", "bee", "cat"]))
    indexed = json.loads(ok("eval", data, *METRICS, "--format", "json").stdout)
    assert list(indexed["metrics"]["class_hit_rate"]) == ["0", "1", "2"]


def test_confusion_matrix_counts_are_ints_and_weight_sums_floats(data, tmp_path):
    """scikit-learn's dtypes: int64 counts print as integers (not 3.00000); weight sums and
    normalised matrices stay floats."""
    table = ok("eval", data, "-m", "confusion_matrix").stdout
    assert (
        "true\\pred  0  1  2\n0          1  1  0\n1          0  3  0\n2          1  0  2" in table
    )
    counts = json.loads(ok("eval", data, "-m", "confusion_matrix", "--format", "json").stdout)
    assert counts["metrics"]["confusion_matrix"] == [[1, 1, 0], [0, 3, 0], [1, 0, 2]]
    assert all(type(v) is int for row in counts["metrics"]["confusion_matrix"] for v in row)
    weighted = tmp_path / "w.parquet"
    pq.write_table(pq.read_table(data).append_column("w", pa.array([0.5] * 8)), weighted)
    sums = json.loads(
        ok("eval", weighted, "-m", "confusion_matrix", "--weights", "w", "--format", "json").stdout
    )
    assert sums["metrics"]["confusion_matrix"][1] == [0.0, 1.5, 0.0]
    shares = ok("eval", data, "-m", "confusion_matrix:normalize=true", "--format", "csv").stdout
    assert shares.splitlines()[1].split(",")[1:4] == ["0.5", "0.5", "0.0"]


def test_csv_has_a_column_per_class_and_per_matrix_cell(data):
    lines = ok("eval", data, *METRICS, "--by", "model", *NAMES, "--format", "csv").stdout
    header, overall, a, b = lines.splitlines()
    assert a == "a,4,0.75,0.5,1.0,1.0,1,1,0,0,1,0,0,0,1"
    names = ("ant", "bee", "cat")
    cells = [f'"test_confusion[true_class={t},pred_class={p}]"' for t in names for p in names]
    rates = [f"class_hit_rate[class={c}]" for c in names]
    assert header == ",".join(["model", "rows", "accuracy", *rates, *cells])
    assert overall == "(all),8,0.75,0.5,1.0,0.6666666666666666,1,1,0,0,3,0,1,0,2"
    assert b == "b,4,0.75,nan,1.0,0.5,0,0,0,0,2,0,1,0,1"
    assert ok("eval", data, *METRICS, "--format", "csv", "--precision", "2").stdout.startswith(
        "rows,accuracy,class_hit_rate[class=0],"
    )


def test_render_leaves_blank_cells_where_a_scope_has_fewer_classes():
    result = {
        "rows": 3,
        "invalid_rows": 1,
        "metrics": {"r": {"0": 0.5, "1": 1.0}, "m": [[1, 0], [0, 2]]},
        "groups": [
            {"key": {"g": "x"}, "rows": 1, "metrics": {"r": {"0": 0.5}, "m": [[1]]}},
        ],
    }
    csv = render(result, "csv").splitlines()
    assert csv[0].startswith("g,rows,r[class=0],r[class=1],")
    assert csv[2] == "x,1,0.5,,1,,,"
    table = render(result, "table", 6)
    assert "\nx      0      0.500000\n\n" in table  # no row for class 1, which x has not
    assert table.endswith(
        "m g=x: rows true class, columns predicted class\ntrue\\pred  0\n0          1\n\n"
        "invalid rows skipped: 1"
    )


def test_format_metric_and_thresholds_per_class():
    assert format_metric({"0": 0.5, "1": 0.25}, 2) == "{0: 0.50, 1: 0.25}"
    assert format_metric([[1, 0], [2, 3]]) == "[[1, 0], [2, 3]]"
    assert format_metric(0.1) == "0.1"
    metrics = {"acc": 0.7, "r": {"cat": 0.4, "dog": float("nan"), "eel": 0.9}}
    assert check_thresholds(metrics, [], [("r", 0.5)]) == [
        "r[class=cat] = 0.4 is below 0.5",
        "r[class=dog] = nan is below 0.5",
    ]
    assert check_thresholds(metrics, [("r[class=eel]", 0.8)], [("r[class=0]", 0.3)]) == [
        "r[class=eel] = 0.9 is above 0.8"
    ]
    with pytest.raises(sm.ConfigError, match=r"class '7' of r, which has classes cat, dog, eel"):
        check_thresholds(metrics, [("r[class=7]", 1.0)], [])
    with pytest.raises(sm.ConfigError, match=r"class 'x' of acc, which has one value"):
        check_thresholds(metrics, [("acc[class=x]", 1.0)], [])
    with pytest.raises(sm.ConfigError, match=r"threshold: m is a matrix"):
        check_thresholds({"m": [[1]]}, [("m", 1.0)], [])


def test_thresholds_on_per_class_values_and_matrices(data):
    crossed = invoke("eval", data, *METRICS, *NAMES, "--fail-below", "class_hit_rate=0.6")
    assert crossed.exit_code == 3
    assert crossed.stderr.strip() == (
        "streammetric: threshold crossed: class_hit_rate[class=ant] = 0.5 is below 0.6"
    )
    one = invoke("eval", data, *METRICS, *NAMES, "--fail-above", "class_hit_rate[class=cat]=0.6")
    assert (
        one.exit_code == 3
        and "class_hit_rate[class=cat] = 0.6666666666666666 is above" in one.stderr
    )
    by_index = invoke("eval", data, *METRICS, "--fail-below", "vector_test_hit_rate[class=1]=0.9")
    assert by_index.exit_code == 0, by_index.stderr
    matrix = invoke("eval", data, *METRICS, "--fail-above", "test_confusion=5")
    assert matrix.exit_code == 2 and matrix.stdout == ""  # refused before reading
    assert matrix.stderr.strip() == (
        "streammetric: error: --fail-above: test_confusion is a matrix (rows true class, columns "
        "predicted class); a threshold applies to a number, to every class of a per-class metric "
        "(NAME), or to one class (NAME[class=C])"
    )
    unknown = invoke("eval", data, *METRICS, "--fail-above", "nothing[class=1]=5")
    assert unknown.exit_code == 2 and "threshold names metric 'nothing[class=1]'" in unknown.stderr


def test_class_names_from_a_file_or_a_config_and_their_errors(data, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("ant\n\n  bee \ncat\n\n")
    from_file = json.loads(
        ok("eval", data, *METRICS, "--class-names", f"@{names}", "--format", "json").stdout
    )
    assert list(from_file["metrics"]["class_hit_rate"]) == ["ant", "bee", "cat"]
    config = tmp_path / "eval.toml"
    config.write_text('[eval]\nclass-names = ["ant", "bee", "cat"]\nformat = "json"\n')
    from_config = json.loads(ok("eval", data, *METRICS, "--config", config).stdout)
    assert from_config == from_file
    errors = {
        "ant,bee": "--class-names gives 2 names, but the predictions `probs` have 3 scores a row "
        "(one per class); give one name per class, in class index order",
        "ant,bee,cat,dog": "--class-names gives 4 names, but the predictions `probs` have 3",
        "ant,,cat": "--class-names: name 2 of 3 is empty, got 'ant,,cat'",
        "ant,bee,ant": "--class-names: 'ant' names classes 0 and 2; each class needs its own name",
        f"@{tmp_path / 'missing.txt'}": f"--class-names @{tmp_path / 'missing.txt'}: cannot read it",
    }
    for value, message in errors.items():
        result = invoke("eval", data, *METRICS, "--class-names", value)
        assert result.exit_code == 2 and result.stdout == "", value
        assert result.stderr.startswith(f"streammetric: error: {message}"), result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_too_few_names_for_the_classes_seen_is_a_usage_error(tmp_path):
    """Class indices as predictions say nothing of the number of classes before the run: the
    values' length does."""
    path = tmp_path / "indices.parquet"
    pq.write_table(pa.table({"label": [0, 1, 3, 1], "pred": [0.0, 1.0, 1.0, 0.0]}), path)
    result = invoke("eval", path, "-m", "vector_test_hit_rate", "--class-names", "ant,bee")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "streammetric: error: 2 class names given, but class_hit_rate has 4 classes (0 to 3); "
        "give one name per class, in class index order"
    )
    four = ok(
        "eval", path, "-m", "vector_test_hit_rate", "--class-names", "a,b,c,d", "--format", "json"
    )
    assert list(json.loads(four.stdout)["metrics"]["class_hit_rate"]) == ["a", "b", "c", "d"]


def test_checkpoint_resume_prints_the_same_result(data, tmp_path):
    args = ["eval", data, *METRICS, "--by", "model", *NAMES, "--format", "json", "--threads", "1"]
    first = ok(*args, "--checkpoint", tmp_path / "ck.json").stdout
    assert (tmp_path / "ck.json").exists()
    assert ok(*args, "--checkpoint", tmp_path / "ck.json").stdout == first == ok(*args).stdout


def test_watch_logs_per_class_values_and_gives_evals_result(data, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "p.parquet").write_bytes(data.read_bytes())
    write_preds(drop / "q.parquet", 60, seed=1)  # 4 classes: its labels reach class 3
    args = [*METRICS[:4], "--by", "model", "--class-names", "ant,bee,cat,dog"]
    watched = invoke("watch", drop, "--once", *args, "--format", "json", "--precision", "3")
    assert watched.exit_code == 2  # p.parquet has 3 scores a row: the names are for 4
    assert "--class-names gives 4 names, but the predictions `probs` have 3" in watched.stderr
    (drop / "q.parquet").unlink()
    watched = invoke("watch", drop, "--once", *METRICS, "--by", "model", *NAMES, "--format", "json")
    assert watched.exit_code == 0, watched.stderr
    log = [line for line in watched.stderr.splitlines() if "p.parquet:" in line]
    assert log == [
        "streammetric: watch: p.parquet: 8 rows (0 invalid), accuracy=0.750000, "
        "class_hit_rate={ant: 0.500000, bee: 1.00000, cat: 0.666667}, "
        "test_confusion=[[1, 1, 0], [0, 3, 0], [1, 0, 2]]; total 8 rows in 1 file(s)"
    ]
    evaluated = ok("eval", drop, *METRICS, "--by", "model", *NAMES, "--format", "json").stdout
    assert watched.stdout == evaluated


def exposition_series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "run")): s.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for s in family.samples
    }


def expected_gauges(result: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], float]:
    """The global class_hit_rate series a JSON result implies (overall: no model label)."""
    out = {}
    for group in [{"key": {}, "metrics": result["metrics"]}, *result.get("groups", [])]:
        for name, value in group["metrics"]["class_hit_rate"].items():
            labels = {**group["key"], "class": name, "scope": "global"}
            out[tuple(sorted(labels.items()))] = value
    return out


def same(a: dict[Any, float], b: dict[Any, float]) -> bool:
    return {k: repr(v) for k, v in a.items()} == {k: repr(v) for k, v in b.items()}


def test_textfile_has_a_class_label_per_class(data, tmp_path):
    prom = tmp_path / "out.prom"
    args = ["eval", data, *METRICS, "--by", "model", *NAMES, "--format", "json"]
    result = json.loads(ok(*args, "--textfile", prom).stdout)
    text = prom.read_text()
    rates = exposition_series(text, "streammetric_class_hit_rate")
    glob = {k: v for k, v in rates.items() if ("scope", "global") in k}
    assert same(glob, expected_gauges(result))
    cells = exposition_series(text, "streammetric_test_confusion")
    overall = {
        (dict(k)["true_class"], dict(k)["pred_class"]): v
        for k, v in cells.items()
        if "model" not in dict(k) and ("scope", "global") in k
    }
    names = ["ant", "bee", "cat"]
    assert overall == {
        (names[t], names[p]): float(result["metrics"]["test_confusion"][t][p])
        for t in range(3)
        for p in range(3)
    }
    assert not re.search(r"^streammetric_class_hit_rate_", text, re.M)  # one family, not per class


def test_serve_exports_the_class_labels_while_serving(data, tmp_path):
    out = tmp_path / "result.json"
    command = [*CLI_PREFIX, "eval", str(data), *METRICS, "--by", "model", *NAMES]
    command += ["--format", "json", "-o", str(out), "--serve", "127.0.0.1:0", "--linger", "inf"]
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    try:

        def url() -> str | None:
            if process.poll() is not None:
                raise AssertionError(stderr.read_text())
            found = re.search(r"serving the final values at (\S+)", stderr.read_text())
            return found.group(1) if found else None

        status, body = http_get(wait_until(url, 30, "the final values served"))
        assert status == 200
        rates = exposition_series(body.decode(), "streammetric_class_hit_rate")
        result = json.loads(out.read_text())
        assert same(
            {k: v for k, v in rates.items() if ("scope", "global") in k}, expected_gauges(result)
        )
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0, stderr.read_text()
