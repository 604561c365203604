"""Checkpoints: the exact merged states and the finished units, written atomically.

A checkpoint is JSON: ``{"version", "identity", "done": [unit keys], "partial": {...}, "extra"}``
(``extra``: whatever else its owner needs, e.g. ``watch``'s file sizes). It is written with
`write_atomic`: to a temp file in the same directory, fsynced, and renamed over the old one, so a
crash or ``kill -9`` at any instant leaves either the previous or the new checkpoint. Resuming loads
the merged state and skips the finished units; because merging is exact, the final result is
identical to that of an uninterrupted run. A checkpoint of other inputs or options is refused.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._exceptions import StateError
from .partial import Partial

__all__ = ["Checkpoint", "write_atomic"]

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

    def read(self) -> dict[str, Any] | None:
        """The saved checkpoint (identity checked), or ``None`` when there is none yet."""
        if not self.path.exists():
            return None
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
        return data

    def load_into(self, partial: Partial) -> set[str]:
        """Load a previous checkpoint into ``partial``; return the finished unit keys."""
        data = self.read()
        if data is None:
            return set()
        partial.load_json(data["partial"])
        return set(data["done"])

    def save(
        self,
        partial: Partial,
        done: set[str],
        *,
        force: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the state (at most once per ``interval`` unless ``force``), atomically."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        payload = {
            "version": VERSION,
            "identity": self.identity,
            "done": sorted(done),
            "partial": partial.to_json(),
        }
        if extra is not None:
            payload["extra"] = dict(extra)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(payload, allow_nan=True))


def write_atomic(
    path: str | os.PathLike[str], data: str | bytes, *, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically: temp file beside it, fsync, rename, fsync dir.

    The temporary file starts with ``.`` and ends with ``.tmp`` (so directory followers skip it);
    ``mode`` sets the permissions (default: the temp file's 0o600).
    """
    import tempfile  # lazy: it imports shutil, bz2, lzma and random (~5 ms of start-up)

    target = Path(path)
    directory = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
