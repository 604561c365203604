"""``streammetric report STATE``: -o named as -o; --ci/--bootstrap refused where they cannot
apply; an interval whose lower end is above its upper refused; a cut-short checkpoint or JSON
result said to be truncated (still a usage error, exit 2, as any STATE that is not JSON)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from .helpers import invoke
from .test_compare import tables
from .test_issue21_cli import one_line_error


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("state")
    base, _ = tables()
    pq.write_table(base, root / "base.parquet")
    for name, extra in (("plain", ()), ("ci", ("--ci", "0.9", "--bootstrap", "50"))):
        result = invoke(
            "eval", root / "base.parquet", "-m", "acc", "-m", "recall:average=none,class_type=multiclass",
            "--by", "model", *extra, "--checkpoint", root / f"{name}.ckpt", "--format", "json",
            "-o", root / f"{name}.json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    return root


def test_an_unwritable_output_is_named_as_o(saved, tmp_path):
    result = invoke("report", saved / "ci.json", "-o", tmp_path / "nowhere" / "r.html")
    line = one_line_error(result, 2, f"-o/--output {tmp_path / 'nowhere' / 'r.html'}: no directory")
    assert "--report" not in line


@pytest.mark.parametrize(
    "options", [("--ci", "0.8"), ("--bootstrap", "500"), ("--ci", "0.8", "--bootstrap", "500")]
)
def test_interval_options_are_refused_for_a_json_result(saved, tmp_path, options):
    result = invoke("report", saved / "ci.json", "-o", tmp_path / "r.html", *options)
    one_line_error(result, 2, "is a JSON result")
    assert not (tmp_path / "r.html").exists()


def test_interval_options_are_refused_for_a_checkpoint_without_ci(saved, tmp_path):
    result = invoke("report", saved / "plain.ckpt", "-o", tmp_path / "r.html", "--ci", "0.8")
    one_line_error(result, 2, "--ci: ", "checkpoint of a run without --ci")


def test_interval_options_apply_to_a_checkpoint_with_ci(saved, tmp_path):
    result = invoke(
        "report", saved / "ci.ckpt", "-o", tmp_path / "r.html", "--ci", "0.8", "--bootstrap", "100"
    )
    assert result.exit_code == 0, result.output
    result = invoke("report", saved / "ci.json", "-o", tmp_path / "r2.html")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "where, field",
    [
        (lambda d: d["intervals"]["accuracy"], "intervals.accuracy"),
        (lambda d: d["groups"][0]["intervals"]["accuracy"], "groups[0].intervals.accuracy"),
    ],
)
def test_an_interval_whose_lower_end_is_above_its_upper_is_refused(saved, tmp_path, where, field):
    data = json.loads((saved / "ci.json").read_text())
    where(data).update(lower=0.9, upper=0.1)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = invoke("report", path, "-o", tmp_path / "r.html")
    one_line_error(result, 1, f"field `{field}` must have lower <= upper", "0.9")


def test_per_class_bounds_out_of_order_are_refused(saved, tmp_path):
    data = json.loads((saved / "ci.json").read_text())
    bounds = data["intervals"]["recall"]
    label = next(iter(bounds["lower"]))
    bounds["lower"][label], bounds["upper"][label] = 0.8, 0.2
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = invoke("report", path, "-o", tmp_path / "r.html")
    one_line_error(result, 1, f"field `intervals.recall.{label}` must have lower <= upper")


@pytest.mark.parametrize("name", ["ci.ckpt", "plain.ckpt", "ci.json"])
def test_a_truncated_state_is_said_to_be_truncated(saved, tmp_path, name):
    text = (saved / name).read_text()
    for keep in (len(text) // 3, len(text) - 5, 397):
        path = tmp_path / name
        path.write_text(text[:keep])
        result = invoke("report", path, "-o", tmp_path / "r.html")
        what = "checkpoint" if name.endswith(".ckpt") else "file"
        one_line_error(result, 2, f"{path}: {what} is truncated (not JSON")


def test_a_file_that_is_not_json_is_still_a_usage_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("hello")
    one_line_error(
        invoke("report", path, "-o", tmp_path / "r.html"), 2, "not a checkpoint or JSON result"
    )
