"""The ``streammetric`` command's entry point: the console script (`run`) and ``python -m
streammetric``. ``import streammetric`` makes none of these settings; `load` makes them for the
command's process, before NumPy loads, then imports `streammetric.cli`.

OpenBLAS (which NumPy loads) starts a thread per core but one, which spin before they sleep
whether or not BLAS is ever called: 0.17-0.2 s of CPU and 45-66 ms of wall time per ``eval`` on
a 2-core machine (``scripts/bench.py`` runs every process so). The command calls no BLAS and runs
its own threads, so OpenBLAS gets one thread (``OPENBLAS_NUM_THREADS=1``, as Dask sets for its
workers), unless the environment says otherwise.

The cyclic garbage collector is paused while the command's modules load NumPy, pyarrow, click
and the package (some 55 collections over new objects that all stay in use, ~9 ms of the
command's start-up), and the objects they made are then handed to ``gc.freeze()``: resumed as it
was, the collector's first pass would go over all of them (~31,000, ~7 ms, to free a few hundred
left in reference cycles, which stay, as the modules do, until the process ends).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable


def load() -> Callable[[], None]:
    """Make the command's process settings, then import it: `streammetric.cli.run`."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    collecting = gc.isenabled()  # a process that turned it off keeps it off
    gc.disable()
    try:
        from .cli import run as command
    finally:
        if collecting:
            gc.freeze()
            gc.enable()
    return command


def run() -> None:
    """The ``streammetric`` command (see `streammetric.cli.run`); Ctrl-C while its modules
    load ends it as Ctrl-C during a command does (no traceback; exit 130)."""
    try:
        command = load()
    except KeyboardInterrupt:
        sys.stderr.write("streammetric: interrupted\n")
        raise SystemExit(130) from None
    command()


if __name__ == "__main__":  # python -m streammetric
    run()
