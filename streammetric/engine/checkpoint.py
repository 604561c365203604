"""Checkpoints: the exact merged states and the finished units, written atomically.

A checkpoint is JSON: ``{"version", "identity", "done": [unit keys], "partial": {...}}``. It is
written to a temp file in the same directory, fsynced, and renamed over the old one, so a crash
or ``kill -9`` at any instant leaves either the previous or the new checkpoint. Resuming loads
the merged state and skips the finished units; because merging is exact, the final result is
identical to that of an uninterrupted run. A checkpoint of other inputs or options is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .._exceptions import StateError
from .partial import Partial

__all__ = ["Checkpoint"]

VERSION = 1


class Checkpoint:
    """Save/load of one job's progress; saves are throttled to one per ``interval`` seconds."""

    def __init__(
        self, path: str | os.PathLike[str], identity: dict[str, Any], *, interval: float = 0.5
    ) -> None:
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity, default=str))
        self.interval = interval
        self._last = 0.0

    def load_into(self, partial: Partial) -> set[str]:
        """Load a previous checkpoint into ``partial``; return the finished unit keys."""
        if not self.path.exists():
            return set()
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StateError(
                f"{self.path}: checkpoint is unreadable ({exc}); delete it to start over"
            ) from exc
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise StateError(
                f"{self.path}: not a streammetric checkpoint of version {VERSION}; delete it to start over"
            )
        if data.get("identity") != self.identity:
            differs = sorted(
                k for k in self.identity if data.get("identity", {}).get(k) != self.identity[k]
            )
            raise StateError(
                f"{self.path}: checkpoint belongs to a run with different {', '.join(differs) or 'identity'}; "
                "use another --checkpoint file or delete this one"
            )
        partial.load_json(data["partial"])
        return set(data["done"])

    def save(self, partial: Partial, done: set[str], *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        payload = json.dumps(
            {
                "version": VERSION,
                "identity": self.identity,
                "done": sorted(done),
                "partial": partial.to_json(),
            },
            allow_nan=True,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
