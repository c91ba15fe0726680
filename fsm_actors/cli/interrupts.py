"""Ctrl-C anywhere in a command: one line saying what happened, exit 130, no traceback.

Click turns a ``KeyboardInterrupt`` into ``Aborted!`` and exit 1; a shell, ``make`` or CI
reads 130 as "interrupted by the user". A command that handles Ctrl-C itself (a run says
how to resume) exits before this is reached.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def stderr_muted() -> Iterator[None]:
    """Send file descriptor 2 (where Ray's threads write too) to the null device for the
    block; restored on the way out, whatever happens."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


@contextmanager
def interrupts_kept() -> Iterator[None]:
    """Ctrl-C inside the block is not lost. Python raises ``KeyboardInterrupt`` wherever the
    main thread is; inside a finalizer (a weakref callback that starting Ray runs) Python
    prints it as "Exception ignored in ..." with a traceback and drops it, and the block went
    on as if no key was pressed. Here the handler notes the Ctrl-C, such a dropped one is
    not printed, and ``KeyboardInterrupt`` is raised again when the block ends."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):  # (`cmd &` in a script)
        yield
        return
    seen: list[int] = []
    previous_hook = sys.unraisablehook

    def note(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    previous = signal.signal(signal.SIGINT, note)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
    if seen:
        raise KeyboardInterrupt


def quietly_disconnect() -> None:
    """Leave Ray (stopping an embedded one this process started), with stderr muted: what
    Ray's threads print while going away after Ctrl-C is noise."""
    if "ray" not in sys.modules:
        return
    with stderr_muted():
        try:
            from fsm_actors.platform import runtime

            runtime.shutdown()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


def interrupted_exit(command: str | None, terminated: bool = False) -> None:
    """Print what was interrupted, leave Ray, exit 130 (143 after SIGTERM; a second Ctrl-C
    exits at once)."""
    from fsm_actors.cli.progress import install_interrupt_exit

    install_interrupt_exit(lambda: "stopped")
    what = {"run": " before the run started; nothing was written",
            "submit": "; nothing more was sent to the cluster",
            "logs": "; stopped reading the logs (the job runs on)"}.get(command or "", "")
    how = "stopped (SIGTERM)" if terminated else "interrupted"
    click.echo(f"\n{command or 'fsm-actors'}: {how}{what}", err=True)
    quietly_disconnect()
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(143 if terminated else 130)


class InterruptibleGroup(click.Group):
    """A group whose commands end with ``interrupted_exit`` on Ctrl-C."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as stop:
            from fsm_actors.cli.stopping import Terminated

            interrupted_exit(ctx.invoked_subcommand, isinstance(stop, Terminated))
