"""``eval --report`` and ``compare --report``: the page's content, and the page rendered in a real
headless Chromium (Debian's ``chromium``, installed by ``scripts/install_system_deps`` when
missing): its charts and numbers are in the rendered DOM, no console error, no network request
(Chromium's NetLog lists none from the page), and a screenshot that is not blank."""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from streammetric.cli import main
from streammetric.report.html import fmt, largest_groups
from tests.helpers.system import ensure

REPO = Path(__file__).resolve().parents[2]
MAX_BYTES = 300_000


# -- data ---------------------------------------------------------------------------------------


def multiclass(
    path: Path, rows: int = 3000, classes: int = 5, seed: int = 0, labels_seed: int = 0
) -> Path:
    """Sample-like data: ``label`` (of ``labels_seed``: two models' files of one evaluation
    set share them), ``probs`` (fixed-size list) and ``model`` (3 models)."""
    labels = np.random.default_rng(labels_seed).integers(0, classes, rows)
    rng = np.random.default_rng(seed)
    rng.integers(0, classes, rows)  # (the draws the labels took: seed 0's rows unchanged)
    model = rng.choice(["baseline", "resnet", "vit"], rows)
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), labels] += np.where(model == "vit", 2.0, 0.8)
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    flat = pa.array(probs.reshape(-1))
    table = pa.table(
        {
            "id": np.arange(rows),
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(flat, classes),
            "model": model,
        }
    )
    pq.write_table(table, path)
    return path


def binary(path: Path, rows: int = 2000, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    prob = np.clip(0.3 * labels + 0.7 * rng.random(rows), 0, 1)
    pq.write_table(pa.table({"label": labels, "prob": prob}), path)
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def eval_json(*args: str) -> dict:
    return json.loads(run("eval", *args, "--format", "json"))


# -- the page -----------------------------------------------------------------------------------


def check_self_contained(text: str) -> None:
    assert len(text.encode()) < MAX_BYTES
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"\b(src|href)\s*=", text), "no resource may be loaded"
    assert "@import" not in text and "url(" not in text


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pages of one module's tests (made once): ``eval`` (multiclass, grouped, with
    intervals), ``binary`` (AUC and ECE), ``compare``; ``dir`` holds their data."""
    tmp_path = tmp_path_factory.mktemp("reports")
    data = multiclass(tmp_path / "preds.parquet")
    out = {"dir": tmp_path, "eval": tmp_path / "eval.html", "binary": tmp_path / "binary.html"}
    common = ["-m", "ce", "-m", "acc", "-m", "ece", "-m", "confusion_matrix", "--by", "model"]
    run(
        "eval",
        str(data),
        *common,
        "--ci",
        "0.9",
        "--bootstrap",
        "200",
        "--report",
        str(out["eval"]),
    )
    run(
        "eval", str(binary(tmp_path / "bin.parquet")), "--preds", "prob", "-m", "auc",
        "-m", "ece", "--report", str(out["binary"]),
    )  # fmt: skip
    other = multiclass(tmp_path / "candidate.parquet", seed=1)
    candidate = pq.read_table(other)  # the same rows: the baseline's --by values
    pq.write_table(candidate.set_column(3, "model", pq.read_table(data)["model"]), other)
    out["compare"] = tmp_path / "compare.html"
    run(
        "compare", str(data), str(other), "-m", "ce", "-m", "acc", "--by", "model",
        "--bootstrap", "200", "--report", str(out["compare"]),
    )  # fmt: skip
    return out


def test_eval_report_content(reports: dict[str, Path]) -> None:
    tmp_path = reports["dir"]
    text = reports["eval"].read_text()
    check_self_contained(text)
    expected = eval_json(
        str(tmp_path / "preds.parquet"), "-m", "ce", "-m", "acc", "-m", "ece",
        "-m", "confusion_matrix", "--by", "model", "--ci", "0.9", "--bootstrap", "200",
    )  # fmt: skip
    for name in ("cross-entropy", "accuracy", "ece"):
        assert f">{fmt(expected['metrics'][name])}<" in text
        assert f">{fmt(expected['intervals'][name]['lower'])}<" in text
    for group in expected["groups"]:
        assert f">{group['key']['model']}<" in text
        assert f">{fmt(group['metrics']['accuracy'])}<" in text
    matrix = expected["metrics"]["confusion_matrix"]
    assert f">{int(matrix[0][0])}<" in text
    assert "Reliability diagram" in text and "Confusion matrix" in text
    # every convention side by side (--report implies --conventions all): explain's values
    explained = json.loads(run("explain", str(tmp_path / "preds.parquet"), "--format", "json"))
    assert "cross-entropy under each convention" in text
    for name, entry in explained["conventions"].items():
        assert f">{name}<" in text and f">{fmt(float(entry['value']))}<" in text
        assert html.escape(entry["sentence"], quote=False) in text
    assert text.count("<svg") >= 6  # 3 bars, heatmap, reliability diagram, conventions
    assert 'class="sortable"' in text


def test_binary_report_has_curves(reports: dict[str, Path]) -> None:
    text = reports["binary"].read_text()
    check_self_contained(text)
    assert "ROC curve" in text and "Precision-recall curve" in text
    assert text.count("<polyline") >= 3  # ROC, PR, reliability


def test_compare_report_content(reports: dict[str, Path]) -> None:
    tmp_path = reports["dir"]
    text = reports["compare"].read_text()
    check_self_contained(text)
    expected = json.loads(
        run(
            "compare",
            str(tmp_path / "preds.parquet"),
            str(tmp_path / "candidate.parquet"),
            "-m",
            "ce",
            "-m",
            "acc",
            "--by",
            "model",
            "--bootstrap",
            "200",
            "--format",
            "json",
        )
    )
    for entry in expected["metrics"].values():
        for key in ("baseline", "candidate", "delta", "lower", "upper"):
            assert f">{fmt(entry[key])}<" in text
    assert "Per group (model)" in text


def test_report_size_is_bounded(tmp_path: Path) -> None:
    """Many groups, bins and classes: the page stays small (tables and charts are capped)."""
    rng = np.random.default_rng(2)
    rows, classes = 6000, 60
    labels = rng.integers(0, classes, rows)
    probs = rng.dirichlet(np.ones(classes), rows).astype(np.float32)
    table = pa.table(
        {
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), classes),
            "user": rng.integers(0, 1000, rows),
        }
    )
    pq.write_table(table, tmp_path / "many.parquet")
    grouped, matrix = tmp_path / "grouped.html", tmp_path / "matrix.html"
    run(
        "eval", str(tmp_path / "many.parquet"), "-m", "acc", "-m", "ce", "-m", "ece:n_bins=1000",
        "--by", "user", "--report", str(grouped),
    )  # fmt: skip
    run(
        "eval", str(tmp_path / "many.parquet"), "-m", "confusion_matrix", "-m", "ece",
        "--report", str(matrix),
    )  # fmt: skip
    text = grouped.read_text()
    check_self_contained(text)
    users, counts = np.unique(table.column("user").to_numpy(), return_counts=True)
    assert f"The 200 groups with the most rows, of {len(users):,}" in text
    assert "First 100 of" in text
    order = sorted(range(len(users)), key=lambda i: -counts[i])  # stable: ties in key order
    shown, left = users[order[:200]], users[order[200:]]
    cells = set(re.findall(r'<td class="k"[^>]*>([^<]*)</td>', text))
    assert {str(u) for u in shown} <= cells and not {str(u) for u in left} & cells
    text = matrix.read_text()
    check_self_contained(text)
    assert "first 30 of 60 classes" in text


def test_largest_groups_keep_key_order_and_break_ties_by_it() -> None:
    groups = [
        {"key": {"g": k}, "rows": r} for k, r in zip("abcdef", [3, 9, 3, 1, 9, 3], strict=True)
    ]
    picked = largest_groups(groups, 4)
    assert [g["key"]["g"] for g in picked] == ["a", "b", "c", "e"]
    assert largest_groups(groups, 6) is groups


def test_report_text_is_escaped(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = 200
    pq.write_table(
        pa.table(
            {
                "label": rng.integers(0, 2, rows),
                "probs": pa.FixedSizeListArray.from_arrays(
                    pa.array(rng.dirichlet([1, 1], rows).astype(np.float32).reshape(-1)), 2
                ),
                "g": rng.choice(["<script>alert(1)</script>", "a&b"], rows),
            }
        ),
        tmp_path / "x.parquet",
    )
    out = tmp_path / "x.html"
    run("eval", str(tmp_path / "x.parquet"), "-m", "acc", "--by", "g", "--report", str(out))
    text = out.read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a&amp;b" in text


def test_unwritable_report_is_a_usage_error(tmp_path: Path) -> None:
    data = multiclass(tmp_path / "p.parquet", rows=50)
    result = CliRunner().invoke(
        main, ["eval", str(data), "--report", str(tmp_path / "missing" / "r.html")]
    )
    assert result.exit_code == 2 and "--report" in result.output


# -- in a real Chromium ------------------------------------------------------------------------


def _find() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    return ensure(_find, "chromium")


def headless(chromium: str, page: Path, tmp: Path, *args: str) -> tuple[str, str, list[str]]:
    """Run headless Chromium on ``page``: (stdout, stderr, URLs the page requested).

    Names are resolved to nothing (nothing could leave the machine anyway); Chromium's own
    background requests (updates, accounts) are told apart from the page's in the NetLog by
    their initiator."""
    netlog = tmp / f"netlog-{len(list(tmp.iterdir()))}.json"
    command = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp / 'profile'}", f"--log-net-log={netlog}", *args,
        page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr, page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    """The URLs requested on behalf of a page: every URL request whose initiator is an origin
    (a page's, here ``null`` for a file), not the browser's own ("not an origin")."""
    data = json.loads(netlog.read_text())
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in data["events"]
        if event["type"] == start
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != "not an origin"
    ]


def console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ("CONSOLE" in line and ("Uncaught" in line or ":ERROR:" in line or "Refused" in line))
        or "ERROR:CONSOLE" in line
    ]


def test_chromium_detects_requests_and_errors(chromium: str, tmp_path: Path) -> None:
    """The checks themselves: a page that loads an image and throws is caught by both."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><img src="https://example.com/x.png"><script>null.x</script></body></html>'
    )
    _, stderr, requests = headless(chromium, bad, tmp_path, "--dump-dom")
    assert requests == ["https://example.com/x.png"]
    assert console_errors(stderr)


@pytest.mark.parametrize("which", ["eval", "binary", "compare"])
def test_renders_in_chromium(
    chromium: str, reports: dict[str, Path], tmp_path: Path, which: str
) -> None:
    page = reports[which]
    dom, stderr, requests = headless(chromium, page, tmp_path, "--dump-dom")
    assert requests == []
    assert console_errors(stderr) == []
    assert dom.count("<svg") >= 1 and "<rect" in dom
    assert 'title="click to sort"' in dom  # the sorting script ran
    source = page.read_text()
    numbers = re.findall(r'<td data-v="[^"]*">([^<]+)</td>', source)
    assert numbers and all(f">{n}<" in dom for n in numbers)
    if which == "eval":
        assert dom.count("<svg") >= 6 and "Reliability: ece" in dom
        assert "cross-entropy by convention" in dom
    if which == "binary":
        assert "ROC curve" in dom and "<polyline" in dom


def test_screenshot(chromium: str, reports: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _, stderr, requests = headless(
        chromium, reports["eval"], tmp_path, f"--screenshot={shot}", "--window-size=1200,1600"
    )
    assert requests == [] and console_errors(stderr) == []
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    assert shot.stat().st_size > 20_000
    colours = {pixels[i : i + 3] for i in range(0, len(pixels), 3)}
    assert len(colours) > 20, "a blank or single-colour screenshot"
    assert bytes((0x00, 0x72, 0xB2)) in colours  # the bars' and the heatmap's Okabe-Ito blue
    assert bytes((0xFF, 0xFF, 0xFF)) in colours  # the page's background


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium
    writes); the scanline filters undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = 0
    channels = 3
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        filt, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + a) & 255
            elif filt == 2:
                line[i] = (line[i] + b) & 255
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa_, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa_ <= pb and pa_ <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        previous = line
        if channels == 4:
            out += bytes(v for i, v in enumerate(line) if i % 4 != 3)
        else:
            out += line
    return width, height, bytes(out)
