"""Work shared by several metrics of one composite update (cross-entropy terms, class ranks).

Inside ``with shared_batch():`` (which ``CompositeEvalMetric.update`` opens), ``memoized(key,
arrays, compute)`` computes once per key and identical array objects. Outside it nothing is
cached, so arrays that an eval loop reuses and overwrites can never give a stale result. The
scope is a context variable: each thread of the engine has its own.

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
from typing import Any, TypeVar

import numpy as np

__all__ = ["memoized", "shared_batch"]

T = TypeVar("T")
_MEMO: ContextVar[dict[Hashable, tuple[tuple[Any, ...], Any]] | None] = ContextVar(
    "streammetric_shared_batch", default=None
)


@contextmanager
def shared_batch() -> Iterator[None]:
    """Share computations between the metrics updated inside this block (re-entrant)."""
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memoized(key: Hashable, arrays: tuple[np.ndarray, ...], compute: Callable[[], T]) -> T:
    """``compute()``, shared with earlier calls of this block for ``key`` and these arrays."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    full_key = (key, *(id(a) for a in arrays))
    hit = memo.get(full_key)
    if hit is not None and all(a is b for a, b in zip(hit[0], arrays, strict=True)):
        return hit[1]
    value = compute()
    memo[full_key] = (arrays, value)  # the arrays stay alive, so their ids stay theirs
    return value
