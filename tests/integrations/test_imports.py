"""The integrations stay out of ``import streammetric``: no framework loads until its own
module is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FRAMEWORKS = ["torch", "lightning", "pytorch_lightning", "keras", "transformers", "accelerate"]


def loaded_after(code: str) -> list[str]:
    """The frameworks (and streammetric.integrations) in ``sys.modules`` after ``code``, in a
    fresh interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import sys
        names = [*{FRAMEWORKS!r}, "streammetric.integrations"]
        print(" ".join(m for m in names if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_import_streammetric_loads_no_framework():
    code = """
        import streammetric as sm
        sm.create(["ce", "acc"]).update([0, 1], [[0.25, 0.75], [0.5, 0.5]])
        """
    assert loaded_after(code) == []
    assert loaded_after("import streammetric.integrations") == ["streammetric.integrations"]


def test_each_integration_loads_its_own_framework():
    assert "lightning" in loaded_after("import streammetric.integrations.lightning")
    assert "keras" not in loaded_after("import streammetric.integrations.lightning")
