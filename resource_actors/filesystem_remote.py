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
import json
import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import storage
from resource_actors.errors import ResourceError


class RemoteFileSystemSession:
    """File operations confined to a base URI (and the adapter's local temp directory)."""

    handle_kind = "filesystem"

    def __init__(self, resource_name: str, base_uri: str, temp_dir: Path) -> None:
        self.resource_name = resource_name
        self.base_path = base_uri.rstrip("/")
        self.temp_dir = str(temp_dir)
        self._temp = temp_dir
        self._temps: list[Path] = []
        self.closed = False

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

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return str(self.read(path, encoding=encoding))

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.read(path, binary=True))

    def write(self, path: str, data: Any, encoding: str = "utf-8") -> str:
        """Write ``data`` whole (``str`` as text, ``bytes`` as is, else JSON); the URI."""
        uri = self._resolve(path, "write")
        if isinstance(data, bytes | bytearray | memoryview):
            payload = bytes(data)
        elif isinstance(data, str):
            payload = data.encode(encoding)
        else:
            payload = json.dumps(data, default=str, ensure_ascii=False).encode(encoding)
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

    def create_temp(self, suffix: str = "", prefix: str = "fsm_",
                    content: str | bytes | None = None, directory: bool = False) -> str:
        """A local temp file (or directory) in the temp dir; its path."""
        for label, part in (("prefix", prefix), ("suffix", suffix)):
            if "/" in part or (os.altsep and os.altsep in part) or os.sep in part or ".." in part:
                raise self._fail(f"create_temp refused: {label} {part!r} holds a path "
                                 "separator or '..'", "create_temp")
        self._temp.mkdir(parents=True, exist_ok=True)
        if directory:
            made = Path(tempfile.mkdtemp(suffix=suffix, prefix=prefix, dir=self._temp))
        else:
            fd, name = tempfile.mkstemp(suffix=suffix, prefix=prefix, dir=self._temp)
            with os.fdopen(fd, "wb") as fh:
                if content is not None:
                    fh.write(content.encode() if isinstance(content, str) else content)
            made = Path(name)
        self._temps.append(made)
        return str(made)

    def cleanup(self) -> int:
        removed = 0
        for made in self._temps:
            if made.is_dir():
                shutil.rmtree(made, ignore_errors=True)
                removed += 1
            elif made.exists():
                made.unlink(missing_ok=True)
                removed += 1
        self._temps.clear()
        return removed

    def __repr__(self) -> str:
        return (f"<RemoteFileSystemSession {self.resource_name!r} "
                f"base={storage.redact(self.base_path)!r}>")
