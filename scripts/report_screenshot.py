"""Make the README's screenshot of the HTML report from the sample data.

Runs ``streammetric eval sample_data/probs -m ce -m acc -m ece -m confusion_matrix --convention
keras --by model --ci 0.95 --report ...`` (keras: a finite cross-entropy to chart) (writing the sample data first with scripts/make_sample_data.py when
``sample_data/`` is missing) and has headless Chromium (Debian's ``chromium``; see
scripts/install_system_deps) take a 1200x1600 screenshot of the page.

Usage: python scripts/report_screenshot.py [-o docs/report.png] [--html KEEP.html]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "report.png")
    parser.add_argument("--html", type=Path, help="Also keep the report's HTML here.")
    parser.add_argument(
        "--window-size", default="1200,1600", help="WIDTH,HEIGHT (default 1200,1600)"
    )
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("report_screenshot: chromium not found; run scripts/install_system_deps")
    data = REPO / "sample_data"
    if not (data / "probs").is_dir():
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "make_sample_data.py"), str(data)], check=True
        )
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "streammetric",
                "eval",
                "sample_data/probs",
                "-m",
                "ce",
                "-m",
                "acc",
                "-m",
                "ece",
                "-m",
                "confusion_matrix",
                "--convention",
                "keras",
                "--by",
                "model",
                "--ci",
                "0.95",
                "--report",
                str(page),
            ],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        if args.html is not None:
            shutil.copyfile(page, args.html)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                f"--window-size={args.window_size}",
                f"--screenshot={args.output.resolve()}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(f"report_screenshot: wrote {args.output} ({args.output.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
