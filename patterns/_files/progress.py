"""Progress of a file-processing run, as handed to ``on_progress`` callbacks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class FileProgress:
    """Progress handed to ``on_progress`` after every chunk."""

    files_total: int
    files_done: int = 0
    batches_done: int = 0
    lines_read: int = 0
    records_processed: int = 0
    records_written: int = 0
    skipped: int = 0
    errors: int = 0
    start_time: float = field(default_factory=time.time)

    @property
    def elapsed(self) -> float:
        return time.time() - self.start_time
