"""Where files live: local paths and object-store URIs through one layer (plain core).

Every path the project reads or writes may be a local path, ``file://...`` or a URI of an
object store or remote filesystem (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``): the
filesystem is ``pyarrow.fs.FileSystem.from_uri``, whose credentials and endpoints come from
each store's standard environment and config files (S3: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_PROFILE``, ...).
``storage_options`` (a mapping given on a config or under ``storage:`` in a pipeline file)
are passed to the filesystem's constructor; they never appear in logs, reprs or errors
(``redact`` strips credentials a URI may carry).

Writes to a remote store are whole or nothing: ``put_file`` uploads to a temp key beside the
target, checks its size, and server-side copies it onto the target (one atomic operation),
so a failed upload — even one the store's client completed with missing parts — never
touches the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

#: schemes handled as remote stores (``file://`` is local)
REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "az", "hdfs", "viewfs")
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_lock = threading.Lock()
_filesystems: dict[tuple[str, str, tuple, tuple], pafs.FileSystem] = {}
#: variables that choose a store's endpoint or identity: a change makes a new filesystem
_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
             "AWS_REGION", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_ACCOUNT_NAME")


class StorageError(OSError):
    """A storage operation failed; the message names the (redacted) URI and what to do."""


def scheme(path: str | os.PathLike) -> str | None:
    """The URI scheme of ``path`` (lower case), ``None`` for a plain path."""
    match = _URI.match(os.fspath(path)) if isinstance(path, str | os.PathLike) else None
    return match.group(1).lower() if match else None


def is_remote(path: Any) -> bool:
    """Whether ``path`` names an object store or remote filesystem (not a local file)."""
    return isinstance(path, str) and scheme(path) not in (None, "file")


def local_path(path: str | os.PathLike) -> str:
    """A local path for ``path`` (``file:///x`` -> ``/x``); remote URIs are refused."""
    text = os.fspath(path)
    if scheme(text) == "file":
        return urlsplit(text).path
    if is_remote(text):
        raise StorageError(f"{redact(text)} is not a local path")
    return text


def redact(uri: Any) -> str:
    """``uri`` without credentials (user:password@ and query strings such as SAS tokens)."""
    text = os.fspath(uri) if isinstance(uri, str | os.PathLike) else str(uri)
    if not is_remote(text):
        return text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def join(base: str | os.PathLike, *names: str) -> str:
    """``base`` joined with ``names`` with ``/`` for URIs, ``os.path.join`` for paths."""
    text = os.fspath(base)
    if is_remote(text):
        return "/".join([text.rstrip("/"), *(n.strip("/") for n in names)])
    return os.path.join(text, *names)


def parent(path: str) -> str:
    """The parent of a URI or path."""
    if is_remote(path):
        head, _, _ = path.rstrip("/").rpartition("/")
        return head
    return os.path.dirname(os.path.abspath(path))


def basename(path: str) -> str:
    return path.rstrip("/").rpartition("/")[2] if is_remote(path) else os.path.basename(path)


def absolute(path: str | os.PathLike) -> str:
    """A URI as given (trailing ``/`` dropped), a local path made absolute."""
    text = os.fspath(path)
    return text.rstrip("/") if is_remote(text) else os.path.abspath(local_path(text))


# -- storage options ------------------------------------------------------------------------
#: (scheme, authority) -> the options registered for that store (see ``StorageOptions``)
_registered: dict[tuple[str, str], StorageOptions] = {}
#: option names whose values may be shown (everything else prints as ***)
_SHOWN = frozenset({"region", "endpoint_override", "scheme", "anonymous", "project_id",
                    "account_name", "host", "port"})


class StorageOptions(Mapping[str, Any]):
    """Constructor arguments of the filesystems of some stores (``pyarrow.fs.S3FileSystem``
    for ``s3://``: ``access_key``, ``secret_key``, ``endpoint_override``, ``region``, ...),
    for the buckets/authorities of ``paths``.

    Made (or unpickled: a config shipped to a worker) it registers itself in this process,
    so every read and write of those stores uses it. Its repr and str show option names
    and only non-secret values (region, endpoint): credentials never reach logs, reprs,
    errors or results."""

    __slots__ = ("_options", "scopes")

    def __init__(self, options: Mapping[str, Any], paths: Any = ()) -> None:
        if not isinstance(options, Mapping):
            raise TypeError(
                f"storage_options must be a mapping of the store's filesystem arguments "
                f"(e.g. {{'region': 'eu-west-1'}}), got {type(options).__name__}")
        self._options = dict(options.items())
        listed = [paths] if isinstance(paths, str | os.PathLike) else list(paths or ())
        scopes = {_scope(os.fspath(p)) for p in listed if p and is_remote(os.fspath(p))}
        self.scopes: tuple[tuple[str, str], ...] = tuple(sorted(scopes))
        for scope in self.scopes:
            _registered[scope] = self

    def __getitem__(self, key: str) -> Any:
        return self._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StorageOptions):
            return self._options == other._options and self.scopes == other.scopes
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.scopes)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}" if k in _SHOWN else f"{k}=***" for k, v in self._options.items()
        )
        return f"StorageOptions({shown})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._options, [f"{s}://{n}/" for s, n in self.scopes]))


def _restore(options: dict[str, Any], paths: list[str]) -> StorageOptions:
    return StorageOptions(options, paths)


def _scope(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.scheme.lower(), parts.hostname or parts.netloc


def storage_options_for(
    given: Any, paths: Any
) -> StorageOptions | None:
    """``given`` (a mapping, a ``StorageOptions`` or ``None``) as ``StorageOptions`` for the
    stores of ``paths`` (registered in this process)."""
    if given is None:
        return None
    listed = [paths] if isinstance(paths, str | os.PathLike) else list(paths or ())
    if isinstance(given, StorageOptions):
        return StorageOptions(given._options, [*listed, *(f"{s}://{n}/" for s, n in given.scopes)])
    return StorageOptions(given, listed)


def filesystem(
    uri: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path inside it)`` for a remote ``uri`` (filesystems cached per
    scheme, authority and options); without ``storage_options``, those registered for
    the URI's store (``StorageOptions``) if any."""
    if storage_options is None:
        storage_options = _registered.get(_scope(uri))
    parts = urlsplit(uri)
    opts = json.dumps(dict((storage_options or {}).items()), sort_keys=True, default=str)
    key = (parts.scheme.lower(), parts.netloc, (opts,),
           tuple(os.environ.get(name) for name in _ENV_KEYS))
    inner = (parts.netloc + parts.path).rstrip("/") if key[0] in ("s3", "gs", "gcs") else None
    with _lock:
        fs = _filesystems.get(key)
    if fs is None:
        try:
            if storage_options:
                fs = _with_options(key[0], dict(storage_options.items()))
            else:
                fs, path = pafs.FileSystem.from_uri(uri)
                inner = inner if inner is not None else path
        except (OSError, ValueError, TypeError) as exc:
            raise StorageError(
                f"cannot open {redact(uri)}: {_clean(exc, storage_options)}; check the URI "
                "and the store's credentials (for S3 the AWS_* variables or a profile)"
            ) from None
        with _lock:
            _filesystems[key] = fs
    if inner is None:
        _, inner = pafs.FileSystem.from_uri(uri)
    return fs, inner


def _with_options(name: str, options: dict[str, Any]) -> pafs.FileSystem:
    kinds: dict[str, Any] = {"s3": pafs.S3FileSystem, "gs": pafs.GcsFileSystem,
                             "gcs": pafs.GcsFileSystem, "abfs": pafs.AzureFileSystem,
                             "abfss": pafs.AzureFileSystem, "az": pafs.AzureFileSystem,
                             "hdfs": pafs.HadoopFileSystem}
    if name not in kinds:
        raise ValueError(f"storage_options are not supported for {name}:// paths")
    try:
        return kinds[name](**options)
    except TypeError:
        raise ValueError(
            f"storage_options {sorted(options)} are not all arguments of "
            f"pyarrow.fs.{kinds[name].__name__} (see its documentation for the names)"
        ) from None


def _clean(exc: BaseException, options: Mapping[str, Any] | None) -> str:
    text = str(exc)
    for value in (options or {}).values():
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


# -- reading ------------------------------------------------------------------------------
def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(local_path(path))
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def is_file(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(local_path(path))
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.File


def is_dir(path: str) -> bool:
    """A local directory, or a remote prefix that holds at least one object."""
    if not is_remote(path):
        return os.path.isdir(local_path(path))
    fs, inner = filesystem(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.Directory:
        return True
    if info.type == pafs.FileType.File:
        return False
    return bool(list_files(path))


def stat(path: str) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file or object."""
    if not is_remote(path):
        st = os.stat(local_path(path))
        return st.st_size, st.st_mtime_ns
    fs, inner = filesystem(path)
    info = fs.get_file_info(inner)
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(f"{redact(path)} does not exist")
    return int(info.size or 0), int(info.mtime_ns or 0)


def list_files(prefix: str) -> list[str]:
    """Every object under ``prefix`` (recursive), as URIs, sorted."""
    fs, inner = filesystem(prefix)
    selector = pafs.FileSelector(inner.rstrip("/"), recursive=True, allow_not_found=True)
    base = prefix.rstrip("/")
    out = []
    for info in fs.get_file_info(selector):
        if info.type == pafs.FileType.File:
            out.append(base + info.path[len(inner.rstrip("/")):])
    return sorted(out)


def glob(pattern: str) -> list[str]:
    """Objects matching a glob URI (``*``, ``?``, ``[..]``; ``**`` crosses ``/``): the
    bucket is listed from the longest prefix without wildcards."""
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    prefix = head.rpartition("/")[0]
    regex = re.compile(_glob_regex(pattern))
    return [uri for uri in list_files(prefix) if regex.match(uri)]


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + r"\Z"


def open_input(path: str, *, random_access: bool = False) -> Any:
    """A readable binary file of ``path`` (a ranged-read file with ``random_access``)."""
    if not is_remote(path):
        return open(local_path(path), "rb")  # noqa: SIM115 - the caller closes it
    fs, inner = filesystem(path)
    try:
        return (
            fs.open_input_file(inner)
            if random_access
            else fs.open_input_stream(inner, compression=None)
        )
    except FileNotFoundError:
        raise FileNotFoundError(f"{redact(path)} does not exist") from None


def read_range(path: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of ``path`` (one ranged GET on a store)."""
    with open_input(path, random_access=True) as fh:
        return fh.read_at(end - start, start) if is_remote(path) else _pread(fh, start, end)


def _pread(fh: Any, start: int, end: int) -> bytes:
    fh.seek(start)
    return fh.read(end - start)


def read_bytes(path: str) -> bytes:
    with open_input(path) as fh:
        return fh.read()


# -- writing ------------------------------------------------------------------------------
def put_file(local: str | os.PathLike, target: str) -> None:
    """Copy the local file ``local`` onto ``target`` whole or not at all (see the module
    docstring); a local ``target`` is replaced by a rename."""
    if not is_remote(target):
        dest = Path(local_path(target))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return
    fs, inner = filesystem(target)
    size = os.path.getsize(local)
    head, _, name = inner.rpartition("/")
    temp = f"{head}/.{name}.{uuid.uuid4().hex[:8]}.upload"
    try:
        with open(local, "rb") as src, fs.open_output_stream(temp, compression=None) as out:
            shutil.copyfileobj(src, out, 8 << 20)
        uploaded = fs.get_file_info(temp)
        if uploaded.size != size:
            raise StorageError(
                f"upload to {redact(target)} stored {uploaded.size} of {size} bytes; the "
                "target was not changed: re-run"
            )
        fs.move(temp, inner)  # a server-side copy onto the target: atomic
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(
            f"writing {redact(target)} failed ({exc}); the target was not changed"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            if fs.get_file_info(temp).type != pafs.FileType.NotFound:
                fs.delete_file(temp)


def write_via_local(target: str, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a local temp file (in the system temp directory), then
    ``put_file`` it onto the remote ``target``."""
    fd, tmp = tempfile.mkstemp(prefix="fsm_actors-", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        put_file(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def put_bytes(target: str, data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all."""
    write_via_local(target, lambda tmp: tmp.write_bytes(data))


def download(path: str, local: str | os.PathLike) -> None:
    """Copy ``path`` to the local file ``local``."""
    Path(local).parent.mkdir(parents=True, exist_ok=True)
    with open_input(path) as src, open(local, "wb") as out:
        shutil.copyfileobj(src, out, 8 << 20)


def delete(path: str) -> None:
    """Remove one file or object (nothing if it is not there)."""
    if not is_remote(path):
        Path(local_path(path)).unlink(missing_ok=True)
        return
    fs, inner = filesystem(path)
    with contextlib.suppress(FileNotFoundError):
        fs.delete_file(inner)


def delete_tree(path: str) -> None:
    """Remove a directory or every object under a prefix."""
    if not is_remote(path):
        shutil.rmtree(local_path(path), ignore_errors=True)
        return
    fs, inner = filesystem(path)
    with contextlib.suppress(FileNotFoundError, OSError):
        fs.delete_dir_contents(inner, missing_dir_ok=True)
    with contextlib.suppress(FileNotFoundError, OSError):
        fs.delete_dir(inner)


def upload_tree(local: str | os.PathLike, target: str) -> list[str]:
    """``put_file`` every file under the local directory ``local`` to the same relative
    name under ``target``; returns the URIs written."""
    root = Path(local)
    written = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            uri = join(target, path.relative_to(root).as_posix())
            put_file(path, uri)
            written.append(uri)
    return written


@contextlib.contextmanager
def local_dir(prefix: str = "fsm_actors-") -> Iterator[Path]:
    """A temp directory in the system temp directory, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- where paths are seen ----------------------------------------------------------------
#: set to 1 when every node sees the same local paths (an NFS mount, a one-machine cluster)
SHARED_FS_ENV = "FSM_ACTORS_SHARED_FS"


def shared_fs(declared: bool | None = None) -> bool:
    """Whether local paths are declared shared by every node (``shared_fs: true`` or the
    environment variable ``FSM_ACTORS_SHARED_FS=1``)."""
    if declared is not None:
        return bool(declared)
    return os.environ.get(SHARED_FS_ENV, "").strip().lower() in ("1", "true", "yes")


def local_paths_notice(
    paths: list[str], other_nodes: list[str], *, shared: bool | None = None
) -> str | None:
    """The warning for a job naming local ``paths`` on a cluster whose ``other_nodes``
    (addresses of nodes other than the driver's) may not see them; ``None`` when there is
    nothing to say (no local path, no other node, or the paths are declared shared)."""
    local = [p for p in dict.fromkeys(paths) if p and not is_remote(p)]
    if not local or not other_nodes or shared_fs(shared):
        return None
    shown = ", ".join(local[:5]) + (f" and {len(local) - 5} more" if len(local) > 5 else "")
    return (
        f"local path(s) {shown} are on the driver's machine, but the cluster also has "
        f"node(s) {', '.join(other_nodes)} whose workers read and write them there: use an "
        "object-store URI (s3://bucket/..., gs://..., abfs://...) for inputs and outputs, "
        f"or, if every node mounts the same shared filesystem, say so with shared_fs: true "
        f"or {SHARED_FS_ENV}=1"
    )


#: the folder, on the submitting machine, that a submitted pipeline file's relative outputs
#: resolve against (set by ``fsm-actors submit`` for a head on that machine; the job reads
#: its file from an uploaded copy elsewhere)
OUTPUT_BASE_ENV = "FSM_ACTORS_OUTPUT_BASE"


class SubmitPathError(ValueError):
    """A relative output path of a job submitted to a remote head (the message names a
    URI to use instead)."""


def resolve_output_for_submit(
    path: str | None, *, submit_dir: str, head_is_local: bool
) -> str | None:
    """Where a submitted job's output lands, decided before submission.

    URIs and absolute paths stay as given. A relative path resolves against
    ``submit_dir`` (the directory the user submitted from) when the head runs on this
    machine; for a remote head it is refused with ``SubmitPathError`` naming a URI."""
    if path is None or is_remote(path) or scheme(path) == "file" or os.path.isabs(path):
        return path
    if head_is_local:
        return os.path.normpath(os.path.join(submit_dir, path))
    name = path.replace(os.sep, "/").lstrip("./")
    raise SubmitPathError(
        f"output path {path!r} is relative, and the job runs on a remote head where it would "
        f"land in the job's temporary working directory: give a URI the head can write, "
        f"e.g. s3://YOUR-BUCKET/{name}, or an absolute path on a filesystem the cluster "
        "shares"
    )
