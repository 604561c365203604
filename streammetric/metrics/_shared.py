"""Work shared by several metrics of one composite update (cross-entropy terms, class ranks).

Inside ``with shared_batch():`` (which ``CompositeEvalMetric.update`` opens), ``memoized(key,
arrays, compute)`` computes once per key and identical array objects. Outside it nothing is
cached, so arrays that an eval loop reuses and overwrites can never give a stale result. The
scope is a context variable: each thread of the engine has its own.

A block may also say which results its metrics will ask for (``shared_batch(wants)``, from each
metric's ``shared_work``), so that a metric that can compute one of them as a by-product of its
own pass does (``wanted``) and leaves it for the others (``offer``): cross-entropy's pass over
the probabilities also ranks the true classes for accuracy and top-k.

>>> calls = []
>>> def compute():
...     calls.append(1)
...     return 42
>>> x = np.zeros(3)
>>> with shared_batch():
...     memoized("k", (x,), compute), memoized("k", (x,), compute)
(42, 42)
>>> memoized("k", (x,), compute), len(calls)
(42, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from operator import is_
from typing import Any, TypeVar

import numpy as np

__all__ = ["CLASS_RANKS", "computed", "memoized", "offer", "shared_batch", "sharing", "wanted"]

CLASS_RANKS = ("class_ranks",)  # int64 (n, 2) ranks of the true classes (see _class_ranks)

T = TypeVar("T")
_MEMO: ContextVar[dict[Hashable, Any] | None] = ContextVar(
    "streammetric_shared_batch", default=None
)
_WANTS = object()  # the memo's entry for what the block's metrics will ask for


@contextmanager
def shared_batch(wants: frozenset[Hashable] = frozenset()) -> Iterator[None]:
    """Share computations between the metrics updated inside this block (re-entrant: an inner
    block joins the outer one)."""
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({_WANTS: wants})
    try:
        yield
    finally:
        _MEMO.reset(token)


def sharing() -> bool:
    """Whether a ``shared_batch`` block is open (outside one, `memoized` is just ``compute()``
    and `offer` does nothing: a lone metric's update can skip both)."""
    return _MEMO.get() is not None


def wanted(key: Hashable) -> bool:
    """Whether a metric of this block will ask for ``key`` (of the block's arrays)."""
    memo = _MEMO.get()
    return memo is not None and key in memo[_WANTS]


def computed(key: Hashable, arrays: tuple[np.ndarray, ...]) -> bool:
    """Whether ``key`` of these arrays is already computed in this block."""
    memo = _MEMO.get()
    return memo is not None and _hit(memo, _full_key(key, arrays), arrays) is not None


def offer(key: Hashable, arrays: tuple[np.ndarray, ...], value: Any) -> None:
    """Leave ``value`` as ``key`` of these arrays for the later ``memoized`` calls of this block."""
    memo = _MEMO.get()
    if memo is not None:
        memo[_full_key(key, arrays)] = (arrays, value)


def memoized(key: Hashable, arrays: tuple[np.ndarray, ...], compute: Callable[[], T]) -> T:
    """``compute()``, shared with earlier calls of this block for ``key`` and these arrays."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    full_key = _full_key(key, arrays)
    hit = _hit(memo, full_key, arrays)
    if hit is not None:
        return hit[1]
    value = compute()
    memo[full_key] = (arrays, value)  # the arrays stay alive, so their ids stay theirs
    return value


def _full_key(key: Hashable, arrays: tuple[np.ndarray, ...]) -> tuple[Hashable, ...]:
    return (key, *map(id, arrays))


def _hit(memo: dict[Hashable, Any], full_key: Hashable, arrays: tuple[np.ndarray, ...]) -> Any:
    """The memo's (arrays, value) for ``full_key`` if it is of these very arrays, else None
    (the key holds the arrays' ids, so the lengths match)."""
    hit = memo.get(full_key)
    if hit is not None and all(map(is_, hit[0], arrays)):
        return hit
    return None
