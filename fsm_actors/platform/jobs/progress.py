"""Progress of a job, as handed to ``on_progress`` callbacks (plain core)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


# -- live figures of the task a worker is running (plain core) ------------------------------


def add_states(into: dict[str, list[int]], states: dict[str, Any] | None) -> None:
    """Add the ``states`` rows (name -> [entered, ended, failed]) of per-state counts."""
    for name, row in (states or {}).items():
        mine = into.setdefault(name, [0, 0, 0])
        for i, value in enumerate(row[:3]):
            mine[i] += value


@dataclass
class LiveCounts:
    """What the job worker of this process has done, updated per batch while a task runs.

    A step calls ``batch_done`` after each batch it made durable (the one call a step adds);
    the worker reads ``snapshot()`` from its status thread, so the figures never wait for a
    running task. Batches a step did not report are added from the task's result at its
    end. Totals are per process (one job worker per actor process)."""

    records: int = 0
    written: int = 0
    errors: int = 0
    batches: int = 0
    states: dict[str, list[int]] = field(default_factory=dict)
    current: str | None = None
    input: str | None = None
    task_records: int = 0
    #: called with (counts, batch seconds) of each batch (the worker records metrics)
    sink: Callable[[dict[str, int], float], None] | None = None
    _reported: int = 0
    _mark: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start_task(self, current: str, input: str | None) -> None:
        with self._lock:
            self.current, self.input, self.task_records = current, input, 0
            self._reported, self._mark = 0, time.monotonic()

    def batch_done(self, counts: dict[str, int], states: dict[str, Any] | None = None) -> None:
        """One batch of the running task is durable: ``counts`` (``COUNT_KEYS``) and, for an
        FSM stage, its per-state counts (``StateCounts.dump()``)."""
        now = time.monotonic()
        with self._lock:
            self._add(counts, states)
            self._reported += 1
            seconds, self._mark = now - self._mark, now
        if self.sink is not None:
            self.sink(counts, seconds)

    def finish_task(self, batches: dict[Any, dict[str, int]], seconds: float) -> None:
        """The task ended with ``batches``; those its step did not report are added now
        (spread over the task's ``seconds``)."""
        with self._lock:
            rest = list(batches.values())[self._reported:]
            for counts in rest:
                self._add(counts, None)
            self.current = self.input = None
            self._reported = 0
        if self.sink is not None:
            for counts in rest:
                self.sink(counts, seconds / len(rest))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "records_read": self.records, "records_written": self.written,
                "errors": self.errors, "batches": self.batches,
                "current": self.current, "input": self.input,
                "task_records": self.task_records,
                "states": {k: list(v) for k, v in self.states.items()},
            }

    def _add(self, counts: dict[str, int], states: dict[str, Any] | None) -> None:
        read = counts.get("read", 0)
        self.records += read
        self.task_records += read
        self.written += counts.get("written", 0)
        self.errors += counts.get("errors", 0)
        self.batches += 1
        if states:
            add_states(self.states, states.get("states"))


#: this process's live figures (the job worker's; a local run's in the driver)
LIVE = LiveCounts()


def batch_done(counts: dict[str, int], states: dict[str, Any] | None = None) -> None:
    """Report one durable batch of the running task (see ``LiveCounts.batch_done``)."""
    LIVE.batch_done(counts, states)


# -- progress lines for runs without a terminal ----------------------------------------------

#: seconds between progress lines when no bar is drawn; FSM_ACTORS_PROGRESS_EVERY overrides
DEFAULT_EVERY = 10.0
_log_lines: bool | None = None
_expected: Callable[[], int | None] | None = None
#: set by ``fsm-actors run`` for a small run that names no cluster: file jobs run in this process
_in_process: list[str] = []


def run_in_process(reason: str | None) -> None:
    """File jobs of this process run in-process (``run_job(local=True)``) while ``reason``
    is set; None ends it. Only the CLI sets it, for a run that must not start its own Ray."""
    _in_process[:] = [reason] if reason else []


def in_process() -> bool:
    """Whether ``run_in_process`` asked file jobs of this process to skip Ray."""
    return bool(_in_process)


def log_lines(on: bool = True) -> None:
    """Ask for progress lines even on a terminal (``run --no-progress``)."""
    global _log_lines
    _log_lines = on


def expect_records(total: Callable[[], int | None]) -> None:
    """Where the run's record total comes from (e.g. the CLI's row count; ``None`` until
    known): progress lines and ``fsm-actors status`` then show done/total and an ETA."""
    global _expected
    _expected = total


def expected_records() -> int | None:
    return _expected() if _expected is not None else None


def line_every() -> float:
    """Seconds between progress lines; 0: none. ``FSM_ACTORS_PROGRESS_EVERY`` (seconds, 0
    off) wins; else every ``DEFAULT_EVERY`` s when stderr is no terminal (a submitted job, a
    redirected run) or ``log_lines()`` was called, never under a drawn bar."""
    raw = os.environ.get("FSM_ACTORS_PROGRESS_EVERY", "").strip()
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return DEFAULT_EVERY
    if _log_lines is not None:
        return DEFAULT_EVERY if _log_lines else 0.0
    return 0.0 if sys.stderr.isatty() else DEFAULT_EVERY


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_text(doc: dict[str, Any]) -> str:
    """``12,345 / 50,000 records (24.7%), 3,100/s, ETA 12s`` of a heartbeat document."""
    done, total, rate = doc.get("records", 0), doc.get("total"), doc.get("rate", 0.0)
    text = f"{done:,}" + (f" / {total:,}" if total else "") + " records"
    if total:
        text += f" ({100 * min(done, total) / total:.1f}%)"
    text += f", {rate:,.0f}/s"
    if doc.get("eta") is not None:
        text += f", ETA {duration(doc['eta'])}"
    if doc.get("errors"):
        text += f", {doc['errors']:,} errors"
    return text
