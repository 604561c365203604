"""``eval --conventions``: the CE family under every convention in the same pass, side by side
(json, table, the report), equal to ``streammetric explain`` on all the rows at once, whatever
the threads and groups; ``--report`` implies it; ``report STATE`` shows it from a checkpoint
or a JSON result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.helpers import invoke

ALL = ["exact", "keras", "tf_keras", "torch", "mxnet", "sklearn"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """float32 probabilities in several row groups, with a true class at p = 0 (exact: inf)
    and rows that do not sum to 1; a ``model`` column."""
    rng = np.random.default_rng(7)
    rows, classes = 3000, 5
    labels = rng.integers(0, classes, rows)
    probs = rng.dirichlet(np.ones(classes), rows).astype(np.float32)
    probs[10] = 0
    probs[10, (labels[10] + 1) % classes] = 1
    probs[20:30] *= np.float32(1.02)
    flat = pa.array(probs.reshape(-1))
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
            "model": rng.choice(["a", "b", "c"], rows),
        }
    )
    path = tmp_path_factory.mktemp("conventions") / "preds.parquet"
    pq.write_table(table, path, row_group_size=700)
    return path


def ok(*args: object) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def values(explained: dict) -> dict[str, float | None]:
    return {name: entry["value"] for name, entry in explained["conventions"].items()}


def batch_values(path: Path) -> dict[str, float | None]:
    """``streammetric explain``: the rows in memory, at once."""
    out = json.loads(ok("explain", path, "--format", "json"))
    return {
        name: None if v is None else float(v)  # its JSON writes inf as "inf"
        for name, v in values(out).items()
    }


def test_json_equals_explain_on_all_rows_for_any_threads_and_groups(data: Path) -> None:
    expected = batch_values(data)
    assert math.isinf(expected["exact"]) and math.isfinite(expected["keras"])
    outputs = []
    for extra in (["--threads", "1"], ["--threads", "2", "--by", "model"]):
        out = json.loads(ok("eval", data, "--conventions", "all", "--format", "json", *extra))
        explained = out["conventions"]["cross-entropy"]
        assert list(explained["conventions"]) == ALL
        assert values(explained) == expected
        assert explained["rows"] == 3000
        assert explained["diagnostics"]["num_true_prob_zero"] == 1
        assert explained["diagnostics"]["num_not_normalized"] == 10
        assert out["metrics"]["cross-entropy"] == expected["exact"]  # the metric is as before
        outputs.append(explained)
    assert outputs[0] == outputs[1]


def test_a_list_of_conventions_the_table_and_errors(data: Path) -> None:
    out = json.loads(
        ok("eval", data, "--convention", "keras", "--conventions", "torch", "--format", "json")
    )
    # keras is the metric's own; exact is always there, as the reference
    assert list(out["conventions"]["cross-entropy"]["conventions"]) == ["exact", "keras", "torch"]
    table = ok("eval", data, "-m", "ce", "-m", "acc", "--conventions", "all")
    assert "cross-entropy under each convention:" in table
    assert "- keras: Keras clips probabilities" in table
    plain = ok("eval", data, "-m", "acc", "--conventions", "all", "--format", "json")
    assert "conventions" not in json.loads(plain)  # no CE metric: nothing to explain
    bad = invoke("eval", data, "--conventions", "kers")
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "streammetric: error: unknown convention 'kers'; known conventions: exact, keras, "
        "tf_keras, torch, mxnet, sklearn"
    ]


def test_report_implies_all_conventions_and_report_state_shows_them(
    data: Path, tmp_path: Path
) -> None:
    expected = batch_values(data)
    page, result = tmp_path / "r.html", tmp_path / "r.json"
    checkpoint = tmp_path / "run.ckpt"
    ok("eval", data, "--report", page, "--format", "json", "-o", result,
       "--checkpoint", checkpoint)  # fmt: skip
    saved = json.loads(result.read_text())
    assert values(saved["conventions"]["cross-entropy"]) == expected
    text = page.read_text()
    assert "cross-entropy under each convention" in text
    for name in ALL:
        assert f">{name}<" in text
    assert "1 row had p=0 for its true class, so its loss is finite" in text
    for source in (checkpoint, result):  # the data is not read again
        again = tmp_path / f"{source.stem}-again.html"
        ok("report", source, "-o", again)
        assert "cross-entropy under each convention" in again.read_text()
        assert "1 row had p=0 for its true class, so its loss is finite" in again.read_text()
    none = tmp_path / "none.html"
    ok("eval", data, "--report", none, "--conventions", "none")
    assert "under each convention" not in none.read_text()


def test_a_config_file_gives_conventions_as_a_string_or_a_list(data: Path, tmp_path: Path) -> None:
    for text in ('conventions = ["keras", "pytorch"]', 'conventions = "keras,torch"'):
        config = tmp_path / "eval.toml"
        config.write_text(f'[eval]\n{text}\nformat = "json"\n')
        out = json.loads(ok("eval", data, "--config", config))
        assert list(out["conventions"]["cross-entropy"]["conventions"]) == [
            "exact",
            "keras",
            "torch",
        ]
    config.write_text("[eval]\nconventions = 3\n")
    bad = invoke("eval", data, "--config", config)
    assert bad.exit_code == 2 and "--conventions takes all, none or names, got 3" in bad.stderr


def test_explain_beyond_max_rows_points_to_the_streamed_table(data: Path) -> None:
    bad = invoke("explain", data, "--max-rows", "1000")
    assert bad.exit_code != 0
    (line,) = bad.stderr.strip().splitlines()
    assert "more than --max-rows 1000 rows" in line
    assert "`streammetric eval --conventions all` (any size, one pass)" in line


def test_report_resuming_a_checkpoint_saved_without_conventions(data: Path, tmp_path: Path) -> None:
    """``--report`` implies the conventions, but not against the run it resumes: a checkpoint
    saved without them is resumed as it was (its page has no conventions), one saved with them
    keeps them."""
    plain, with_them = tmp_path / "plain.ckpt", tmp_path / "with.ckpt"
    ok("eval", data, "--checkpoint", plain)
    ok("eval", data, "--checkpoint", with_them, "--report", tmp_path / "first.html")
    for checkpoint, shown in ((plain, False), (with_them, True)):
        page = tmp_path / f"{checkpoint.stem}.html"
        ok("eval", data, "--checkpoint", checkpoint, "--report", page)
        assert ("under each convention" in page.read_text()) is shown
    refused = invoke("eval", data, "--checkpoint", plain, "--conventions", "all")
    assert refused.exit_code != 0 and "different metric options" in refused.stderr
