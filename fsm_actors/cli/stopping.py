"""A run stopped from outside (``fsm-actors stop``, ``kill``: SIGTERM) or by Ctrl-C.

SIGTERM is turned into ``Terminated`` (a ``KeyboardInterrupt``), so a stopped run goes the
way of Ctrl-C: actors stopped, its temp files removed, one line saying how to resume, exit
143 (130 for Ctrl-C). Ray's own SIGTERM handler, which prints ``*** SIGTERM received`` and a
stack of addresses into the job's log, is replaced once Ray is up.

An output is written through ``.<name>.<8 hex>.tmp`` beside it and renamed at the end; the
temp file of a run that was killed outright stays, and ``stale_temp_files`` finds it (the
next run of the same output removes it, and so does ``fsm-actors runs clean``).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class Terminated(KeyboardInterrupt):
    """The run got SIGTERM."""


def catch_sigterm() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread (call again after ``ray.init``,
    which installs a handler of its own)."""

    def _raise(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        raise Terminated

    signal.signal(signal.SIGTERM, _raise)


def stale_temp_files(targets: Iterable[Path]) -> list[Path]:
    """The temp files of earlier runs beside each output in ``targets``."""
    found = []
    for target in targets:
        pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{8}}\.tmp")
        try:
            found += sorted(p for p in target.parent.iterdir() if pattern.fullmatch(p.name))
        except OSError:  # the folder is not there (yet)
            continue
    return found


def remove(paths: Iterable[Path]) -> list[Path]:
    """Delete ``paths``; the ones that were deleted."""
    gone = []
    for path in paths:
        try:
            path.unlink()
            gone.append(path)
        except OSError:
            pass
    return gone
