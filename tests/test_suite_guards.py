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


@pytest.mark.parametrize(
    ("path", "outside"),
    [
        (REPO / "tests" / "data", False),
        (REPO.parent / "shared" / "golden" / "cross_entropy.json", True),
        (str(REPO / ".." / "shared"), True),
        (bytes(REPO.parent / "shared"), True),
        (REPO.parent / ".cache" / "x", False),
        (Path(tempfile.gettempdir()) / "x", False),
        (3, False),  # a file descriptor
    ],
)
def test_what_lies_beside_the_repository(path, outside):
    assert conftest.outside_repository(path) is outside


def test_beside_is_the_whole_parent_folder_unless_it_is_a_common_one():
    common = {Path("/"), Path(tempfile.gettempdir()), Path.home()}
    assert conftest.outside_repository(REPO.parent / "other-repo") is (REPO.parent not in common)


def test_reading_beside_the_repository_fails_the_test():
    beside = REPO.parent / "shared" / "golden" / "cross_entropy.json"
    for read in (beside.read_text, lambda: list((REPO.parent / "shared").iterdir())):
        with pytest.raises(conftest.OutsideRepositoryError, match="outside the repository"):
            read()
        # the guard also fails a test that swallowed the error: take the record back
        assert conftest.refused.pop().startswith(str(REPO.parent / "shared"))


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
