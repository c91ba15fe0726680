"""The ``_metrics`` of a run, from its call outcomes (plain core).

Keys: dataknobs-fsm's ``read_count`` (good answers to GET/HEAD/OPTIONS), ``write_count`` (good
answers to the other methods), ``bytes_read``, ``bytes_written``, ``errors``, ``retries``,
``duration_ms``; and this project's ``requests`` (HTTP requests sent, retries included),
``rate_limited`` (429 answers), ``handled`` (failures an ``error_handler`` recovered),
``skipped`` (endpoint -> reason) and ``endpoints`` (per endpoint: ``status``, ``attempts``,
``started``, ``ended`` wall-clock seconds, ``duration_ms``), and ``run_id``. The run is also
recorded in the metrics the Grafana dashboard charts (``record``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fsm_actors.platform import metrics
from patterns._api.call import CallOutcome

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class Totals:
    """Counters summed over outcomes; ``add`` one outcome at a time (FANOUT adds millions)."""

    __slots__ = ("read_count", "write_count", "bytes_read", "bytes_written", "errors",
                 "retries", "requests", "rate_limited", "handled")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def add(self, outcome: CallOutcome) -> None:
        if outcome.ok and not outcome.handled:
            if outcome.method in _READS:
                self.read_count += 1
            else:
                self.write_count += 1
        elif not outcome.ok:
            self.errors += 1
        self.handled += outcome.handled
        self.bytes_read += outcome.bytes_read
        self.bytes_written += outcome.bytes_written
        self.requests += outcome.attempts
        self.retries += max(0, outcome.attempts - 1)
        self.rate_limited += outcome.rate_limited

    def merge(self, other: Mapping[str, int]) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + int(other.get(name, 0)))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def run_metrics(outcomes: Iterable[CallOutcome], skipped: Mapping[str, str],
                duration: float, pipeline: str | None = None) -> dict[str, Any]:
    """The ``_metrics`` dict of an in-process run. With ``pipeline`` (the config's name) the
    run gets a ``run_id`` (``<name>-<8 hex>``) and is recorded in the dashboard's metrics
    (``record``)."""
    outcomes = list(outcomes)
    totals = Totals()
    endpoints: dict[str, Any] = {}
    for outcome in outcomes:
        totals.add(outcome)
        endpoints[outcome.name] = {
            "status": outcome.status, "attempts": outcome.attempts, "ok": outcome.ok,
            "started": outcome.started, "ended": outcome.ended,
            "duration_ms": round((outcome.ended - outcome.started) * 1000, 3)}
    out = {**totals.as_dict(), "duration_ms": round(duration * 1000, 3),
           "skipped": dict(skipped), "endpoints": endpoints}
    if pipeline is not None:
        out["run_id"] = f"{pipeline}-{uuid.uuid4().hex[:8]}"
        record(pipeline, out["run_id"], len(outcomes), sum(o.ok for o in outcomes),
               totals.errors, duration)
    return out


#: the ``role`` tag of an in-process run's metrics (FANOUT's job workers record ``worker``)
ROLE = "orchestrator"


def record(pipeline: str, run_id: str, calls: int, ok: int, failed: int,
           seconds: float) -> None:
    """Record one in-process run in the metrics the dashboard charts (as a job worker
    records a batch): ``records`` (endpoints called), ``records_written`` (their good
    results, recovered ones included), ``errors`` (failed endpoints), ``batches`` (1) and
    ``batch_seconds`` (the run's time), tagged ``pipeline``, ``run`` and ``role``. Only in
    a process connected to Ray (``fsm_actors.platform.metrics``); it never starts Ray."""
    tags = {"pipeline": pipeline, "run": run_id, "role": ROLE}
    metrics.inc("records", calls, **tags)
    metrics.inc("records_written", ok, **tags)
    metrics.inc("errors", failed, **tags)
    metrics.inc("batches", 1, **tags)
    metrics.observe("batch_seconds", seconds, **tags)
