"""Where an ``fsm-actors run`` that names no cluster goes: this process, or a background head.

Starting an embedded Ray for one run and stopping it after costs 5-7 s on 2 cores, more
than a million-row file takes to process, and a run attached to a running head still starts
fresh worker processes (about a CPU-second each). So a run that names no cluster (no address
given or set, no head of ``fsm-actors up``, no ``ray start`` here):

* an FSM config or a ``file_processing`` pipeline file with at most
  ``FSM_ACTORS_IN_PROCESS_MB`` (128) MB of input runs in this process, its tasks on lanes
  forked from it (``jobs.forked_lanes``), first run or not, and starts no Ray; a line on
  stderr says so;
* anything else attaches to the background head this CLI started, starting it first (said
  on stderr) when none runs: dashboard on, every port on 127.0.0.1; it stops itself after
  ``FSM_ACTORS_IDLE_MINUTES`` (15) without runs, or with ``fsm-actors down``.

A run attached to a head leaves without Ray's disconnect (``fsm_actors.cli.leaving``).
``FSM_ACTORS_BACKGROUND_HEAD=0`` keeps an embedded Ray per run; ``--address local`` always
starts an embedded one; ``--address`` of the background head sends even a small run there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fsm_actors.cli.documents import UserError
from fsm_actors.platform import background_head
from fsm_actors.platform.jobs import progress as jobs_progress

#: pipeline-file kinds whose job runs in-process as it would on workers
IN_PROCESS_KINDS = ("fsm_config", "file_processing")
DEFAULT_IN_PROCESS_MB = 128.0


def in_process_bytes() -> float:
    """Input bytes up to which a first run goes in-process (``FSM_ACTORS_IN_PROCESS_MB``)."""
    try:
        return float(os.environ.get("FSM_ACTORS_IN_PROCESS_MB", DEFAULT_IN_PROCESS_MB)) * 1e6
    except ValueError:
        return DEFAULT_IN_PROCESS_MB * 1e6


def _cluster_named() -> bool:
    """Whether this process or its environment points runs at a cluster, or a head not
    started by a run (``fsm-actors up``, ``ray start``) runs here."""
    if background_head.ray_named():
        return True
    head = background_head.local_head()
    if head is not None:
        return not head.get("idle_timeout")  # `fsm-actors up` keeps its head: no timer
    return background_head.latest_ray_start() is not None


def prepare(display: Any, kind: str, address: str | None, inputs: list[str]) -> bool:
    """Decide where a run that names no cluster goes (see the module docstring); True: run
    it in-process. False and nothing done when the run attaches where it was told, or
    background heads are turned off."""
    if not background_head.background_allowed() or address is not None or _cluster_named():
        return False
    head = background_head.local_head()
    pending = background_head.starting()
    size = sum(_size(p) for p in inputs)
    if kind in IN_PROCESS_KINDS and size <= in_process_bytes():
        limit = in_process_bytes() / 1e6
        where = (f"the background Ray head (pid {head['pid']}) takes bigger ones"
                 if head is not None else "bigger ones start a Ray head in the background")
        display.phase(f"this run goes in this process: {size / 1e6:.1f} MB of input (runs of "
                      f"up to FSM_ACTORS_IN_PROCESS_MB={limit:g} MB do; {where})")
        jobs_progress.run_in_process("small run")
        return True
    if head is not None:
        return False  # attaches to it
    if pending is not None:
        display.phase(f"a Ray head is starting in the background (pid {pending})")
    else:
        idle = background_head.idle_timeout_default()
        head = background_head.start_background(idle)
        display.phase(f"no Ray runs on this machine: starting a Ray head in the background "
                      f"for this and later runs (pid {head['pid']}, dashboard "
                      f"{head['dashboard_url']}, log {head['log']}); it stops itself after "
                      f"{idle / 60:g} min without runs, or with `fsm-actors down` "
                      "(FSM_ACTORS_BACKGROUND_HEAD=0: a Ray of its own for each run)")
        pending = head["pid"]
    _wait_for_head(display, pending)
    return False


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _wait_for_head(display: Any, pid: int, timeout: float = 180) -> None:
    runtime = background_head
    display.phase("waiting for the head to start")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = runtime.local_head()
        if head is not None:
            return
        if background_head.starting() is None and runtime.local_head() is None:
            break
        time.sleep(0.2)
    log = background_head.state_dir() / "head.log"
    raise UserError(f"the background Ray head (pid {pid}) did not start; see {log}, or run "
                    "with FSM_ACTORS_BACKGROUND_HEAD=0 for a Ray of the run's own")
