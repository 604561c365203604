"""Object storage: the one place that turns a PATH that is a URI (``s3://bucket/key``,
``gs://``, ``hdfs://``, any scheme fsspec knows) plus storage options into a pyarrow
``FileSystem`` and the path inside it. Planning, reading and fingerprinting use it; local paths
never come here (they keep their ``os`` fast paths).

Credentials and endpoints come from the standard environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, ~/.aws files, ...; ``GOOGLE_APPLICATION_CREDENTIALS`` for gs; Hadoop's
for hdfs) and from storage options (``--storage-option key=value``), which are the keyword
arguments of ``pyarrow.fs.S3FileSystem``, ``GcsFileSystem``, ``HadoopFileSystem`` or of the
fsspec filesystem. Options are process-wide (`use_storage_options`): a job sets its own before
planning, and a Dask worker before reading a unit.

>>> is_uri("s3://bucket/preds.parquet"), is_uri("preds.parquet"), is_uri("C:\\\\data")
(True, False, False)
>>> parse_storage_options(["region=eu-west-1", "anonymous=true"])
{'region': 'eu-west-1', 'anonymous': 'true'}
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from streammetric._exceptions import ConfigError, InvalidInputError

__all__ = [
    "filesystem",
    "is_uri",
    "object_identity",
    "parse_storage_options",
    "remote_info",
    "storage_options",
    "use_storage_options",
]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_NATIVE = ("s3", "gs", "gcs", "hdfs", "viewfs", "file")
_lock = threading.Lock()
_options: dict[str, str] = {}
# (size, mtime_ns, etag) of objects seen by listing or stat, per URI: planning lists a prefix
# once, and every later step (footer cache keys, units, fingerprint) reuses what it found
_infos: dict[str, tuple[int, int, str | None]] = {}


def is_uri(path: str) -> bool:
    """``scheme://...`` (a path with a drive letter or without ``://`` is local)."""
    return "://" in path and _SCHEME.match(path) is not None


def scheme_of(uri: str) -> str:
    match = _SCHEME.match(uri)
    assert match is not None
    return match.group(1).lower()


def parse_storage_options(values: Iterable[str]) -> dict[str, str]:
    """``key=value`` strings (``--storage-option``) as a dict; a `ConfigError` for another form."""
    options: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        key = key.strip()
        if not equals or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise ConfigError(
                f"--storage-option must be KEY=VALUE (e.g. region=eu-west-1), got {value!r}"
            )
        options[key] = text
    return options


def use_storage_options(options: Mapping[str, str] | None) -> None:
    """Set the process's storage options (``None``: none); filesystems are made anew for them."""
    with _lock:
        new = dict(options or {})
        if new != _options:
            _options.clear()
            _options.update(new)
            _infos.clear()


def storage_options() -> dict[str, str]:
    with _lock:
        return dict(_options)


def _flag(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"--storage-option {key} must be true or false, got {value!r}")


_S3_FLAGS = {"anonymous", "background_writes", "allow_bucket_creation", "allow_bucket_deletion",
             "check_directory_existence_before_creation", "force_virtual_addressing"}  # fmt: skip
_S3_FLOATS = {"connect_timeout", "request_timeout"}
_S3_ALIASES = {
    "endpoint_url": "endpoint_override",
    "endpoint": "endpoint_override",
    "region_name": "region",
    "aws_access_key_id": "access_key",
    "key": "access_key",
    "aws_secret_access_key": "secret_key",
    "secret": "secret_key",
    "aws_session_token": "session_token",
    "token": "session_token",
    "profile": "profile",
}


def _s3_kwargs(options: Mapping[str, str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        name = _S3_ALIASES.get(key, key)
        if name in _S3_FLAGS:
            kwargs[name] = _flag(key, value)
        elif name in _S3_FLOATS:
            try:
                kwargs[name] = float(value)
            except ValueError:
                raise ConfigError(
                    f"--storage-option {key} must be a number, got {value!r}"
                ) from None
        else:
            kwargs[name] = value
    if "endpoint_override" not in kwargs:  # pyarrow does not read these itself
        for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if os.environ.get(variable):
                kwargs["endpoint_override"] = os.environ[variable]
                break
    if "region" not in kwargs:
        for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(variable):
                kwargs["region"] = os.environ[variable]
                break
    endpoint = kwargs.get("endpoint_override")
    if isinstance(endpoint, str) and "://" in endpoint:  # pyarrow wants scheme= and host:port
        scheme, _, rest = endpoint.partition("://")
        kwargs["endpoint_override"] = rest.rstrip("/")
        kwargs.setdefault("scheme", scheme)
    if "profile" in kwargs:  # pyarrow has no profile argument: the SDK reads AWS_PROFILE
        raise ConfigError(
            "--storage-option profile is not supported: set AWS_PROFILE in the environment"
        )
    return kwargs


def _has_aws_credentials(kwargs: Mapping[str, Any]) -> bool:
    """Whether the AWS SDK's chain could find credentials (IMDS only probed when not disabled)."""
    if kwargs.get("anonymous") or kwargs.get("access_key") or kwargs.get("role_arn"):
        return True
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return True
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        return True
    if env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE"):
        return True
    home = os.path.expanduser("~")
    for variable, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", os.path.join(home, ".aws", "credentials")),
        ("AWS_CONFIG_FILE", os.path.join(home, ".aws", "config")),
    ):
        if os.path.isfile(env.get(variable) or default):
            return True
    if env.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true":
        return False
    return _imds_reachable()


def _imds_reachable() -> bool:
    """The EC2 instance metadata service answers (an instance role may give credentials)."""
    import socket

    try:
        with socket.create_connection(("169.254.169.254", 80), timeout=0.5):
            return True
    except OSError:
        return False


_ENVIRONMENT = ("AWS_", "GOOGLE_", "GCS_", "HADOOP_", "ARROW_LIBHDFS", "CLASSPATH", "HOME")


def _environment() -> tuple[tuple[str, str], ...]:
    """The environment variables a filesystem's credentials and endpoint may come from: part
    of the cache key, so a changed environment gives a new filesystem."""
    return tuple(sorted(item for item in os.environ.items() if item[0].startswith(_ENVIRONMENT)))


@functools.lru_cache(maxsize=16)
def _make(
    scheme: str,
    authority: str,
    options: tuple[tuple[str, str], ...],
    environment: tuple[tuple[str, str], ...] = (),
) -> Any:
    import pyarrow.fs as pafs

    given = dict(options)
    try:
        if scheme == "s3":
            kwargs = _s3_kwargs(given)
            if not _has_aws_credentials(kwargs):
                raise InvalidInputError(
                    f"s3://{authority}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials, or give "
                    "--storage-option access_key=... --storage-option secret_key=...; anonymous=true for a "
                    "public bucket)",
                    path=f"s3://{authority}",
                    rule="credentials are needed",
                )
            return pafs.S3FileSystem(**kwargs)
        if scheme in ("gs", "gcs"):
            gcs: dict[str, Any] = dict(given)
            if "anonymous" in gcs:
                gcs["anonymous"] = _flag("anonymous", gcs["anonymous"])
            return pafs.GcsFileSystem(**gcs)
        if scheme in ("hdfs", "viewfs"):
            host, _, port = authority.partition(":")
            extra: dict[str, Any] = {"port": int(port)} if port else {}
            return pafs.HadoopFileSystem(host or "default", **extra, **given)
        if scheme == "file":
            return pafs.LocalFileSystem()
    except TypeError as exc:  # an option the filesystem does not take
        raise ConfigError(f"--storage-option for {scheme}://: {exc}") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidInputError | ConfigError):
            raise
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise InvalidInputError(f"{scheme}://{authority}: {text}") from None
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"{scheme}:// URIs need fsspec (pip install fsspec and the {scheme} "
            "implementation); s3://, gs:// and hdfs:// are read by pyarrow"
        ) from None
    try:
        handler = pafs.FSSpecHandler(fsspec.filesystem(scheme, **given))
    except (ImportError, ValueError, TypeError) as exc:
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise ConfigError(f"{scheme}://: {text}") from None
    return pafs.PyFileSystem(handler)


def filesystem(uri: str) -> tuple[Any, str]:
    """The pyarrow ``FileSystem`` for ``uri`` (cached per scheme, authority and options) and
    the path inside it (``bucket/key`` for s3 and gs)."""
    scheme = scheme_of(uri)
    rest = uri[len(scheme) + 3 :]
    authority = rest.split("/", 1)[0]
    options = tuple(sorted(storage_options().items()))
    environment = _environment()
    if scheme in ("s3", "gs", "gcs"):
        return _make(scheme, authority, options, environment), rest
    if scheme in ("hdfs", "viewfs"):
        inner = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return _make(scheme, authority, options, environment), inner
    if scheme == "file":
        return _make(scheme, "", ()), "/" + rest.lstrip("/")
    fs = _make(scheme, "", options, environment)  # fsspec's: paths without the scheme
    return fs, str(fs.handler.fs._strip_protocol(uri))


def join(base: str, inner_base: str, inner: str) -> str:
    """The URI of ``inner`` (a path inside the filesystem of ``base``, whose own inner path is
    ``inner_base``)."""
    return base.rstrip("/") + "/" + inner[len(inner_base.rstrip("/")) + 1 :]


def remember(uri: str, size: int, mtime_ns: int, etag: str | None = None) -> None:
    with _lock:
        _infos[uri] = (size, mtime_ns, etag)


def remote_info(uri: str) -> tuple[int, int, str | None]:
    """``(size, mtime_ns, etag)`` of an object (as listed by planning, else asked for)."""
    with _lock:
        found = _infos.get(uri)
    if found is not None:
        return found
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, inner = filesystem(uri)
    try:
        info = fs.get_file_info(inner)
    except (pa.ArrowException, OSError) as exc:
        raise storage_error(uri, exc) from None
    if info.type != pafs.FileType.File:
        raise InvalidInputError(f"{uri}: no such object", path=uri, rule="must exist")
    mtime = info.mtime_ns or 0
    remember(uri, int(info.size or 0), int(mtime))
    return _infos[uri]


def object_identity(uri: str) -> list[Any]:
    """What identifies an object's content for checkpoints: ``["etag", ETAG]`` when the store
    gives an ETag (S3), else ``[size, mtime_ns]``."""
    size, mtime_ns, etag = remote_info(uri)
    if etag is None and scheme_of(uri) == "s3":
        etag = _etag(uri)
        if etag is not None:
            remember(uri, size, mtime_ns, etag)
    return ["etag", etag] if etag else [size, mtime_ns]


def _etag(uri: str) -> str | None:
    import pyarrow as pa

    fs, inner = filesystem(uri)
    try:
        with fs.open_input_file(inner) as handle:
            metadata = handle.metadata()
    except (pa.ArrowException, OSError) as exc:
        raise storage_error(uri, exc) from None
    for key in (b"ETag", "ETag"):
        try:
            value = metadata[key]
        except (KeyError, TypeError):
            continue
        return value.decode() if isinstance(value, bytes) else str(value)
    return None


def storage_error(uri: str, exc: BaseException) -> InvalidInputError:
    """One line for an error of the object store (a missing bucket, access denied, ...)."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    lowered = text.lower()
    if any(word in lowered for word in ("nosuchbucket", "no_such_bucket", "bucket does not exist")):
        bucket = uri.split("://", 1)[1].split("/", 1)[0]
        return InvalidInputError(
            f"{uri}: bucket {bucket!r} does not exist", path=uri, rule="the bucket must exist"
        )
    return InvalidInputError(f"{uri}: {text}", path=uri)
