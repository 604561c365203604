"""Files the package reads besides the data (checkpoints, configs, auth files) and the data
itself: what a path is, so that a FIFO or a device is refused instead of read (reading a FIFO
blocks until a writer comes; a device may never end). No dependencies: every layer uses it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._exceptions import ConfigError

__all__ = ["read_text", "special_kind"]


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What a path is when it is neither a regular file nor a directory (``None`` otherwise):
    reading a FIFO blocks until a writer comes, a device may never end."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # vanished or unreadable: the read says so
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of a file the user named for ``what`` (e.g. ```--web-config```), or one
    `ConfigError` line: unreadable, not UTF-8, or not a regular file (never blocking on a FIFO)."""
    special = special_kind(path)
    if special is not None:
        raise ConfigError(f"{what} cannot be read: {os.fspath(path)}: {special}, not a file")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} cannot be read: {os.fspath(path)}: {exc}") from None
