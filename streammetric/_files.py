"""Files the package reads besides the data (checkpoints, configs, auth files) and the data
itself: what a path is, so that a FIFO or a device is refused instead of read (reading a FIFO
blocks until a writer comes; a device may never end). No dependencies: every layer uses it."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ._exceptions import ConfigError

__all__ = ["Spacing", "read_text", "special_kind", "write_atomic", "write_text"]


class Spacing:
    """When a periodic write (a checkpoint, a textfile, a push) is due again: ``interval``
    seconds after the last one ended, or `SPACING` times as long as it took when that is longer,
    so that writing takes at most about a fifth of a run whatever the state's size (at 100,000
    groups a checkpoint takes a second and a textfile several: writing after every unit made a
    few seconds' run take minutes)."""

    SPACING = 4.0

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0  # the earliest time (monotonic) of the next write unless forced

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def wrote(self, started: float) -> None:
        """A write that began at ``started`` (`time.monotonic`) has ended now."""
        now = time.monotonic()
        self._next = now + max(self.interval, self.SPACING * (now - started))


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


def _new_file_mode(target: Path) -> int:
    """The permissions ``target`` keeps (if it exists) or a new file gets under the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0o022)  # read it (there is no getter); set back at once
        os.umask(umask)
        return 0o666 & ~umask


#: characters of a str encoded at a time by `write_text` (the pieces' memory is reused)
_PIECE = 1 << 20


def write_text(
    handle: BinaryIO,
    text: str | Iterable[str],
    end: str = "",
    encoding: str = "utf-8",
    errors: str = "strict",
) -> None:
    """Write ``text`` (or its pieces, one after another) then ``end`` to a binary file, encoded
    a piece at a time: a large text (a result with 100,000 groups: 19 MB) is not copied whole
    into bytes, nor into ``text + end``; each copy of it would cost its pages' faults."""
    for piece in (text,) if isinstance(text, str) else text:
        for start in range(0, len(piece), _PIECE):
            handle.write(piece[start : start + _PIECE].encode(encoding, errors))
    handle.write(end.encode(encoding, errors))


def write_atomic(
    path: str | os.PathLike[str],
    data: str | Iterable[str] | bytes,
    *,
    mode: int | None = None,
    end: str = "",
) -> None:
    """Replace ``path`` with ``data`` then ``end`` atomically: temp file beside it, fsync,
    rename, fsync dir. A str (or a sequence of them, one after another) is encoded (UTF-8) a
    piece at a time (`write_text`).

    The temporary file starts with ``.`` and ends with ``.tmp`` (so directory followers skip it);
    ``mode`` sets the permissions (default: those of the file it replaces, or of a new file
    under the umask, as ``open(path, "w")`` would give, not the temp file's 0o600).
    """
    import tempfile  # lazy: it imports shutil, bz2, lzma and random (~5 ms of start-up)

    target = Path(path)
    directory = target.parent
    if mode is None:
        mode = _new_file_mode(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
                handle.write(end.encode())
            else:
                write_text(handle, data, end)
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
