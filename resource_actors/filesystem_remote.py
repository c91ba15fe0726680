"""``RemoteFileSystemSession``: a ``FileSystemSession`` rooted at an object-store URI.

A ``FileSystemResourceAdapter`` whose ``base_path`` is a URI (``s3://bucket/prefix``,
``gs://...``, ``abfs://...``) hands these out. Paths are relative to the base URI and
normalised; one that climbs out of it (``..``) or names another location is refused with
``ResourceError``. Writes are whole or nothing (``storage.put_file``: temp key, size check,
server-side copy); ``append`` rewrites the object. Temp files stay local (the adapter's temp
directory). Errors name the base without credentials.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import storage
from resource_actors.errors import ResourceError
from resource_actors.filesystem_session import SessionBase, encode_payload


class RemoteFileSystemSession(SessionBase):
    """File operations confined to a base URI (and the adapter's local temp directory)."""

    def __init__(self, resource_name: str, base_uri: str, temp_dir: Path) -> None:
        super().__init__(resource_name, temp_dir)
        self.base_path = base_uri.rstrip("/")

    def _fail(self, message: str, operation: str) -> ResourceError:
        return ResourceError(message, self.resource_name, operation)

    def _resolve(self, path: str | os.PathLike[str], operation: str) -> str:
        if self.closed:
            raise self._fail(f"file system session of {self.resource_name!r} is released",
                             operation)
        text = os.fspath(path)
        if text.startswith(self.base_path + "/") or text == self.base_path:
            text = text[len(self.base_path):]
        elif storage.scheme(text) is not None:
            raise self._fail(
                f"{operation} refused: {storage.redact(text)!r} is not under the base "
                f"{storage.redact(self.base_path)!r} of resource {self.resource_name!r}",
                operation)
        relative = posixpath.normpath("/" + text.replace("\\", "/")).lstrip("/")
        climbs = posixpath.normpath(text.replace("\\", "/").lstrip("/")).startswith("..")
        if climbs or relative in ("", "."):
            raise self._fail(
                f"{operation} refused: path {text!r} resolves outside the base "
                f"{storage.redact(self.base_path)!r} of resource {self.resource_name!r}; use "
                "a path inside it", operation)
        return f"{self.base_path}/{relative}"

    def _io(self, operation: str, path: str, call: Any) -> Any:
        try:
            return call()
        except (OSError, ValueError) as exc:
            raise self._fail(f"{operation} of {path!r} in {self.resource_name!r} failed: "
                             f"{storage.redact(str(exc))}", operation) from None

    def resolve(self, path: str) -> str:
        """The URI ``path`` stands for (checked to be under the base)."""
        return self._resolve(path, "resolve")

    def read(self, path: str, binary: bool = False, encoding: str = "utf-8") -> str | bytes:
        """The content of an object: text, or bytes with ``binary=True``."""
        uri = self._resolve(path, "read")
        data = self._io("read", path, lambda: storage.read_bytes(uri))
        return data if binary else data.decode(encoding)

    def write(self, path: str, data: Any, encoding: str = "utf-8") -> str:
        """Write ``data`` whole (``str`` as text, ``bytes`` as is, else JSON); the URI."""
        uri = self._resolve(path, "write")
        payload = encode_payload(data, encoding)
        self._io("write", path, lambda: storage.put_bytes(uri, payload))
        return uri

    def append(self, path: str, data: str | bytes, encoding: str = "utf-8") -> str:
        """Append to an object (created if missing) by rewriting it whole; the URI."""
        uri = self._resolve(path, "append")
        old = self._io("append", path, lambda: storage.read_bytes(uri)
                       if storage.exists(uri) else b"")
        extra = data.encode(encoding) if isinstance(data, str) else data
        self._io("append", path, lambda: storage.put_bytes(uri, old + extra))
        return uri

    def exists(self, path: str) -> bool:
        uri = self._resolve(path, "exists")
        return bool(self._io("exists", path, lambda: storage.exists(uri)))

    def delete(self, path: str) -> bool:
        """Delete an object, or every object under a prefix; False when none was there."""
        uri = self._resolve(path, "delete")
        if self._io("delete", path, lambda: storage.is_file(uri)):
            self._io("delete", path, lambda: storage.delete(uri))
            return True
        under = self._io("delete", path, lambda: storage.list_files(uri))
        if not under:
            return False
        self._io("delete", path, lambda: storage.delete_tree(uri))
        return True

    def list(self, pattern: str = "*", recursive: bool = False) -> list[str]:
        """Sorted object paths relative to the base that match a glob ``pattern``."""
        uris = self._io("list", pattern, lambda: storage.list_files(self.base_path))
        rel = [u[len(self.base_path) + 1:] for u in uris]
        if not recursive:
            rel = [r for r in rel if "/" not in r]
        return sorted(r for r in rel
                      if fnmatch.fnmatch(r, pattern) or fnmatch.fnmatch(posixpath.basename(r),
                                                                          pattern))

    def __repr__(self) -> str:
        return (f"<RemoteFileSystemSession {self.resource_name!r} "
                f"base={storage.redact(self.base_path)!r}>")
