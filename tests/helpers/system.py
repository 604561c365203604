"""The system programs the tests run for real (Prometheus, the Pushgateway, Chromium): found on
PATH, else installed once by scripts/install_system_deps (under a lock: pytest-xdist workers may
ask at the same time); where they cannot be had, the test skips, and fails with ``CI`` set."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install_system_deps"
Found = TypeVar("Found")


def unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)")
    pytest.skip(message)


def ensure(find: Callable[[], Found | None], what: str) -> Found:
    """``find()``'s programs, after installing them if they are missing."""
    found = find()
    if found is None:
        lock_path = Path(tempfile.gettempdir()) / "streammetric-install-system-deps.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = find()
            if found is None:
                result = subprocess.run(
                    [str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900
                )
                found = find()
                if found is None:
                    unavailable(
                        f"{what} missing and scripts/install_system_deps failed "
                        f"(exit {result.returncode}): {result.stderr.strip()[-500:]}"
                    )
    return found
