"""The integrations stay out of ``import streammetric``: no framework loads until its own
module is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

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


@pytest.mark.slow  # three frameworks' imports: 10 to 20 s on a busy 2-core machine
def test_each_integration_loads_its_own_framework():
    """In one interpreter (the frameworks take seconds to import): each integration's import
    adds its framework and none of the others'. The Hugging Face one needs neither Transformers
    nor torch (the Trainer hands it tensors); Lightning itself may import Transformers."""
    code = """
        import os, sys
        os.environ["KERAS_BACKEND"] = "torch"
        frameworks = ["torch", "lightning", "keras", "transformers"]
        for name in ["huggingface", "keras", "lightning"]:
            __import__(f"streammetric.integrations.{name}")
            print(name, *[m for m in frameworks if m in sys.modules])
        """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    huggingface, keras, lightning = (line.split()[1:] for line in done.stdout.splitlines())
    assert huggingface == []
    assert keras == ["torch", "keras"]  # its backend, torch, here
    assert {"torch", "lightning", "keras"} <= set(lightning)
