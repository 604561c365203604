"""The Dask engine: the local engine's bits on real clusters, lost workers, resume, CLI."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm
from streammetric.engine import Job, run_job
from streammetric.engine import dask as dask_engine
from streammetric.engine.dask import local_cluster, quiet_logs, run_job_dask
from streammetric.engine.local import Evaluator
from streammetric.io import ColumnSpec, Unit, plan
from tests.conftest import REPO
from tests.helpers.vector_metrics import CLI_PREFIX, DASK_PRELOAD

from .conftest import classification_table, regression_table

try:
    import dask
    import distributed
except ImportError:  # pragma: no cover - CI installs the dask extra
    if os.environ.get("CI"):
        pytest.fail(
            "dask[distributed] is not installed: CI must run the dask engine tests", pytrace=False
        )
    pytest.skip("dask[distributed] is not installed", allow_module_level=True)

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hive dataset, a classification file, IPC file and stream, a file with bad rows."""
    root = tmp_path_factory.mktemp("dask-data")
    for m, model in enumerate(["alpha", "beta"]):
        for part in range(3):
            path = root / "reg" / f"model={model}" / f"part-{part}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(regression_table(1500, seed=10 * m + part), path, row_group_size=400)
    pq.write_table(classification_table(3000, seed=4), root / "cls.parquet", row_group_size=500)
    table = regression_table(2000, seed=5)
    with pa.ipc.new_file(root / "preds.arrow", table.schema) as writer:
        writer.write_table(table, max_chunksize=300)
    with pa.ipc.new_stream(root / "preds.arrows", table.schema) as writer:
        writer.write_table(table, max_chunksize=300)
    pred = table["pred"].to_numpy().copy()
    pred[[3, 500, 1999]] = np.nan
    dirty = table.set_column(1, "pred", pa.array(pred))
    pq.write_table(dirty, root / "dirty.parquet", row_group_size=300)
    return root


def regression_job(data: Path, **options: object) -> Job:
    return Job(
        paths=[str(data / "reg")],
        metrics=["mae", "rmse", "pearsonr"],
        columns=ColumnSpec(labels="y", preds="pred", by=("split", "model")),
        **options,  # type: ignore[arg-type]
    )


JOBS = {
    "grouped-regression": lambda d: regression_job(d),
    "weighted": lambda d: Job(
        [str(d / "reg")], ["mae", "mse"], ColumnSpec(labels="y", preds="pred", weights="w")
    ),
    "classification": lambda d: Job(
        [str(d / "cls.parquet")],
        [
            "ce",
            "acc",
            "top_k_accuracy:top_k=2",
            {"metric": "f1", "class_type": "multiclass", "average": "macro"},
        ],
        ColumnSpec(labels="label", preds="probs", by=("split",)),
        metric_defaults={"convention": "keras"},
    ),
    "conventions": lambda d: Job(
        [str(d / "cls.parquet")],
        ["ce", "perplexity", "acc"],
        ColumnSpec(labels="label", preds="probs", by=("split",)),
        metric_defaults={"explain": "all"},
    ),
    "ipc-file-and-stream": lambda d: Job(
        [str(d / "preds.arrow"), str(d / "preds.arrows")],
        ["mse"],
        ColumnSpec(labels="y", preds="pred", by=("split",)),
    ),
    "skip-invalid": lambda d: Job(
        [str(d / "dirty.parquet")],
        ["mae"],
        ColumnSpec(labels="y", preds="pred", by=("split",)),
        on_invalid="skip",
    ),
}


def bits(result: sm.Result) -> str:
    return json.dumps(result.to_dict())


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def address(request: pytest.FixtureRequest) -> Iterator[str]:
    """An in-process cluster (threads, fast to start) of 1 or 2 workers."""
    with local_cluster(request.param, processes=False) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("name", list(JOBS))
def test_same_bits_as_the_local_engine(data, address, name):
    job = JOBS[name](data)
    merged, started = [], []
    result = run_job_dask(job, scheduler=address, on_merge=merged.append, on_start=started.append)
    assert bits(result) == bits(run_job(job, threads=3))
    assert bits(run_job_dask(job, scheduler=address)) == bits(result)  # units share tasks
    unit_keys = [unit.key for unit in plan(job.paths, job.columns)]
    assert [unit.key for unit in started[0].pending] == unit_keys
    assert sorted(part.unit_key for part in merged) == sorted(unit_keys)  # each merged once
    if name == "skip-invalid":
        assert result.invalid_rows == 3 and result.rows == 1997
    if name == "conventions":  # every convention side by side, merged on the workers
        assert set(result.conventions) == {"cross-entropy", "perplexity"}
        assert len(result.conventions["cross-entropy"].results) == 6


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 8, 9, 24, 100])
@pytest.mark.parametrize("slots", [0, 1, 2, 3])
def test_units_share_tasks_in_plan_order_unless_each_needs_its_own(count, slots):
    units = [Unit(f"f{i // 5}.parquet", "parquet", i % 5, 10) for i in range(count)]
    tasks = dask_engine.tasks_of(units, slots, each=False)
    assert [unit for task in tasks for unit in task] == units  # each once, in plan order
    assert all(tasks)
    if slots == 0:
        assert tasks == [[unit] for unit in units]
    else:
        most = dask_engine.MAX_UNITS_PER_TASK
        assert len(tasks) == min(count, max(dask_engine.TASKS_PER_SLOT * slots, -(-count // most)))
        assert max(map(len, tasks), default=0) - min(map(len, tasks), default=0) <= 1
        assert max(map(len, tasks), default=0) <= most
    assert dask_engine.tasks_of(units, slots, each=True) == [[unit] for unit in units]


def test_a_data_error_is_the_first_bad_row_in_file_order(data, address, monkeypatch):
    job = Job([str(data / "dirty.parquet")], ["mae"], ColumnSpec(labels="y", preds="pred"))
    message = r"^\S+/dirty.parquet: column `pred`, row 3: must be finite, got \[nan\]$"
    with pytest.raises(sm.InvalidInputError, match=message):
        run_job(job, threads=1)
    unit_partial = Evaluator.unit_partial

    def first_unit_last(self: Evaluator, unit: Unit, into: object = None) -> object:
        time.sleep(0.3 if unit.index == 0 else 0)  # the in-process workers see this patch
        return unit_partial(self, unit, into)

    monkeypatch.setattr(Evaluator, "unit_partial", first_unit_last)
    # rows 3, 500 and 1999 are NaN; a later task (row 1999's, or row 500's when the units go
    # one per task) fails first, row 3 is reported
    with pytest.raises(sm.InvalidInputError, match=message):
        run_job_dask(job, scheduler=address, retries=5)


def test_a_failing_task_is_retried(data, address, monkeypatch):
    job = regression_job(data)
    reference = bits(run_job(job))
    unit_partial, failures = Evaluator.unit_partial, []

    def fails_once_per_task(self: Evaluator, unit: Unit, into: object = None) -> object:
        if into is None and unit.key not in failures:  # a task's first unit
            failures.append(unit.key)
            raise OSError(f"{unit.key}: transient read error")
        return unit_partial(self, unit, into)

    monkeypatch.setattr(Evaluator, "unit_partial", fails_once_per_task)
    with distributed.Client(address, set_as_default=False) as client:
        slots = sum(client.nthreads().values())
    assert bits(run_job_dask(job, scheduler=address, retries=1)) == reference
    tasks = dask_engine.tasks_of(plan(job.paths, job.columns), slots, each=False)
    assert len(failures) == len(tasks) < 24  # several units a task
    failures.clear()
    with pytest.raises(OSError, match="transient read error"):
        run_job_dask(job, scheduler=address, retries=0)


def test_checkpoint_resumes_across_engines(data, address, tmp_path):
    job = regression_job(data)
    reference = bits(run_job(job))
    merges = []

    def crash_after_five_merges(rows: int) -> None:
        merges.append(rows)
        if len(merges) == 5:
            raise KeyboardInterrupt

    for first, second in [(run_job_dask, run_job), (run_job, run_job_dask), (run_job_dask,) * 2]:
        checkpoint = tmp_path / f"{first.__name__}-{second.__name__}.json"
        merges.clear()
        options = {"scheduler": address} if first is run_job_dask else {"threads": 1}
        with pytest.raises(KeyboardInterrupt):
            first(job, checkpoint=checkpoint, progress=crash_after_five_merges, **options)
        assert 0 < len(json.loads(checkpoint.read_text())["done"]) < 24
        options = {"scheduler": address} if second is run_job_dask else {}
        assert bits(second(job, checkpoint=checkpoint, **options)) == reference


SLOW_TASKS = """
import time
from streammetric.engine import local

def dask_setup(worker):
    unit_partial = local.Evaluator.unit_partial

    def slow_unit_partial(self, unit, into=None):
        time.sleep(0.15)
        return unit_partial(self, unit, into)

    local.Evaluator.unit_partial = slow_unit_partial
"""


def _worker_processes() -> list[int]:
    """Our child processes that are Dask workers (spawned by the local cluster's nannies)."""
    import psutil

    children = psutil.Process().children()
    return [c.pid for c in children if "spawn_main" in " ".join(c.cmdline())]


def test_a_worker_killed_mid_run_does_not_change_the_result(data):
    job = regression_job(data)
    merged, killed = [], []

    def kill_a_worker_after_the_first_merge(rows: int) -> None:
        merged.append(rows)
        if len(merged) == 1:
            pids = _worker_processes()
            assert len(pids) == 2
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    with dask.config.set({"distributed.worker.preload": [SLOW_TASKS]}):
        result = run_job_dask(job, workers=2, progress=kill_a_worker_after_the_first_merge)
    tasks = dask_engine.tasks_of(plan(job.paths, job.columns), 2, each=False)
    assert killed and len(merged) == len(tasks) == 4  # every task merged exactly once
    assert sum(merged) == result.rows == 9000
    assert bits(result) == bits(run_job(job))


@pytest.fixture
def subprocess_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker`` processes on loopback: address, processes."""
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    dask_cli = str(BIN / "dask")
    scheduler = "scheduler --host 127.0.0.1 --port 0 --no-dashboard --dashboard-address 127.0.0.1:0"
    worker = "worker --host 127.0.0.1 --nthreads 1 --no-dashboard --no-nanny"
    started = [
        subprocess.Popen(
            [dask_cli, *scheduler.split(), "--scheduler-file", str(scheduler_file)], **quiet
        )
    ]
    try:
        address = _address_in(scheduler_file, timeout=30)
        for name in ("w1", "w2"):
            command = [dask_cli, *worker.split(), "--name", name]
            started.append(
                subprocess.Popen([*command, "--scheduler-file", str(scheduler_file)], **quiet)
            )
        with distributed.Client(address, set_as_default=False, timeout=30) as client:
            client.wait_for_workers(2, timeout=30)
        yield address, started
    finally:
        for process in reversed(started):  # workers first, so they need not wait for the scheduler
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _address_in(scheduler_file: Path, *, timeout: float) -> str:
    """The address ``dask scheduler`` writes to its scheduler file, once it is complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise TimeoutError(f"{scheduler_file}: no scheduler address after {timeout} s")


def test_a_scheduler_and_workers_started_as_processes(data, subprocess_cluster):
    job = JOBS["classification"](data)
    result = run_job_dask(job, scheduler=subprocess_cluster[0])
    assert bits(result) == bits(run_job(job))


def test_losing_the_scheduler_is_a_one_line_error(data, subprocess_cluster, tmp_path):
    address, (scheduler, _, frozen) = subprocess_cluster
    merged = []

    def kill_the_scheduler_after_two_merges(rows: int) -> None:
        merged.append(rows)
        if len(merged) == 2:
            scheduler.kill()

    message = r"^dask: \w*CancelledError: [^\n]+$"  # e.g. "... scheduler-connection-lost."
    client_log = logging.getLogger("distributed.client")
    # a stopped worker holds the task it is given: the run cannot end before the kill, however
    # fast the other worker is (the run used to finish first now and then on a busy machine)
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        with quiet_logs(), pytest.raises(sm.StreamMetricError, match=message):
            assert not client_log.isEnabledFor(logging.ERROR)  # no reconnect tracebacks on stderr
            run_job_dask(  # a checkpoint: a task per unit (24)
                regression_job(data),
                scheduler=address,
                progress=kill_the_scheduler_after_two_merges,
                checkpoint=tmp_path / "ck.json",
            )
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert len(merged) >= 2
    assert client_log.isEnabledFor(logging.ERROR)


def test_cli_engine_dask(data):
    command = [sys.executable, "-m", "streammetric.cli", "eval", str(data / "reg")]
    command += ["-m", "mae", "-m", "rmse", "--labels", "y", "--preds", "pred", "--by", "model"]
    command += ["--format", "json"]
    local = subprocess.run([*command, "--engine", "local"], capture_output=True, text=True)
    on_dask = subprocess.run(
        [*command, "--engine", "dask", "--workers", "2"], capture_output=True, text=True
    )
    assert local.returncode == 0 and on_dask.returncode == 0, on_dask.stderr
    assert on_dask.stdout == local.stdout
    assert json.loads(on_dask.stdout)["rows"] == 9000


#: ``python SCRIPT PIDS ARGS...``: the command, whose LocalCluster's nannies each start their
#: worker process, write its pid to PIDS and interrupt the command (Ctrl-C) before they say
#: they are running (failure injection: the moment Dask's own exit hook cannot close them)
INTERRUPTED_START = """
import _thread, asyncio, sys

import distributed


async def started_then_interrupted(self):
    result = await ORIGINAL(self)
    with open(PIDS, "a") as out:
        out.write(f"{self.process.pid}\\n")
    _thread.interrupt_main()
    await asyncio.sleep(3600)
    return result


if __name__ == "__main__":
    ORIGINAL = distributed.Nanny.start_unsafe
    distributed.Nanny.start_unsafe = started_then_interrupted
    from streammetric.__main__ import run

    PIDS = sys.argv[1]
    sys.argv = ["streammetric", *sys.argv[2:]]
    run()
"""


def test_ctrl_c_while_the_cluster_starts_is_one_line_and_leaves_no_worker(data, tmp_path):
    script, pids = tmp_path / "interrupted.py", tmp_path / "pids"
    script.write_text(INTERRUPTED_START)
    command = [sys.executable, str(script), str(pids), "eval", str(data / "cls.parquet")]
    command += ["-m", "ce", "--engine", "dask", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "streammetric: interrupted"  # no traceback from Dask's exit hook
    started = [int(line) for line in pids.read_text().split()]
    assert started
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in started):
        time.sleep(0.1)
    assert not [pid for pid in started if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cli_engine_dask_report_is_the_local_engines_page(data, tmp_path):
    """``--report`` on Dask: the same page (charts from the merged states, every convention)
    as on the local engine; only the command line in its header differs."""
    command = [sys.executable, "-m", "streammetric.cli", "eval", str(data / "cls.parquet")]
    command += ["-m", "ce", "-m", "acc", "-m", "ece", "--by", "split", "--format", "json"]
    pages = {}
    for engine in ("local", "dask"):
        page = tmp_path / f"{engine}.html"
        extra = ["--workers", "2"] if engine == "dask" else []
        done = subprocess.run(
            [*command, "--engine", engine, *extra, "--report", str(page)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        pages[engine] = re.sub(r'<p class="meta"><code>.*?</code></p>', "", page.read_text())
    assert pages["dask"] == pages["local"]
    assert "Reliability diagram" in pages["dask"] and "under each convention" in pages["dask"]


def vector_job(data: Path) -> Job:
    """Per-class values and a matrix (tests/helpers/vector_metrics.py), per split."""
    return Job(
        [str(data / "cls.parquet")],
        ["acc", "vector_test_hit_rate", "vector_test_confusion:num_classes=5"],
        ColumnSpec(labels="label", preds="probs", by=("split",)),
    )


@pytest.mark.usefixtures("vector_metrics")
def test_vector_metrics_give_the_local_engines_bits(data, address):
    job = vector_job(data)
    result = run_job_dask(job, scheduler=address)
    assert bits(result) == bits(run_job(job, threads=3))
    assert list(result.metrics["class_hit_rate"]) == ["0", "1", "2", "3", "4"]
    assert sum(map(sum, result.metrics["test_confusion"])) == 3000


@pytest.mark.usefixtures("vector_metrics")
def test_worker_processes_know_a_metric_class_through_dask_preload(data):
    """A worker in another process builds the metrics by name: a metric class registered by a
    module (here the test metrics) must be imported there too, e.g. with Dask's worker preload;
    without it the unit fails with the registry's one-line error."""
    job = vector_job(data)
    preload = json.loads(DASK_PRELOAD["DASK_DISTRIBUTED__WORKER__PRELOAD"])
    with dask.config.set({"distributed.worker.preload": preload}):
        result = run_job_dask(job, workers=2)
    assert bits(result) == bits(run_job(job))
    with pytest.raises(sm.ConfigError, match=r"^unknown metric 'vector_test_hit_rate'"):
        run_job_dask(job, workers=1)


@pytest.mark.usefixtures("vector_metrics")
def test_cli_engine_dask_with_vector_metrics(data):
    command = [*CLI_PREFIX, "eval", str(data / "cls.parquet"), "--by", "split"]
    command += ["-m", "vector_test_hit_rate", "-m", "vector_test_confusion:num_classes=5"]
    command += ["--class-names", "a,b,c,d,e", "--format", "json"]
    env = {**os.environ, **DASK_PRELOAD}
    local = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    on_dask = subprocess.run(
        [*command, "--engine", "dask", "--workers", "2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert local.returncode == 0 and on_dask.returncode == 0, on_dask.stderr
    assert on_dask.stdout == local.stdout
    assert list(json.loads(on_dask.stdout)["metrics"]["class_hit_rate"]) == list("abcde")


def test_without_dask_installed_the_error_says_what_to_install(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(sm.ConfigError, match=r"install streammetric\[dask\]"):
        run_job_dask(regression_job(data), workers=1)


def test_bad_options_and_an_unreachable_scheduler_are_one_line_errors(data, monkeypatch):
    job = regression_job(data)
    with pytest.raises(sm.ConfigError, match=r"`workers` must be an integer >= 1, got 0"):
        run_job_dask(job, workers=0)
    with pytest.raises(sm.ConfigError, match=r"got workers=2 and scheduler='tcp://"):
        run_job_dask(job, scheduler="tcp://127.0.0.1:9", workers=2)
    # the client's timeout is the engine's (10 s), not Dask's configuration: wait 0.5 s
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(
        sm.StreamMetricError,
        match=r"^cannot connect to the Dask scheduler at tcp://127.0.0.1:9: [^\n]+$",
    ):
        run_job_dask(job, scheduler="tcp://127.0.0.1:9")


def test_lists_of_another_width_in_a_later_file_are_ragged_rows(address, tmp_path):
    rng = np.random.default_rng(4)
    folder = tmp_path / "widths"
    folder.mkdir()
    for name, classes in (("a", 3), ("b", 2)):
        probs = rng.dirichlet(np.ones(classes), 50).tolist()
        labels = rng.integers(0, classes, 50)
        pq.write_table(pa.table({"label": labels, "probs": probs}), folder / f"{name}.parquet")
    job = Job([str(folder)], ["ce"], ColumnSpec(labels="label", preds="probs"))
    message = r"b.parquet: column `probs`, row 0: list has 2 values, expected 3"
    with pytest.raises(sm.InvalidInputError, match=message):
        run_job_dask(job, scheduler=address)


def test_a_worker_refuses_a_file_other_than_the_one_planned(data, tmp_path, monkeypatch):
    """The client sends each file's size and mtime as planned; a worker whose file differs
    (another working directory for a relative path, another filesystem, a changed file) says
    so instead of evaluating other rows under the plan's unit (silently other numbers)."""
    from streammetric.engine.dask import _unit_state
    from streammetric.engine.local import JobRun
    from streammetric.io import file_signature

    job = Job([str(data / "cls.parquet")], ["acc"], ColumnSpec(labels="label", preds="probs"))
    run = JobRun(job)
    unit = run.units[0]
    sent = {**unit.to_dict(), "signature": file_signature(unit.path)}
    ok = _unit_state(job, run.resolved, unit.display_path, [sent])
    assert "state" in ok
    stale = {**sent, "signature": [sent["signature"][0], sent["signature"][1] - 1]}
    refused = _unit_state(job, run.resolved, unit.display_path, [stale])["error"]
    assert isinstance(refused, sm.StreamMetricError)
    assert "not the one the client planned" in str(refused) and "shared filesystem" in str(refused)
    monkeypatch.chdir(tmp_path)  # a relative path from elsewhere: no such file here
    relative = {**sent, "path": os.path.relpath(unit.path, data.parent)}
    missing = _unit_state(job, run.resolved, unit.display_path, [relative])["error"]
    assert isinstance(missing, sm.StreamMetricError)
