"""Engines that evaluate prediction files: local (thread pool); dask (see `engine.dask`).

The public engine API, which the Dask engine is built on: a `Job` describes an evaluation,
`JobRun` plans it, resumes it from a checkpoint and merges units' states exactly, an
`Evaluator` turns one unit of work into its `Partial` (the grouped state), and
`Partial.result` gives the `Result`."""

from .local import Evaluator, Job, JobRun, Result, RunStart, evaluate, run_job
from .partial import GroupIndex, Partial

__all__ = [
    "Evaluator",
    "GroupIndex",
    "Job",
    "JobRun",
    "Partial",
    "Result",
    "RunStart",
    "evaluate",
    "run_job",
]
