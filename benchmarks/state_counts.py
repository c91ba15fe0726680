"""Overhead of per-state counting (issue 25) on the fsm_batch machine, in one run.

The 3-state FSM of ``fsm_batch.py`` over ``--rows`` records, ``process_batch`` on the actor
pool and in local mode, with ``count_states`` on and off, interleaved, best of ``--repeat``
(after one warm-up batch each). Prints one JSON line per mode with both times and the
slowdown of counting.

    python benchmarks/state_counts.py [--rows 100000] [--repeat 5]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records = [{"x": i} for i in range(args.rows)]
    for mode in ("actors", "local"):
        options = {"local": True} if mode == "local" else {"actors": 2}
        fsms = {on: SimpleFSM(CONFIG, custom_functions={"double": double}, count_states=on,
                              **options) for on in (True, False)}
        best = {True: float("inf"), False: float("inf")}
        try:
            for fsm in fsms.values():
                fsm.process_batch(records)  # warm-up
            for _ in range(args.repeat):
                for on, fsm in fsms.items():
                    started = time.perf_counter()
                    fsm.process_batch(records)
                    best[on] = min(best[on], time.perf_counter() - started)
        finally:
            for fsm in fsms.values():
                fsm.close()
        print(json.dumps({
            "bench": "state_counts", "mode": mode, "rows": args.rows,
            "counting_s": round(best[True], 4), "off_s": round(best[False], 4),
            "slowdown_pct": round(100 * (best[True] / best[False] - 1), 1),
        }), flush=True)


if __name__ == "__main__":
    main()
