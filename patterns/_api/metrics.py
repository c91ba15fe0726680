"""The ``_metrics`` of a run, from its call outcomes (plain core).

Keys: dataknobs-fsm's ``read_count`` (good answers to GET/HEAD/OPTIONS), ``write_count`` (good
answers to the other methods), ``bytes_read``, ``bytes_written``, ``errors``, ``retries``,
``duration_ms``; and this project's ``requests`` (HTTP requests sent, retries included),
``rate_limited`` (429 answers), ``handled`` (failures an ``error_handler`` recovered),
``skipped`` (endpoint -> reason) and ``endpoints`` (per endpoint: ``status``, ``attempts``,
``started``, ``ended`` wall-clock seconds, ``duration_ms``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
                duration: float) -> dict[str, Any]:
    """The ``_metrics`` dict of an in-process run."""
    totals = Totals()
    endpoints: dict[str, Any] = {}
    for outcome in outcomes:
        totals.add(outcome)
        endpoints[outcome.name] = {
            "status": outcome.status, "attempts": outcome.attempts, "ok": outcome.ok,
            "started": outcome.started, "ended": outcome.ended,
            "duration_ms": round((outcome.ended - outcome.started) * 1000, 3)}
    return {**totals.as_dict(), "duration_ms": round(duration * 1000, 3),
            "skipped": dict(skipped), "endpoints": endpoints}
