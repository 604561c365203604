"""push() to a real Pushgateway, and write_textfile() for node_exporter."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import streammetric as sm
from streammetric.export import Tracker, push, write_textfile

from .conftest import Pushgateway, http_get
from .helpers import FakeCrossEntropy


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_push_replaces_the_run_group_with_exact_values(pushgateway: Pushgateway) -> None:
    rng = np.random.default_rng(11)
    tracker = Tracker(["mae", "mse"], group_by=["model"])
    for round_ in range(2):  # a second push replaces the first (PUT)
        tracker.update(rng.normal(size=257), rng.normal(size=257) / 7, group="m1")
        push(tracker, pushgateway.url, run="nightly", labels={"env": "ci"})
        status, body = http_get(f"{pushgateway.url}/metrics")
        assert status == 200
        got = samples(body.decode())
        common = (("env", "ci"), ("instance", ""), ("job", "streammetric"), ("model", "m1"))
        for index, name in enumerate(["mae", "mse"]):
            key = (f"streammetric_{name}", (*common, ("run", "nightly"), ("scope", "global")))
            expected = tracker.metrics_for("m1")[index].get_global()[1]
            assert repr(got[key]) == repr(expected)
        rows = ("streammetric_rows_total", (*common, ("run", "nightly")))
        assert got[rows] == 257.0 * (round_ + 1)


def test_push_groups_by_run_in_the_api(pushgateway: Pushgateway) -> None:
    metric = sm.MAE().update([0.0, 1.0], [0.3, 0.3])
    push(metric, pushgateway.url, job="sm_api", run="a")
    push(metric, pushgateway.url, job="sm_api", run="b/with space")  # base64 in the URL
    groups = json.loads(http_get(f"{pushgateway.url}/api/v1/metrics")[1])["data"]
    runs = {
        g["labels"]["run"]: g["streammetric_mae"]["metrics"]
        for g in groups
        if g["labels"].get("job") == "sm_api"
    }
    assert set(runs) == {"a", "b/with space"}
    values = {m["labels"]["scope"]: m["value"] for m in runs["a"]}
    assert float(values["global"]) == metric.get_global()[1]


def test_write_textfile_is_atomic_and_parses(tmp_path: Path) -> None:
    tracker = Tracker([sm.create("mae"), FakeCrossEntropy()], group_by=["model"])
    tracker.update([0.5, 0.25], [0.5, 0.25], group='odd "name"\n')
    path = tmp_path / "streammetric.prom"
    write_textfile(tracker, path, run="files")
    text = path.read_text(encoding="utf-8")
    got = samples(text)
    key = (
        "streammetric_cross_entropy",
        (("model", 'odd "name"\n'), ("run", "files"), ("scope", "global")),
    )
    assert got[key] == tracker.metrics_for('odd "name"\n')[1].get_global()[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["streammetric.prom"]  # no temporary left behind


def test_write_textfile_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    tracker = Tracker("mae", group_by=["model"])
    for index in range(300):  # a file of ~100 kB
        tracker.update([0.0], [float(index)], group=f"model-{index}")
    path = tmp_path / "big.prom"
    write_textfile(tracker, path)
    expected = path.read_bytes()
    stop, seen = threading.Event(), []

    def reader() -> None:
        while not stop.is_set():
            seen.append(path.read_bytes())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(30):
            write_textfile(tracker, path)
    finally:
        stop.set()
        thread.join()
    assert seen and all(content == expected for content in seen)


def test_write_textfile_failure_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.prom"
    path.write_text("old\n")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_textfile(sm.MAE(), path)
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["m.prom"]  # the temporary was removed
