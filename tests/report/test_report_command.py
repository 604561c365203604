"""``streammetric report STATE -o FILE.html``: the page of a saved checkpoint or JSON result,
made without the data."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from streammetric.cli import main
from tests.report.test_html_report import check_self_contained, multiclass, run


def body(path: Path) -> str:
    """The page without what names the command (its header line and the checkpoint's note)."""
    text = path.read_text()
    text = re.sub(r"<code>.*?</code>", "", text)
    return re.sub(r"<h2>Notes</h2><ul><li>from the checkpoint [^<]*</li></ul>", "", text)


def test_report_from_checkpoint_is_the_runs_report(tmp_path: Path) -> None:
    data = multiclass(tmp_path / "p.parquet", rows=1500)
    metrics = ["-m", "ce", "-m", "acc", "-m", "ece", "-m", "confusion_matrix", "--by", "model"]
    ci = ["--ci", "0.9", "--bootstrap", "100"]
    direct, checkpoint = tmp_path / "direct.html", tmp_path / "ck.json"
    args = [str(data), *metrics, *ci, "--checkpoint", str(checkpoint), "--report", str(direct)]
    run("eval", *args)
    run("eval", str(data), *metrics, *ci, "--format", "json", "-o", str(tmp_path / "r.json"))
    data.unlink()  # made from the state alone
    later = tmp_path / "later.html"
    run("report", str(checkpoint), "-o", str(later), *ci)
    assert body(later) == body(direct)
    as_ran = tmp_path / "as_ran.html"  # the run's level and replicates, kept in the checkpoint
    run("report", str(checkpoint), "-o", str(as_ran))
    assert body(as_ran) == body(direct)
    assert "Reliability diagram" in body(later) and "[0." in body(later)  # intervals
    from_json = tmp_path / "from_json.html"
    run("report", str(tmp_path / "r.json"), "-o", str(from_json))
    text = from_json.read_text()
    check_self_contained(text)
    assert "Confusion matrix" in text and "Reliability diagram" not in text
    direct_text = direct.read_text()
    for number in re.findall(r'<td data-v="[^"]*">([^<]+)</td>', text):
        assert f">{number}<" in direct_text


def test_report_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "x.json"
    other.write_text('{"hello": 1}')
    result = CliRunner().invoke(main, ["report", str(other), "-o", str(tmp_path / "r.html")])
    assert result.exit_code != 0 and "not a streammetric checkpoint" in result.output
    other.write_text("not json")
    result = CliRunner().invoke(main, ["report", str(other), "-o", str(tmp_path / "r.html")])
    assert result.exit_code != 0 and "not JSON" in result.output
    assert not (tmp_path / "r.html").exists()


def test_a_json_result_with_class_names_names_its_matrices_and_can_be_renamed(tmp_path: Path):
    """A JSON result written with --class-names: the matrix is named as the per-class table
    (it was 0, 1, 2 beside cat, dog, bird); report --class-names renames both, by position."""
    data = multiclass(tmp_path / "p.parquet", rows=600, classes=3)
    metrics = ["-m", "recall:average=none,class_type=multiclass", "-m", "confusion_matrix"]
    saved = tmp_path / "r.json"
    run(
        "eval",
        str(data),
        *metrics,
        "--class-names",
        "cat,dog,bird",
        "--format",
        "json",
        "-o",
        str(saved),
    )

    def labels(page: Path) -> tuple[list[str], list[str]]:
        text = page.read_text()
        table = re.search(r"recall per class.*?</table>", text, re.S)
        assert table is not None
        keys = re.findall(r'<td class="k">([^<]*)</td>', table.group(0))
        return keys, re.findall(r"true ([^,]+), predicted", text)

    named, renamed = tmp_path / "named.html", tmp_path / "renamed.html"
    run("report", str(saved), "-o", str(named))
    keys, matrix = labels(named)
    assert keys == ["cat", "dog", "bird"] and set(matrix) == {"cat", "dog", "bird"}
    run("report", str(saved), "-o", str(renamed), "--class-names", "x,y,z")
    keys, matrix = labels(renamed)
    assert keys == ["x", "y", "z"] and set(matrix) == {"x", "y", "z"}
