"""Write the tables of built-in metrics and metric functions from the modules that define them.

    .venv/bin/python scripts/gen_metric_table.py            # rewrite what is stale
    .venv/bin/python scripts/gen_metric_table.py --check    # exit 1 if anything is stale

The modules are found, not listed: every ``@register``ed class of ``streammetric/metrics/*.py``
and every name in the ``__all__`` of ``streammetric/functional/*.py`` (leading underscore: not
scanned). Written:

* ``streammetric/_metric_table.py``: a row per metric (class, module, registered name,
  aliases), from which `streammetric` and `streammetric.metrics` make their lazy attributes and
  ``__all__``, `streammetric.create` imports the one module that has a name, and
  ``streammetric metrics`` prints its list;
* ``streammetric/functional/_table.py``: each function's module, for `streammetric.functional`;
* the README's metric table, between its ``<!-- BEGIN metrics`` and ``<!-- END metrics -->``
  markers (class and options from the signature, value from the docstring's first paragraph).

Deterministic: the same code gives the same files. ``tests/test_metric_table.py`` fails when a
file is stale.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streammetric.metrics import EvalMetric

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "streammetric"
METRIC_TABLE = PACKAGE / "_metric_table.py"
FUNCTION_TABLE = PACKAGE / "functional" / "_table.py"
README = ROOT / "README.md"
BEGIN = "<!-- BEGIN metrics: scripts/gen_metric_table.py -->"
END = "<!-- END metrics -->"
#: the arguments every metric takes (MXNet's); the README's table shows the others
COMMON = ("name", "output_names", "label_names")


def public_modules(package: str) -> list[str]:
    """The modules of ``streammetric.<package>`` whose names do not start with ``_``."""
    return sorted(p.stem for p in (PACKAGE / package).glob("*.py") if not p.stem.startswith("_"))


def metric_rows() -> list[tuple[type[EvalMetric], str, str, tuple[str, ...]]]:
    """(class, module, registered name, aliases) of every built-in metric, module by module in
    name order, classes in the order their module defines them."""
    from streammetric.metrics import registry

    rows: list[tuple[type[EvalMetric], str, str, tuple[str, ...]]] = []
    for module_name in public_modules("metrics"):
        module = importlib.import_module(f"streammetric.metrics.{module_name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, EvalMetric)
                and value.__module__ == module.__name__
                and vars(value).get("registered_name") is not None
            ):
                name = str(value.registered_name)
                aliases = tuple(sorted(a for a, t in registry._ALIASES.items() if t == name))
                rows.append((value, module_name, name, aliases))
    return rows


def function_rows() -> list[tuple[str, str]]:
    """(name, module) of every public name of the functional modules."""
    rows: list[tuple[str, str]] = []
    for module_name in public_modules("functional"):
        module = importlib.import_module(f"streammetric.functional.{module_name}")
        rows.extend((name, module_name) for name in module.__all__)
    return rows


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's (isort's) order-by-type: CONSTANTS, then Classes, then the rest."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def _names_block(indent: str, names: Iterable[str]) -> str:
    return "".join(f'{indent}"{name}",\n' for name in sorted(names, key=_isort_key))


def _type_imports(modules: dict[str, list[str]], prefix: str) -> str:
    lines = []
    for module, names in sorted(modules.items()):
        joined = ", ".join(sorted(names, key=_isort_key))
        line = f"    from {prefix}{module} import {joined}"
        if len(line) <= 100:
            lines.append(line + "\n")
        else:
            inner = "".join(f"        {n},\n" for n in sorted(names, key=_isort_key))
            lines.append(f"    from {prefix}{module} import (\n{inner}    )\n")
    return "".join(lines)


HEADER = '''"""{what}.

Written by ``scripts/gen_metric_table.py`` from the modules themselves: do not edit
(``tests/test_metric_table.py`` fails when this file is stale). {why}
"""
'''


def formatted(text: str, path: Path) -> str:
    """``text`` as ``ruff format`` leaves it (the repository's style, line length 100)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def render_metric_table() -> str:
    rows = metric_rows()
    modules: dict[str, list[str]] = {}
    for klass, module, _, _ in rows:
        modules.setdefault(module, []).append(klass.__name__)
    entries = "".join(
        f"    Row({klass.__name__!r}, {module!r}, {name!r}, {aliases!r}),\n".replace("'", '"')
        for klass, module, name, aliases in sorted(rows, key=lambda row: row[2])
    )
    why = (
        "Read without importing\nthe metric modules: `streammetric` and `streammetric.metrics` "
        "make their lazy attributes and\n``__all__`` from it, `create` imports the one module "
        "that has a name, ``streammetric metrics``\nlists it. ``__all__`` (the class names) is "
        "for the type checkers' ``from ._metric_table import *``."
    )
    text = (
        HEADER.format(what="The built-in metrics, one row each", why=why)
        + "\nfrom typing import TYPE_CHECKING, NamedTuple\n\n"
        + "if TYPE_CHECKING:\n"
        + _type_imports(modules, ".metrics.")
        + "\n\nclass Row(NamedTuple):\n"
        + '    """A built-in metric: its class, the module of `streammetric.metrics` that defines'
        + " it, the\n    name `create` knows it by (``@register``) and its other names"
        + ' (``@alias``)."""\n\n'
        + "    cls: str\n    module: str\n    name: str\n    aliases: tuple[str, ...]\n\n\n"
        + "#: every built-in metric, by registered name\n"
        + f"METRICS: tuple[Row, ...] = (\n{entries})\n\n"
        + f"__all__ = [\n{_names_block('    ', [r[0].__name__ for r in rows])}]\n"
    )
    return formatted(text, METRIC_TABLE)


def render_function_table() -> str:
    rows = function_rows()
    modules: dict[str, list[str]] = {}
    for name, module in rows:
        modules.setdefault(module, []).append(name)
    entries = "".join(
        f'    "{name}": "{module}",\n'
        for name, module in sorted(rows, key=lambda r: _isort_key(r[0]))
    )
    why = (
        "Read by\n`streammetric.functional` for its lazy attributes and ``__all__``; ``__all__`` "
        "is for the type\ncheckers' ``from ._table import *``."
    )
    text = (
        HEADER.format(what="The public names of the functional modules", why=why)
        + "\nfrom typing import TYPE_CHECKING\n\n"
        + "if TYPE_CHECKING:\n"
        + _type_imports(modules, ".")
        + "\n#: every public name of `streammetric.functional`: name -> module\n"
        + f"FUNCTIONS = {{\n{entries}}}\n\n"
        + f"__all__ = [\n{_names_block('    ', [r[0] for r in rows])}]\n"
    )
    return formatted(text, FUNCTION_TABLE)


def _default(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _call(klass: type) -> str:
    """``Class(option=default, ...)`` without the arguments every metric takes."""
    shown = []
    for parameter in inspect.signature(klass).parameters.values():
        if parameter.name in COMMON or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        if parameter.default is parameter.empty:
            shown.append(parameter.name)
        else:
            shown.append(f"{parameter.name}={_default(parameter.default)}")
    return f"{klass.__name__}({', '.join(shown)})"


def summary(klass: type) -> str:
    """The first paragraph of the class's docstring, on one line, without Sphinx's roles
    (``:class:`Loss``` -> ```Loss```) and with a final ``::`` (a literal block follows) as ``.``."""
    doc = inspect.getdoc(klass) or ""
    text = " ".join(doc.split("\n\n")[0].split())
    text = re.sub(r":[a-z]+:`", "`", text)
    return text[:-2] + "." if text.endswith("::") else text


def render_readme_table() -> str:
    lines = [
        "| metric | `create` names | value |",
        "|---|---|---|",
    ]
    for klass, _, name, aliases in metric_rows():
        names = ", ".join(f"`{n}`" for n in (name, *aliases))
        cells = (f"`{_call(klass)}`", names, summary(klass))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def readme_with_table(readme: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return f"{readme[:start]}\n{render_readme_table()}\n{readme[end:]}"


def expected() -> dict[Path, str]:
    """Each generated file's text, as the code makes it now."""
    return {
        METRIC_TABLE: render_metric_table(),
        FUNCTION_TABLE: render_function_table(),
        README: readme_with_table(README.read_text()),
    }


def stale() -> list[Path]:
    return [path for path, text in expected().items() if _text(path) != text]


def _text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args()
    if args.check:
        paths = stale()
        for path in paths:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/gen_metric_table.py)")
        sys.exit(1 if paths else 0)
    for path, text in expected().items():
        if _text(path) != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
