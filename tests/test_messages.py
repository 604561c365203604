"""Error messages: no f-string that lost its `f` (torcheval printed `{num_tasks}` literally)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "streammetric"
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.\[\]'\"]*(![rsa])?(:[^{}]*)?\}")


def _raised_literals(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            for arg in node.exc.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield node.lineno, arg.value


def test_no_error_message_has_a_placeholder_without_f_prefix():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _raised_literals(ast.parse(path.read_text(), str(path))):
            if PLACEHOLDER.search(text) and "{{" not in text:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert not offenders, "\n".join(offenders)


def test_the_check_catches_a_lost_f_prefix():
    tree = ast.parse('raise ValueError("got {value} at row {row}")')
    assert [PLACEHOLDER.search(text) is not None for _, text in _raised_literals(tree)] == [True]
