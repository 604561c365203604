"""`StopSignal`: SIGTERM/SIGINT as an event, for ``watch`` and ``eval --serve --linger``.

Its own module so that ``eval`` needs none of `streammetric.engine.watch` (which re-exports it).
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

__all__ = ["StopSignal"]


class StopSignal:
    """While entered, SIGTERM and SIGINT set ``event`` (a second one raises KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float | None) -> bool:
        """Sleep until a signal or ``seconds`` (``None``: forever); True when signalled."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.event.is_set():
            left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if left <= 0:
                break
            self.event.wait(left)
        return self.event.is_set()
