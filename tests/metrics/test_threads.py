"""One metric object updated by many threads at once: the same state, bit for bit, as one thread.

Eval loops with thread pools share a metric object; ``update`` (and the rest of the API) takes a
lock per metric object. Real threads, a tiny switch interval so that they interleave often.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
import threading

import numpy as np
import pytest

import streammetric as sm

from .test_config_round_trip import DATA, METRICS

THREADS, ROUNDS, ROWS = 8, 60, 8


def _batches(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    labels, preds = DATA[name]
    return [
        (labels[i : i + ROWS], preds[i : i + ROWS]) for i in range(0, len(labels) - ROWS + 1, ROWS)
    ]


@pytest.fixture
def interleave():
    """Switch threads every microsecond, so that unlocked read-modify-writes lose updates."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


@pytest.mark.parametrize("name", [*METRICS, "f1-multiclass", "composite"])
def test_threads_give_the_single_threaded_state_bit_for_bit(name, interleave):
    if name == "f1-multiclass":
        make, batches = (lambda: sm.create("f1", class_type="multiclass")), _batches("pcc")
    elif name == "composite":
        make = lambda: sm.create(["acc", "pcc", "ece", "ce", {"metric": "top_k_acc", "top_k": 2}])  # noqa: E731
        batches = _batches("pcc")
    else:
        make, batches = (lambda: sm.create(name)), _batches(name)
    reference = make()
    for _ in range(THREADS * ROUNDS):
        for labels, preds in batches:
            reference.update(labels, preds)
    shared = make()
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait()
        for _ in range(ROUNDS):
            for labels, preds in batches:
                shared.update(labels, preds)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.dumps(shared.state_dict()) == json.dumps(reference.state_dict())


def test_windows_merge_and_reads_are_safe_while_threads_update(interleave):
    """reset_local, get, get_global, state_dict and merge while updates run: nothing is lost
    (every row lands in exactly one window) and nothing raises."""
    labels, preds = DATA["mae"]
    shared, other = sm.create("mae"), sm.create("mae").update(labels, preds)
    stop = threading.Event()
    errors: list[BaseException] = []

    def update() -> None:
        for _ in range(300):
            shared.update(labels[:8], preds[:8])

    def read() -> None:
        try:
            while not stop.is_set():
                shared.get(), shared.get_global(), shared.state_dict(), shared.reset_local()
        except BaseException as exc:  # pragma: no cover - the failure being tested
            errors.append(exc)

    workers = [threading.Thread(target=update) for _ in range(4)]
    reader = threading.Thread(target=read)
    reader.start()
    for worker in workers:
        worker.start()
    shared.merge(other)
    for worker in workers:
        worker.join()
    stop.set()
    reader.join()
    assert not errors
    assert shared.global_num_inst == 4 * 300 * 8 + len(labels)


def test_the_lock_is_neither_pickled_nor_shared_by_copies():
    metric = sm.create(["f1", "ce"]).update(
        [np.array([0, 1])], [np.array([[0.3, 0.7], [0.2, 0.8]])]
    )
    for twin in (pickle.loads(pickle.dumps(metric)), copy.deepcopy(metric), metric.copy()):
        assert twin._lock is not metric._lock
        assert json.dumps(twin.state_dict()) == json.dumps(metric.state_dict())
        twin.update([np.array([1])], [np.array([[0.1, 0.9]])])  # the copy's lock works
    assert "_lock" not in metric.__getstate__()
