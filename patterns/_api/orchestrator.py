"""``APIOrchestrator``: the facade that runs one ``APIOrchestrationConfig``.

One async implementation (``orchestrate``); ``run`` is its synchronous form. The in-process
modes run on one aiohttp session made for the run; FANOUT runs as a job of the job layer on
HTTP worker actors (``patterns._api.fanout``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from fsm_actors.platform.event_loop import run_sync
from patterns._api.call import CallOutcome, EndpointCall
from patterns._api.config import APIOrchestrationConfig, OrchestrationMode
from patterns._api.errors import APICallError
from patterns._api.metrics import run_metrics
from patterns._api.modes import Run
from patterns._api.policies import Limits


class APIOrchestrator:
    """Runs one orchestration config (a config object, or a mapping of its fields).

    The config is checked when the orchestrator is built (``APIConfigError`` names the
    endpoint). ``orchestrate(input)`` returns ``{<endpoint>: result, ..., "errors":
    {<endpoint>: {status, reason, attempts}}, "_metrics": {...}}`` (plus ``merged`` with a
    ``result_merger``); failed and skipped endpoints have no result key. ``address`` picks
    the Ray cluster for FANOUT and cluster-scope limits.
    """

    def __init__(self, config: APIOrchestrationConfig | Mapping[str, Any], *,
                 address: str | None = None) -> None:
        self.config = (config if isinstance(config, APIOrchestrationConfig)
                       else APIOrchestrationConfig.from_dict(config))
        self.address = address
        self.calls = [EndpointCall(e, self.config) for e in self.config.endpoints]
        self.limits = Limits(self.config)
        self._last_metrics: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def mode(self) -> OrchestrationMode:
        return self.config.mode  # type: ignore[return-value]

    async def orchestrate(self, input_data: Any = None) -> dict[str, Any]:
        """Run every endpoint once by the config's mode; see the class docstring."""
        if self.mode is OrchestrationMode.FANOUT:
            from patterns._api.fanout import run_fanout

            result = await run_fanout(self, input_data)
        else:
            result = await self._in_process(input_data)
        self._last_metrics = result.get("_metrics", {})
        if self.config.result_transformer is not None:
            result = self.config.result_transformer(result)
        return result

    def run(self, input_data: Any = None) -> dict[str, Any]:
        """``orchestrate`` from synchronous code."""
        return run_sync(self.orchestrate(input_data))

    def get_metrics(self) -> dict[str, Any]:
        """The ``_metrics`` of the last run."""
        return dict(self._last_metrics)

    async def close(self) -> None:
        """Release what the orchestrator holds between runs (its process-scope limiters)."""
        await self.limits.close()

    async def _in_process(self, data: Any) -> dict[str, Any]:
        config = self.config
        if self.limits.scope == "cluster":
            from fsm_actors.platform import runtime

            runtime.ensure_ray(self.address)
        policies = self.limits.policies()
        started = time.perf_counter()
        async with self._client() as session:
            run = Run(self.calls, policies, session, max_concurrent=config.max_concurrent,
                      fail_fast=config.fail_fast)
            try:
                async with asyncio.timeout(config.total_timeout):
                    await run.run(self.mode, data)
            except TimeoutError:
                self._timed_out(run)
        return self._result(run, time.perf_counter() - started)

    def _client(self) -> Any:
        """The run's aiohttp session (an async context manager)."""
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrent, limit_per_host=0)
        return aiohttp.ClientSession(connector=connector)

    def _timed_out(self, run: Run) -> None:
        reason = f"not finished within total_timeout ({self.config.total_timeout:g}s)"
        now = time.time()
        for call in self.calls:
            if call.name not in run.outcomes and call.name not in run.skipped:
                outcome = run.started.get(call.name) or CallOutcome(
                    call.name, False, method=call.method, started=now)
                outcome.ok, outcome.value, outcome.reason, outcome.ended = False, None, reason, now
                run.outcomes[call.name] = outcome
        if self.config.fail_fast:
            first = next(o for o in run.outcomes.values() if not o.ok)
            raise APICallError(f"orchestration {self.name!r}: {reason}", endpoint=first.name,
                               reason=reason)

    def _result(self, run: Run, duration: float) -> dict[str, Any]:
        result: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        ordered = [run.outcomes[c.name] for c in self.calls if c.name in run.outcomes]
        for outcome in ordered:
            if outcome.ok:
                result[outcome.name] = outcome.value
            else:
                errors[outcome.name] = outcome.error_entry()
        if self.config.result_merger is not None:
            result["merged"] = self.config.result_merger([o.value for o in ordered if o.ok])
        result["errors"] = errors
        metrics = run_metrics(ordered, run.skipped, duration, pipeline=self.name)
        result["_metrics"] = metrics if self.config.metrics_enabled else {
            k: metrics[k] for k in ("errors", "duration_ms")}
        return result

    def __repr__(self) -> str:
        return f"APIOrchestrator(name={self.name!r}, mode={self.mode.value!r})"

