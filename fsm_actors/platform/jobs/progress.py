"""Progress of a job, as handed to ``on_progress`` callbacks (plain core)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fsm_actors.platform.progress import Timed


@dataclass
class JobProgress(Timed):
    """Progress after every finished task.

    ``partitions_total`` is known up front (input files, key ranges, input slices);
    ``lines_read`` counts records read (good and malformed). The file-processing names
    (``files_total``, ``files_done``) and the stream names (``chunks_processed``,
    ``records_emitted``) are aliases of the same figures.
    """

    partitions_total: int = 0
    partitions_done: int = 0
    batches_done: int = 0
    lines_read: int = 0
    records_processed: int = 0
    records_written: int = 0
    skipped: int = 0
    errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def files_total(self) -> int:
        return self.partitions_total

    @property
    def files_done(self) -> int:
        return self.partitions_done

    @property
    def chunks_processed(self) -> int:
        return self.batches_done

    @property
    def records_emitted(self) -> int:
        return self.records_written

    @property
    def rate(self) -> float:
        """Records read per second so far."""
        elapsed = self.elapsed
        return self.lines_read / elapsed if elapsed > 0 else 0.0


#: ``process_stream``'s progress record is the job layer's
StreamProgress = JobProgress
