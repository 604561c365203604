"""`streammetric.distributed.sync` over real gloo process groups of 1, 2 and 3 processes.

Each group (tests/helpers/dist_worker.py, one process per rank on 127.0.0.1) runs every
scenario once; the three groups run at the same time, once per module. Every rank must end with
the same bits, and those of one process over all the rows (`reference`, computed here without
torch), for composites with two windows, a rank without rows, a tracker with groups, a
bootstrap, and `DistributedSampler` padding with ``sample_ids``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import streammetric as sm
from streammetric.export import Tracker
from tests.helpers import dist_worker as worker

REPO = Path(__file__).resolve().parents[1]
WORLDS = (1, 2, 3)
#: six processes importing torch at once take 15-20 s on a busy 2-core machine
pytestmark = pytest.mark.slow

if importlib.util.find_spec("torch") is None:  # pragma: no cover - torch is in the test extra
    pytest.skip("torch is not installed (pip install -e '.[test]')", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[dict[str, Any]]]:
    """Every world size's ranks' results (the groups run at the same time)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    started = []
    for world in WORLDS:
        folder = tmp_path_factory.mktemp(f"world{world}")
        port = str(_free_port())
        for rank in range(world):
            command = [sys.executable, "-m", "tests.helpers.dist_worker", str(rank), str(world)]
            process = subprocess.Popen(
                [*command, port, str(folder)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            started.append((world, rank, folder, process))
    failures = []
    try:
        for world, rank, _, process in started:
            _, err = process.communicate(timeout=180)
            if process.returncode:
                failures.append(f"world {world} rank {rank}: {err[-3000:]}")
    finally:
        for *_, process in started:
            if process.poll() is None:  # pragma: no cover - a hung rank
                process.kill()
                process.wait()
    assert not failures, "\n".join(failures)
    return {
        world: [json.loads((folder / f"rank{r}.json").read_text()) for r in range(world)]
        for world, folder in {w: f for w, _, f, _ in started}.items()
    }


def reference() -> dict[str, Any]:
    """One process over all the rows."""
    labels, probs = worker.data()
    everything = np.arange(worker.ROWS)
    composite = sm.create(worker.COMPOSITE)
    worker.update_windows(composite, labels, probs, everything)
    ce = sm.create("ce").update(labels, probs)
    tracker = Tracker(["ce", "acc"], group_by=["part"])
    for part in sorted(set(worker.groups_of(everything))):
        rows = np.array([i for i, p in enumerate(worker.groups_of(everything)) if p == part])
        tracker.update(labels[rows], probs[rows], group=(part,))
    boot = sm.Bootstrap(sm.create(["acc", "ce"]), replicates=64, seed=3)
    boot.update(labels, probs, sample_ids=everything)
    p_labels, p_probs = worker.data(11)
    unique = sm.create(["ce", "acc"]).update(p_labels[::-1], p_probs[::-1])  # any order
    return {
        "composite": worker.state(composite),
        "empty_rank": worker.state(ce),
        "tracker": json.loads(json.dumps(worker.tracker_view(tracker)["groups"])),
        "bootstrap": repr(boot.get_interval()),
        "sampler": worker.state(unique),
    }


@pytest.fixture(scope="module")
def want() -> dict[str, Any]:
    return reference()


@pytest.mark.parametrize("world", WORLDS)
def test_every_rank_ends_with_the_same_bits(ranks: dict[int, list[dict[str, Any]]], world: int):
    first = ranks[world][0]
    assert all(other == first for other in ranks[world][1:])
    assert len(ranks[world]) == world


@pytest.mark.parametrize("world", WORLDS)
def test_composites_with_two_windows_are_one_process_over_all_rows(ranks, want, world):
    got = ranks[world][0]
    assert got["composite"] == want["composite"]  # state_dict, get() (local), get_global()
    assert got["composite_copy"] == want["composite"]
    assert got["copy_leaves_own"] is True  # copy=True: the rank's own state as it was
    assert got["second_sync"].startswith("StateError: sync: rank 0 cannot take part")
    assert "reset() it first" in got["second_sync"]
    assert "holds every rank's rows since a sync" in got["ids_after_sync"]
    # a copy of a synced metric would count the other ranks twice, and so would the copy's copy
    for refused in (got["copy_after_sync"], got["copy_of_copy"]):
        assert refused.startswith("StateError: sync: rank 0 cannot take part"), refused
        assert "reset() it first" in refused


@pytest.mark.parametrize("world", WORLDS)
def test_trackers_synced_copies_keep_intervals_and_refuse_a_second_sync(ranks, world):
    got = ranks[world][0]
    assert got["tracker_copy_intervals"] is True  # the copy's bounds are the in-place one's
    assert "reset() it first" in got["tracker_again"]


@pytest.mark.parametrize("world", WORLDS)
def test_trackers_with_other_group_caps_make_every_rank_raise(ranks, world):
    outcomes = [r["max_groups_mismatch"] for r in ranks[world]]
    if world == 1:
        assert outcomes == ["no error"]
    else:
        assert all(o.startswith("StateError: sync: rank ") for o in outcomes), outcomes
        assert all("`max_groups`" in o for o in outcomes)


@pytest.mark.parametrize("world", WORLDS)
def test_a_rank_without_rows_takes_part(ranks, want, world):
    assert ranks[world][-1]["empty_rank"] == want["empty_rank"]


@pytest.mark.parametrize("world", WORLDS)
def test_trackers_merge_every_group_and_count_invalid_rows(ranks, want, world):
    got = ranks[world][0]["tracker"]
    assert got["groups"] == want["tracker"]
    assert got["invalid_rows"] == world * (world + 1) // 2  # rank r skipped r + 1 rows


@pytest.mark.parametrize("world", WORLDS)
def test_bootstrap_intervals_are_one_process_over_all_rows(ranks, want, world):
    assert ranks[world][0]["bootstrap"] == want["bootstrap"]


@pytest.mark.parametrize("world", WORLDS)
def test_distributed_sampler_padding_is_counted_once_with_sample_ids(ranks, want, world):
    results = ranks[world]
    seen = sum(r["sampler_rows"] for r in results)
    assert seen == 11 + (-11 % world)  # the sampler padded to a multiple of the world size
    assert results[0]["sampler"] == want["sampler"]
    if world > 1:  # without ids the padding is counted: another state
        assert results[0]["sampler_without_ids"] != want["sampler"]


@pytest.mark.parametrize("world", WORLDS)
def test_a_rank_with_another_metric_makes_every_rank_raise(ranks, world):
    outcome = {r["mismatch"] for r in ranks[world]}
    assert outcome == ({"no error"} if world == 1 else {"StateError"})
