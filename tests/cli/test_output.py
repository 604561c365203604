"""Output for people: ``--precision`` in tables and log lines, and the notes on stderr that say
why a value is inf or NaN or not the exact one (JSON and CSV stay exact and unchanged)."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streammetric.cli_common import render

from .helpers import invoke, write_preds

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("--labels", "label", "--preds", "probs")


def probs_file(path: Path, zeros: dict[str, int], rows: int = 40) -> Path:
    """Two models' predictions over 2 classes; ``zeros[model]`` rows give p = 0 to the true
    class (``[0.0, 1.0]`` with label 0: two values a clip changes), the rest ``[0.3, 0.7]``."""
    labels, probs, models = [], [], []
    for model in ("a", "b"):
        for row in range(rows):
            zero = row < zeros.get(model, 0)
            labels.append(0 if zero else row % 2)
            probs.append([0.0, 1.0] if zero else [0.3, 0.7])
            models.append(model)
    table = pa.table(
        {
            "label": labels,
            "probs": pa.array(probs, type=pa.list_(pa.float32(), 2)),
            "model": models,
        }
    )
    pq.write_table(table, path)
    return path


def notes(result) -> list[str]:
    prefix = "streammetric: note: "
    return [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]


# --- --precision -----------------------------------------------------------------------------


def test_table_shows_six_significant_digits_json_and_csv_stay_exact(tmp_path):
    path = write_preds(tmp_path / "p.parquet", 500, seed=3)
    as_json = json.loads(invoke("eval", path, "-m", "ce", "-m", "acc", "--format", "json").stdout)
    ce, acc = as_json["metrics"]["cross-entropy"], as_json["metrics"]["accuracy"]
    assert len(repr(ce)) > 10  # the default table would have shown every digit before

    table = invoke("eval", path, "-m", "ce", "-m", "acc").stdout.splitlines()
    assert table[0].split() == ["rows", "cross-entropy", "accuracy"]
    assert table[1].split() == ["500", f"{ce:#.6g}", f"{acc:#.6g}"]
    assert len(f"{ce:#.6g}".replace(".", "").lstrip("0")) == 6

    three = invoke("eval", path, "-m", "ce", "-m", "acc", "--precision", "3").stdout.splitlines()
    assert three[1].split() == ["500", f"{ce:#.3g}", f"{acc:#.3g}"]
    every = invoke("eval", path, "-m", "ce", "--precision", "0").stdout.splitlines()
    assert every[1].split() == ["500", repr(ce)]

    for extra in ((), ("--precision", "3")):
        again = invoke("eval", path, "-m", "ce", "-m", "acc", "--format", "json", *extra).stdout
        assert json.loads(again) == as_json
        csv = invoke("eval", path, "-m", "ce", "-m", "acc", "--format", "csv", *extra).stdout
        assert csv.splitlines() == ["rows,cross-entropy,accuracy", f"500,{ce!r},{acc!r}"]


def test_the_format_defaults_to_the_one_the_output_files_extension_names(tmp_path):
    """``-o result.json`` (or .csv, any case) writes that format, as ``--format`` would; other
    names and stdout get the table; a ``--format`` given (or from ``--config``) wins."""
    path = write_preds(tmp_path / "p.parquet", 300, seed=5)
    args = ("eval", path, "-m", "ce", "-m", "acc", "--by", "model")
    for fmt in ("table", "json", "csv"):
        expected = invoke(*args, "--format", fmt).stdout
        for name in (f"r.{fmt}", f"R.{fmt.upper()}", "r.out", "r"):
            out = tmp_path / name
            result = invoke(*args, "-o", out)
            assert result.exit_code == 0, result.output
            named = fmt if name.lower() == f"r.{fmt}" else "table"
            assert out.read_text() == invoke(*args, "--format", named).stdout
        assert invoke(*args, "--format", fmt, "-o", tmp_path / "x.json").exit_code == 0
        assert (tmp_path / "x.json").read_text() == expected
    config = tmp_path / "eval.toml"
    config.write_text('[eval]\nformat = "csv"\n')
    assert invoke(*args, "--config", config, "-o", tmp_path / "y.json").exit_code == 0
    assert (tmp_path / "y.json").read_text() == invoke(*args, "--format", "csv").stdout
    watched = tmp_path / "drop"
    watched.mkdir()
    write_preds(watched / "a.parquet", 50, seed=1)
    result = invoke("watch", watched, "--once", "-m", "acc", "-o", tmp_path / "w.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "w.json").read_text())["rows"] == 50


def test_precision_from_a_config_file_and_out_of_range_is_a_usage_error(tmp_path):
    path = write_preds(tmp_path / "p.parquet", 300, seed=4)
    ce = json.loads(invoke("eval", path, "--format", "json").stdout)["metrics"]["cross-entropy"]
    config = tmp_path / "eval.toml"
    config.write_text("[eval]\nprecision = 2\n")
    assert invoke("eval", path, "--config", config).stdout.split()[-1] == f"{ce:#.2g}"
    result = invoke("eval", path, "--precision", "18")
    assert result.exit_code == 2 and "--precision" in result.output


def test_render_aligns_columns_and_keeps_rows_integers():
    result = {
        "rows": 1200,
        "invalid_rows": 0,
        "metrics": {"mse": 123456.789, "r": 0.5},
        "groups": [
            {"key": {"model": "a"}, "rows": 1000, "metrics": {"mse": 2.5e-9, "r": float("nan")}},
            {"key": {"model": "bb"}, "rows": 200, "metrics": {"mse": float("inf"), "r": 1.0}},
        ],
    }
    lines = render(result, "table", 6).splitlines()
    assert lines == [
        "model  rows          mse         r",
        "(all)  1200       123457  0.500000",
        "a      1000  2.50000e-09       nan",
        "bb      200          inf   1.00000",
    ]
    assert render(result, "csv", 3) == render(result, "csv")  # csv: exact whatever precision
    assert "123456.789" in render(result, "csv") and "2.5e-09" in render(result, "csv")


def test_watch_log_lines_use_the_precision(tmp_path):
    folder = tmp_path / "drop"
    write_preds(folder / "a.parquet", 150, seed=1)
    result = invoke("watch", folder, "-m", "ce", *COLUMNS, "--once", "--precision", "3")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stderr.splitlines() if "watch: a.parquet:" in x)
    value = line.split("cross-entropy=")[1].split(";")[0]
    assert value == f"{float(value):#.3g}" and len(value.replace(".", "").lstrip("0")) == 3, line


# --- notes: why a value is inf, NaN or not exact ------------------------------------------------


def test_inf_from_p_zero_rows_is_one_note_over_groups_and_metrics(tmp_path):
    path = probs_file(tmp_path / "p.parquet", {"a": 3, "b": 2})
    args = ("eval", path, "-m", "ce", "-m", "acc", "-m", "perplexity", *COLUMNS, "--by", "model")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert notes(result) == [
        "cross-entropy and perplexity are inf in all 2 groups and overall: 5 rows give "
        "probability 0 to their true class, and the exact convention takes log(p) with no "
        "guard, so their loss is inf; `streammetric explain FILE` compares the conventions "
        "on a file, and `--convention keras` gives finite values"
    ]
    assert result.stdout.splitlines()[1].split()[2] == "inf"
    as_json = invoke(*args, "--format", "json")
    assert set(json.loads(as_json.stdout)) == {"rows", "invalid_rows", "metrics", "groups"}
    assert notes(as_json) == notes(result)  # on stderr, whatever the format


def test_a_cause_in_some_groups_names_them_and_counts_theirs(tmp_path):
    path = probs_file(tmp_path / "p.parquet", {"a": 1})
    result = invoke("eval", path, "-m", "ce", *COLUMNS, "--by", "model")
    (note,) = notes(result)
    assert note.startswith(
        "cross-entropy is inf in 1 of 2 groups (model=a) and overall: 1 row gives probability 0 "
        "to its true class, and the exact convention takes log(p) with no guard, so its loss is inf"
    )
    without_groups = notes(invoke("eval", path, "-m", "ce", *COLUMNS))
    assert without_groups[0].startswith("cross-entropy is inf: 1 row gives probability 0")


def test_a_guard_that_changed_values_gets_a_note(tmp_path):
    path = probs_file(tmp_path / "p.parquet", {"a": 3, "b": 2})
    result = invoke("eval", path, "-m", "ce", *COLUMNS, "--by", "model", "--convention", "keras")
    assert result.exit_code == 0, result.output
    assert "inf" not in result.stdout
    assert notes(result) == [
        "cross-entropy differs from the exact value in all 2 groups and overall: the keras "
        "convention clips probabilities to [1e-7, 1-1e-7], which changed 10 values, and 5 rows "
        "give probability 0 to their true class (inf under the exact convention); "
        "`streammetric explain FILE` compares the conventions on a file"
    ]
    mxnet = notes(
        invoke("eval", path, "-m", "ce", "-m", "perplexity", *COLUMNS, "--convention", "mxnet")
    )
    assert [n.split(":")[0] for n in mxnet] == [
        "cross-entropy differs from the exact value",
        "perplexity differs from the exact value",
    ]  # different guards (add 1e-12, floor at 1e-10): one note each
    assert "adds 1e-12" in mxnet[0] and "floors probabilities at 1e-10" in mxnet[1]


def test_nan_notes_say_why(tmp_path):
    rows = 30
    pq.write_table(
        pa.table({"y": [1.0] * rows, "pred": np.linspace(0, 1, rows)}), tmp_path / "r.parquet"
    )
    result = invoke("eval", tmp_path / "r.parquet", "-m", "pearsonr", "-m", "mae")
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[-2] == "nan"
    assert notes(result) == ["pearsonr is nan: the labels are constant (variance 0)"]

    probs = pa.array([[0.3, 0.7]] * rows, type=pa.list_(pa.float32(), 2))
    pq.write_table(pa.table({"label": [1] * rows, "probs": probs}), tmp_path / "p.parquet")
    ignored = invoke("eval", tmp_path / "p.parquet", "-m", "ce:ignore_index=1", "-m", "acc")
    assert ignored.exit_code == 0, ignored.output
    assert notes(ignored) == [f"cross-entropy is nan: no rows were counted ({rows} rows ignored)"]


def test_an_ordinary_result_has_no_note(tmp_path):
    path = write_preds(tmp_path / "p.parquet", 400, seed=5)
    args = ("eval", path, "-m", "ce", "-m", "acc", "-m", "perplexity", "--by", "model")
    for convention in ("exact", "keras"):  # float32 softmax: nothing reaches keras' clip
        result = invoke(*args, "--convention", convention)
        assert result.exit_code == 0 and result.stderr == "", result.stderr


def sample_data(out: Path, rows_per_file: int) -> None:
    """``scripts/make_sample_data.py``'s dataset (what ``scripts/demo`` evaluates) in ``out``."""
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", ROOT / "scripts" / "make_sample_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write(out, rows_per_file=rows_per_file)


def test_the_demo_prints_a_readable_table_and_one_note(tmp_path):
    sample_data(tmp_path, rows_per_file=2000)  # one p = 0 row per file, 9 files
    line = next(
        line for line in (ROOT / "scripts" / "demo").read_text().splitlines()
        if line.startswith("$sm eval sample_data/probs")
    )  # fmt: skip
    args = [a.replace("sample_data", str(tmp_path)) for a in shlex.split(line)[1:]]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].split() == [
        "model", "rows", "cross-entropy", "accuracy", "top_k_accuracy_5", "perplexity"
    ]  # fmt: skip
    for row in table[1:]:
        cells = row.split()
        assert cells[2] == cells[5] == "inf"
        assert all(len(cell) <= 8 for cell in cells[3:5]), row  # 0.xxxxxx, not 16 digits
    assert notes(result) == [
        "cross-entropy and perplexity are inf in all 3 groups and overall: 9 rows give "
        "probability 0 to their true class, and the exact convention takes log(p) with no "
        "guard, so their loss is inf; `streammetric explain FILE` compares the conventions "
        "on a file, and `--convention keras` gives finite values"
    ]


@pytest.mark.parametrize("groups", [1, 5])
def test_condense_names_at_most_three_groups(groups):
    from streammetric.engine.notes import condense
    from streammetric.metrics import create

    def metrics(p: float):
        return create(["ce"]).update(np.array([0]), np.array([[p, 1 - p]]))

    by_key = {(f"g{i}",): metrics(0.0 if i else 0.5) for i in range(groups + 1)}
    overall = create(["ce"])
    for metric in by_key.values():
        overall.merge(metric)
    (note,) = condense(overall, by_key, ("m",))
    where = note.split(":")[0]
    if groups == 1:
        assert where == "cross-entropy is inf in 1 of 2 groups (m=g1) and overall"
    else:
        assert where == "cross-entropy is inf in 5 of 6 groups (m=g1, m=g2, m=g3, ...) and overall"
    assert f"{groups} row" in note


def test_the_readme_example_is_what_eval_prints(tmp_path):
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```text\n$ streammetric eval sample_data/probs")
    block = readme[start:].split("\n```\n")[0].splitlines()[1:]
    sample_data(tmp_path / "sample_data", rows_per_file=20_000)  # the script's default
    args = [a.replace("sample_data", str(tmp_path / "sample_data")) for a in block[0].split()[2:]]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert block[1:] == result.stderr.splitlines() + result.stdout.splitlines()


# --- group keys that look alike ----------------------------------------------------------------


def test_null_none_empty_and_quoted_keys_stay_apart_in_table_csv_and_report(tmp_path):
    """A null key is ``(null)`` in the table and report and an empty field in CSV; the string
    "None" is None and "" is ``""`` (read back apart by pyarrow); commas and quotes quoted."""
    import pyarrow.csv as pcsv

    keys = [None, "None", "", 'a,"b', None, "x"]
    path = tmp_path / "k.parquet"
    pq.write_table(
        pa.table({"label": [0, 1, 1, 0, 1, 0], "pred": [0, 1, 0, 0, 1, 1], "g": keys}), path
    )
    args = ("eval", path, "-m", "acc", "--by", "g")
    groups = json.loads(invoke(*args, "--format", "json").stdout)["groups"]
    by_key = {g["key"]["g"]: g["rows"] for g in groups}
    assert by_key == {None: 2, "None": 1, "": 1, 'a,"b': 1, "x": 1}

    table = invoke(*args).stdout.splitlines()
    shown = {
        line[: line.index("  ")] if line[:2] != "  " else "": line.split()[-2] for line in table[2:]
    }
    assert shown == {"(null)": "2", "None": "1", "": "1", 'a,"b': "1", "x": "1"}

    csv_path = tmp_path / "k.csv"
    assert invoke(*args, "--format", "csv", "-o", csv_path).exit_code == 0
    options = pcsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)
    read = pcsv.read_csv(csv_path, convert_options=options).to_pylist()
    assert read[0]["g"] == "(all)" and read[0]["rows"] == 6  # the overall row comes first
    assert {row["g"]: row["rows"] for row in read[1:]} == by_key

    report = tmp_path / "k.html"
    assert invoke(*args, "--report", report).exit_code == 0
    page = report.read_text()
    assert '<td class="k">(null)</td>' in page and '<td class="k">None</td>' in page


def test_line_breaks_and_direction_overrides_in_keys_are_escaped_in_table_and_report(tmp_path):
    path = tmp_path / "k.parquet"
    keys = ["line1\nline2", "\u202eevil", "tab\there", "plain"]
    pq.write_table(pa.table({"label": [0, 1, 1, 0], "pred": [0, 1, 0, 0], "g": keys}), path)
    table = invoke("eval", path, "-m", "acc", "--by", "g").stdout.splitlines()
    assert len(table) == 2 + len(keys)  # header, overall, one line a group
    assert any(line.startswith("line1\\nline2 ") for line in table)
    assert any(line.startswith("\\u202eevil ") for line in table)
    report = tmp_path / "k.html"
    assert invoke("eval", path, "-m", "acc", "--by", "g", "--report", report).exit_code == 0
    page = report.read_text()
    assert "\u202e" not in page and "\\u202eevil" in page
    csv_text = invoke("eval", path, "-m", "acc", "--by", "g", "--format", "csv").stdout
    assert '"line1\nline2"' in csv_text  # CSV keeps the value, quoted (RFC 4180)
