"""What ``fsm-actors run`` shows while it works: phases, a progress bar, a summary.

Phases (starting Ray, actors ready, running, committing) are printed on stderr as lines, so
they show in logs too. The bar is drawn only on a terminal: records read out of the input's
rows (counted in a background thread while Ray starts), with rate and ETA. The summary is a
few lines a person reads; ``--json`` prints the result dict instead.
"""

from __future__ import annotations

import contextlib
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

from fsm_actors.platform.jobs import heartbeat
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
    when any file cannot be counted). ``done(total, seconds)`` hears a finished count."""

    def __init__(self, paths: Iterable[str | os.PathLike], has_header: bool = True,
                 done: Callable[[int, float], None] | None = None) -> None:
        self.total: int | None = None
        self._paths = list(paths)
        self._has_header = has_header
        self._done = done
        self._thread = threading.Thread(target=self._count, name="fsm-actors-count",
                                        daemon=True)
        self._thread.start()

    def _count(self) -> None:
        started = time.monotonic()
        total = 0
        for path in self._paths:
            rows = count_rows(path, self._has_header)
            if rows is None:
                return
            total += rows
        self.total = total
        if self._done is not None:
            self._done(total, time.monotonic() - started)


class StderrConsole(Console):
    """A rich console on stderr that falls silent when stderr's reader is gone
    (``fsm-actors run ... 2>&1 | head``) and lets the run finish: rich's own answer, a
    ``SystemExit``, raised in a run's worker thread, ended only that thread and left the
    run waiting for it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(stderr=True, **kwargs)

    def on_broken_pipe(self) -> None:
        self.quiet = True


class RunDisplay:
    """Phases, bar and summary of one run, on stderr."""

    def __init__(self, *, bar: bool = True, console: Console | None = None) -> None:
        self.console = console or StderrConsole(highlight=False)
        self.bar_enabled = bar and self.console.is_terminal
        jobs_progress.log_lines(not self.bar_enabled)  # no bar: a progress line every 10 s
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self._counter: RowCounter | None = None
        self._running_since: float | None = None
        self._committing = False
        self._lock = threading.Lock()
        #: what the wall time adds to the job's own seconds (the summary names it)
        self.started_what = "reading the config"
        self.done = 0
        heartbeat.WATCHERS.append(self.on_beat)  # live figures while tasks run, notices

    # -- phases --------------------------------------------------------------------------
    def phase(self, text: str) -> None:
        """Print one phase line: ``[  3.2s] text``."""
        if text.startswith("Ray ready"):
            self.started_what = "starting Ray" if "embedded" in text else "connecting to Ray"
        line = f"[{time.monotonic() - self.started:6.1f}s] {text}"
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def count_rows(self, paths: Iterable[str | os.PathLike], has_header: bool = True) -> None:
        """Start counting the input's rows, for the bar's total."""
        counter = self._counter = RowCounter(paths, has_header, done=self._counted)
        jobs_progress.expect_records(lambda: counter.total)  # for status and progress lines

    def _counted(self, total: int, seconds: float) -> None:
        if seconds >= 1.0:  # a count a person waited for is worth a line
            self.phase(f"input: {total:,} rows (counted in {seconds:.1f} s, the bar's total)")

    def on_beat(self, doc: dict[str, Any]) -> None:
        """A job's live figures (every ~2 s while tasks run: records read so far) or a notice
        of what the driver is doing; moves the bar between finished tasks, so one long task
        does not leave it at 0 until the end."""
        if "notice" in doc:
            self.phase(str(doc["notice"]))
            return
        # the workers are up once the job's heartbeat beats: the run's clock starts there
        started = doc.get("started")
        since = (time.monotonic() - max(0.0, time.time() - float(started))
                 if started else None)
        self._running(since)
        self._move(max(self.done, int(doc.get("records") or 0)))

    def _running(self, since: float | None = None) -> None:
        with self._lock:
            if self._running_since is not None:
                return
            self._running_since = since if since is not None else time.monotonic()
        self.phase("actors ready; running")
        self._start_bar()

    # -- the bar ---------------------------------------------------------------------------
    def on_progress(self, progress: Any) -> None:
        """The ``on_progress`` callback of a run: moves the bar, notes phase changes."""
        done = _first(progress, "lines_read", "records_processed", "completed") or 0
        self.done = max(self.done, done)
        self._running()
        parts, total_parts = (_first(progress, "partitions_done", "files_done"),
                              _first(progress, "partitions_total", "files_total"))
        if not self._committing and total_parts and parts == total_parts:
            self._committing = True
            self.phase("all input read; committing output")
        self._move(self.done)

    def _move(self, done: int) -> None:
        """Put the bar at ``done`` records; its rate is records over the seconds since the
        run's first records (the summary's "run rate")."""
        self.done = max(self.done, done)
        if self._progress is not None and self._running_since is not None:
            done = self.done
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
            TextColumn("{task.fields[rate]:>9,.0f} rec/s running"),
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
        with contextlib.suppress(ValueError):
            heartbeat.WATCHERS.remove(self.on_beat)
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
        for line in summary_lines(result, time.monotonic() - self.started,
                                  started=self.started_what):
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _counts(result: dict[str, Any]) -> str:
    """``N records in, N written, N not written (ended in ...), N skipped, N rejected`` of
    one result, each record counted once: ``failed`` and ``errors`` are the same records (the
    error file's), and ``skipped`` of an FSM run is the records that ended in a non-output
    state."""
    read = _first(result, "lines_read", "total_processed") or 0
    written = _first(result, "records_written", "emitted") or 0
    rejected = _first(result, "errors", "failed") or 0
    counts = f"{read:,} records in, {written:,} written"
    excluded = {k: v for k, v in (result.get("excluded_by_state") or {}).items() if v}
    skipped = int(result.get("skipped") or 0)
    if excluded:
        states = ", ".join(f"{name!r} {n:,}" for name, n in excluded.items())
        ended = sum(excluded.values())
        counts += (f", {ended:,} not written (ended in non-output state"
                   f"{'s' if len(excluded) > 1 else ''} {states})")
        skipped -= ended
    if skipped > 0:
        counts += f", {skipped:,} skipped by filters"
    counts += f", {rejected:,} rejected"
    failed = int(result.get("failed") or 0)
    if failed and failed != rejected:
        counts += f", {failed:,} failed"
    return counts


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def number(value: Any) -> str:
    """A figure for people: integers with thousands separators, floats rounded to what a
    person reads (2 decimals, 4 significant digits below 1; float noise such as
    ``337362565.04999995`` gone)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def rejected_any(result: dict[str, Any]) -> bool:
    """Whether a run's result holds rejected records or failed calls."""
    steps = result.get("steps")
    if isinstance(steps, dict):
        return any(rejected_any(step) for step in steps.values() if isinstance(step, dict))
    return bool(result.get("failed") or result.get("errors"))


def summary_lines(result: dict[str, Any], wall: float,
                  started: str = "starting Ray") -> list[str]:
    """The human summary of a run's result dict (FSM stream or file job keys; a ``steps``
    pipeline: a line per step; an ``api`` job: endpoints or FANOUT items). The rate is the
    run's (records over the job's own seconds, as on the bar); ``wall`` adds starting Ray
    and the workers."""
    steps = result.get("steps")
    if isinstance(steps, dict) and steps:
        failed = sum(int(r.get("failed") or 0) for r in steps.values())
        lines = [("done: " if not failed else "done with rejected records: ")
                 + f"{len(steps)} steps"]
        for name, step in steps.items():
            counts = _counts(step)
            where = step.get("output_path") or step.get("table")
            lines.append(f"  {name}: {counts}" + (f" -> {os.path.normpath(where)}" if where else ""))
            if step.get("error_file"):
                lines.append(f"    errors: {step['error_file']}")
        duration = float(result.get("duration") or wall)
        lines.append(f"  {duration:.1f} s in the steps (wall {wall:.1f} s incl. {started})")
        return lines
    if "endpoints" in result and "results" in result:  # an API job
        return _api_lines(result, wall, started)
    read = _first(result, "lines_read", "total_processed") or 0
    duration = float(result.get("duration") or wall)
    rate = read / duration if duration > 0 else 0.0
    lines = [("done: " if not rejected_any(result) else "done with rejected records: ")
             + _counts(result)]
    if result.get("resumed"):
        lines.append(f"  resumed: {result['resumed']:,} records already done by an earlier "
                     "run of this checkpoint (counted above)")
    if result.get("aggregations"):
        aggs = ", ".join(f"{k} {number(v)}" for k, v in result["aggregations"].items())
        lines.append(f"  aggregations: {aggs}")
    if result.get("output_path"):
        lines.append(f"  output: {os.path.normpath(result['output_path'])}")
    if result.get("error_file"):
        lines.append(f"  errors: {result['error_file']}")
    lines.append(f"  {rate:,.0f} records/s over the job's {duration:.1f} s (incl. starting "
                 f"its workers and committing, which the bar's rate leaves out); wall {wall:.1f} s incl. "
                 f"{started}")
    return lines


def _api_lines(result: dict[str, Any], wall: float, started: str) -> list[str]:
    """An API job: endpoints called and failed, or a FANOUT's items; where the results and
    the failed items went, and why calls failed."""
    results = result.get("results") or {}
    errors = results.get("errors") or {}
    metrics = results.get("_metrics") or {}
    failed = int(result.get("errors") or 0)
    head = "done: " if not failed else "done with failures: "
    lines: list[str]
    if "items" in metrics:  # FANOUT: one endpoint over many items
        items = int(metrics.get("items") or 0)
        name = next((k for k in results if k not in ("errors", "_metrics", "merged")), "?")
        lines = [head + f"FANOUT {name!r}: {items:,} items, {items - failed:,} succeeded, "
                 f"{failed:,} failed"]
        if result.get("resumed") or (metrics.get("job") or {}).get("resumed"):
            done = result.get("resumed") or metrics["job"]["resumed"]
            lines.append(f"  resumed: {done:,} items already done by an earlier run")
        sink = (results.get(name) or {}) if isinstance(results.get(name), dict) else {}
        if sink.get("output_path"):
            lines.append(f"  sink: {os.path.normpath(sink['output_path'])}")
        if metrics.get("error_file") and failed:
            lines.append(f"  errors: {metrics['error_file']}")
    else:
        lines = [head + f"{result['endpoints']:,} endpoints called, {failed:,} failed"]
    for endpoint, entries in errors.items():
        entries = entries if isinstance(entries, list) else [entries]
        if entries:
            lines.append(f"  {endpoint}: " + _reasons(entries))
    if result.get("output_path"):
        lines.append(f"  output: {os.path.normpath(result['output_path'])}")
    lines.append(f"  wall {wall:.1f} s incl. {started}")
    return lines


def _reasons(entries: list[Any]) -> str:
    """The distinct reasons of failed calls, most frequent first, with counts."""
    seen: dict[str, int] = {}
    for entry in entries:
        if isinstance(entry, dict):
            status = entry.get("status")
            why = str(entry.get("reason") or entry.get("error") or "failed")
            text = (why if why.startswith(f"HTTP {status}") else f"HTTP {status}: {why}"
                    ) if status is not None else f"no answer: {why}"
        else:
            text = str(entry)
        seen[text] = seen.get(text, 0) + 1
    ranked = sorted(seen.items(), key=lambda kv: -kv[1])
    shown = "; ".join(f"{n:,} x {text}" if n > 1 else text for text, n in ranked[:3])
    return shown + (f"; and {len(ranked) - 3} other reasons" if len(ranked) > 3 else "")


def install_interrupt_exit(message: Callable[[], str]) -> None:
    """Make a second Ctrl-C exit at once (the first one is handled by the run)."""
    import signal

    def _now(signum: int, frame: Any) -> None:
        sys.stderr.write("\n" + message() + "\n")
        os._exit(130)

    signal.signal(signal.SIGINT, _now)
