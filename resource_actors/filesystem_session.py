"""What local and object-store file sessions share: the session's local temp files and the
bytes a ``write`` stores.

``FileSystemSession`` (``resource_actors.filesystem``) and ``RemoteFileSystemSession``
(``resource_actors.filesystem_remote``) differ in where paths resolve and how bytes are
moved; both keep their temp files in the adapter's local temp directory, through this base.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from resource_actors.errors import ResourceError


def encode_payload(data: Any, encoding: str) -> bytes:
    """The bytes ``write`` stores: ``bytes`` as is, ``str`` encoded, anything else as JSON."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode(encoding)
    return json.dumps(data, default=str, ensure_ascii=False).encode(encoding)


class SessionBase(ABC):
    """A file session's name, open/released state and local temp files.

    Subclasses define ``read(path, binary=..., encoding=...)``; ``base_path`` is theirs to set.
    """

    handle_kind = "filesystem"
    base_path: str

    def __init__(self, resource_name: str, temp_dir: Path) -> None:
        self.resource_name = resource_name
        self.temp_dir = str(temp_dir)
        self._temp = temp_dir
        self._temps: list[Path] = []
        self.closed = False

    @abstractmethod
    def read(self, path: str, binary: bool = False, encoding: str = "utf-8") -> str | bytes:
        """The content of ``path``: bytes with ``binary``, else text in ``encoding``."""

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """The text of a file."""
        return str(self.read(path, encoding=encoding))

    def read_bytes(self, path: str) -> bytes:
        """The bytes of a file."""
        return bytes(self.read(path, binary=True))

    def create_temp(self, suffix: str = "", prefix: str = "fsm_",
                    content: str | bytes | None = None, directory: bool = False) -> str:
        """Create a local temp file (or directory) in the temp dir; returns its absolute path.

        ``prefix`` and ``suffix`` are parts of a file name: one holding a path separator or
        ``..`` (which could place the file outside the temp dir) is refused.
        """
        for label, part in (("prefix", prefix), ("suffix", suffix)):
            if "/" in part or (os.altsep and os.altsep in part) or os.sep in part or ".." in part:
                raise ResourceError(
                    f"create_temp refused: {label} {part!r} holds a path separator or '..'; "
                    f"give a plain file-name part (the file goes in {self.temp_dir!r})",
                    self.resource_name, "create_temp")
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
        """Delete the temp files this session created; returns how many were removed."""
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
