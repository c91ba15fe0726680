"""100,000 small dicts through a 3-state FSM with one transform.

Runs, in one go: this project's ``process_batch`` on the actor pool, its local mode, and the
peer dataknobs-fsm 0.5.0. Each of ours is the first batch after the FSM is built (no warm-up
batch): ``seconds`` is that batch, ``with_construction_s`` adds building the FSM (actor
start-up overlaps the caller's work between the two). (in a scratch venv; skipped with a message if it cannot be set up).
Prints one JSON line each: rows/s, peak RSS (all processes of the run), and the ratios.

    python benchmarks/fsm_batch.py [--rows 100000] [--no-peer]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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


def bench_ours(n: int, local: bool) -> dict:
    from fsm_actors import SimpleFSM

    data = records(n)
    with PeakRSS() as rss:
        built = time.perf_counter()
        fsm = SimpleFSM(CONFIG, custom_functions={"double": double}, local=local)
        # no warm-up batch: the first large batch after construction is the one measured
        t = time.perf_counter()
        out = fsm.process_batch(data)
        dt = time.perf_counter() - t
        total = time.perf_counter() - built
        fsm.close()
    assert len(out) == n and all(r["success"] and r["data"]["y"] == 2 * r["data"]["x"] for r in out)
    return {"rows": n, "seconds": round(dt, 3), "rows_per_s": round(n / dt),
            "with_construction_s": round(total, 3), "peak_rss_mb": rss.peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--peer-rows", type=int, default=None,
                        help="rows for the peer (default: same as --rows)")
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()

    from fsm_actors.platform import runtime

    runtime.ensure_ray()
    actors = bench_ours(args.rows, local=False)
    local = bench_ours(args.rows, local=True)
    runtime.shutdown()
    peer = None
    if not args.no_peer:
        import json

        raw = run_peer(PEER_SCRIPT, json.dumps(CONFIG), str(args.peer_rows or args.rows))
        if raw is not None:
            peer = {**raw, "rows_per_s": round(raw["rows"] / raw["seconds"])}
    base = peer["rows_per_s"] if peer else None
    emit(bench="fsm_batch", path="fsm_actors.process_batch (actor pool)", **actors,
         vs_peer=round(actors["rows_per_s"] / base, 1) if base else None,
         vs_local=round(actors["rows_per_s"] / local["rows_per_s"], 2))
    emit(bench="fsm_batch", path="fsm_actors.process_batch (local=True)", **local,
         vs_peer=round(local["rows_per_s"] / base, 1) if base else None)
    if peer:
        emit(bench="fsm_batch", path="dataknobs-fsm 0.5.0 SimpleFSM.process_batch", **peer)
    else:
        emit(bench="fsm_batch", path="dataknobs-fsm 0.5.0", skipped=True)


if __name__ == "__main__":
    main()
