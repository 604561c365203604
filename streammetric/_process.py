"""Settings made when streammetric is imported, before NumPy loads.

OpenBLAS (which NumPy loads) starts a thread per core but one, which spin before they sleep
whether or not BLAS is ever called: 0.17-0.2 s of CPU and 45-66 ms of wall time per ``eval`` on
a 2-core machine (``scripts/bench.py`` runs every process so). The command calls no BLAS and runs
its own threads, so in its process OpenBLAS gets one thread (``OPENBLAS_NUM_THREADS=1``, as
Dask sets for its workers), unless the environment says otherwise; importing streammetric into
another program leaves it alone.

In every process, the cyclic garbage collector is paused while ``import streammetric`` loads
NumPy, pyarrow and the package (some 55 collections over new objects, ~9 ms of the command's
~170 ms start-up) and restored by `resume_gc`, which the package's ``__init__`` calls when its
imports end, however they end. Resumed as it was, the collector's first pass would then go over
every object the imports made (~31,000, ~7 ms, to free a few hundred left in reference cycles);
in the command's process, those objects are first moved out of its sight with ``gc.freeze()``,
so no pass goes over them (the few cycles stay, as the modules do, until the process ends).
Another program's objects are left to it.
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
        if _COMMAND:
            gc.freeze()
        gc.enable()


_COMMAND = is_command()
if _COMMAND:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_gc_paused = gc.isenabled()  # a program that turned it off keeps it off
gc.disable()
