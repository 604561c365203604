"""The suite's own guards (tests/conftest.py): no test reads beside the repository, and in CI
only the CPU may skip a test."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import conftest

REPO = conftest.REPO


def test_the_golden_vectors_are_in_the_repository():
    assert conftest.GOLDEN.is_relative_to(REPO) and len(conftest.golden_vectors()) >= 20


SOME_REPO = Path("/work/some-project/clone")


@pytest.mark.parametrize(
    ("path", "outside"),
    [
        (SOME_REPO / "tests" / "data", False),
        (SOME_REPO.parent / "notes" / "golden.json", True),
        (str(SOME_REPO / ".." / "notes"), True),
        (bytes(SOME_REPO.parent / "notes"), True),
        (SOME_REPO.parent, True),
        (SOME_REPO.parent / ".cache" / "x", False),
        (Path("/usr/lib/x"), False),
        (3, False),  # a file descriptor
    ],
)
def test_what_lies_beside_a_repository(path, outside):
    assert conftest.outside_repository(path, SOME_REPO) is outside


def test_a_repository_in_a_common_folder_has_nothing_beside_it():
    for common in (Path("/"), Path(tempfile.gettempdir()), Path.home()):
        assert not conftest.outside_repository(common / "other", common / "clone")


HOOK_TEST = """
from pathlib import Path

import pytest

BESIDE = Path(__file__).resolve().parents[2] / "sibling" / "data.json"


def test_reads_beside():
    BESIDE.read_text()


def test_swallows_the_error():
    try:
        list(BESIDE.parent.iterdir())
    except Exception:
        pass


def test_reads_inside():
    assert Path(__file__).read_text()
"""


def test_reading_beside_the_repository_fails_the_test(tmp_path):
    """A clone laid out in tmp_path with a sibling folder: reading the sibling fails the test,
    even when the test swallows the error; reading inside passes."""
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "data.json").write_text("{}")
    tests = tmp_path / "clone" / "tests"
    tests.mkdir(parents=True)
    (tests / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tests / "test_inner.py").write_text(HOOK_TEST)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "sibling")}  # not the clone's folder
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tests)],
        cwd=tests.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # the reader fails at the read, and both fail at teardown (the swallowed one only there)
    assert "1 failed, 2 passed, 2 errors" in run.stdout.strip().splitlines()[-1], run.stdout
    assert "OutsideRepositoryError" in run.stdout
    assert "ERROR tests/test_inner.py::test_swallows_the_error" in run.stdout
    assert "PASSED tests/test_inner.py::test_reads_inside" in run.stdout


INNER_TEST = """
import pytest

def test_no_server():
    pytest.skip("prometheus is not on PATH")

def test_cpu():
    pytest.skip("this CPU has no AVX-512: nothing to compare")

def test_runs():
    assert True
"""


@pytest.mark.parametrize("ci", [True, False])
def test_in_ci_only_the_cpu_may_skip(tmp_path, ci):
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **({"CI": "true"} if ci else {})}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = run.stdout.strip().splitlines()[-1]
    if ci:
        assert "1 failed, 1 passed, 1 skipped" in summary, run.stdout
        assert "skipped in CI (prometheus is not on PATH)" in run.stdout
    else:
        assert "1 passed, 2 skipped" in summary, run.stdout
