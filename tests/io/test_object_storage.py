"""s3:// inputs against a real S3-compatible server (moto's standalone ``moto_server``, started
on 127.0.0.1): the same bits as the local files, hive partitions, bootstrap intervals,
checkpoints keyed by ETag, Dask workers reading the objects, ``explain``, ``--storage-option``,
and one-line errors for a missing bucket, missing credentials and a truncated object."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from streammetric import StateError
from streammetric.cli import main
from streammetric.engine import Job, run_job
from streammetric.engine.dask import local_cluster, run_job_dask
from streammetric.io import ColumnSpec, fingerprint, plan, storage
from tests.engine.conftest import classification_table
from tests.export.conftest import free_port

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
BUCKET = "streammetric-test"


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto server started for the session."""
    found = MOTO_SERVER if MOTO_SERVER.exists() else shutil.which("moto_server")
    if found is None:  # pragma: no cover - the test extra installs moto[server]
        pytest.fail("moto_server is not installed: pip install -e '.[test]'", pytrace=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(found), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start on {url}", pytrace=False)
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _clean_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No AWS variable, no ~/.aws files, no instance metadata: only what a test sets."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The standard environment pointing at the server (the endpoint, keys and region)."""
    _clean_environment(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    yield endpoint
    storage.use_storage_options(None)


def _server_fs(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        endpoint_override=endpoint.removeprefix("http://"),
        scheme="http",
        access_key=KEYS["AWS_ACCESS_KEY_ID"],
        secret_key=KEYS["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        allow_bucket_creation=True,
    )


def _upload(fs: pafs.S3FileSystem, local: Path, key: str, data: bytes | None = None) -> None:
    with fs.open_output_stream(f"{BUCKET}/{key}") as out:
        out.write(local.read_bytes() if data is None else data)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, endpoint: str) -> Path:
    """Local files, and the same files uploaded under ``s3://BUCKET/data/``: one file of several
    row groups, a hive-partitioned directory (``model=...``), and the first half of a file."""
    root = tmp_path_factory.mktemp("s3-data") / "data"
    root.mkdir()
    pq.write_table(classification_table(900, seed=1), root / "one.parquet", row_group_size=200)
    for m, model in enumerate(["alpha", "beta"]):
        for part in range(2):
            path = root / "hive" / f"model={model}" / f"part-{part}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table = classification_table(400, seed=10 * m + part)
            pq.write_table(table, path, row_group_size=150)
    fs = _server_fs(endpoint)
    fs.create_dir(BUCKET)
    for path in sorted(root.rglob("*.parquet")):
        _upload(fs, path, f"data/{path.relative_to(root).as_posix()}")
    whole = (root / "one.parquet").read_bytes()
    _upload(fs, root, "broken/half.parquet", whole[: len(whole) // 2])
    return root


def cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


CLS = ("--labels", "label", "--preds", "probs", "-m", "ce", "-m", "acc", "--format", "json")


@pytest.mark.parametrize(
    ("relative", "extra"),
    [
        ("one.parquet", ()),
        ("hive", ("--by", "model")),
        ("hive", ("--by", "model,split", "--ci", "0.9", "--bootstrap", "40")),
        ("one.parquet", ("--ci", "0.95", "--bootstrap", "40", "--threads", "2")),
    ],
)
def test_eval_of_s3_is_eval_of_the_local_files(s3, local, relative, extra):
    code, remote, err = cli("eval", f"s3://{BUCKET}/data/{relative}", *CLS, *extra)
    assert (code, err) == (0, "")
    code, here, _ = cli("eval", local / relative, *CLS, *extra)
    assert code == 0
    assert json.loads(remote) == json.loads(here) and remote == here  # the same bits
    if "--by" in extra:
        assert {group["key"]["model"] for group in json.loads(remote)["groups"]} == {
            "alpha",
            "beta",
        }


def test_units_are_row_groups_and_keys_are_uris(s3, local):
    units = plan([f"s3://{BUCKET}/data/hive/"], ColumnSpec(labels="label", preds="probs"))
    assert [unit.num_rows for unit in units] == [150, 150, 100] * 4
    assert units[0].key == f"s3://{BUCKET}/data/hive/model=alpha/part-0.parquet#rg0"
    assert dict(units[-1].partitions) == {"model": "beta"}


def test_the_storage_option_endpoint_and_keys_without_the_environment(
    endpoint, local, monkeypatch, tmp_path
):
    _clean_environment(monkeypatch, tmp_path)
    options = [
        f"endpoint_override={endpoint}",
        "access_key=testing",
        "secret_key=testing",
        "region=us-east-1",
    ]
    flags = [item for option in options for item in ("--storage-option", option)]
    code, remote, err = cli("eval", f"s3://{BUCKET}/data/one.parquet", *CLS, *flags)
    storage.use_storage_options(None)
    assert (code, err) == (0, "")
    assert remote == cli("eval", local / "one.parquet", *CLS)[1]


@pytest.mark.parametrize("bad", ["region", "=x", "anonymous=maybe"])
def test_a_bad_storage_option_is_a_usage_error(s3, bad):
    code, out, err = cli("eval", f"s3://{BUCKET}/data/one.parquet", "--storage-option", bad)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("streammetric: error: --storage-option")


def test_checkpoint_resume_on_s3_and_a_changed_object_is_refused(s3, local, tmp_path):
    uri = f"s3://{BUCKET}/data/hive"
    job = Job([uri], ["ce", "acc"], ColumnSpec(labels="label", preds="probs", by=("model",)))
    whole = json.dumps(run_job(job, threads=1).to_dict())
    checkpoint = tmp_path / "run.ckpt"

    class Stop(Exception):
        pass

    merged: list[object] = []

    def stop_after_three(part: object) -> None:
        merged.append(part)
        if len(merged) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_job(job, threads=1, checkpoint=checkpoint, on_merge=stop_after_three)
    saved = json.loads(checkpoint.read_text())
    done = len(saved["done"])  # saves are throttled: at least the first unit's
    assert 1 <= done < 12 and all(key.startswith(uri + "/") for key in saved["done"])
    started: list[object] = []
    resumed = run_job(job, threads=1, checkpoint=checkpoint, on_start=started.append)
    assert json.dumps(resumed.to_dict()) == whole
    assert len(started[0].pending) == 12 - done  # type: ignore[attr-defined]
    # the identity is each object's ETag: another object under the same key is refused
    units = plan([uri], job.columns)
    assert storage.object_identity(units[0].path)[0] == "etag"
    before = fingerprint(units)
    path = "data/hive/model=alpha/part-0.parquet"
    fs = _server_fs(s3)
    try:
        _upload(fs, local, path, (local / "hive/model=alpha/part-1.parquet").read_bytes())
        with pytest.raises(StateError, match=r"^\S+run.ckpt: .*"):
            run_job(job, threads=1, checkpoint=checkpoint)
        assert fingerprint(plan([uri], job.columns)) != before
    finally:
        _upload(fs, local, path, (local / "hive" / "model=alpha" / "part-0.parquet").read_bytes())


def test_dask_workers_read_the_objects_themselves(endpoint, local, monkeypatch, tmp_path):
    """A process worker without any AWS variable: the job's storage options reach it."""
    _clean_environment(monkeypatch, tmp_path)
    options = {
        "endpoint_override": endpoint,
        "access_key": "testing",
        "secret_key": "testing",
        "region": "us-east-1",
    }
    spec = ColumnSpec(labels="label", preds="probs", by=("model",))
    job = Job([f"s3://{BUCKET}/data/hive"], ["ce", "acc"], spec, storage_options=options)
    try:
        with local_cluster(1) as cluster:
            remote = run_job_dask(job, scheduler=cluster.scheduler_address)
    finally:
        storage.use_storage_options(None)
    here = run_job(Job([str(local / "hive")], ["ce", "acc"], spec), threads=1)
    assert json.dumps(remote.to_dict()) == json.dumps(here.to_dict())


def test_explain_of_an_s3_object(s3, local):
    args = ("--labels", "label", "--preds", "probs", "--format", "json")
    code, remote, err = cli("explain", f"s3://{BUCKET}/data/one.parquet", *args)
    assert (code, err) == (0, "")
    assert remote == cli("explain", local / "one.parquet", *args)[1]


def _one_line_error(code: int, out: str, err: str, pattern: str) -> None:
    import re

    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1, err
    assert re.fullmatch(pattern, err.strip()), err


def test_a_missing_bucket(s3):
    _one_line_error(
        *cli("eval", "s3://no-such-bucket/data/one.parquet", *CLS),
        r"streammetric: error: s3://no-such-bucket/data/one.parquet: bucket 'no-such-bucket' does not exist",
    )


def test_a_missing_object(s3, local):
    _one_line_error(
        *cli("eval", f"s3://{BUCKET}/data/nothing.parquet", *CLS),
        rf"streammetric: error: s3://{BUCKET}/data/nothing.parquet: no such object or prefix",
    )


def test_missing_credentials(endpoint, local, monkeypatch, tmp_path):
    _clean_environment(monkeypatch, tmp_path)  # HOME without ~/.aws, no AWS_* variable
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    _one_line_error(
        *cli("eval", f"s3://{BUCKET}/data/one.parquet", *CLS),
        rf"streammetric: error: s3://{BUCKET}: no AWS credentials found \(set AWS_ACCESS_KEY_ID .*\)",
    )


def test_a_truncated_object(s3, local):
    _one_line_error(
        *cli("eval", f"s3://{BUCKET}/broken/half.parquet", *CLS),
        rf"streammetric: error: s3://{BUCKET}/broken/half.parquet: cannot read Parquet footer: .*",
    )


def test_an_fsspec_scheme(tmp_path):
    """A scheme pyarrow has no filesystem of goes through fsspec (its in-memory one here)."""
    fsspec = pytest.importorskip("fsspec")  # dask[distributed], in the test extra, needs it
    memory = fsspec.filesystem("memory")
    root = tmp_path / "hive"
    for model in ("alpha", "beta"):
        path = root / f"model={model}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(classification_table(300, seed=len(model)), path, row_group_size=100)
        memory.pipe(
            f"memory://streammetric-test/hive/model={model}/part-0.parquet", path.read_bytes()
        )
    try:
        args = (*CLS, "--by", "model", "--ci", "0.9", "--bootstrap", "20")
        code, remote, err = cli("eval", "memory://streammetric-test/hive", *args)
        assert (code, err) == (0, "")
        assert remote == cli("eval", root, *args)[1]
        # no ETag there: an object's identity (checkpoints) is its size and mtime
        uri = "memory://streammetric-test/hive/model=beta/part-0.parquet"
        size, _ = storage.object_identity(uri)
        assert size == len(memory.cat(uri))
    finally:
        memory.rm("memory://streammetric-test", recursive=True)


def test_watch_of_an_s3_prefix_with_a_checkpoint(s3, local, tmp_path):
    fs = _server_fs(s3)
    prefix = f"s3://{BUCKET}/incoming"
    hive = local / "hive"
    files = sorted(hive.rglob("*.parquet"))[:3]
    names = [f"{i}.parquet" for i in range(3)]
    for name, path in zip(names[:2], files[:2], strict=True):
        _upload(fs, path, f"incoming/{name}")
    _upload(fs, files[2], "incoming/_partial.parquet", b"PAR1 not yet")  # hidden: skipped
    checkpoint = tmp_path / "watch.ckpt"
    args = (*CLS, "--once", "--checkpoint", checkpoint)
    code, out, err = cli("watch", prefix, *args)
    assert code == 0, err
    assert [line.split(":")[2].strip() for line in err.splitlines()] == names[:2]
    _upload(fs, files[2], f"incoming/{names[2]}")
    code, out, err = cli("watch", prefix + "/", *args)
    assert code == 0, err
    assert [line.split(":")[2].strip() for line in err.splitlines()] == names[2:]  # once each
    copies = tmp_path / "copies"
    copies.mkdir()
    for name, path in zip(names, files, strict=True):
        shutil.copy(path, copies / name)
    assert out == cli("eval", copies, *CLS)[1]
