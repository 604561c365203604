"""The README stays true: its generated section matches the generator, its commands exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
