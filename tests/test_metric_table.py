"""The generated tables of metrics and functions match the modules that define them.

``scripts/gen_metric_table.py`` writes ``streammetric/_metric_table.py``,
``streammetric/functional/_table.py`` and the README's metric table from the modules; a metric
added, renamed or given an alias (or a function added to a functional module's ``__all__``)
without running it fails here.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import streammetric as sm

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_metric_table.py"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_metric_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_files_are_up_to_date():
    generator = _generator()
    for path, text in generator.expected().items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} is stale: run scripts/gen_metric_table.py"
        )


def test_the_check_mode_finds_nothing_stale():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_the_table_is_what_the_registry_holds():
    """Every registered name and alias is in the table, with the module that registers it."""
    from streammetric._metric_table import METRICS

    listed = sm.list_metrics()  # imports every module
    assert {row.name: sorted(row.aliases) for row in METRICS} == {
        name: sorted(aliases) for name, aliases in listed.items()
    }
    for row in METRICS:
        klass = getattr(sm.metrics, row.cls)
        assert klass.__module__ == f"streammetric.metrics.{row.module}"
        assert klass.registered_name == row.name
        assert getattr(sm, row.cls) is klass and row.cls in sm.__all__


def test_the_function_table_is_every_public_function():
    from streammetric.functional._table import FUNCTIONS

    for name, module in FUNCTIONS.items():
        assert getattr(sm.functional, name) is getattr(
            importlib.import_module(f"streammetric.functional.{module}"), name
        )
    assert sorted(sm.functional.__all__) == sorted(FUNCTIONS)


def test_the_cli_lists_the_table():
    from click.testing import CliRunner

    from streammetric._metric_table import METRICS
    from streammetric.cli import main

    lines = CliRunner().invoke(main, ["metrics"]).output.splitlines()[: len(METRICS)]
    assert [line.split()[0] for line in lines] == [row.name for row in METRICS]
    assert "crossentropy             ce, cross-entropy" in lines
