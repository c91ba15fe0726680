"""API orchestration benchmarks: FANOUT of many GETs, and PARALLEL overlap.

Prints one JSON line per measurement:
- ``fanout``: ``--requests`` GETs (default 20,000) of ``/items/{id}`` to a local aiohttp
  server running in a process of its own, through ``APIOrchestrator`` in FANOUT mode (HTTP
  worker actors, timed from the orchestrator's construction to the results in order) against
  plain aiohttp in this process (one session, a semaphore of 64, ``asyncio.gather``) in the
  same run; ``ratio`` = ours / plain in requests per second (target >= 1.0). Ray is started
  before either is timed (its start-up is reported as ``ray_start_s``).
- ``fanout_peer``: dataknobs-fsm 0.5.0's FANOUT on ``--peer-requests`` of them (subset), when
  its venv can be set up (see ``benchmarks/_peer.py``; ``--no-peer`` skips it).
- ``parallel``: 3 endpoints of 0.3 s each in PARALLEL mode; ``wall_s`` (target < 0.45).
- ``parallel_many``: ``--endpoints`` (default 5,000) endpoints ``/items/{i}`` in PARALLEL mode
  (``create_rest_api_orchestrator(..., rate_limit=10**9, mode=PARALLEL)``, timed from
  construction to the result, every body checked; the default ``max_concurrent`` of 10),
  ``parallel_many_64`` (the same with ``max_concurrent=64``, the baseline's concurrency) and
  ``parallel_many_plain``: the same GETs with plain aiohttp (one session, a semaphore of
  64); ``ratio`` = plain time / ours (target >= 1.0), ``cpu_ratio`` the same in this
  process's CPU seconds (the steadier figure on a shared machine). Best of ``--repeat``
  runs each, interleaved.

Usage: ``python benchmarks/api.py [--requests 20000] [--workers N] [--no-peer]
[--only parallel_many]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import aiohttp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks._peer import run_peer  # noqa: E402
from fsm_actors.platform import runtime  # noqa: E402
from patterns.api_orchestration import (  # noqa: E402
    APIEndpoint,
    APIOrchestrationConfig,
    APIOrchestrator,
    OrchestrationMode,
    create_rest_api_orchestrator,
)

PEER_FANOUT = r"""
import asyncio, json, sys, time
from dataknobs_fsm.patterns.api_orchestration import (
    APIEndpoint, APIOrchestrationConfig, APIOrchestrator, OrchestrationMode)
base, n = sys.argv[1], int(sys.argv[2])
async def main():
    t0 = time.perf_counter()
    config = APIOrchestrationConfig(
        endpoints=[APIEndpoint(name=f"i{i}", url=f"{base}/items/{i}") for i in range(n)],
        mode=OrchestrationMode.FANOUT, max_concurrent=64)
    orch = APIOrchestrator(config)
    result = await orch.orchestrate({})
    elapsed = time.perf_counter() - t0
    good = sum(1 for i in range(n) if result.get(f"i{i}") is not None)
    await orch.close()
    print(json.dumps({"elapsed": elapsed, "good": good}))
asyncio.run(main())
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.patterns.api_servers", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit("the benchmark server did not start")
    return proc, f"http://127.0.0.1:{line[1]}"


async def _get_items(base: str, n: int) -> list[Any]:
    """The bodies of ``n`` GETs of ``/items/{i}`` with plain aiohttp, 64 at a time, in order."""
    gate = asyncio.Semaphore(64)
    async with aiohttp.ClientSession() as session:
        async def one(i: int):
            async with gate:
                async with session.get(f"{base}/items/{i}") as resp:
                    return await resp.json()

        return await asyncio.gather(*(one(i) for i in range(n)))


async def plain_aiohttp(base: str, n: int) -> tuple[float, int]:
    started = time.perf_counter()
    results = await _get_items(base, n)
    return time.perf_counter() - started, sum(1 for r in results if r)


def ours(base: str, n: int, workers: int | None) -> tuple[float, int]:
    started = time.perf_counter()
    orch = APIOrchestrator(APIOrchestrationConfig(
        name="bench", mode=OrchestrationMode.FANOUT, workers=workers, worker_concurrency=64,
        endpoints=[APIEndpoint("item", f"{base}/items/{{item}}")]))
    result = orch.run(list(range(n)))
    elapsed = time.perf_counter() - started
    values = result["item"]
    assert [v["id"] for v in values] == [str(i) for i in range(n)], "results out of order"
    return elapsed, len(values)


def parallel(base: str) -> float:
    orch = APIOrchestrator(APIOrchestrationConfig(
        mode=OrchestrationMode.PARALLEL,
        endpoints=[APIEndpoint(f"p{i}", f"{base}/slow/p{i}?delay=0.3") for i in range(3)]))
    asyncio.run(orch.orchestrate())  # connection set-up out of the way
    started = time.perf_counter()
    result = asyncio.run(orch.orchestrate())
    wall = time.perf_counter() - started
    assert not result["errors"], result["errors"]
    return wall


async def plain_many(base: str, n: int) -> float:
    """``n`` GETs of ``/items/{i}`` with plain aiohttp; seconds, bodies checked."""
    started = time.perf_counter()
    results = await _get_items(base, n)
    elapsed = time.perf_counter() - started
    assert [r["id"] for r in results] == [str(i) for i in range(n)]
    return elapsed


async def ours_many(base: str, n: int, **config: Any) -> float:
    """The same GETs as ``n`` endpoints of one PARALLEL run; seconds, bodies checked.
    ``config``: more ``APIOrchestrationConfig`` fields (``max_concurrent=64``)."""
    started = time.perf_counter()
    orch = create_rest_api_orchestrator(
        base, [{"name": f"e{i}", "path": f"/items/{i}"} for i in range(n)],
        rate_limit=10**9, mode=OrchestrationMode.PARALLEL, **config)
    result = await orch.orchestrate()
    elapsed = time.perf_counter() - started
    assert not result["errors"], list(result["errors"].items())[:3]
    assert all(result[f"e{i}"]["id"] == str(i) for i in range(n)), "wrong bodies"
    return elapsed


def parallel_many(base: str, n: int, repeat: int) -> None:
    """Best of ``repeat`` interleaved runs each; wall seconds, and this process's CPU seconds
    (the figure to trust on a shared, loaded machine)."""
    ours_s, plain_s, ours_cpu, plain_cpu, wide_s, wide_cpu = [], [], [], [], [], []
    for _ in range(repeat):
        cpu = time.process_time()
        plain_s.append(asyncio.run(plain_many(base, n)))
        plain_cpu.append(time.process_time() - cpu)
        cpu = time.process_time()
        ours_s.append(asyncio.run(ours_many(base, n)))
        ours_cpu.append(time.process_time() - cpu)
        cpu = time.process_time()
        wide_s.append(asyncio.run(ours_many(base, n, max_concurrent=64)))
        wide_cpu.append(time.process_time() - cpu)
    ours_best, plain_best = min(ours_s), min(plain_s)
    print(json.dumps({"bench": "parallel_many", "endpoints": n, "ours_s": round(ours_best, 3),
                      "runs_s": [round(x, 3) for x in ours_s],
                      "ours_cpu_s": round(min(ours_cpu), 3),
                      "ratio": round(plain_best / ours_best, 3),
                      "cpu_ratio": round(min(plain_cpu) / min(ours_cpu), 3), "target": 1.0}),
          flush=True)
    print(json.dumps({"bench": "parallel_many_64", "endpoints": n, "max_concurrent": 64,
                      "ours_s": round(min(wide_s), 3), "runs_s": [round(x, 3) for x in wide_s],
                      "ours_cpu_s": round(min(wide_cpu), 3),
                      "ratio": round(plain_best / min(wide_s), 3),
                      "cpu_ratio": round(min(plain_cpu) / min(wide_cpu), 3)}), flush=True)
    print(json.dumps({"bench": "parallel_many_plain", "endpoints": n,
                      "plain_aiohttp_s": round(plain_best, 3),
                      "runs_s": [round(x, 3) for x in plain_s],
                      "plain_cpu_s": round(min(plain_cpu), 3)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--peer-requests", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--endpoints", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["parallel_many"], default=None)
    args = parser.parse_args()
    server, base = start_server()
    if args.only == "parallel_many":
        try:
            parallel_many(base, args.endpoints, args.repeat)
        finally:
            server.terminate()
            server.wait(10)
        return
    try:
        t0 = time.perf_counter()
        runtime.ensure_ray(include_dashboard=False)
        ray_start = time.perf_counter() - t0
        plain_s, plain_n = asyncio.run(plain_aiohttp(base, args.requests))
        ours_s, ours_n = ours(base, args.requests, args.workers)
        print(json.dumps({
            "bench": "fanout", "requests": args.requests,
            "ours_s": round(ours_s, 3), "ours_rps": round(ours_n / ours_s),
            "plain_aiohttp_s": round(plain_s, 3), "plain_aiohttp_rps": round(plain_n / plain_s),
            "ratio": round((ours_n / ours_s) / (plain_n / plain_s), 3),
            "ray_start_s": round(ray_start, 2)}), flush=True)
        if not args.no_peer:
            peer = run_peer(PEER_FANOUT, base, str(args.peer_requests))
            if peer is not None:
                print(json.dumps({
                    "bench": "fanout_peer", "requests": args.peer_requests,
                    "peer_s": round(peer["elapsed"], 3),
                    "peer_rps": round(peer["good"] / peer["elapsed"]),
                    "peer_good": peer["good"]}), flush=True)
        wall = parallel(base)
        print(json.dumps({"bench": "parallel", "endpoints": 3, "each_s": 0.3,
                          "wall_s": round(wall, 3), "target_s": 0.45}), flush=True)
        parallel_many(base, args.endpoints, args.repeat)
    finally:
        server.terminate()
        server.wait(10)
        runtime.shutdown()


if __name__ == "__main__":
    main()
