"""Ending an ``fsm-actors run`` that attached to a running cluster, without Ray's disconnect.

A run attached to a cluster (the background head, the head of ``fsm-actors up``, any
address) holds nothing of its own once its output is committed and its result printed: the
job stopped its actors, and the cluster ends a driver's job when the driver's connection
drops. Ray's ``shutdown`` at interpreter exit still costs 0.3-2.5 s of wall time on 2 cores
(its threads joined, its connections closed one by one): more than a third of what a later
run of a million CSV rows takes. So such a run leaves with ``os._exit`` once stdout and
stderr are flushed.

Only the command itself does so (``fsm-actors`` or ``python -m fsm_actors.cli.main``), and
only after this run made the connection: a process that was connected before (a test, a
notebook calling the command) and a run that started its own Ray (``--address local``,
``FSM_ACTORS_BACKGROUND_HEAD=0``, which must stop it) end the ordinary way.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

#: set by ``connected``: this run attached to a cluster it did not start
_attached: list[bool] = []

COMMAND_NAMES = ("fsm-actors",)
#: seconds ``leave`` waits for the run's actors to have ended (a few ms each when idle)
ENDING_WAIT = 5.0
COMMAND_MODULE = "fsm_actors.cli.main"


def is_command() -> bool:
    """Whether this process is the ``fsm-actors`` command (not a caller of its functions)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == COMMAND_MODULE:
        return True
    return bool(sys.argv) and Path(sys.argv[0]).name in COMMAND_NAMES


def connected(info: Any, was_connected: bool) -> None:
    """Note what ``ensure_ray`` connected to: an attached run may leave fast (``leave``)."""
    _attached[:] = [not was_connected and not info.started_local and is_command()]


def leave(code: int = 0) -> None:
    """End the process now when this run attached to a cluster (see the module); else
    return, and the caller exits the ordinary way."""
    if not (_attached and _attached[0]):
        return
    from fsm_actors.platform import actor_pool

    actor_pool.wait_ended(ENDING_WAIT)  # the run's workers end normally, not with their owner
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say on it
            pass
    logging.shutdown()
    os._exit(code)
