"""``streammetric report STATE``: a JSON result (``eval --format json -o FILE``) whose content
breaks the layout `Result.to_dict` writes is refused in one line naming the file, the field, the
rule and the value, with the exit code of a STATE that is not JSON at all (never a traceback);
a tampered checkpoint's identity likewise; real results keep rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from streammetric._exceptions import StateError
from streammetric.cli_common import EXIT_DATA, EXIT_USAGE
from streammetric.report.state import ResultFileError, load_result
from tests.cli.helpers import invoke, run_cli, write_preds

#: a JSON result `Result.to_dict` could write, each case below one field away from it
CI = {"level": 0.9, "replicates": 20, "seed": 0, "method": "percentile bootstrap"}
EXACT = {
    "display_name": "exact",
    "value": 1.25,
    "error": None,
    "dtype": "float64",
    "sentence": "The reference.",
    "diagnostics": {"num_guarded": 0},
}
EXPLAINED = {
    "kind": "categorical",
    "from_logits": False,
    "rows": 4,
    "diagnostics": {"num_true_prob_zero": 0},
    "conventions": {"exact": EXACT},
}


def result(**changes: Any) -> dict[str, Any]:
    """A valid JSON result with ``changes`` (a value of ``...``: the field left out)."""
    data: dict[str, Any] = {
        "rows": 4,
        "invalid_rows": 0,
        "ci": CI,
        "metrics": {
            "accuracy": 0.5,
            "recall": {"0": 0.5, "1": 1.0},
            "confusion_matrix": [[1, 1], [0, 2]],
        },
        "intervals": {
            "accuracy": {"lower": 0.25, "upper": 0.75},
            "recall": {"lower": {"0": 0.0, "1": 0.5}, "upper": {"0": 1.0, "1": 1.0}},
        },
        "conventions": {"cross-entropy": EXPLAINED},
        "groups": [
            {
                "key": {"model": "a"},
                "rows": 4,
                "metrics": {"accuracy": 0.5},
                "intervals": {"accuracy": {"lower": 0.25, "upper": 0.75}},
            }
        ],
    }
    for name, value in changes.items():
        if value is ...:
            del data[name]
        else:
            data[name] = value
    return data


def group(**changes: Any) -> list[dict[str, Any]]:
    """The groups of `result` with the first group's fields changed (``...``: left out)."""
    entry = {**result()["groups"][0], **changes}
    return [{k: v for k, v in entry.items() if v is not ...}]


# (the file's content, the field the error names, what it says the value is)
BAD: dict[str, tuple[Any, str, str]] = {
    # the reproduced crashes
    "rows-text-metric-text": ({"rows": "x", "metrics": {"acc": "hi"}}, "rows", "got 'x'"),
    "group-key-int": (
        {"rows": 4, "invalid_rows": 0, "metrics": {"acc": 0.5}, "groups": [{"key": 5}]},
        "groups[0].key",
        "got 5",
    ),
    "groups-int": (result(groups=7), "groups", "got 7"),
    "metrics-int": (result(metrics=5), "metrics", "got 5"),
    "group-without-rows": (result(groups=group(rows=...)), "groups[0].rows", "is missing"),
    "negative-counts": (
        {"rows": -4, "invalid_rows": -1, "metrics": {"acc": 7}},
        "rows",
        "got -4",
    ),
    # counts
    "invalid-rows-negative": (result(invalid_rows=-1), "invalid_rows", "got -1"),
    "rows-float": (result(rows=4.0), "rows", "got 4.0"),
    "rows-bool": (result(rows=True), "rows", "got True"),
    "rows-null": (result(rows=None), "rows", "got None"),
    # metric values
    "metric-text": (result(metrics={"acc": "hi"}), "metrics.acc", "got 'hi'"),
    "metric-bool": (result(metrics={"acc": False}), "metrics.acc", "got False"),
    "metric-nested-object": (
        result(metrics={"recall": {"0": {"x": 1}}}),
        "metrics.recall.0",
        "got {'x': 1}",
    ),
    "per-class-text": (result(metrics={"recall": {"0": 0.5, "1": "x"}}), "metrics.recall.1", "'x'"),
    "matrix-ragged": (
        result(metrics={"confusion_matrix": [[1, 2], [3]]}),
        "metrics.confusion_matrix[1]",
        "got [3]",
    ),
    "matrix-row-number": (
        result(metrics={"confusion_matrix": [[1, 2], 5]}),
        "metrics.confusion_matrix[1]",
        "got 5",
    ),
    "matrix-cell-text": (
        result(metrics={"confusion_matrix": [[1, "2"], [3, 4]]}),
        "metrics.confusion_matrix[0][1]",
        "got '2'",
    ),
    "matrix-of-matrices": (
        result(metrics={"confusion_matrix": [[[1]]]}),
        "metrics.confusion_matrix[0][0]",
        "got [1]",
    ),
    # groups
    "groups-object": (result(groups={"key": {}}), "groups", "got {'key': {}}"),
    "group-text": (result(groups=["a"]), "groups[0]", "got 'a'"),
    "group-key-list": (result(groups=group(key=["a"])), "groups[0].key", "got ['a']"),
    "group-key-missing": (result(groups=group(key=...)), "groups[0].key", "is missing"),
    "group-key-value-list": (
        result(groups=group(key={"model": [1]})),
        "groups[0].key.model",
        "got [1]",
    ),
    "group-rows-negative": (result(groups=group(rows=-4)), "groups[0].rows", "got -4"),
    "group-metrics-missing": (
        result(groups=group(metrics=...)),
        "groups[0].metrics",
        "is missing",
    ),
    "group-metric-text": (
        result(groups=group(metrics={"accuracy": "x"})),
        "groups[0].metrics.accuracy",
        "got 'x'",
    ),
    "group-interval-number": (
        result(groups=group(intervals={"accuracy": 0.5})),
        "groups[0].intervals.accuracy",
        "got 0.5",
    ),
    # intervals and their header
    "ci-number": (result(ci=5), "ci", "got 5"),
    "ci-level": (result(ci={**CI, "level": 5}), "ci.level", "got 5"),
    "ci-replicates": (result(ci={**CI, "replicates": 0}), "ci.replicates", "got 0"),
    "intervals-list": (result(intervals=[1]), "intervals", "got [1]"),
    "interval-side-missing": (
        result(intervals={"accuracy": {"lower": 0.25}}),
        "intervals.accuracy.upper",
        "is missing",
    ),
    "interval-per-class-as-number": (
        result(intervals={"recall": {"lower": 0.1, "upper": 0.9}}),
        "intervals.recall.lower",
        "got 0.1",
    ),
    "interval-bound-text": (
        result(intervals={"accuracy": {"lower": "low", "upper": 0.75}}),
        "intervals.accuracy.lower",
        "got 'low'",
    ),
    # conventions (explain's objects)
    "conventions-list": (result(conventions=[1]), "conventions", "got [1]"),
    "conventions-without-exact": (
        result(conventions={"cross-entropy": {**EXPLAINED, "conventions": {}}}),
        "conventions.cross-entropy.conventions",
        "got {}",
    ),
    "conventions-rows-text": (
        result(conventions={"cross-entropy": {**EXPLAINED, "rows": "4"}}),
        "conventions.cross-entropy.rows",
        "got '4'",
    ),
    "conventions-diagnostic-negative": (
        result(
            conventions={
                "cross-entropy": {
                    **EXPLAINED,
                    "conventions": {"exact": {**EXACT, "diagnostics": {"num_guarded": -1}}},
                }
            }
        ),
        "conventions.cross-entropy.conventions.exact.diagnostics.num_guarded",
        "got -1",
    ),
    "conventions-value-text": (
        result(
            conventions={
                "cross-entropy": {**EXPLAINED, "conventions": {"exact": {**EXACT, "value": "x"}}}
            }
        ),
        "conventions.cross-entropy.conventions.exact.value",
        "got 'x'",
    ),
}


def one_error_line(outcome: Any, code: int) -> str:
    """The one ``streammetric: error`` line of a refusal with exit ``code`` (no traceback:
    the command ended by its own exit, not by an exception)."""
    assert outcome.exit_code == code, (outcome.exit_code, outcome.output, outcome.exception)
    assert isinstance(outcome.exception, SystemExit), outcome.exc_info
    assert "Traceback" not in outcome.output
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("streammetric: error")]
    assert len(lines) == 1, outcome.stderr
    return lines[0]


def test_a_state_that_is_not_json_exits_2(tmp_path: Path) -> None:
    """A truncated STATE is a usage error (exit 2); a result whose fields break their rules
    is bad data, as a checkpoint's are (exit 1, below)."""
    state = tmp_path / "cut.json"
    state.write_text(json.dumps(result())[:40])
    line = one_error_line(invoke("report", state, "-o", tmp_path / "r.html"), EXIT_USAGE)
    assert str(state) in line and "not JSON" in line


@pytest.mark.parametrize(("content", "field", "said"), list(BAD.values()), ids=list(BAD))
def test_a_bad_json_result_is_one_line_naming_the_field(
    tmp_path: Path, content: Any, field: str, said: str
) -> None:
    state, page = tmp_path / "bad.json", tmp_path / "r.html"
    state.write_text(json.dumps(content))
    line = one_error_line(invoke("report", state, "-o", page), EXIT_DATA)
    assert line.startswith(f"streammetric: error: {state}: JSON result field `{field}` "), line
    assert said in line and "must be" in line, line
    assert not page.exists()
    with pytest.raises(ResultFileError) as caught:  # a StateError with its fields
        load_result(state)
    assert isinstance(caught.value, StateError)
    assert (caught.value.path, caught.value.field) == (str(state), field)
    assert caught.value.rule is not None and caught.value.rule in str(caught.value)


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "5", "null", "{}", '{"rows": 4}'])
def test_what_is_not_an_object_with_rows_and_metrics_is_not_a_result(
    tmp_path: Path, content: str
) -> None:
    state = tmp_path / "other.json"
    state.write_text(content)
    line = one_error_line(invoke("report", state, "-o", tmp_path / "r.html"), EXIT_USAGE)
    assert f"{state}: not a streammetric checkpoint" in line


def test_a_comparison_is_not_a_result(tmp_path: Path) -> None:
    state = tmp_path / "cmp.json"
    entry = {"baseline": 0.5, "candidate": 0.6, "delta": 0.1, "test": "mcnemar-exact"}
    state.write_text(json.dumps({"rows": 4, "unpaired": {}, "ci": CI, "metrics": {"acc": entry}}))
    line = one_error_line(invoke("report", state, "-o", tmp_path / "r.html"), EXIT_USAGE)
    assert f"{state}: a comparison (compare --format json)" in line and "compare --report" in line


def test_the_command_prints_no_traceback(tmp_path: Path) -> None:
    """The first reproduced crash, run as a process: one line on stderr, nothing else."""
    state = tmp_path / "bad.json"
    state.write_text('{"rows": "x", "metrics": {"acc": "hi"}}')
    done = run_cli("report", state, "-o", tmp_path / "r.html")
    assert done.returncode == EXIT_DATA
    assert done.stderr == (
        f"streammetric: error: {state}: JSON result field `rows` must be an int >= 0 "
        "(a count), got 'x'\n"
    )


def test_valid_edge_values_render(tmp_path: Path) -> None:
    """What `Result.to_dict` may write at the edges: NaN, infinities, nulls, an empty matrix
    and per-class value, no groups, no ``invalid_rows`` (older results), ``ci`` null."""
    state, page = tmp_path / "edge.json", tmp_path / "r.html"
    metrics = {
        "acc": float("nan"),
        "ce": float("inf"),
        "low": float("-inf"),
        "none": None,
        "cm": [],
        "recall": {},
    }
    state.write_text(json.dumps({"rows": 0, "metrics": metrics, "groups": [], "ci": None}))
    outcome = invoke("report", state, "-o", page)
    assert outcome.exit_code == 0, outcome.output
    assert "NaN" in page.read_text() and "inf" in page.read_text()
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(result()))
    outcome = invoke("report", valid, "-o", page)
    assert outcome.exit_code == 0, outcome.output


def test_a_real_json_result_still_renders(tmp_path: Path) -> None:
    data = write_preds(tmp_path / "p.parquet", 300, seed=5)
    saved = tmp_path / "r.json"
    metrics = ["-m", "ce", "-m", "acc", "-m", "recall:average=none,class_type=multiclass"]
    outcome = invoke(
        "eval",
        data,
        *metrics,
        "-m",
        "confusion_matrix",
        "--by",
        "model",
        "--ci",
        "0.9",
        "--bootstrap",
        "20",
        "--conventions",
        "all",
        "--format",
        "json",
        "-o",
        saved,
    )
    assert outcome.exit_code == 0, outcome.output
    written = json.loads(saved.read_text())
    assert {"ci", "intervals", "conventions", "groups"} <= set(written)
    data.unlink()  # made from the saved values alone
    page = tmp_path / "r.html"
    outcome = invoke("report", saved, "-o", page)
    assert outcome.exit_code == 0, outcome.output
    text = page.read_text()
    for part in (
        "Confusion matrix",
        "recall per class",
        "Per group (model)",
        "under each convention",
    ):
        assert part in text, part
    value = written["metrics"]["recall"]["0"]
    lower, upper = (written["intervals"]["recall"][side]["0"] for side in ("lower", "upper"))
    row = re.compile(
        r'<td class="k">(\w)</td><td data-v="([^"]*)">[^<]*</td>'
        r'<td data-v="([^"]*)">[^<]*</td><td data-v="([^"]*)">'
    )
    assert ("0", repr(value), repr(lower), repr(upper)) in row.findall(text)
    # with class names, the per-class bounds follow the classes' names (they were lost)
    named = tmp_path / "named.html"
    outcome = invoke("report", saved, "-o", named, "--class-names", "w,x,y,z")
    assert outcome.exit_code == 0, outcome.output
    assert ("w", repr(value), repr(lower), repr(upper)) in row.findall(named.read_text())


# -- a tampered checkpoint's identity (the digest is optional, and anyone can recompute it) ----


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("ckpt")
    data = write_preds(folder / "p.parquet", 200, seed=7)
    saved = folder / "s.ckpt"
    ci = ["--ci", "0.9", "--bootstrap", "20"]
    outcome = invoke("eval", data, "-m", "acc", "--by", "model", *ci, "--checkpoint", saved)
    assert outcome.exit_code == 0, outcome.output
    return dict(json.loads(saved.read_text()))


TAMPERED = {
    "done-int": (("done",), 5, "done", "got 5"),
    "defaults-list": (("identity", "metric_defaults"), [1], "identity.metric_defaults", "[1]"),
    "by-not-names": (("identity", "columns"), "ColumnSpec(by=(a b))", "identity.columns", "by="),
    "by-int": (("identity", "columns"), "ColumnSpec(by=5)", "identity.columns", "by=5"),
    "seed-text": (("identity", "resampling", "seed"), "x", "identity.resampling.seed", "'x'"),
    "seed-negative": (("identity", "resampling", "seed"), -1, "identity.resampling.seed", "-1"),
}


@pytest.mark.parametrize(("where", "value", "field", "said"), TAMPERED.values(), ids=list(TAMPERED))
def test_a_tampered_checkpoint_is_one_line_naming_the_field(
    tmp_path: Path, checkpoint: dict[str, Any], where: Any, value: Any, field: str, said: str
) -> None:
    data = json.loads(json.dumps(checkpoint))
    data.pop("digest")
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    state = tmp_path / "s.ckpt"
    state.write_text(json.dumps(data))
    line = one_error_line(invoke("report", state, "-o", tmp_path / "r.html"), EXIT_DATA)
    assert f"{state}: checkpoint field `{field}` must" in line and said in line, line


def test_a_checkpoint_by_a_column_with_parentheses_renders(tmp_path: Path) -> None:
    """``by=('f(x)',)`` in the identity: read as the repr it is, not cut at the first ")"."""
    source = write_preds(tmp_path / "p.parquet", 100, seed=3)
    table = pq.read_table(source)
    pq.write_table(table.rename_columns(["label", "probs", "f(x)"]), source)
    saved, page = tmp_path / "s.ckpt", tmp_path / "r.html"
    outcome = invoke("eval", source, "-m", "acc", "--by", "f(x)", "--checkpoint", saved)
    assert outcome.exit_code == 0, outcome.output
    outcome = invoke("report", saved, "-o", page)
    assert outcome.exit_code == 0, outcome.output
    assert "Per group (f(x))" in page.read_text()
