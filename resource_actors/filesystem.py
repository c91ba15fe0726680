"""``FileSystemResourceAdapter``: confined file access under one base directory.

``acquire()`` returns a ``FileSystemSession``. Every path is resolved (symlinks included)
against ``base_path``; a path that lands outside ``base_path`` and the temp directory is
refused with ``ResourceError``. Writes are atomic (temp file + rename). Temp files a session
creates are deleted when it is released if ``auto_cleanup``, and all of them on ``close()``.
The adapter itself also has dataknobs-fsm 0.5's ``open``, ``exists``, ``list_files`` and
``delete`` (same confinement), for code written against ``FileSystemResource``.

A ``base_path`` that is an object-store URI (``s3://bucket/prefix``, ``gs://``, ``abfs://``)
gives ``RemoteFileSystemSession`` objects (``resource_actors.filesystem_remote``): the same
operations on objects under the URI, writes whole or nothing; ``storage_options`` (the
store's filesystem arguments) are never shown.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from fsm_actors.platform.io import storage
from resource_actors.base import BaseResourceProvider, ResourceHealth, ResourceStatus
from resource_actors.errors import ResourceError
from resource_actors.filesystem_remote import RemoteFileSystemSession
from resource_actors.filesystem_session import SessionBase, encode_payload


class FileSystemSession(SessionBase):
    """File operations confined to a base directory (and the adapter's temp directory)."""

    def __init__(self, resource_name: str, base_path: Path, temp_dir: Path) -> None:
        super().__init__(resource_name, temp_dir)
        self.base_path = str(base_path)
        self._base = base_path

    def _check_open(self, operation: str) -> None:
        if self.closed:
            raise ResourceError(f"file system session of {self.resource_name!r} is released",
                                self.resource_name, operation)

    def _resolve(self, path: str | os.PathLike[str], operation: str) -> Path:
        self._check_open(operation)
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self._base / candidate
        resolved = candidate.resolve()
        if resolved.is_relative_to(self._base) or resolved.is_relative_to(self._temp):
            return resolved
        raise ResourceError(
            f"{operation} refused: path {os.fspath(path)!r} resolves outside the base directory "
            f"{self.base_path!r} of resource {self.resource_name!r}; use a path inside it",
            self.resource_name, operation)

    def resolve(self, path: str) -> str:
        """The absolute path ``path`` stands for (checked to be inside the base directory)."""
        return str(self._resolve(path, "resolve"))

    def read(self, path: str, binary: bool = False, encoding: str = "utf-8") -> str | bytes:
        """The content of a file: text, or bytes with ``binary=True``."""
        target = self._resolve(path, "read")
        try:
            return target.read_bytes() if binary else target.read_text(encoding=encoding)
        except OSError as exc:
            raise ResourceError(f"read of {path!r} in {self.resource_name!r} failed: {exc.strerror}",
                                self.resource_name, "read") from exc

    def write(self, path: str, data: Any, encoding: str = "utf-8") -> str:
        """Write ``data`` atomically; returns the absolute path written.

        ``str`` is written as text, ``bytes`` as bytes, anything else as JSON. Parent
        directories are created.
        """
        target = self._resolve(path, "write")
        payload = encode_payload(data, encoding)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, target)
        except OSError as exc:
            raise ResourceError(f"write of {path!r} in {self.resource_name!r} failed: {exc.strerror}",
                                self.resource_name, "write") from exc
        return str(target)

    def append(self, path: str, data: str | bytes, encoding: str = "utf-8") -> str:
        """Append text or bytes to a file (created if missing); returns its absolute path."""
        target = self._resolve(path, "append")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab") as fh:
            fh.write(data.encode(encoding) if isinstance(data, str) else data)
        return str(target)

    def exists(self, path: str) -> bool:
        """True when the path exists."""
        return self._resolve(path, "exists").exists()

    def delete(self, path: str) -> bool:
        """Delete a file or directory tree; False when it did not exist."""
        target = self._resolve(path, "delete")
        if target in (self._base, self._temp):
            raise ResourceError(f"delete refused: {path!r} is a root of {self.resource_name!r}",
                                self.resource_name, "delete")
        if target.is_dir():
            shutil.rmtree(target)
            return True
        try:
            target.unlink()
            return True
        except FileNotFoundError:
            return False

    def list(self, pattern: str = "*", recursive: bool = False) -> list[str]:
        """Sorted file paths relative to the base directory that match a glob ``pattern``."""
        self._check_open("list")
        found = self._base.rglob("*") if recursive else self._base.iterdir()
        rel = (str(p.relative_to(self._base)) for p in found if p.is_file())
        return sorted(r for r in rel if fnmatch.fnmatch(r, pattern) or fnmatch.fnmatch(Path(r).name, pattern))

    def create_temp(self, suffix: str = "", prefix: str = "fsm_",
                    content: str | bytes | None = None, directory: bool = False) -> str:
        """``SessionBase.create_temp``, refused once the session is released."""
        self._check_open("create_temp")
        return super().create_temp(suffix, prefix, content, directory)

    def __repr__(self) -> str:
        return f"<FileSystemSession {self.resource_name!r} base={self.base_path!r}>"


class FileSystemResourceAdapter(BaseResourceProvider):
    """Provider of ``FileSystemSession`` objects rooted at ``base_path`` (created if missing).

    ``temp_dir`` defaults to a private directory under the system temp dir. With
    ``auto_cleanup`` the temp files of a session go when it is released.
    """

    def __init__(self, name: str, base_path: str | os.PathLike[str] | None = None,
                 temp_dir: str | os.PathLike[str] | None = None, auto_cleanup: bool = True,
                 storage_options: Any = None, **config: Any) -> None:
        given = os.fspath(base_path) if base_path is not None else os.getcwd()
        #: the base URI of an object store, or None for a local base directory
        self.base_uri = given.rstrip("/") if storage.is_remote(given) else None
        base = Path(storage.local_path(given)) if self.base_uri is None else Path(".")
        temp = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir()) / f"fsm-{name}"
        self.storage_options = storage.storage_options_for(storage_options, [given])
        super().__init__(name, {"base_path": storage.redact(self.base_uri or str(base)),
                                "temp_dir": str(temp), "auto_cleanup": auto_cleanup, **config})
        self.base_path: Any = base if self.base_uri is None else self.base_uri
        self.temp_dir = temp
        self.auto_cleanup = auto_cleanup
        self._lock = threading.Lock()
        self._sessions: list[FileSystemSession] = []

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state["_sessions"] = []
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _roots(self) -> tuple[Path, Path]:
        try:
            self.base_path.mkdir(parents=True, exist_ok=True)
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResourceError(
                f"cannot create the directories of resource {self.name!r}: {exc}",
                self.name, "acquire") from exc
        return self.base_path.resolve(), self.temp_dir.resolve()

    def _session(self) -> FileSystemSession | RemoteFileSystemSession:
        if self.base_uri is not None:
            return RemoteFileSystemSession(self.name, self.base_uri, self.temp_dir)
        base, temp = self._roots()
        return FileSystemSession(self.name, base, temp)

    def acquire(self, **kwargs: Any) -> FileSystemSession | RemoteFileSystemSession:
        """A session rooted at the base directory (or base URI)."""
        if self.status is ResourceStatus.CLOSED:
            raise ResourceError(f"file system resource {self.name!r} is closed", self.name, "acquire")
        session = self._session()
        with self._lock:
            self._sessions.append(session)
        self.status = ResourceStatus.ACTIVE
        return session

    def reset(self, resource: Any) -> None:
        """Delete the session's temp files (when ``auto_cleanup``) before it is reused."""
        if self.auto_cleanup and isinstance(resource, FileSystemSession | RemoteFileSystemSession):
            resource.cleanup()

    def release(self, resource: Any) -> None:
        """End a session; its temp files go when ``auto_cleanup``."""
        if not isinstance(resource, FileSystemSession | RemoteFileSystemSession):
            return
        self.reset(resource)
        resource.closed = True
        with self._lock:
            if resource in self._sessions:
                self._sessions.remove(resource)

    def validate(self, resource: Any) -> bool:
        """True for an open session whose base directory still exists (a store: open)."""
        if isinstance(resource, RemoteFileSystemSession):
            return not resource.closed
        return isinstance(resource, FileSystemSession) and not resource.closed and self.base_path.is_dir()

    def health_check(self) -> ResourceHealth:
        """HEALTHY when the base directory exists and is writable (a store: its base can be
        listed)."""
        if self.base_uri is not None:
            try:
                storage.list_files(self.base_uri)
                healthy = True
            except OSError:
                healthy = False
        else:
            healthy = self.base_path.is_dir() and os.access(self.base_path, os.W_OK | os.X_OK)
        self.metrics.record_health_check(healthy)
        return ResourceHealth.HEALTHY if healthy else ResourceHealth.UNHEALTHY

    # -- dataknobs-fsm 0.5's direct methods (no acquire needed), confined like a session --------
    def _direct(self, operation: str) -> FileSystemSession | RemoteFileSystemSession:
        if self.status is ResourceStatus.CLOSED:
            raise ResourceError(f"file system resource {self.name!r} is closed", self.name,
                                operation)
        return self._session()

    @contextlib.contextmanager
    def open(self, path: str, mode: str = "r", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
        """Open ``path`` (relative to the base directory) as ``open()`` does, as a context
        manager; parent directories are created for writing modes. A path outside the base
        directory is a ``ResourceError``. Under a base URI, reading opens the object's bytes
        and writing a local temp file put whole on exit."""
        session = self._direct("open")
        if isinstance(session, RemoteFileSystemSession):
            with _open_remote(session, path, mode, encoding) as handle:
                yield handle
            return
        target = session._resolve(path, "open")
        if any(flag in mode for flag in "wax+"):
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(target, mode, encoding=None if "b" in mode else encoding)  # noqa: SIM115
        except OSError as exc:
            raise ResourceError(f"open of {path!r} in {self.name!r} failed: {exc.strerror}",
                                self.name, "open") from exc
        with handle:
            yield handle

    def exists(self, path: str) -> bool:
        """True when ``path`` (relative to the base directory) exists."""
        return self._direct("exists").exists(path)

    def delete(self, path: str) -> bool:
        """Delete a file or directory tree; False when it did not exist."""
        return self._direct("delete").delete(path)

    def list_files(self, pattern: str = "*") -> list[str]:
        """Sorted paths of the files matching the glob ``pattern`` (``Path.glob``: ``**``
        descends), relative to the base directory."""
        session = self._direct("list_files")
        if isinstance(session, RemoteFileSystemSession):
            return sorted(p for p in session.list("*", recursive=True)
                          if fnmatch.fnmatch(p, pattern.replace("**/", "*")))
        base = session._base
        return sorted(str(p.relative_to(base)) for p in base.glob(pattern) if p.is_file())

    def close(self) -> None:
        """End every session and delete their temp files."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.cleanup()
            session.closed = True
        self.status = ResourceStatus.CLOSED


@contextlib.contextmanager
def _open_remote(session: RemoteFileSystemSession, path: str, mode: str,
                 encoding: str | None) -> Iterator[IO[Any]]:
    uri = session.resolve(path)
    text = "b" not in mode
    if not any(flag in mode for flag in "wax+"):
        data = session.read_bytes(path)
        yield io.TextIOWrapper(io.BytesIO(data), encoding=encoding) if text else io.BytesIO(data)
        return
    Path(session.temp_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="fsm_open_", dir=session.temp_dir)
    os.close(fd)
    try:
        if "a" in mode and storage.exists(uri):
            storage.download(uri, tmp)
        with open(tmp, mode.replace("x", "w"), encoding=encoding if text else None) as handle:
            yield handle
        storage.put_file(tmp, uri)
    finally:
        os.unlink(tmp)


#: dataknobs-fsm 0.5's name.
FileSystemResource = FileSystemResourceAdapter
