"""Settings of a ``streammetric`` command's process, made on import, before NumPy loads.

OpenBLAS (which NumPy loads) starts a thread per core but one, which spin before they sleep
whether or not BLAS is ever called: 0.17-0.2 s of CPU and 45-66 ms of wall time per ``eval`` on
a 2-core machine (``scripts/bench.py`` runs every process so). The command calls no BLAS and runs
its own threads, so in its process OpenBLAS gets one thread (``OPENBLAS_NUM_THREADS=1``, as
Dask sets for its workers), unless the environment says otherwise.

The cyclic garbage collector is paused while the command imports NumPy, pyarrow, click and
streammetric (about 60 passes over the new objects, none of them garbage: ~9 ms of a ~170 ms
start-up) and resumed by `resume_gc` when the command starts (`streammetric.cli.run`).

Importing streammetric into another program changes nothing.
"""

from __future__ import annotations

import gc
import os
import sys


def is_command() -> bool:
    """Whether this process is the ``streammetric`` command: its script, or ``python -m
    streammetric.cli``."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return script == "streammetric" or sys.orig_argv[1:3] == ["-m", "streammetric.cli"]


def resume_gc() -> None:
    """Resume the garbage collector if the import of this module paused it."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.enable()


_gc_paused = False
if is_command():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if gc.isenabled():
        gc.disable()
        _gc_paused = True
