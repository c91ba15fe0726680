"""Per-state counts of FSM runs, computed from the paths the engine already returns.

``StateCounts.add_results(results)`` counts one chunk of run results: per state, the
records that entered it (each visit), that ended there, that failed there (and by error
type); per arc ``"a->b"``, the transitions taken. It is done once per chunk where the chunk's
results are accepted (on the driver, or where a job commits a batch), so a chunk re-sent
after an actor died is counted once. Records sharing a path are counted together. When the
route of a successful record is fixed (``Machine.success_path``: each state's first arc is
unconditional), only the failed records are looked at; else, when every record of the chunk
took one path, one C-level comparison per record; otherwise one ``tuple(path)`` per record.

``seconds`` is the time spent in each state, estimated from sampled records: the engine
times one record in ``TIMING_SAMPLE`` (``Machine.run_batch(timings=...)``), and each state's
sampled mean is scaled by the exact number of entries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import filterfalse
from operator import countOf, itemgetter
from typing import Any

#: One record in this many is timed state by state (``Machine.run_batch(timings=...)``).
TIMING_SAMPLE = 1024

_PATH = itemgetter("path")
_SUCCESS = itemgetter("success")
_STATE_IN_ERROR = re.compile(r"in state '([^']*)'|from state: (\S+)")
_EXC_TYPE = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout))\b: ")
_KINDS = (
    ("Validator ", "ValidationFailed"),
    ("Pre-validator ", "ValidationFailed"),
    ("Schema validation", "SchemaInvalid"),
    ("No valid transitions", "NoTransition"),
    ("Maximum transitions", "MaxTransitions"),
    ("Could not acquire resources", "ResourceUnavailable"),
    ("a record must be a dict", "NotADict"),
)


def error_type(error: str | None) -> str:
    """The kind of a record's failure: the exception class a function raised
    (``ValueError``), else ``ValidationFailed``, ``SchemaInvalid``, ``NoTransition``,
    ``MaxTransitions``, ``ResourceUnavailable``, ``NotADict``, or ``Rejected`` (a function
    returned a failure)."""
    text = error or ""
    first = text.split("; then: ", 1)[0]
    match = _EXC_TYPE.search(first)
    if match:
        return match.group(1).rsplit(".", 1)[-1]
    for prefix, kind in _KINDS:
        if first.startswith(prefix):
            return kind
    return "Rejected"


def failed_state(result: Mapping[str, Any]) -> str | None:
    """The state a failed record failed in: the one its error names first (a record that
    then followed a ``run_on_failure`` arc stops elsewhere), else where it stopped."""
    match = _STATE_IN_ERROR.search(result.get("error") or "")
    if match:
        return match.group(1) or match.group(2)
    path = result.get("path")
    return path[-1] if path else result.get("final_state")


class StateCounts:
    """Counts of runs: ``states[name] = [entered, ended, failed, seconds]``, ``errors[name]
    = {error type: n}``, ``arcs["a->b"] = n``, and the sampled timings behind ``seconds``
    (``sampled[name] = [timed entries, timed seconds]``). Not thread-safe: merge on one
    thread."""

    __slots__ = ("states", "errors", "arcs", "sampled")

    def __init__(self) -> None:
        self.states: dict[str, list[int]] = {}
        self.errors: dict[str, dict[str, int]] = {}
        self.arcs: dict[str, int] = {}
        self.sampled: dict[str, list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.states)

    def _state(self, name: str) -> list[int]:
        row = self.states.get(name)
        if row is None:
            row = self.states[name] = [0, 0, 0]
        return row

    def add_results(
        self,
        results: Iterable[Mapping[str, Any]],
        failed: int | None = None,
        success_path: tuple[str, ...] | None = None,
    ) -> StateCounts:
        """Count one chunk of run results (``{path, success, error, ...}``); returns self.
        ``failed`` (the number of failures, if the caller knows it) and ``success_path``
        (the one path every successful record took: ``Machine.success_path``) spare the
        per-record work: then only the failed records are looked at."""
        if not isinstance(results, list):
            results = list(results)
        n = len(results)
        failures = None if failed == 0 else list(filterfalse(_SUCCESS, results))
        by_path: Mapping[tuple[str, ...], int]
        if success_path is not None and failed is not None:
            by_path = Counter(map(tuple, map(_PATH, failures or ())))
            if n > failed:
                by_path[success_path] += n - failed  # type: ignore[index]
        else:
            # every record on one path (the common case) costs one C-level pass, no tuples
            first = results[0]["path"] if n else None
            if n and countOf(map(_PATH, results), first) == n:
                by_path = {tuple(first): n}  # type: ignore[arg-type]
            else:
                by_path = Counter(map(tuple, map(_PATH, results)))
        arcs = self.arcs
        for path, count in by_path.items():
            if not path:
                continue
            previous = None
            for name in path:
                self._state(name)[0] += count
                if previous is not None:
                    key = f"{previous}->{name}"
                    arcs[key] = arcs.get(key, 0) + count
                previous = name
            self._state(path[-1])[1] += count
        for result in failures or ():
            where = failed_state(result)
            if where is None:
                where = "<none>"
            self._state(where)[2] += 1
            kinds = self.errors.setdefault(where, {})
            kind = error_type(result.get("error"))
            kinds[kind] = kinds.get(kind, 0) + 1
        return self

    def add_timings(self, timings: Mapping[str, Any] | None) -> StateCounts:
        """Add sampled timings ``{state: (timed entries, seconds)}`` (``run_batch``'s)."""
        for name, (n, seconds) in (timings or {}).items():
            row = self.sampled.get(name)
            if row is None:
                self.sampled[name] = [n, seconds]
            else:
                row[0] += n
                row[1] += seconds
        return self

    def merge(self, other: StateCounts | Mapping[str, Any]) -> StateCounts:
        """Add ``other`` (a ``StateCounts`` or its ``dump()``); returns self."""
        if isinstance(other, StateCounts):
            other = other.dump()
        for name, row in other.get("states", {}).items():
            mine = self._state(name)
            for i in range(3):
                mine[i] += row[i]
        for name, kinds in other.get("errors", {}).items():
            mine_kinds = self.errors.setdefault(name, {})
            for kind, n in kinds.items():
                mine_kinds[kind] = mine_kinds.get(kind, 0) + n
        for key, n in other.get("arcs", {}).items():
            self.arcs[key] = self.arcs.get(key, 0) + n
        self.add_timings(other.get("sampled"))
        return self

    def dump(self) -> dict[str, Any]:
        """A compact picklable/JSON form that ``merge`` and ``load`` take back."""
        return {
            "states": {k: list(v) for k, v in self.states.items()},
            "errors": {k: dict(v) for k, v in self.errors.items()},
            "arcs": dict(self.arcs),
            "sampled": {k: list(v) for k, v in self.sampled.items()},
        }

    @classmethod
    def load(cls, dumped: Mapping[str, Any] | None) -> StateCounts:
        """The counts ``dump()`` gave (``None``: empty)."""
        return cls().merge(dumped or {})

    def seconds(self, name: str) -> float:
        """The estimated time spent in state ``name``: its sampled mean time per entry times
        its entries (0.0 when no entry was timed)."""
        sampled = self.sampled.get(name)
        row = self.states.get(name)
        if not sampled or not sampled[0] or row is None:
            return 0.0
        return sampled[1] / sampled[0] * row[0]

    def to_dict(self, order: Iterable[str] = ()) -> dict[str, Any]:
        """``{"states": {state: {entered, ended, failed, seconds[, errors]}}, "arcs":
        {"a->b": n}}``; states in ``order`` first (every one of them, zeros included), then
        any other state seen."""
        names = list(dict.fromkeys([*order, *self.states]))
        states: dict[str, Any] = {}
        for name in names:
            entered, ended, failed = self.states.get(name, (0, 0, 0))
            row: dict[str, Any] = {
                "entered": entered,
                "ended": ended,
                "failed": failed,
                "seconds": round(self.seconds(name), 6),
            }
            if self.errors.get(name):
                row["errors"] = dict(sorted(self.errors[name].items()))
            states[name] = row
        return {"states": states, "arcs": dict(self.arcs)}


def accumulate_timing(
    timings: dict[str, list[float]], path: list[str], clock: list[float]
) -> None:
    """Add one timed record: ``clock[i]`` is when it entered ``path[i]``; the last entry of
    ``clock`` is when it stopped."""
    for i, name in enumerate(path):
        spent = clock[i + 1] - clock[i]
        row = timings.get(name)
        if row is None:
            timings[name] = [1, spent]
        else:
            row[0] += 1
            row[1] += spent


class ChunkResults(list):  # type: ignore[type-arg]
    """One chunk's run results (a list) with its ``counts`` (``StateCounts.dump()``, or
    ``None`` when counting is off) and ``traces`` (``{index in the chunk: steps}`` of its
    traced records, or ``None`` when not tracing), as executors hand them to the facade."""

    __slots__ = ("counts", "traces")

    def __init__(self, results: Iterable[Any], counts: Mapping[str, Any] | None,
                 traces: Mapping[int, Any] | None = None) -> None:
        super().__init__(results)
        self.counts = counts
        self.traces = traces


class BatchResults(list):  # type: ignore[type-arg]
    """``process_batch``'s results (a list, input order) with ``stats``: that call's
    per-state counts, shaped as ``SimpleFSM.stats()``; with ``trace=N``, ``traces``: the
    trace lines (``fsm_actors.trace``) of the sampled and failed records, in input order,
    and ``trace_file``: where they were written (``None`` when not asked to)."""

    __slots__ = ("stats", "traces", "trace_file")

    def __init__(self, results: Iterable[Any], stats: dict[str, Any],
                 traces: list[dict[str, Any]] | None = None,
                 trace_file: str | None = None) -> None:
        super().__init__(results)
        self.stats = stats
        self.traces = traces
        self.trace_file = trace_file
