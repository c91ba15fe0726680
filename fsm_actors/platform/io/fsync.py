"""Flushing a file or directory to stable storage."""

from __future__ import annotations

import os


def fsync_path(path: str | os.PathLike) -> None:
    """Flush ``path`` (a file or a directory) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
