"""The HTTP worker step of FANOUT (plain core; runs inside each worker actor).

A task is one slice of the input items (``payload``; ``first_record`` is the index of its
first item). The step sends one request per item, at most ``concurrency`` at once per worker
(shared by the tasks the actor runs together), on the worker's own client made on the
actor's event loop (an aiohttp session), under the endpoint's policies from
``patterns.error_recovery`` (built in the worker; with ``scope="cluster"`` they share one limiter and breaker per name with every
other worker). It returns the slice's results in item order, its errors and its counters;
with a sink (or a checkpoint) it first writes them as parts of the staging directory
(fsynced), so a task sent again after its actor died writes the same parts: the results are
exactly once, though the requests of that slice may be sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from fsm_actors.platform.io import RowError, records_to_table
from fsm_actors.platform.jobs.model import StepContext, Task, TaskResult
from fsm_actors.platform.jobs.parts import OutputSpec, Staging, atomic_write, part_stem
from patterns._api.call import EndpointCall
from patterns._api.config import APIOrchestrationConfig
from patterns._api.metrics import Totals
from patterns._api.policies import Limits

PARTITION = "items"
#: the JSON Lines part a checkpointed run keeps results in when it has no sink
VALUES_EXT = ".values.jsonl"
#: staging sub-directory of each slice's errors and counters (one JSON file per slice)
OUTCOMES_DIR = "outcomes"


class RequestCounter:
    """Counts requests as they are sent: one byte per request appended to a file of its own in
    ``directory`` (written before the request leaves, so a worker killed mid-slice has counted
    what it sent). ``count(directory)`` sums every counter there."""

    def __init__(self, directory: str) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        name = path / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.count"
        self._fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def tick(self) -> None:
        os.write(self._fd, b".")

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    @staticmethod
    def count(directory: str | Path) -> int:
        return sum(p.stat().st_size for p in Path(directory).glob("*.count"))


@dataclass(frozen=True)
class SinkSpec:
    """Where FANOUT results go: the format of the sink file (``None``: back to the caller)."""

    format: str
    compression: str | None = None

    @property
    def output(self) -> OutputSpec:
        return OutputSpec(self.format, self.compression)


def sink_rows(values: list[Any], ok: list[bool], first: int) -> list[dict[str, Any]]:
    """Rows of a sink: ``{"_index": i, **result}`` for a mapping result, else
    ``{"_index": i, "value": result}``; failed items are left out (they are in the errors)."""
    rows = []
    for offset, (value, good) in enumerate(zip(values, ok, strict=True)):
        if not good:
            continue
        if isinstance(value, dict):
            rows.append({"_index": first + offset, **value})
        else:
            rows.append({"_index": first + offset, "value": value})
    return rows


@dataclass
class FanoutStepSpec:
    """The picklable recipe of the step, shipped once to each worker."""

    config: APIOrchestrationConfig
    call: EndpointCall
    context_input: Any
    concurrency: int
    sink: SinkSpec | None = None
    staged: bool = False
    #: where workers count the requests they send (``RequestCounter``)
    count_dir: str | None = None

    def build(self, context: StepContext) -> FanoutStep:
        return FanoutStep(self, context)


class FanoutStep:
    """Runs slices of items (see the module docstring). One per worker actor; its tasks share
    the event loop, the session and the concurrency bound."""

    def __init__(self, spec: FanoutStepSpec, context: StepContext) -> None:
        self.spec = spec
        self.context = context
        self.call = spec.call
        self.limits = Limits(spec.config)
        self.staging = Staging(context.staging) if spec.staged and context.staging else None
        self._session: aiohttp.ClientSession | None = None
        self._gate: asyncio.Semaphore | None = None
        self._counter: RequestCounter | None = None
        if spec.count_dir is not None:
            self._counter = RequestCounter(spec.count_dir)
            self.call.on_send = self._counter.tick

    def _open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._session is None or self._session.closed:
            limit = self.spec.concurrency
            connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector)
            self._gate = asyncio.Semaphore(limit)
        return self._session, self._gate  # type: ignore[return-value]

    async def run(self, task: Task) -> TaskResult:
        session, gate = self._open()
        policy = self.limits.policies()[self.call.name]
        items: list[Any] = task.payload
        call, data, results = self.call, self.spec.context_input, {}

        async def one(item: Any) -> Any:
            async with gate:
                return await call.call(session, policy, data, results, item)

        outcomes = await asyncio.gather(*(one(item) for item in items))
        first = task.first_record
        totals = Totals()
        values: list[Any] = []
        ok: list[bool] = []
        errors: list[dict[str, Any]] = []
        for offset, outcome in enumerate(outcomes):
            totals.add(outcome)
            values.append(outcome.value if outcome.ok else None)
            ok.append(outcome.ok)
            if not outcome.ok:
                errors.append({"index": first + offset, **outcome.error_entry()})
        seq = task.seq or 0
        written = sum(ok)
        if self.staging is not None:
            written = self._stage(seq, values, ok, errors, items, first, totals.as_dict())
        counts = {"read": len(items), "processed": sum(ok), "written": written,
                  "errors": len(errors), "skipped": 0}
        output = {"errors": errors, "totals": totals.as_dict()}
        if self.spec.sink is None and self.staging is None:
            output["values"] = values
        return TaskResult(task.partition, {seq: counts}, output=output)

    def _stage(self, seq: int, values: list[Any], ok: list[bool], errors: list[dict[str, Any]],
               items: list[Any], first: int, totals: dict[str, int]) -> int:
        """Write the slice's parts: its values (or sink rows), its error rows, and its errors
        and counters (``OUTCOMES_DIR``, read back by a resumed run's commit)."""
        staging = self.staging
        assert staging is not None
        outcome = json.dumps({"errors": errors, "totals": totals}, default=str)
        atomic_write(staging.root / OUTCOMES_DIR / f"{part_stem(0, seq)}.json",
                     lambda tmp: tmp.write_text(outcome, encoding="utf-8"))
        if errors:
            staging.write_errors(0, seq, [RowError(
                file=None, reason=f"{e['reason']} (status {e['status']}, {e['attempts']} "
                f"attempt(s))", raw=_raw(items[e["index"] - first]), record=e["index"] + 1,
                stage="request", function=self.call.name) for e in errors])
        sink = self.spec.sink
        if sink is None:
            text = "".join(json.dumps(v, ensure_ascii=False, default=str) + "\n" for v in values)
            path = staging.data_dir() / f"{part_stem(0, seq)}{VALUES_EXT}"
            atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
            return len(values)
        rows = sink_rows(values, ok, first)
        if sink.format == "jsonl":
            staging.write_records(0, seq, rows, sink.output.ext, compression=sink.compression)
        else:
            staging.write_data(0, seq, records_to_table(rows), sink.format, sink.output.ext,
                               compression=sink.compression)
        return len(rows)

    async def aclose(self) -> None:
        """Close the session (from the loop that ran the tasks)."""
        if self._counter is not None:
            self._counter.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def close(self) -> None:
        if self._counter is not None:
            self._counter.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            # without a running loop the process is going away, and its sockets with it
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(session.close())


def _raw(item: Any) -> str:
    try:
        return json.dumps(item, ensure_ascii=False, default=str)[:4096]
    except (TypeError, ValueError):
        return repr(item)[:4096]
