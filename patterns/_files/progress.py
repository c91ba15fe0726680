"""Progress of a file-processing run, as handed to ``on_progress`` callbacks."""

from __future__ import annotations

from dataclasses import dataclass

from fsm_actors.progress import Timed


@dataclass
class FileProgress(Timed):
    """Progress handed to ``on_progress`` after every chunk."""

    files_total: int
    files_done: int = 0
    batches_done: int = 0
    lines_read: int = 0
    records_processed: int = 0
    records_written: int = 0
    skipped: int = 0
    errors: int = 0
