"""What ``fsm-actors run`` shows while it works: phases, a progress bar, a summary.

Phases (starting Ray, actors ready, running, committing) are printed on stderr as lines, so
they show in logs too. The bar is drawn only on a terminal: records read out of the input's
rows (counted in a background thread while Ray starts), with rate and ETA. The summary is a
few lines a person reads; ``--json`` prints the result dict instead.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fsm_actors.platform.jobs import progress as jobs_progress

_COMPRESSED = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz")
_LINE_FORMATS = {".csv": 1, ".tsv": 1, ".jsonl": 0, ".ndjson": 0, ".txt": 0, ".log": 0}


def count_rows(path: str | os.PathLike, has_header: bool = True) -> int | None:
    """Rows in one input file, or None when that cannot be told cheaply.

    Parquet: from its footer. CSV/TSV: lines minus the header (a quoted newline makes this
    an upper bound). JSON Lines and text: lines. Compressed, JSON and XML: None.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(p).metadata.num_rows
        except Exception:  # an unreadable file is the run's to report, with its name
            return None
    if suffix in _COMPRESSED or suffix not in _LINE_FORMATS:
        return None
    lines, last = 0, b"\n"
    try:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    if last != b"\n":
        lines += 1  # a last line without newline
    header = _LINE_FORMATS[suffix] if has_header else 0
    return max(lines - header, 0)


class RowCounter:
    """Counts the rows of ``paths`` in a daemon thread; ``total`` is None until done (or
    when any file cannot be counted)."""

    def __init__(self, paths: Iterable[str | os.PathLike], has_header: bool = True) -> None:
        self.total: int | None = None
        self._paths = list(paths)
        self._has_header = has_header
        self._thread = threading.Thread(target=self._count, name="fsm-actors-count",
                                        daemon=True)
        self._thread.start()

    def _count(self) -> None:
        total = 0
        for path in self._paths:
            rows = count_rows(path, self._has_header)
            if rows is None:
                return
            total += rows
        self.total = total


class RunDisplay:
    """Phases, bar and summary of one run, on stderr."""

    def __init__(self, *, bar: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.bar_enabled = bar and self.console.is_terminal
        jobs_progress.log_lines(not self.bar_enabled)  # no bar: a progress line every 10 s
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self._counter: RowCounter | None = None
        self._running_since: float | None = None
        self._committing = False
        self.done = 0

    # -- phases --------------------------------------------------------------------------
    def phase(self, text: str) -> None:
        """Print one phase line: ``[  3.2s] text``."""
        line = f"[{time.monotonic() - self.started:6.1f}s] {text}"
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def count_rows(self, paths: Iterable[str | os.PathLike], has_header: bool = True) -> None:
        """Start counting the input's rows, for the bar's total."""
        counter = self._counter = RowCounter(paths, has_header)
        jobs_progress.expect_records(lambda: counter.total)  # for status and progress lines

    # -- the bar ---------------------------------------------------------------------------
    def on_progress(self, progress: Any) -> None:
        """The ``on_progress`` callback of a run: moves the bar, notes phase changes."""
        done = _first(progress, "lines_read", "records_processed", "completed") or 0
        self.done = done
        if self._running_since is None:
            self._running_since = time.monotonic()
            self.phase("actors ready; running")
            self._start_bar()
        parts, total_parts = (_first(progress, "partitions_done", "files_done"),
                              _first(progress, "partitions_total", "files_total"))
        if not self._committing and total_parts and parts == total_parts:
            self._committing = True
            self.phase("all input read; committing output")
        if self._progress is not None:
            total = self._counter.total if self._counter else None
            if total is not None and done > total:
                total = done  # the count was an estimate (quoted newlines)
            elapsed = time.monotonic() - self._running_since
            self._progress.update(self._task, completed=done, total=total,
                                  rate=done / elapsed if elapsed > 0 else 0.0)

    def _start_bar(self) -> None:
        if not self.bar_enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]records"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>9,.0f} rec/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        total = self._counter.total if self._counter else None
        self._task = self._progress.add_task("records", total=total, rate=0.0)

    def stop_bar(self) -> None:
        """Stop drawing (before the summary, or on an interrupt)."""
        if self._progress is not None:
            if self._counter is None or self._counter.total is None:
                self._progress.update(self._task, total=self.done)
            self._progress.stop()
            self._progress = None

    # -- the end -----------------------------------------------------------------------------
    def summary(self, result: dict[str, Any], output: str | os.PathLike | None = None) -> None:
        """A few lines: records in/written/rejected/failed, output and error file, rate."""
        self.stop_bar()
        if output is not None and not result.get("output_path"):
            result = {**result, "output_path": str(output)}
        for line in summary_lines(result, time.monotonic() - self.started):
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _counts(result: dict[str, Any]) -> str:
    """``N records in, N written, N rejected, N failed[, N skipped]`` of one result."""
    read = _first(result, "lines_read", "total_processed") or 0
    written = _first(result, "records_written", "emitted") or 0
    rejected = result.get("errors")
    if rejected is None:
        rejected = sum((result.get("excluded_by_state") or {}).values())
    failed = result.get("failed") or 0
    counts = f"{read:,} records in, {written:,} written, {rejected:,} rejected, {failed:,} failed"
    if result.get("skipped"):
        counts += f", {result['skipped']:,} skipped"
    return counts


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def summary_lines(result: dict[str, Any], wall: float) -> list[str]:
    """The human summary of a run's result dict (FSM stream or file job keys; a ``steps``
    pipeline: a line per step)."""
    steps = result.get("steps")
    if isinstance(steps, dict) and steps:
        failed = sum(int(r.get("failed") or 0) for r in steps.values())
        lines = [("done: " if not failed else "done with failures: ") + f"{len(steps)} steps"]
        for name, step in steps.items():
            counts = _counts(step)
            where = step.get("output_path") or step.get("table")
            lines.append(f"  {name}: {counts}" + (f" -> {os.path.normpath(where)}" if where else ""))
            if step.get("error_file"):
                lines.append(f"    errors: {step['error_file']}")
        duration = float(result.get("duration") or wall)
        lines.append(f"  {duration:.1f} s in the steps (wall {wall:.1f} s)")
        return lines
    if "endpoints" in result and "results" in result:  # an API job
        errors = int(result.get("errors") or 0)
        lines = [("done: " if not errors else "done with failures: ")
                 + f"{result['endpoints']:,} endpoints called, {errors:,} failed"]
        if result.get("output_path"):
            lines.append(f"  output: {os.path.normpath(result['output_path'])}")
        lines.append(f"  wall {wall:.1f} s")
        return lines
    read = _first(result, "lines_read", "total_processed") or 0
    duration = float(result.get("duration") or wall)
    rate = read / duration if duration > 0 else 0.0
    lines = [("done: " if not result.get("failed") else "done with failures: ") + _counts(result)]
    if result.get("excluded_by_state"):
        by_state = ", ".join(f"{k} {v:,}" for k, v in result["excluded_by_state"].items())
        lines.append(f"  not written (ended in a non-output state): {by_state}")
    if result.get("aggregations"):
        aggs = ", ".join(f"{k} {v:,}" if isinstance(v, int | float) else f"{k} {v}"
                         for k, v in result["aggregations"].items())
        lines.append(f"  aggregations: {aggs}")
    if result.get("output_path"):
        lines.append(f"  output: {os.path.normpath(result['output_path'])}")
    if result.get("error_file"):
        lines.append(f"  errors: {result['error_file']}")
    lines.append(f"  {rate:,.0f} records/s, {duration:.1f} s (wall {wall:.1f} s)")
    return lines


def install_interrupt_exit(message: Callable[[], str]) -> None:
    """Make a second Ctrl-C exit at once (the first one is handled by the run)."""
    import signal

    def _now(signum: int, frame: Any) -> None:
        sys.stderr.write("\n" + message() + "\n")
        os._exit(130)

    signal.signal(signal.SIGINT, _now)
