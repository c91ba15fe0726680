"""The first ``fsm-actors run`` on a machine without Ray: leave a head for the next runs.

Starting an embedded Ray for one run and stopping it after costs 5-7 s on 2 cores, more
than a million-row file takes to process. So when a run would start an embedded Ray (no
address given or set, no head of ``fsm-actors up``, no ``ray start`` here), it starts a head
in the background instead (dashboard on, every port on 127.0.0.1; it stops itself after
``FSM_ACTORS_IDLE_MINUTES`` (15) without runs, or with ``fsm-actors down``) and says so on
stderr. Meanwhile the run itself:

* an FSM config or a ``file_processing`` pipeline file with at most
  ``FSM_ACTORS_IN_PROCESS_MB`` (128) MB of input runs in this process (its tasks on lanes
  forked from it, ``jobs.forked_lanes``), and the head starts when the run is over (started during the run, it took half of 2 cores from it: 0.72x
  plain Python instead of about 1.1x for a million rows);
* anything else starts the head at once, waits for it and attaches to it.

Later runs attach to the head in about a second, and leave without Ray's disconnect
(``fsm_actors.cli.leaving``). ``FSM_ACTORS_BACKGROUND_HEAD=0`` keeps the
old behaviour (an embedded Ray per run); ``--address local`` always starts an embedded one.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from pathlib import Path
from typing import Any

from fsm_actors.cli.documents import UserError
from fsm_actors.platform import background_head

#: pipeline-file kinds whose job runs in-process as it would on workers
IN_PROCESS_KINDS = ("fsm_config", "file_processing")
DEFAULT_IN_PROCESS_MB = 128.0


def in_process_bytes() -> float:
    """Input bytes up to which a first run goes in-process (``FSM_ACTORS_IN_PROCESS_MB``)."""
    try:
        return float(os.environ.get("FSM_ACTORS_IN_PROCESS_MB", DEFAULT_IN_PROCESS_MB)) * 1e6
    except ValueError:
        return DEFAULT_IN_PROCESS_MB * 1e6


def would_start_embedded(address: str | None) -> bool:
    """Whether connecting with ``address`` would start a new embedded Ray for this run
    (told without importing Ray: a run in-process never pays for it)."""
    return address is None and not background_head.ray_elsewhere()


def prepare(display: Any, kind: str, address: str | None, inputs: list[str]) -> bool:
    """Decide how a run that would start an embedded Ray goes; True: run it in-process.

    In-process, the background head starts when this process exits (at full speed then,
    not competing with the run for 2 cores); otherwise it starts now and the run waits for
    it. Either way it is announced on stderr. False and nothing done when the run attaches
    somewhere anyway, or background heads are turned off."""
    if not background_head.background_allowed() or not would_start_embedded(address):
        return False
    pending = background_head.starting()
    size = sum(_size(p) for p in inputs)
    in_process = kind in IN_PROCESS_KINDS and size <= in_process_bytes()
    idle = background_head.idle_timeout_default()
    told = (f"it stops itself after {idle / 60:g} min without runs, or with `fsm-actors down` "
            "(FSM_ACTORS_BACKGROUND_HEAD=0: a Ray of its own for each run)")
    if pending is not None:
        display.phase(f"a Ray head is starting in the background (pid {pending})")
    elif in_process:
        display.phase("no Ray runs on this machine: this run goes in this process "
                      f"({size / 1e6:.1f} MB of input), and a Ray head starts in the "
                      f"background when it ends, for later runs; {told}")
        atexit.register(_start_head_at_exit)
    else:
        head = background_head.start_background(idle)
        display.phase(f"no Ray runs on this machine: starting a Ray head in the background "
                      f"for this and later runs (pid {head['pid']}, dashboard "
                      f"{head['dashboard_url']}, log {head['log']}); {told}")
        pending = head["pid"]
    if in_process:
        if pending is not None:
            display.phase(f"running this one in this process ({size / 1e6:.1f} MB of input)")
        background_head.run_in_process("first run")
        return True
    _wait_for_head(display, pending)
    return False


def _start_head_at_exit() -> None:
    """Start the announced head once this run is over (its output already committed)."""
    if background_head.ray_elsewhere() or background_head.starting() is not None:
        return
    head = background_head.start_background()
    sys.stderr.write(f"Ray head starting in the background for later runs (pid {head['pid']}, "
                     f"dashboard {head['dashboard_url']}, log {head['log']}); "
                     "`fsm-actors down` stops it\n")
    sys.stderr.flush()


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
