"""Overhead of per-state counting (issue 25) on the fsm_batch machine, in one run.

The 3-state FSM of ``fsm_batch.py`` over ``--rows`` records, ``process_batch`` on the actor
pool and in local mode, with ``count_states`` on and off, interleaved, best of ``--repeat``
(after one warm-up batch each), for the machine as it is (a fixed route: counting looks only
at failed records) and with a condition on its first arc (counting looks at every path).
Prints one JSON line per mode with both figures and the
slowdown of counting, in CPU seconds (the driver's, plus the actors' on the pool: the figure a
shared, loaded machine skews least) and in wall-clock seconds.

    python benchmarks/state_counts.py [--rows 100000] [--repeat 7] [--machine fixed|branching|both]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fsm_batch import CONFIG, double  # noqa: E402

from fsm_actors import SimpleFSM  # noqa: E402


def measure(fsm: SimpleFSM, records: list[dict], local: bool) -> tuple[float, float]:
    """``(CPU seconds of the driver and the actors, wall seconds)`` of one batch (each actor
    reports its own ``time.process_time``: /proc's 10 ms ticks are too coarse here)."""
    actors = 0.0 if local else sum(s["cpu_seconds"] for s in fsm.async_fsm.status())
    cpu, wall = time.process_time(), time.perf_counter()
    fsm.process_batch(records)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if not local:
        cpu += sum(s["cpu_seconds"] for s in fsm.async_fsm.status()) - actors
    return cpu, wall


#: the same machine with a condition on its first arc: no fixed route, so counting looks at
#: every record's path (``engine.counts``)
BRANCHING = {**CONFIG, "arcs": [{**CONFIG["arcs"][0], "condition": "data['x'] >= 0"},
                                *CONFIG["arcs"][1:]]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--machine", choices=["fixed", "branching", "both"], default="both")
    args = parser.parse_args()
    records = [{"x": i} for i in range(args.rows)]
    machines = {"fixed": CONFIG, "branching": BRANCHING}
    if args.machine != "both":
        machines = {args.machine: machines[args.machine]}
    for (machine, config), mode in ((m, mode) for m in machines.items()
                                    for mode in ("actors", "local")):
        options = {"local": True} if mode == "local" else {"actors": 2}
        fsms = {on: SimpleFSM(config, custom_functions={"double": double}, count_states=on,
                              **options) for on in (True, False)}
        cpu = {True: float("inf"), False: float("inf")}
        wall = dict(cpu)
        try:
            for fsm in fsms.values():
                fsm.process_batch(records)  # warm-up
            for _ in range(args.repeat):
                for on, fsm in fsms.items():
                    spent, took = measure(fsm, records, mode == "local")
                    cpu[on], wall[on] = min(cpu[on], spent), min(wall[on], took)
        finally:
            for fsm in fsms.values():
                fsm.close()
        print(json.dumps({
            "bench": "state_counts", "machine": machine, "mode": mode, "rows": args.rows,
            "counting_cpu_s": round(cpu[True], 4), "off_cpu_s": round(cpu[False], 4),
            "slowdown_cpu_pct": round(100 * (cpu[True] / cpu[False] - 1), 1),
            "counting_s": round(wall[True], 4), "off_s": round(wall[False], 4),
            "slowdown_pct": round(100 * (wall[True] / wall[False] - 1), 1),
        }), flush=True)


if __name__ == "__main__":
    main()
