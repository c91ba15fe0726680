"""Policies shared for real (issue 22 item 6): cluster-scope breakers, named rate limits and
policy actors that die, with real Ray actors and an aiohttp server on 127.0.0.1 counting the
requests that reach it."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import ray

from patterns.api_orchestration import (
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    OrchestrationMode,
)
from patterns.error_recovery import (
    CircuitOpenError,
    ErrorRecoveryConfig,
    ErrorRecoveryWorkflow,
    RateLimiter,
)

pytestmark = pytest.mark.ray

CB = {"primary_strategy": "circuit_breaker",
      "circuit_breaker_config": {"failure_threshold": 3, "timeout": 30}, "scope": "cluster"}
DOWN, UP = 1, 10**9  # ``every``: /nth answers 500 when the key is a multiple of it


class ServiceDown(Exception):
    pass


async def fetch(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as resp:
        await resp.read()
        if resp.status >= 500:
            raise ServiceDown(f"HTTP {resp.status}")
        return resp.status


@ray.remote(num_cpus=0)
class Caller:
    """A worker calling ``/nth/<tag>/<n>?every=<every>`` through the workflow
    ``ErrorRecoveryConfig(name, **CB)``: a cluster-scope breaker of threshold 3."""

    def __init__(self, name: str) -> None:
        self.workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(name=name, **CB))

    def ready(self) -> bool:
        return True

    async def calls(self, base: str, n: int, every: int, start: int = 1) -> list[str]:
        """``n`` calls back to back; how each ended."""
        out = []
        async with aiohttp.ClientSession() as session:
            for i in range(start, start + n):
                try:
                    await self.workflow.execute(fetch, session, f"{base}/{i}?every={every}")
                    out.append("ok")
                except ServiceDown:
                    out.append("failed")
                except CircuitOpenError:
                    out.append("refused")
        return out


def test_breaker_opened_by_a_burst_then_idle_is_refused_to_every_user(ray_session, server,
                                                                       uid):
    base = f"{server.url}/nth/{uid}"
    a, b = Caller.remote(uid), Caller.remote(uid)
    ray.get([a.ready.remote(), b.ready.remote()])
    seen_a = ray.get(a.calls.remote(base, 6, DOWN), timeout=60)
    reached_a = server.count(f"/nth/{uid}/")
    time.sleep(0.6)  # A goes idle
    c = Caller.remote(uid)  # created after the breaker opened
    seen_bc = ray.get([b.calls.remote(base, 5, DOWN, 100), c.calls.remote(base, 5, DOWN, 200)],
                      timeout=60)
    reached_bc = server.count(f"/nth/{uid}/") - reached_a
    print("A:", seen_a, "B, C:", seen_bc)
    assert reached_a == 3 and seen_a == ["failed"] * 3 + ["refused"] * 3
    assert reached_bc == 0 and seen_bc == [["refused"] * 5] * 2
    for actor in (a, b, c):
        ray.kill(actor)


def test_breaker_opened_by_failures_then_successes_is_refused_to_every_user(ray_session,
                                                                            server, uid):
    down, up = f"{server.url}/nth/{uid}-down", f"{server.url}/nth/{uid}-up"
    a, b = Caller.remote(uid), Caller.remote(uid)
    ray.get([a.ready.remote(), b.ready.remote()])
    seen_a = ray.get(a.calls.remote(down, 3, DOWN), timeout=60)
    seen_a += ray.get(a.calls.remote(up, 3, UP), timeout=60)
    time.sleep(0.5)  # the contract: refused to every other user within 0.5 s
    seen_b = ray.get(b.calls.remote(up, 5, UP, 100), timeout=60)
    print("A:", seen_a, "B:", seen_b)
    assert seen_a == ["failed"] * 3 + ["refused"] * 3
    assert seen_b == ["refused"] * 5 and server.count(f"/nth/{uid}-up/") == 0
    for actor in (a, b):
        ray.kill(actor)


@ray.remote(num_cpus=0)
class Orchestrating:
    """A worker running an ``APIOrchestrator`` in PARALLEL mode."""

    def __init__(self, config: APIOrchestrationConfig) -> None:
        self.orchestrator = APIOrchestrator(config)

    def ready(self) -> bool:
        return True

    async def run(self) -> int:
        result = await self.orchestrator.orchestrate({})
        return len(result) - 1


def test_two_orchestrators_with_one_name_share_one_limit(ray_session, server, uid):
    rate, n = 20, 60

    def config(side: str) -> APIOrchestrationConfig:
        return APIOrchestrationConfig(
            name=f"shared-{uid}", mode=OrchestrationMode.PARALLEL, rate_limit=rate, burst=1,
            endpoints=[APIEndpoint(name=f"e{i}", url=f"{server.url}/items/{uid}-{side}{i}")
                       for i in range(n)])

    workers = [Orchestrating.remote(config(side)) for side in "ab"]
    ray.get([w.ready.remote() for w in workers])
    ray.get([w.run.remote() for w in workers], timeout=120)
    starts = sorted(c.start for c in server.calls_to(f"/items/{uid}-"))
    assert len(starts) == 2 * n
    measured = (len(starts) - 1) / (starts[-1] - starts[0])
    print(f"two PARALLEL orchestrators named alike, rate_limit={rate}: {measured:.1f} req/s "
          "at the server")
    assert measured <= rate * 1.1
    for w in workers:
        ray.kill(w)


@ray.remote(num_cpus=0)
class Limited:
    def __init__(self, name: str, rate: float) -> None:
        self.limiter = RateLimiter(rate, burst=1, name=name, scope="cluster")

    def rate(self) -> float:
        return self.limiter.metrics()["rate"]


def test_a_new_run_with_other_limits_uses_its_own(ray_session, uid):
    first = RateLimiter(5, burst=1, name=uid, scope="cluster")
    assert first.metrics()["rate"] == 5
    later = Limited.remote(uid, 50)
    assert ray.get(later.rate.remote()) == 50
    assert first.metrics()["rate"] == 50  # one limiter per name: the newest limits hold
    ray.kill(later)


@ray.remote(num_cpus=0)
class Breaking:
    def __init__(self, name: str) -> None:
        self.workflow = ErrorRecoveryWorkflow(ErrorRecoveryConfig(name=name, **CB))

    def ready(self) -> bool:
        return True

    async def call(self) -> str:
        try:
            await self.workflow.execute(asyncio.sleep, 0)
            return "ok"
        except CircuitOpenError:
            return "refused"

    async def fail(self, n: int) -> None:
        for _ in range(n):
            try:
                await self.workflow.execute(_boom)
            except ZeroDivisionError:
                pass


def _boom() -> None:
    raise ZeroDivisionError("the service is down")


def test_a_killed_policy_actor_is_remade_with_its_state_for_every_user(ray_session, uid):
    driver = ErrorRecoveryWorkflow(ErrorRecoveryConfig(name=uid, **CB))
    users = [Breaking.remote(uid) for _ in range(2)]
    ray.get([u.ready.remote() for u in users])
    ray.get(users[0].fail.remote(3))
    time.sleep(0.5)  # the contract: refused to every other user within 0.5 s
    assert ray.get([u.call.remote() for u in users]) == ["refused", "refused"]
    ray.kill(ray.get_actor(f"recovery/{uid}", namespace="fsm_actors"))
    time.sleep(0.5)  # every user's view is stale: the next call asks the (dead) actor
    assert ray.get([u.call.remote() for u in users], timeout=60) == ["refused", "refused"]
    with pytest.raises(CircuitOpenError):
        driver.execute_sync(time.sleep, 0)
    m = driver.get_metrics()["circuit_breaker"]
    assert m["state"] == "open" and m["failed_calls"] == 3

    limiter = RateLimiter(1, period=60, burst=1, name=uid, scope="cluster")
    limiter.acquire_sync(timeout=10)  # the one token of the next minute
    ray.kill(ray.get_actor(f"recovery/{uid}", namespace="fsm_actors"))
    assert limiter.try_acquire() is False
    with pytest.raises(TimeoutError):  # a fresh bucket would grant one more now
        limiter.acquire_sync(timeout=0.5)
    assert limiter.metrics()["granted"] == 1
    for u in users:
        ray.kill(u)


def test_one_policy_actor_per_policy_name_not_per_endpoint(ray_session, server, uid):
    """Issue 23 item 15: a cluster-scope in-process run with a rate limit and a breaker on
    each of three endpoints makes one policy actor."""
    config = APIOrchestrationConfig(
        name=f"one-{uid}", mode=OrchestrationMode.PARALLEL, scope="cluster", rate_limit=100,
        circuit_breaker_threshold=5,
        endpoints=[APIEndpoint(name=f"e{i}", url=f"{server.url}/items/{uid}-{i}", rate_limit=50)
                   for i in range(3)])
    orchestrator = APIOrchestrator(config)
    result = asyncio.run(orchestrator.orchestrate({}))
    assert not result["errors"]
    actors = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
              if a["name"].startswith(f"recovery/api.one-{uid}")]
    assert actors == [f"recovery/api.one-{uid}"]
    asyncio.run(orchestrator.close())
