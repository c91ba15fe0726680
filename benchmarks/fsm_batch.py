"""100,000 small dicts through a 3-state FSM with one transform, for two machines.

``trivial``: the transform adds one key (the cost is all in the framework). ``10us``: the
transform also runs a pure-Python loop calibrated at start to ~10 us per record (user work
that parallelism should pay for).

Runs, in one go, for each machine: this project's ``process_batch`` on the actor pool, its
local mode, and (trivial machine only) the peer dataknobs-fsm 0.5.0 (in a scratch venv;
skipped with a message if it cannot be set up). Each of ours is the first batch after the
FSM is built (no warm-up batch): ``seconds`` is that batch, ``with_construction_s`` adds
building the FSM (the constructor returns once the actors are started). Prints one JSON line
each: rows/s, peak RSS (all processes of the run), the CPU seconds of the driver, of the
actors and of Ray's other processes over the batch, and the ratios (``vs_local``: actors'
rows/s over local mode's).

Ray starts its workers at niceness 15 (``RAY_worker_niceness``), the driver runs at 0: on a
machine other work also loads, actors then get a fraction of a core while local mode gets a
whole one. ``--worker-niceness`` (default: the driver's own) puts them on equal terms; the
value used is in each actor line.

    python benchmarks/fsm_batch.py [--rows 100000] [--machine trivial|10us|both] [--no-peer]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import PeakRSS, emit  # noqa: E402
from _peer import run_peer  # noqa: E402

CONFIG = {
    "name": "bench3",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "double", "functions": {"transform": "double"}},
        {"name": "end", "is_end": True},
    ],
    "arcs": [{"from": "start", "to": "double"}, {"from": "double", "to": "end"}],
}


def double(data):
    return {**data, "y": data["x"] * 2}


def make_work(loops: int):
    """A transform like ``double`` that also spends ``loops`` rounds of a pure-Python loop."""

    def double_after_work(data):
        acc = 0
        for i in range(loops):
            acc += i * i
        return {**data, "y": data["x"] * 2, "acc": acc & 1}

    return double_after_work


def calibrate(target_us: float = 10.0) -> int:
    """Loop rounds for which ``make_work(rounds)`` costs ``target_us`` of CPU per call here
    (CPU time, best of 5: other load on the machine does not skew it)."""
    loops = 1000
    fn, rec = make_work(loops), {"id": 0, "x": 1, "name": "n"}
    best = float("inf")
    for _ in range(5):
        t = time.thread_time()
        for _ in range(500):
            fn(rec)
        best = min(best, (time.thread_time() - t) / 500 * 1e6)
    return max(1, round(loops * target_us / best))


def records(n: int) -> list[dict]:
    return [{"id": i, "x": i % 100, "name": "n"} for i in range(n)]


PEER_SCRIPT = """
import json, resource, sys, time
from dataknobs_fsm.api.simple import SimpleFSM
config = json.loads(sys.argv[1]); n = int(sys.argv[2])
def double(data):
    return {**data, "y": data["x"] * 2}
fsm = SimpleFSM(config, custom_functions={"double": double})
data = [{"id": i, "x": i % 100, "name": "n"} for i in range(n)]
t = time.perf_counter()
out = fsm.process_batch(data)
dt = time.perf_counter() - t
ok = sum(1 for r in out if r["success"])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": n, "ok": ok, "seconds": dt, "peak_rss_mb": round(rss, 1)}))
"""


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def bench_ours(n: int, local: bool, transform) -> dict:
    from fsm_actors import SimpleFSM

    data = records(n)
    with PeakRSS() as rss:
        built = time.perf_counter()
        fsm = SimpleFSM(CONFIG, custom_functions={"double": transform}, local=local)
        actors = [] if local else [psutil.Process(s["pid"]) for s in fsm.async_fsm.status()]
        pids = {p.pid for p in actors}
        others = [p for p in psutil.Process().children(recursive=True) if p.pid not in pids]
        # no warm-up batch: the first large batch after construction is the one measured
        cpu_driver, cpu_actors, cpu_others = time.process_time(), _cpu(actors), _cpu(others)
        t = time.perf_counter()
        out = fsm.process_batch(data)
        dt = time.perf_counter() - t
        cpu_driver, cpu_actors = time.process_time() - cpu_driver, _cpu(actors) - cpu_actors
        cpu_others = _cpu(others) - cpu_others
        total = time.perf_counter() - built
        fsm.close()
    assert len(out) == n and all(r["success"] and r["data"]["y"] == 2 * r["data"]["x"] for r in out)
    line = {"rows": n, "seconds": round(dt, 3), "rows_per_s": round(n / dt),
            "with_construction_s": round(total, 3), "peak_rss_mb": rss.peak_mb,
            "driver_cpu_s": round(cpu_driver, 3)}
    if not local:
        line["actors"] = len(actors)
        line["actors_cpu_s"] = round(cpu_actors, 3)
    # Ray's own processes (raylet, GCS, idle workers it starts): CPU the run did not get
    line["ray_other_cpu_s"] = round(cpu_others, 3)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--peer-rows", type=int, default=None,
                        help="rows for the peer (default: same as --rows)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--machine", choices=["trivial", "10us", "both"], default="both")
    parser.add_argument("--worker-niceness", type=int, default=None,
                        help="niceness of Ray's workers (default: this process's own)")
    args = parser.parse_args()

    niceness = os.nice(0) if args.worker_niceness is None else args.worker_niceness
    os.environ.setdefault("RAY_worker_niceness", str(niceness))  # read when Ray starts
    niceness = int(os.environ["RAY_worker_niceness"])

    from fsm_actors.platform import runtime

    runtime.ensure_ray()
    machines = {"trivial": double}
    loops = 0
    if args.machine != "trivial":
        loops = calibrate()
        machines["10us"] = make_work(loops)
        if args.machine == "10us":
            del machines["trivial"]
    results = {}
    for name, transform in machines.items():
        results[name] = (bench_ours(args.rows, local=False, transform=transform),
                         bench_ours(args.rows, local=True, transform=transform))
    runtime.shutdown()
    for name, (actors, local) in results.items():
        extra = {"loop_rounds": loops} if name == "10us" else {}
        emit(bench="fsm_batch", machine=name, path="fsm_actors.process_batch (actor pool)",
             **actors, **extra, worker_niceness=niceness,
             vs_local=round(actors["rows_per_s"] / local["rows_per_s"], 2))
        emit(bench="fsm_batch", machine=name, path="fsm_actors.process_batch (local=True)",
             **local, **extra)
    if "trivial" not in results:
        return
    actors, local = results["trivial"]
    peer = None
    if not args.no_peer:
        import json

        raw = run_peer(PEER_SCRIPT, json.dumps(CONFIG), str(args.peer_rows or args.rows))
        if raw is not None:
            peer = {**raw, "rows_per_s": round(raw["rows"] / raw["seconds"])}
    if peer:
        base = peer["rows_per_s"]
        emit(bench="fsm_batch", machine="trivial",
             path="dataknobs-fsm 0.5.0 SimpleFSM.process_batch", **peer,
             actors_vs_peer=round(actors["rows_per_s"] / base, 1),
             local_vs_peer=round(local["rows_per_s"] / base, 1))
    else:
        emit(bench="fsm_batch", machine="trivial", path="dataknobs-fsm 0.5.0", skipped=True)


if __name__ == "__main__":
    main()
