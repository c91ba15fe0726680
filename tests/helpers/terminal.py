"""The CLI under a pseudo-terminal, as a person's shell runs it (for the CLI tests)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

from tests.ops.ray_heads import client_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_terminal(args: list[str], *, cwd: Path, interrupt_when: bytes | None = None,
                interrupt_after: float | None = None, timeout: float = 240, **env: str
                ) -> tuple[str, int]:
    """``fsm-actors ARGS`` under a pseudo-terminal; types Ctrl-C once ``interrupt_when`` has
    been printed (or ``interrupt_after`` seconds from the start). Returns what the terminal
    showed (no colour codes) and the exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI as a person's shell starts it
        os.chdir(cwd)
        # a person's shell starts the CLI with Ctrl-C at its default; a test runner started
        # in the background (bash ``&``) would hand down an ignored SIGINT through exec
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        full = {**client_env(**env), "COLUMNS": "120"}
        os.execve(sys.executable, [sys.executable, "-m", "fsm_actors.cli.main", *args], full)
    started = time.monotonic()
    out, sent, deadline = b"", False, started + timeout
    while time.monotonic() < deadline:
        due = (interrupt_when is not None and interrupt_when in out) or (
            interrupt_after is not None and time.monotonic() - started >= interrupt_after)
        if due and not sent:
            os.write(fd, b"\x03")  # Ctrl-C as typed: SIGINT to the foreground group
            sent = True
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            out += data
    _, status = os.waitpid(pid, 0)
    return (ANSI.sub("", out.decode(errors="replace")).replace("\r", "\n"),
            os.waitstatus_to_exitcode(status))
