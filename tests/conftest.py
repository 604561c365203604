"""Shared fixtures: the golden vectors and the shared/ folder beside the repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def golden() -> list[dict]:
    return json.loads((SHARED / "golden" / "cross_entropy.json").read_text())["vectors"]
