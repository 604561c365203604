"""Files the package reads besides the data (checkpoints, configs, auth files) and the data
itself: what a path is, so that a FIFO or a device is refused instead of read (reading a FIFO
blocks until a writer comes; a device may never end). No dependencies: every layer uses it."""

from __future__ import annotations

import os
import stat

__all__ = ["special_kind"]


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
