"""Engines that evaluate prediction files: local (thread pool); dask (see `engine.dask`)."""

from .local import Job, Result, evaluate, run_job

__all__ = ["Job", "Result", "evaluate", "run_job"]
