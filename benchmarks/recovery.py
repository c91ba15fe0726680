"""Error-recovery benchmarks: overhead per protected call, and the cluster limiter.

Prints one JSON line per measurement:
- ``retry_overhead`` (``mode`` async and sync): microseconds per call of a no-op function,
  bare, through our ``RetryPolicy``, through an ``ErrorRecoveryWorkflow`` with retry only,
  and through tenacity (``AsyncRetrying`` / ``Retrying``, 3 attempts, exponential wait), in
  one run; ``overhead_us`` = protected - bare.
- ``local_policy_overhead``: microseconds added per call by a process-scope breaker (sync
  ``call_sync`` beside pybreaker's ``call``, and async ``call``) and a process-scope limiter
  (``await acquire()`` beside aiolimiter's ``async with``; rates high enough never to wait).
- ``shared_policy_overhead``: microseconds added per call by a cluster-scope breaker and a
  cluster-scope limiter (rate high enough never to wait) in the driver (target < 50 us).
- ``breaker_propagation``: seconds from a cluster breaker opening (the report that crossed
  the threshold answered) to each of 2 other busy workers refusing calls (target < 0.5 s).
- ``cluster_limiter``: granted calls per second of 4 actors sharing one cluster limiter of
  ``--rate`` per second, and the ratio to the limit.

Usage: ``python benchmarks/recovery.py [--calls 100000] [--rate 2000] [--seconds 3]``.
tenacity, pybreaker and aiolimiter are benchmark-only dependencies
(``pip install tenacity pybreaker aiolimiter``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import emit  # noqa: E402
from patterns.error_recovery import (  # noqa: E402
    CircuitBreaker,
    RateLimiter,
    RetryPolicy,
    create_retry_workflow,
)


async def anoop() -> int:
    return 1


def noop() -> int:
    return 1


async def time_async(call, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - start) / n * 1e6


def time_sync(call, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def retry_overhead(n: int) -> None:
    import tenacity

    policy = RetryPolicy(max_attempts=3, backoff_strategy="exponential")
    workflow = create_retry_workflow(max_attempts=3, backoff_strategy="exponential")
    wait = tenacity.wait_exponential(multiplier=1, max=60)
    stop = tenacity.stop_after_attempt(3)
    a_tenacity = tenacity.AsyncRetrying(stop=stop, wait=wait, reraise=True)
    s_tenacity = tenacity.Retrying(stop=stop, wait=wait, reraise=True)

    async def run_async() -> dict[str, float]:
        await time_async(anoop, n // 10)  # warm up
        return {
            "bare_us": await time_async(anoop, n),
            "ours_us": await time_async(lambda: policy.call(anoop), n),
            "ours_workflow_us": await time_async(lambda: workflow.execute(anoop), n),
            "tenacity_us": await time_async(lambda: a_tenacity(anoop), n),
        }

    for mode, figures in (("async", asyncio.run(run_async())), ("sync", {
            "bare_us": time_sync(noop, n),
            "ours_us": time_sync(lambda: policy.call_sync(noop), n),
            "tenacity_us": time_sync(lambda: s_tenacity(noop), n)})):
        bare = figures["bare_us"]
        emit(bench="retry_overhead", mode=mode, calls=n,
             **{k: round(v, 3) for k, v in figures.items()},
             overhead_us=round(figures["ours_us"] - bare, 3),
             tenacity_overhead_us=round(figures["tenacity_us"] - bare, 3),
             ratio_tenacity_over_ours=round((figures["tenacity_us"] - bare)
                                            / max(figures["ours_us"] - bare, 1e-9), 2))


def local_policy_overhead(n: int, rounds: int = 5) -> None:
    """Best of ``rounds`` interleaved rounds per figure (the machine is shared: the minimum
    is the least disturbed)."""
    import aiolimiter
    import pybreaker

    ours = CircuitBreaker(failure_threshold=5, timeout=60)
    peer = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    limiter = RateLimiter(1e12, burst=10**9)
    a_peer = aiolimiter.AsyncLimiter(1e12, 1.0)

    async def peer_acquire() -> None:
        async with a_peer:
            pass

    sync_calls = {"bare": noop, "breaker_sync": lambda: ours.call_sync(noop),
                  "pybreaker": lambda: peer.call(noop)}
    async_calls = {"bare_async": anoop, "breaker_async": lambda: ours.call(anoop),
                   "limiter": limiter.acquire, "aiolimiter": peer_acquire}
    best: dict[str, float] = {}

    async def run_async() -> None:  # one loop for all rounds (aiolimiter binds to it)
        for _ in range(rounds):
            for key, call in async_calls.items():
                best[key] = min(best.get(key, 1e9), await time_async(call, n))

    for _ in range(rounds):
        for key, call in sync_calls.items():
            best[key] = min(best.get(key, 1e9), time_sync(call, n))
    asyncio.run(run_async())
    figures = {f"{k}_us": best[k] - best["bare"] for k in ("breaker_sync", "pybreaker")}
    figures.update({f"{k}_us": best[k] - best["bare_async"]
                    for k in ("breaker_async", "limiter", "aiolimiter")})
    emit(bench="local_policy_overhead", calls=n, rounds=rounds, scope="process",
         **{k: round(v, 3) for k, v in figures.items()})


def shared_policy_overhead(n: int) -> None:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    breaker = CircuitBreaker(name=name, scope="cluster", failure_threshold=5)
    limiter = RateLimiter(1_000_000, name=name, scope="cluster")

    async def run() -> dict[str, float]:
        await breaker.call(anoop)
        await limiter.acquire()
        await time_async(lambda: breaker.call(anoop), n // 10)
        bare = await time_async(anoop, n)
        return {"bare_us": bare,
                "breaker_us": await time_async(lambda: breaker.call(anoop), n) - bare,
                "limiter_us": await time_async(limiter.acquire, n) - bare}

    figures = asyncio.run(run())
    emit(bench="shared_policy_overhead", calls=n, scope="cluster",
         **{k: round(v, 3) for k, v in figures.items()}, target_us=50)


def breaker_propagation(trials: int = 5) -> None:
    import ray

    @ray.remote(num_cpus=0)
    class Worker:
        def __init__(self, name: str) -> None:
            self.breaker = CircuitBreaker(name=name, scope="cluster", failure_threshold=5,
                                          timeout=60)

        async def fail(self) -> float:
            for _ in range(5):
                try:
                    await self.breaker.call(_boom)
                except ZeroDivisionError:
                    pass
            await self.breaker.close()  # its reply carries the OPEN state
            return time.time()

        def ready(self) -> bool:
            return True

        async def until_refused(self) -> float:
            while True:
                try:
                    await self.breaker.call(asyncio.sleep, 0.001)
                except Exception:
                    return time.time()

    lags: list[float] = []
    for _ in range(trials):
        name = f"bench-{uuid.uuid4().hex[:6]}"
        CircuitBreaker(name=name, scope="cluster", failure_threshold=5, timeout=60)
        workers = [Worker.remote(name) for _ in range(3)]
        ray.get([w.ready.remote() for w in workers])  # started: the lag is not start-up
        watchers = [w.until_refused.remote() for w in workers[1:]]
        time.sleep(0.5)
        opened = ray.get(workers[0].fail.remote())
        lags += [t - opened for t in ray.get(watchers)]
        for w in workers:
            ray.kill(w)
    lags.sort()
    emit(bench="breaker_propagation", workers=3, trials=trials,
         p50_s=round(lags[len(lags) // 2], 4), max_s=round(lags[-1], 4), target_s=0.5)


def _boom() -> float:
    return 1 / 0


def cluster_limiter(rate: float, seconds: float, actors: int = 4) -> None:
    import ray

    name = f"bench-{uuid.uuid4().hex[:6]}"
    RateLimiter(rate, burst=max(1, int(rate / 20)), name=name, scope="cluster")

    @ray.remote(num_cpus=0)
    class Caller:
        def __init__(self) -> None:
            self.limiter = RateLimiter(rate, burst=max(1, int(rate / 20)), name=name,
                                       scope="cluster")

        def ready(self) -> bool:
            return True

        async def run(self, start: float, until: float) -> int:
            while time.time() < start:
                await asyncio.sleep(0.001)
            granted = 0
            while time.time() < until:
                await self.limiter.acquire(timeout=None)
                granted += 1
            return granted

    callers = [Caller.remote() for _ in range(actors)]
    ray.get([c.ready.remote() for c in callers])
    start = time.time() + 0.5
    counts = ray.get([c.run.remote(start, start + seconds) for c in callers])
    total = sum(counts)
    # the first burst is granted at once; the rest at the rate
    measured = total / seconds
    emit(bench="cluster_limiter", actors=actors, limit_per_s=rate, seconds=seconds,
         granted=total, per_actor=counts, granted_per_s=round(measured, 1),
         ratio_to_limit=round(measured / rate, 3))
    for c in callers:
        ray.kill(c)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--local-only", action="store_true",
                        help="only the process-scope overheads (no Ray)")
    parser.add_argument("--propagation-only", action="store_true",
                        help="only the cluster breaker's propagation")
    args = parser.parse_args()
    from fsm_actors.platform import runtime

    if args.propagation_only:
        runtime.ensure_ray(include_dashboard=False)
        breaker_propagation()
        return runtime.shutdown()
    retry_overhead(args.calls)
    local_policy_overhead(args.calls)
    if args.local_only:
        return

    runtime.ensure_ray(include_dashboard=False)
    shared_policy_overhead(args.calls)
    breaker_propagation()
    cluster_limiter(args.rate, args.seconds)
    cluster_limiter(100_000, args.seconds)
    runtime.shutdown()


if __name__ == "__main__":
    main()
