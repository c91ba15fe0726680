"""The schedulers of the in-process modes: SEQUENTIAL, PARALLEL, PIPELINE, CONDITIONAL, HYBRID.

A ``Run`` holds one orchestration's calls, its aiohttp session and what finished so far.
Each mode is one coroutine over the same ``Run.call``: every endpoint runs at most once,
sees the results of the endpoints that finished before it started, and records a
``CallOutcome``. An endpoint whose dependency failed (and was not recovered by an
``error_handler``) is skipped with the reason, never called. With ``fail_fast`` the first
failure cancels whatever still runs and raises ``APICallError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from patterns._api.call import CallOutcome, EndpointCall
from patterns._api.config import OrchestrationMode


class FailFast(Exception):
    """Internal: stops a run at its first failure (carries the outcome)."""

    def __init__(self, outcome: CallOutcome) -> None:
        super().__init__(outcome.name)
        self.outcome = outcome


class Run:
    """One orchestration in this process; ``outcomes`` is filled as endpoints finish."""

    def __init__(self, calls: list[EndpointCall], policies: Mapping[str, Any], session: Any,
                 *, max_concurrent: int, fail_fast: bool) -> None:
        self.calls = calls
        self.policies = policies
        self.session = session
        self.fail_fast = fail_fast
        self.max_concurrent = max_concurrent
        self.limit = asyncio.Semaphore(max_concurrent)
        self.outcomes: dict[str, CallOutcome] = {}
        self.results: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}
        #: the outcomes of calls started (filled as they go; a cut-off run reports them)
        self.started: dict[str, CallOutcome] = {}

    async def call(self, call: EndpointCall, data: Any) -> CallOutcome:
        """Call ``call`` within the run's ``max_concurrent`` bound and record its outcome."""
        async with self.limit:
            return await self.call_bounded(call, data)

    async def call_bounded(self, call: EndpointCall, data: Any) -> CallOutcome:
        """``call`` for a scheduler that bounds the calls in flight itself (PARALLEL's
        runners): no semaphore on the way."""
        outcome = CallOutcome(call.name, False, method=call.method, started=time.time())
        self.started[call.name] = outcome
        outcome = await call.call(self.session, self.policies[call.name], data, self.results,
                                  outcome=outcome)
        self.outcomes[call.name] = outcome
        if outcome.ok:
            self.results[call.name] = outcome.value
        elif self.fail_fast:
            raise FailFast(outcome)
        return outcome

    def blocked_by(self, call: EndpointCall) -> str | None:
        """Why ``call`` may not run: the first dependency that failed or was skipped."""
        for dep in call.endpoint.depends_on:
            if dep in self.skipped:
                return f"dependency {dep!r} was skipped"
            if dep in self.outcomes and not self.outcomes[dep].ok:
                return f"dependency {dep!r} failed"
        return None

    async def run(self, mode: OrchestrationMode, data: Any) -> None:
        """Run every endpoint by ``mode``; raises ``APICallError`` (``patterns._api.errors``)
        under ``fail_fast``."""
        try:
            await _MODES[mode](self, data)
        except* FailFast as group:
            raise _first(group).outcome.to_error() from None


def _first(group: BaseExceptionGroup) -> FailFast:
    for exc in group.exceptions:
        if isinstance(exc, FailFast):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
    raise group


async def sequential(run: Run, data: Any) -> None:
    for call in run.calls:
        reason = run.blocked_by(call)
        if reason is not None:
            run.skipped[call.name] = reason
            continue
        await run.call(call, data)


async def conditional(run: Run, data: Any) -> None:
    for call in run.calls:
        reason = run.blocked_by(call)
        condition = call.endpoint.condition
        if reason is None and condition is not None:
            try:
                if not condition(data, run.results):
                    reason = "condition is false"
            except Exception as exc:
                reason = f"condition raised {type(exc).__name__}: {exc}"
        if reason is not None:
            run.skipped[call.name] = reason
            continue
        await run.call(call, data)


async def pipeline(run: Run, data: Any) -> None:
    for call in run.calls:
        if run.skipped or any(not o.ok for o in run.outcomes.values()):
            run.skipped[call.name] = "an earlier pipeline step failed"
            continue
        data = (await run.call(call, data)).value


async def parallel(run: Run, data: Any) -> None:
    """``max_concurrent`` runners take the endpoints in order, one call at a time each (the
    same bound as a task per endpoint, without thousands of tasks waiting for a slot, and
    without the semaphore: the runners are the bound)."""
    pending = iter(run.calls)

    async def runner() -> None:
        for call in pending:
            await run.call_bounded(call, data)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(run.max_concurrent, len(run.calls))):
            group.create_task(runner())


async def hybrid(run: Run, data: Any) -> None:
    """Start each endpoint as soon as every dependency finished (bounded by max_concurrent)."""
    done = {name: asyncio.Event() for name in (c.name for c in run.calls)}

    async def node(call: EndpointCall) -> None:
        try:
            for dep in call.endpoint.depends_on:
                await done[dep].wait()
            reason = run.blocked_by(call)
            if reason is not None:
                run.skipped[call.name] = reason
            else:
                await run.call(call, data)
        finally:
            done[call.name].set()

    async with asyncio.TaskGroup() as group:
        for call in run.calls:
            group.create_task(node(call))


_MODES = {
    OrchestrationMode.SEQUENTIAL: sequential,
    OrchestrationMode.PARALLEL: parallel,
    OrchestrationMode.PIPELINE: pipeline,
    OrchestrationMode.CONDITIONAL: conditional,
    OrchestrationMode.HYBRID: hybrid,
}
