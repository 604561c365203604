"""The README stays true: its generated section matches the generator, its commands exist, its
links resolve; the measurement history lives in docs/performance.md and the README links to it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERFORMANCE = ROOT / "docs" / "performance.md"
DOCS = (ROOT / "README.md", PERFORMANCE)
BEGIN, END = (
    "<!-- BEGIN conventions: scripts/gen_conventions_doc.py -->",
    "<!-- END conventions -->",
)


def test_conventions_section_is_generated_from_the_code():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip()
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_conventions_doc.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert section == generated, (
        "README is stale: run scripts/gen_conventions_doc.py and paste its output"
    )


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert [line.split()[0] for line in block] == ["scripts/demo", "scripts/test"]
    for line in block:
        assert (ROOT / line.split()[0]).stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    level = heading.split()[0]
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.M).search(text, start + len(heading) + 2)
    return text[start : end.start() if end else len(text)]


def _anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_performance_links_to_the_measurement_log():
    """The README keeps the current tables; the history and what was tried are in
    docs/performance.md, which links back."""
    readme = (ROOT / "README.md").read_text()
    assert "](docs/performance.md)" in _section(readme, "## Performance")
    log = PERFORMANCE.read_text()
    assert "](../README.md#performance)" in log
    for heading in ("## Method", "## What was tried and not kept"):
        assert f"\n{heading}\n" in log, heading


def test_relative_links_resolve():
    """Every relative link in the README and docs/performance.md names a file that exists, and
    its #anchor, if any, a heading of that file."""
    for doc in DOCS:
        text = doc.read_text()
        links = re.findall(r"\]\(([^)\s]+)\)", text)
        assert links or doc.name == "README.md"
        for link in links:
            if re.match(r"[a-z]+:", link):
                continue
            target, _, anchor = link.partition("#")
            path = (doc.parent / target).resolve() if target else doc
            assert path.is_file(), f"{doc.name}: {link} does not exist"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: {link}"


def test_benchmark_commands_exist():
    """The commands that reproduce the figures name scripts that exist, and `bench.py --only`
    names sections that bench.py has."""
    bench = (ROOT / "scripts" / "bench.py").read_text()
    default = re.search(r'"--only", default="([^"]+)"', bench)
    assert default, "bench.py's --only default not found"
    sections = set(default.group(1).split(","))
    for doc in DOCS:
        text = doc.read_text()
        scripts = set(re.findall(r"scripts/([\w.]+\.py)\b", text))
        assert "bench.py" in scripts, doc.name
        for script in scripts:
            assert (ROOT / "scripts" / script).is_file(), f"{doc.name}: scripts/{script}"
        for only in re.findall(r"bench\.py[^`\n]*?--only ([\w,]+)", text):
            assert set(only.split(",")) <= sections, f"{doc.name}: --only {only}"


def test_the_adding_a_metric_example_is_the_code_and_runs():
    """Each ``# PATH`` block of "Adding a metric" is in that file as shown (a ``# ...`` line
    separates excerpts), so the suite runs the example's code; the ``>>>`` block runs here."""
    import doctest

    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("### Adding a metric")
    fenced, end = False, len(lines)
    for number in range(start + 1, len(lines)):  # up to the next heading outside code
        fenced ^= lines[number].startswith("```")
        if not fenced and re.match(r"#{1,3} ", lines[number]):
            end = number
            break
    section = "\n".join(lines[start:end])
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    paths = []
    for block in blocks:
        first, _, code = block.partition("\n")
        if block.startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(block, {}, "README", None, 0)
            runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
            runner.run(test)
            assert runner.summarize(verbose=False).failed == 0
            continue
        path = first.removeprefix("# ")
        paths.append(path)
        source = (ROOT / path).read_text()
        for excerpt in code.split("# ...\n"):
            assert excerpt in source, f"README's excerpt of {path} is not in it:\n{excerpt}"
    assert paths == [
        "streammetric/functional/regression.py",
        "streammetric/metrics/regression.py",
        "tests/metrics/test_regression.py",
    ]
