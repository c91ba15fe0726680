"""Records of ``fsm-actors run CONFIG -i IN`` without ``-o``: JSON Lines on stdout.

A run writes its output through a temp file renamed at the end (exactly once, resumable), so
the records are staged in a private directory and copied to stdout when the run has
committed; phases and the summary stay on stderr, so ``fsm-actors run ... | jq`` works. A
stream closed early by the reader (``| head``) ends the copy quietly.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from fsm_actors.platform.io.writers import QuietStderr

#: How the summary names the output when the records went to stdout.
STDOUT_LABEL = "stdout (JSON Lines)"


@contextmanager
def stdout_for_data() -> Iterator[TextIO]:
    """While the block runs, stdout carries the command's data only (records, ``--json``),
    written to the stream this yields. Anything else printed to ``sys.stdout`` goes to
    stderr: what Ray forwards to a connected driver (workers' prints, the autoscaler's
    "(autoscaler +7m) Error: No available node types ..."), a function's ``print`` in a
    local run. Before, such a line could land in the middle of ``--json`` or the records.
    Once stderr's reader is gone, those lines are dropped."""
    data = sys.stdout
    sys.stderr.flush()  # what was written before comes first
    # a print whose reader is gone (``2>&1 | head``) is dropped, not a failed record
    with redirect_stdout(QuietStderr()):
        yield data


class StdoutSink:
    """A staging file for the run's records (``path``), copied to stdout by ``deliver``.

    Disabled (``enabled=False``), ``path`` is None and ``deliver`` returns the result as is.
    The staging directory is removed on exit unless the run left an error file in it (then
    the summary names that file), or a checkpointed run was interrupted (its resume needs
    the staged parts: the directory is named after the checkpoint id).
    """

    def __init__(self, config: Path, *, enabled: bool, checkpoint_id: str | None = None
                 ) -> None:
        self.path: Path | None = None
        self._dir: Path | None = None
        self._keep = False
        self._checkpointed = bool(checkpoint_id)
        if not enabled:
            return
        if checkpoint_id:
            self._dir = Path(tempfile.gettempdir()) / f"fsm-actors-stdout-{checkpoint_id}"
            self._dir.mkdir(parents=True, exist_ok=True)
        else:
            self._dir = Path(tempfile.mkdtemp(prefix="fsm-actors-stdout-"))
        self.path = self._dir / f"{config.stem}.jsonl"

    def deliver(self, result: dict[str, Any], out: TextIO | None = None) -> dict[str, Any]:
        """Copy the committed records to ``out`` (stdout); the result with ``output_path`` =
        stdout."""
        if self.path is None:
            return result
        out = out or sys.stdout
        if self.path.exists():
            with open(self.path, "rb") as records:
                try:
                    shutil.copyfileobj(records, out.buffer, 1 << 20)
                    out.buffer.flush()
                except BrokenPipeError:  # the reader stopped reading (`| head`)
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, out.fileno())
                    os.close(devnull)
        error_file = result.get("error_file")
        if error_file and os.path.exists(error_file):
            self._keep = True
        return {**result, "output_path": STDOUT_LABEL}

    def __enter__(self) -> StdoutSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._dir is None or self._keep or (kind is not None and self._checkpointed):
            return  # the error file is named in the summary; a resume needs the parts
        shutil.rmtree(self._dir, ignore_errors=True)
