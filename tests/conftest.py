"""Shared fixtures and the suite's two guards.

* The golden vectors: ``tests/data/golden/cross_entropy.json``, produced by running the real
  frameworks (Keras, tf.keras, PyTorch, MXNet, scikit-learn) on the inputs they hold.
* No test reads outside the repository: a fresh clone has nothing beside it. An audit hook
  (`sys.addaudithook`) fails any test that opens or lists a path in the folder that holds the
  repository, other than the repository itself (and the interpreter's prefixes and hidden
  folders such as ``~/.config``, when they happen to lie there). A repository directly in a
  common folder (/, the temporary folder, home) has no folder of its own around it: there the
  guard is off (pytest's temporary paths and the tools' caches live beside it).
* With ``CI`` set, a skipped test fails, unless the skip says the CPU cannot run it: CI must run
  every real component (Prometheus, Dask, ...) it can, and a golden-vector test never skips.

Tests marked ``slow`` (up to a minute or more on a busy 2-core machine) run first: with
scripts/test's ``pytest -n 2 --dist loadscope --no-loadscope-reorder`` each worker starts on the
module of one of them and the other modules fill in around them, instead of one worker idling
while the other ends on a slow test that happened to come last.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Keras 3 on its torch backend (the tests' torch is a dependency already; no TensorFlow or JAX):
# set before anything imports Keras, the doctests of streammetric.integrations.keras included
os.environ.setdefault("KERAS_BACKEND", "torch")

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden" / "cross_entropy.json"
#: skip reasons that CI accepts: what this CPU cannot run
CPU_SKIP_PREFIXES = ("this CPU has no", "this machine has no CUDA")


def golden_vectors() -> list[dict]:
    return json.loads(GOLDEN.read_text())["vectors"]


@pytest.fixture(scope="session")
def golden() -> list[dict]:
    return golden_vectors()


@pytest.fixture
def vector_metrics() -> Iterator[None]:
    """The vector-valued test metrics (tests/helpers/vector_metrics.py) registered for one test
    only: the tests that go through every registered metric never meet them."""
    from tests.helpers import vector_metrics

    vector_metrics.register_metrics()
    yield
    vector_metrics.unregister_metrics()


# --- no test reads outside the repository ----------------------------------------------------


class OutsideRepositoryError(RuntimeError):
    """A test opened or listed a path beside the repository (a sibling folder of the clone)."""


def _prefix(path: Path | str) -> str:
    return os.path.join(os.path.abspath(path), "")


_COMMON = {_prefix(p) for p in ("/", tempfile.gettempdir(), Path.home())}
_INTERPRETER = (_prefix(sys.prefix), _prefix(sys.base_prefix))
_GUARDED_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})
#: paths the hook refused, in this process (a test that catches the error still fails)
refused: list[str] = []


def outside_repository(path: Any, repo: Path = REPO) -> bool:
    """Whether ``path`` lies beside ``repo``: in the folder holding it, not inside it (nor in
    the interpreter's prefixes, nor a hidden folder such as ``~/.cache``). Never, when that
    folder is a common one (see the module's docstring)."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    beside = _prefix(repo.parent)
    if not isinstance(path, str) or beside in _COMMON:
        return False
    full = _prefix(path)
    if not full.startswith(beside) or full.startswith((_prefix(repo), *_INTERPRETER)):
        return False
    return not full[len(beside) :].startswith(".")


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


# --- the slow tests first --------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` first, in their order; the others keep theirs (a stable sort,
    after pytest's own reordering by fixture)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
