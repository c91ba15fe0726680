"""Where a run will write, and whether it can: checked by ``validate`` and before any work.

Output paths are read from the pipeline file's mapping (``output_path`` / ``error_file`` of
file jobs, ``output`` of FSM and API jobs, a ``type: file`` ETL target; each step of a
``steps`` file), relative to the file's folder, or given by ``-o``. A path can be written when
its folder exists and a file can be created in it, or when the deepest existing folder above
it lets the missing folders be created (the run creates them). The check creates and removes
a probe, because permission bits do not tell (root, read-only mounts, ``/proc``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: per kind: the keys of a job mapping that name a file it writes
OUTPUT_KEYS = {"file_processing": ("output_path", "error_file"), "fsm": ("output",),
               "api": ("output",)}


def output_paths(spec: dict[str, Any], base: Path) -> Iterator[tuple[list[Any], Path]]:
    """``(key path, path)`` of every file the pipeline file ``spec`` writes (paths that name
    another step's result, ``${steps.…}``, are left out)."""
    if isinstance(spec.get("file_processing"), dict):
        yield from _job_outputs(spec["file_processing"], "file_processing", base,
                                ["file_processing"])
        return
    kind = spec.get("kind")
    if kind == "steps":
        for i, step in enumerate(spec.get("steps") or []):
            if isinstance(step, dict):
                yield from _job_outputs(step, step.get("kind"), base, ["steps", i])
        return
    yield from _job_outputs(spec, kind, base, [])


def _job_outputs(job: dict[str, Any], kind: Any, base: Path, at: list[Any]
                 ) -> Iterator[tuple[list[Any], Path]]:
    found: list[tuple[list[Any], Any]] = [
        ([*at, key], job.get(key)) for key in OUTPUT_KEYS.get(str(kind), ())]
    target = job.get("target")
    if kind == "etl" and isinstance(target, dict) and target.get("type") == "file":
        found.append(([*at, "target", "path"], target.get("path")))
    for key_path, value in found:
        if isinstance(value, str | os.PathLike) and "${" not in os.fspath(value):
            path = Path(os.path.expanduser(os.fspath(value)))
            yield key_path, path if path.is_absolute() else base / path


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written (one phrase), or None when it can."""
    if path.is_dir():
        return "it is a directory; name a file"
    folder = path.parent
    missing = []
    while not folder.exists():
        if folder.parent == folder:
            break
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a directory"
    try:
        if missing:  # the run creates the missing folders: can one be made here?
            probe = tempfile.mkdtemp(prefix=".fsm-actors-probe-", dir=folder)
            os.rmdir(probe)
        else:
            fd, probe = tempfile.mkstemp(prefix=".fsm-actors-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        what = "create a folder" if missing else "create a file"
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM):
            reason = "permission denied"
        return f"cannot {what} in {folder}: {reason}"
    return None
