"""The public surface of streammetric.export, and the CI rule of the system-program fixtures."""

from __future__ import annotations

import pytest

import streammetric.export as export

from . import conftest


def test_all_is_sorted_and_importable() -> None:
    assert export.__all__ == sorted(export.__all__)
    for name in export.__all__:
        assert getattr(export, name) is not None


def test_missing_programs_skip_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no prometheus"):
        conftest.unavailable("no prometheus")


def test_missing_programs_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no prometheus \\(CI is set"):
        conftest.unavailable("no prometheus")
