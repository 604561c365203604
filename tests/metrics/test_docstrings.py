"""Every public metric class says what each of its constructor's parameters does.

The class docstring's numpy-style ``Parameters`` section names every parameter of the
constructor (``name, output_names : ...`` documents several at once).
"""

from __future__ import annotations

import inspect

import pytest

import streammetric as sm
from streammetric._metric_table import METRICS

CLASSES = sorted({row.cls for row in METRICS} | {"EvalMetric"})


def documented(klass: type) -> set[str]:
    """The names the ``Parameters`` section of the class's docstring describes."""
    lines = (inspect.getdoc(klass) or "").splitlines()
    if "Parameters" not in lines:
        return set()
    start = lines.index("Parameters") + 2  # after the dashes
    names: set[str] = set()
    for line in lines[start:]:
        if line.startswith(">>>") or line.startswith("---"):
            break
        if line and not line[0].isspace():
            names.update(n.strip().lstrip("*") for n in line.split(" : ")[0].split(","))
    return names


def parameters(klass: type) -> set[str]:
    """The constructor's parameters (``**kwargs`` as ``kwargs``)."""
    return set(inspect.signature(klass).parameters)


@pytest.mark.parametrize("klass", CLASSES)
def test_every_parameter_is_described(klass):
    cls = getattr(sm, klass)
    missing = parameters(cls) - documented(cls)
    assert not missing, f"{klass}'s docstring does not describe {sorted(missing)}"
    assert documented(cls) <= parameters(cls), "a described parameter the constructor lacks"


def test_the_section_parser():
    class Example:
        """Text.

        Parameters
        ----------
        a, b : int
            What they do.
        c : str, default "x"
            Described over
            two lines.

        >>> 1
        1
        """

    assert documented(Example) == {"a", "b", "c"}
