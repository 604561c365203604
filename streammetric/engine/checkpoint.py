"""Checkpoints: the exact merged states and the finished units, written atomically.

A checkpoint is JSON: ``{"format": "streammetric checkpoint", "version", "identity", "done":
[unit keys], "partial": {...}, "stdin", "ci", "extra", "digest"}`` (``stdin``: once stdin was
read whole, ``{"bytes", "sha256", "rows"}`` of it; ``ci``: a ``--ci`` run's ``{"level",
"replicates"}``, which ``report`` uses; ``extra``: whatever else its owner needs, e.g.
``watch``'s file sizes; ``digest``: the SHA-256 of the rest, `content_digest`). It is
written with `write_atomic`: to a temp file in the same directory, fsynced, and renamed over the
old one, so a crash or ``kill -9`` at any instant leaves either the previous or the new
checkpoint. Resuming loads the merged state and skips the finished units; because merging is
exact, the final result is identical to that of an uninterrupted run.

Nothing in a checkpoint is trusted: a checkpoint of other inputs or options is refused; so is
one whose digest does not match (corruption), and one whose fields do not hold (types, counts
>= 0, sums in range: see `EvalMetric.load_state_dict`) or do not agree with each other (the
rows of the state are the rows of the finished units, each a unit of the plan, once). A file
that is not a streammetric checkpoint (say, the Parquet file itself) is neither read nor
overwritten. Each refusal is one `StateError` naming the file (``path``) and the field. A path
where no checkpoint file can be made (a directory, or one below a file) is a `ConfigError` as
the `Checkpoint` is made, before anything is read.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError, StateError
from .._files import Spacing, special_kind, write_atomic
from ..io import STDIN, file_key
from .partial import Partial

if TYPE_CHECKING:
    from ..io import Unit

__all__ = ["Checkpoint", "content_digest", "write_atomic"]  # write_atomic: from _files

VERSION = 1
FORMAT = "streammetric checkpoint"
# How a checkpoint file starts: this version's, and the first version's (without "format")
_HEADS = (b'{"format": "streammetric checkpoint"', b'{"version": 1, "identity": ')


def content_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of a checkpoint's content (every field but ``digest``) as canonical JSON."""
    return _digest_of(_canonical(content))


def _canonical(content: Any) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _digest_holds(
    digest: Any,
    raw: bytes,
    fields: list[tuple[str, Any, int, int]] | None,
    content: Mapping[str, Any],
) -> bool:
    """Whether ``digest`` is `content_digest` of ``content`` (the file ``raw`` parsed): taken
    from the values' bytes as the file holds them (`Checkpoint.save` writes each value as its
    canonical text, ASCII), else by writing the content canonically (a file whose layout was
    changed, e.g. indented)."""
    if fields is not None and raw.isascii():  # the text's positions are the bytes'
        import hashlib

        spans = {key: (start, end) for key, _, start, end in fields if key != "digest"}
        view, digest_of = memoryview(raw), hashlib.sha256(b"{")
        for n, key in enumerate(sorted(spans)):
            start, end = spans[key]
            digest_of.update(b"%s%s:" % (b"," if n else b"", json.dumps(key).encode()))
            digest_of.update(view[start:end])
        digest_of.update(b"}")
        if digest == digest_of.hexdigest():
            return True
    return digest == content_digest(content)


def _digest_of(text: str) -> str:
    import hashlib  # lazy, as in `fingerprint`

    return hashlib.sha256(text.encode()).hexdigest()


_DECODER = json.JSONDecoder()


def _space(text: str, at: int) -> int:
    """The first position at or after ``at`` that is not JSON whitespace."""
    while text[at : at + 1] in (" ", "\t", "\n", "\r"):
        at += 1
    return at


def _fields(text: str, stop: str | None = None) -> list[tuple[str, Any, int, int]] | None:
    """The top-level fields of a JSON object's text, in order: (key, value, where the value's
    text starts and ends), up to key ``stop`` if given; None if the text is not one JSON object
    (`json.loads` then says why). One parse, as `json.loads`'s, that also keeps where each
    value was."""
    at = _space(text, 0)
    if text[at : at + 1] != "{":
        return None
    at = _space(text, at + 1)
    out: list[tuple[str, Any, int, int]] = []
    if text[at : at + 1] == "}":
        return out if _space(text, at + 1) == len(text) else None
    try:
        while True:
            key, at = _DECODER.raw_decode(text, at)
            at = _space(text, at)
            if not isinstance(key, str) or text[at : at + 1] != ":":
                return None
            start = _space(text, at + 1)
            value, at = _DECODER.raw_decode(text, start)
            out.append((key, value, start, at))
            if key == stop:
                return out
            at = _space(text, at)
            if text[at : at + 1] != ",":
                break
            at = _space(text, at + 1)
    except (ValueError, RecursionError):
        return None
    if text[at : at + 1] != "}" or _space(text, at + 1) != len(text):
        return None
    return out


def saved_metric_defaults(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``metric_defaults`` of the run a checkpoint at ``path`` was saved by, or None when
    there is none there (or it cannot be read: `Checkpoint.read` says why, later). Lets a
    resumed run keep options that were implied, not given (``--report``'s conventions)."""
    target = Path(path)
    if not target.is_file():
        return None
    try:
        text = target.read_bytes().decode("utf-8")
        fields = _fields(text, stop="identity")  # the fields before it, not the state
        data = json.loads(text) if fields is None else {key: value for key, value, *_ in fields}
        defaults = data["identity"]["metric_defaults"]
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None
    return defaults if isinstance(defaults, dict) else None


#: the options behind each key of a run's identity, as refusals name them
_OPTIONS = {
    "metrics": "metrics (-m)",
    "columns": "columns (--labels, --preds, --weights, --by, --id)",
    "on_invalid": "--on-invalid",
    "metric_defaults": "metric options (--convention, --from-logits, ...)",
    "resampling": "--ci resampling (--ci, --seed, --id)",
    "strict": "--strict",
    "watch": "watched directory",
}


def _check_place(given: str, path: Path) -> None:
    """A `ConfigError` (before anything is read) unless `Checkpoint.save` can make a file at
    ``path`` (as ``given``): not a directory, and the nearest of its folders that exists a
    directory (the missing ones `save` makes, as ``mkdir -p``), not a file, which would end the
    run at its first save with ``FileExistsError`` (or ``NotADirectoryError``); nor an object
    store's URI (it would be a local folder named ``s3:``)."""
    from ..io.storage import is_uri

    if is_uri(given):
        raise ConfigError(
            f"--checkpoint {given}: a checkpoint is a local file (an object store's URI is "
            "read, not written)"
        )
    if path.is_dir():
        raise ConfigError(f"--checkpoint {given}: it is a directory, not a file")
    for folder in path.parents:  # nearest first; `exists` is False below a file
        if folder.is_dir():
            return
        if folder.exists():  # a file, or a FIFO, socket or device
            said = "is a file, not a directory" if folder.is_file() else "is not a directory"
            raise ConfigError(f"--checkpoint {given}: {folder} {said}")


class Checkpoint:
    """Save/load of one job's progress; saves are spaced by ``interval`` seconds, or by four
    times the previous save's duration when that is longer (`Spacing`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        identity: dict[str, Any],
        *,
        interval: float = 0.5,
        files: dict[str, list[Any]] | None = None,
        ci: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        #: the run's ``--ci`` level and replicates (not its identity: a resume may ask for
        #: others), so that `streammetric report` of the checkpoint gives the run's intervals
        self.ci = ci
        _check_place(os.fspath(path), self.path)
        self.identity = json.loads(json.dumps(identity, default=str))
        #: each input file's identity (`file_items`), saved beside the identity's digest of
        #: them all: a resume whose inputs differ only in files none of whose units finished
        #: (the file that failed the run, fixed) goes on (`load_into` checks it)
        self.files = None if files is None else json.loads(json.dumps(files, default=str))
        self._saved_files: dict[str, Any] | None = None  # a checkpoint's, when inputs differ
        self.spacing = Spacing(interval)
        #: the finished units of the state the file holds (loaded or saved without ``extra``):
        #: a save of the same units would write what is there (resuming a finished run)
        self._on_disk: frozenset[str] | None = None
        #: what was read of stdin, once it was read whole: ``{"bytes", "sha256", "rows"}``
        #: (set by the run, saved with the state; loaded by `load_into`)
        self.stdin: dict[str, Any] | None = None

    def _error(self, field: str, rule: str, value: Any) -> StateError:
        return StateError.bad_field(field, rule, value, what="checkpoint", path=str(self.path))

    def _refuse(self, message: str, field: str | None = None) -> StateError:
        return StateError(f"{self.path}: {message}", path=str(self.path), field=field)

    def read(self) -> dict[str, Any] | None:
        """The saved checkpoint (format, digest, version, identity and ``done`` checked), or
        ``None`` when there is none yet."""
        if not self.path.exists():
            return None
        special = special_kind(self.path)
        if special is not None:  # reading a FIFO would block; a device may never end
            raise self._refuse(f"{special}, not a checkpoint file; refusing to read or replace it")
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise self._refuse(f"cannot read checkpoint ({exc.strerror or exc})") from exc
        ours = raw.startswith(_HEADS)
        try:
            text = raw.decode("utf-8")
            fields = _fields(text)
            data = json.loads(text) if fields is None else {key: value for key, value, *_ in fields}
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            if not ours:
                raise self._not_ours(raw) from exc
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise self._refuse(
                f"checkpoint is corrupt ({reason}); delete it to start over"
            ) from exc
        if not isinstance(data, dict) or not (
            data.get("format") == FORMAT or {"version", "identity", "done", "partial"} <= set(data)
        ):
            raise self._not_ours(raw)
        if data.get("version") != VERSION or type(data.get("version")) is not int:
            raise self._error(
                "version",
                f"must be {VERSION} (a checkpoint of another streammetric version); delete it to start over",
                data.get("version"),
            )
        content = {key: value for key, value in data.items() if key != "digest"}
        if "digest" in data or "format" in data:  # the first version wrote neither
            if not _digest_holds(data.get("digest"), raw, fields, content):
                raise self._refuse(
                    "checkpoint is corrupt (its content does not match its digest); "
                    "delete it to start over",
                    field="digest",
                )
        if data.get("identity") != self.identity:
            stored = data.get("identity")
            stored = stored if isinstance(stored, dict) else {}
            keys = {*self.identity, *stored}  # a key only one has: an option given or dropped
            differs = sorted(k for k in keys if stored.get(k) != self.identity.get(k))
            saved_files = data.get("files")
            if (
                differs == ["inputs"]
                and set(stored) == set(self.identity)
                and self.files is not None
                and isinstance(saved_files, dict)
            ):  # which files changed, and whether any had finished units: `load_into`
                self._saved_files = saved_files
            else:
                said = ", ".join(_OPTIONS.get(key, key) for key in differs) or "identity"
                raise self._refuse(
                    f"checkpoint belongs to a run with different {said}; "
                    "use another --checkpoint file or delete this one",
                    field="identity",
                )
        done = data.get("done")
        if not isinstance(done, list) or not all(isinstance(key, str) for key in done):
            raise self._error("done", "must be a list of unit keys (strings)", done)
        repeated = sorted(key for key, count in Counter(done).items() if count > 1)
        if repeated:
            raise self._error("done", "must name each finished unit once", repeated[0])
        stdin = data.get("stdin")
        if stdin is not None and not (
            isinstance(stdin, dict)
            and set(stdin) == {"bytes", "sha256", "rows"}
            and all(type(stdin[k]) is int and stdin[k] >= 0 for k in ("bytes", "rows"))
            and isinstance(stdin["sha256"], str)
            and len(stdin["sha256"]) == 64
        ):
            raise self._error("stdin", "must be {bytes, sha256, rows} of the stdin read", stdin)
        if not isinstance(data.get("partial"), dict):
            raise self._error(
                "partial",
                "must be a merged state {rows, invalid_rows, groups}",
                data.get("partial"),
            )
        return data

    def _not_ours(self, raw: bytes) -> StateError:
        found = "it is empty" if not raw else f"it starts with {raw[:8]!r}"
        return self._refuse(
            f"not a streammetric checkpoint ({found}); refusing to read or overwrite it: "
            "pass another --checkpoint path",
            field="format",
        )

    def load_partial(self, partial: Partial, data: Mapping[str, Any]) -> None:
        """Load a checkpoint's ``partial`` (as `read` returned it) into ``partial``; a bad
        field is refused naming this file and the field."""
        try:
            partial.load_json(data["partial"])
        except StateError as exc:
            raise exc.within("partial", what="checkpoint", path=str(self.path)) from None

    def load_into(self, partial: Partial, units: Sequence[Unit] | None = None) -> set[str]:
        """Load a previous checkpoint into ``partial``; return the finished unit keys.

        With the plan's ``units``, each finished unit must be one of them, and the rows of the
        state (counted and invalid) those of the finished units (where the plan knows them;
        a stream's are not known in advance)."""
        data = self.read()
        if data is None:
            return set()
        self.load_partial(partial, data)
        done = set(data["done"])
        self.stdin = data.get("stdin")
        self._on_disk = frozenset(done) if "extra" not in data else None
        if self._saved_files is not None:  # (inputs that differ need the plan to be told)
            self._check_changed_files(done, units if units is not None else ())
        if units is not None:
            rows_of = {unit.key: unit.num_rows for unit in units}
            unknown = sorted(done - set(rows_of))
            if unknown:
                raise self._error("done", "must name units of this run's inputs", unknown[0])
            stdin_key = next((unit.key for unit in units if unit.path == STDIN), None)
            if (stdin_key in done) != (self.stdin is not None):
                rule = (
                    "must say what stdin held, since `done` has stdin"
                    if stdin_key in done
                    else "must be absent while stdin is not in `done`"
                )
                raise self._error("stdin", rule, self.stdin)
            if stdin_key is not None and stdin_key in done and self.stdin is not None:
                rows_of[stdin_key] = self.stdin["rows"]
            if all(rows_of[key] is not None for key in done):
                expected = sum(rows_of[key] or 0 for key in done)
                found = partial.rows + partial.invalid_rows
                if found != expected:
                    raise self._error(
                        "partial.rows",
                        f"(+ partial.invalid_rows) must be {expected:,}, the rows of the "
                        "finished units in `done`",
                        found,
                    )
        return done

    def _check_changed_files(self, done: set[str], units: Sequence[Unit]) -> None:
        """The inputs differ from the checkpoint's (`read`): go on only if they are the same
        files and none that changed has a finished unit (its rows are in the state); else
        refuse, naming the first such file."""
        saved, current = self._saved_files or {}, self.files or {}
        if not units or set(saved) != set(current):
            other = (sorted(set(saved) ^ set(current)) or ["an input"])[0]
            said = (
                "is not an input of the checkpoint's run"
                if other in current
                else ("was an input of the checkpoint's run and is not one now")
            )
            raise self._refuse(
                f"checkpoint belongs to a run with different inputs ({other} {said}); "
                "use another --checkpoint file or delete this one",
                field="identity",
            )
        finished = {file_key(unit.path) for unit in units if unit.key in done}
        for path in sorted(saved):
            if saved[path] != current[path] and path in finished:
                raise self._refuse(
                    f"{path} changed after some of its units were evaluated into this "
                    "checkpoint (their rows are in its state); restore it, or delete the "
                    "checkpoint to start over",
                    field="files",
                )

    def save(
        self,
        partial: Partial,
        done: set[str],
        *,
        force: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the state (when `Spacing` says it is due, or ``force``), atomically."""
        now = time.monotonic()
        if not force and not self.spacing.due():
            return
        if extra is None and self._on_disk == done:  # the file holds this state already
            return
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "identity": self.identity,
            "done": sorted(done),
            "partial": partial.to_json(),
        }
        if self.stdin is not None:
            payload["stdin"] = self.stdin
        if self.files is not None:
            payload["files"] = self.files
        if self.ci is not None:
            payload["ci"] = self.ci
        if extra is not None:
            payload["extra"] = dict(extra)
        # each field serialised once, for the digest's canonical text and for the file (which
        # starts with the format, so that even a truncated checkpoint is known as one)
        fields = {key: _canonical(value) for key, value in payload.items()}
        canonical = ",".join(f"{json.dumps(key)}:{fields[key]}" for key in sorted(fields))
        fields["digest"] = json.dumps(_digest_of(f"{{{canonical}}}"))
        text = ", ".join(f"{json.dumps(key)}: {value}" for key, value in fields.items())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, f"{{{text}}}")
        self.spacing.wrote(now)
        self._on_disk = frozenset(done) if extra is None else None
