"""A job's steps on processes forked from this one: the CLI's in-process runs, no Ray.

A step that runs the user's Python holds the GIL, so threads do not run two of them at
once; a Ray worker starts a fresh interpreter (about a CPU-second each on 2 cores). A
process forked from the CLI, which has imported the step's code and the user's functions
already, starts in milliseconds and runs the very code the user just wrote.

Contract (``ForkedLanes``): ``start`` forks ``n`` children before the driver starts any
thread of its own for the run; each builds its step from the spec it inherited (nothing is
pickled on the way in but tasks) with its own ``StepContext`` (worker index = lane), so
their staged parts never collide. ``run(lane, task)`` sends one task and blocks until its
``TaskResult``; the per-batch figures the step reports (``progress.batch_done``) reach this
process's ``progress.LIVE`` as they happen, so bars and status move within a task. An
exception of the step is raised here (as itself when it pickles, else as ``FSMError`` with
its text); a child that dies raises ``FSMError`` naming its exit. Children ignore SIGINT
(the driver stops them), die with this process (``PR_SET_PDEATHSIG`` on Linux), and are
gone after ``close`` (told to close their steps when idle, killed when busy: a cancelled
run must not write after its clean-up).

Only where nothing else observes the step's side effects: ``run_job`` uses it for runs the
CLI asked to go in-process (``progress.in_process()``), never for the Python API's
``local=True``, whose caller may read state a function changed.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
from concurrent.futures import CancelledError
from multiprocessing.connection import Connection
from typing import Any

from fsm_actors.platform.errors import FSMError
from fsm_actors.platform.io.writers import QuietStderr
from fsm_actors.platform.jobs import progress
from fsm_actors.platform.jobs.model import StepContext, StepSpec, Task, TaskResult

#: seconds an idle child gets to close its step before it is killed
CLOSE_WAIT = 5.0


def available() -> bool:
    """Whether this platform forks safely enough for it (Linux)."""
    return sys.platform.startswith("linux")


class _Forwarding(progress.LiveCounts):
    """A child's live figures: each batch also goes to the parent."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self._conn = conn

    def batch_done(self, counts: dict[str, int], states: dict[str, Any] | None = None) -> None:
        super().batch_done(counts, states)
        self._conn.send(("live", counts, states))


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(conn: Connection, spec: StepSpec, context: StepContext, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        return
    # what the user's code prints goes to stderr, as in a CLI run, written directly: the
    # parent's progress bar may have held its console's lock when this process forked
    sys.stdout = sys.stderr = QuietStderr()
    progress.LIVE = _Forwarding(conn)
    step = spec.build(context)
    try:
        while True:
            try:
                task = conn.recv()
            except EOFError:  # the driver is gone
                return
            if task is None:
                return
            try:
                conn.send(("done", step.run(task)))
            except Exception as exc:
                conn.send(("failed", _portable(exc)))
    finally:
        close = getattr(step, "close", None)
        if callable(close):
            close()


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else an ``FSMError`` with its type and text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return FSMError(f"{type(exc).__name__}: {exc}")


class ForkedLanes:
    """``n`` forked children, each running one task at a time (see the module docstring)."""

    def __init__(self, spec: StepSpec, run_id: str, staging: str | None, n: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self._lanes: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        self._busy: set[int] = set()
        self._closing = False
        for index in range(n):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_child, name=f"job-lane-{index}", daemon=True,
                args=(theirs, spec, StepContext(run_id, index, staging), os.getpid()),
            )
            proc.start()
            theirs.close()
            self._lanes.append((proc, mine))

    def __len__(self) -> int:
        return len(self._lanes)

    def run(self, lane: int, task: Task) -> TaskResult:
        """Run ``task`` on child ``lane`` (blocking; one call per lane at a time)."""
        proc, conn = self._lanes[lane]
        self._busy.add(lane)
        try:
            conn.send(task)
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    if self._closing:  # killed by close(): the run is being cancelled
                        raise CancelledError() from None
                    proc.join(1)
                    raise FSMError(
                        f"the local worker process {proc.pid} ended ({_exit_text(proc)}) "
                        f"while it ran {task.partition}; run again (with --checkpoint-id "
                        "it resumes), or give --address to run on a Ray cluster"
                    ) from None
                if message[0] == "live":
                    progress.LIVE.batch_done(message[1], message[2])
                elif message[0] == "done":
                    return message[1]
                else:
                    raise message[1]
        finally:
            self._busy.discard(lane)

    def close(self) -> None:
        """Idle children close their steps and exit; busy ones are killed. Returns when
        every child is gone."""
        self._closing = True
        for lane, (proc, conn) in enumerate(self._lanes):
            if lane in self._busy:
                proc.kill()
            else:
                try:
                    conn.send(None)
                except OSError:
                    pass
        for proc, conn in self._lanes:
            proc.join(CLOSE_WAIT)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self._lanes = []


def _exit_text(proc: multiprocessing.process.BaseProcess) -> str:
    code = proc.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
