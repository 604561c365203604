"""Shared fixtures and the suite's two guards.

* The golden vectors: ``tests/data/golden/cross_entropy.json``, produced by running the real
  frameworks (Keras, tf.keras, PyTorch, MXNet, scikit-learn) on the inputs they hold.
* No test reads outside the repository: a fresh clone has nothing beside it. An audit hook
  (`sys.addaudithook`) fails any test that opens or lists a path in the folder that holds the
  repository, other than the repository itself (and the interpreter's prefixes and hidden
  folders such as ``~/.config``, when they happen to lie there); where that folder is a common
  one (/, the temporary folder, home), only its ``shared`` folder.
* With ``CI`` set, a skipped test fails, unless the skip says the CPU cannot run it: CI must run
  every real component (Prometheus, Dask, ...) it can, and a golden-vector test never skips.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden" / "cross_entropy.json"
#: skip reasons that CI accepts: what this CPU cannot run
CPU_SKIP_PREFIXES = ("this CPU has no",)


def golden_vectors() -> list[dict]:
    return json.loads(GOLDEN.read_text())["vectors"]


@pytest.fixture(scope="session")
def golden() -> list[dict]:
    return golden_vectors()


# --- no test reads outside the repository ----------------------------------------------------


class OutsideRepositoryError(RuntimeError):
    """A test opened or listed a path beside the repository (e.g. ``../shared``)."""


def _prefix(path: Path | str) -> str:
    return os.path.join(os.path.abspath(path), "")


#: where nothing may be read: the folder holding the repository, or only its ``shared`` folder
#: when that folder is a common one (/, the temporary folder, home), where tests and tools have
#: their own business (pytest's temporary paths, caches)
_COMMON = {_prefix(p) for p in ("/", tempfile.gettempdir(), Path.home())}
_BESIDE = _prefix(REPO.parent if _prefix(REPO.parent) not in _COMMON else REPO.parent / "shared")
_ALLOWED = tuple(_prefix(p) for p in (REPO, sys.prefix, sys.base_prefix))
_GUARDED_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})
#: paths the hook refused, in this process (a test that catches the error still fails)
refused: list[str] = []


def outside_repository(path: Any) -> bool:
    """Whether ``path`` lies beside the repository: in its parent folder but not inside it."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return False
    full = _prefix(path)
    if not full.startswith(_BESIDE) or full.startswith(_ALLOWED):
        return False
    return not full[len(_prefix(REPO.parent)) :].startswith(".")  # ~/.config, ~/.cache, ...


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _GUARDED_EVENTS and args and outside_repository(args[0]):
        refused.append(str(args[0]))
        raise OutsideRepositoryError(
            f"a test read {args[0]!r}, outside the repository {REPO}: tests must carry their data"
        )


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _nothing_read_outside_the_repository():
    before = len(refused)
    yield
    if len(refused) > before:
        pytest.fail(f"the test read outside the repository: {', '.join(refused[before:])}")


# --- in CI, only the CPU may skip a test -----------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if not (os.environ.get("CI") and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(CPU_SKIP_PREFIXES):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI ({reason}): CI must run every test this CPU can run"
