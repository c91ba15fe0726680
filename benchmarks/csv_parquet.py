"""CSV -> Parquet, no transformation: ours against single-process pyarrow and DuckDB.

    .venv/bin/python benchmarks/csv_parquet.py [--rows 1000000] [--rounds 3]

The CSV of ``benchmarks/file_processing.py`` (``--rows`` x 8 columns: int, text, float,
bool) becomes one Parquet file through:

* ``fsm_actors/attached``: ``FileProcessor(FileProcessingConfig(input_path=..., output_path=
  "out.parquet")).run()``, the documented API, attached to a Ray started before the clock
  (its job workers start within the run, as they do for every run);
* ``fsm_actors/in_process``: ``await processor.process()`` in a process without Ray, the
  path of the first ``fsm-actors run`` on a machine where no Ray runs
  (``jobs.progress.run_in_process``);
* ``pyarrow``: ``pyarrow.csv.read_csv`` -> ``pyarrow.parquet.write_table``, one process;
* ``duckdb``: ``COPY (SELECT * FROM read_csv('in.csv')) TO 'out.parquet'`` (DuckDB's own
  threads: 2 on this machine).

Each path runs in a fresh process, ``--rounds`` times, interleaved (one round is every path
once, so each sees the same machine load). One JSON line per path: best wall seconds and
best CPU seconds (the process and all its descendants over the timed call, Ray's processes
included), every round's figures, rows/s, the output's row count (checked), and ratios to
pyarrow (pyarrow's time / ours: >= 0.9 is the target) and to DuckDB. On a shared machine the
CPU figures are the steadier ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]  # this tree's code, not an installed one

from file_processing import make_csv  # noqa: E402

WORK = ROOT / ".bench" / "csv_parquet"
PATHS = ("pyarrow", "duckdb", "fsm_actors/in_process", "fsm_actors/attached")


# ---------------------------------------------------------------- the paths (child side)


def tree_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of this process and each live descendant, by pid."""
    import psutil

    me = psutil.Process()
    out = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = times.user + times.system
    return out


def timed(run: Any) -> dict[str, float]:
    """Wall and CPU seconds of ``run()`` (CPU of this process tree, new processes from 0)."""
    before = tree_cpu()
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = tree_cpu()
    cpu = sum(v - before.get(pid, 0.0) for pid, v in after.items())
    return {"seconds": wall, "cpu_seconds": cpu}


def run_pyarrow(csv: str, out: str) -> dict[str, float]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    return timed(lambda: pq.write_table(pacsv.read_csv(csv), out))


def run_duckdb(csv: str, out: str) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()
    try:
        return timed(lambda: con.execute(
            f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)"))
    finally:
        con.close()


def run_ours(csv: str, out: str, attached: bool) -> dict[str, float]:
    from fsm_actors.platform import runtime
    from fsm_actors.platform.jobs import progress
    from patterns.file_processing import FileProcessingConfig, FileProcessor

    if attached:
        runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)
    else:
        progress.run_in_process("benchmark")
    processor = FileProcessor(FileProcessingConfig(input_path=csv, output_path=out))
    try:  # attached: run() (it connects first); in-process: process() (run() would start Ray)
        return timed(processor.run if attached else lambda: asyncio.run(processor.process()))
    finally:
        if attached:
            runtime.shutdown()


def child(name: str, csv: str, out: str) -> None:
    runners = {
        "pyarrow": lambda: run_pyarrow(csv, out),
        "duckdb": lambda: run_duckdb(csv, out),
        "fsm_actors/in_process": lambda: run_ours(csv, out, attached=False),
        "fsm_actors/attached": lambda: run_ours(csv, out, attached=True),
    }
    print(json.dumps(runners[name]()), flush=True)


# ---------------------------------------------------------------- the parent side


def measure(name: str, csv: Path, out: Path) -> dict[str, Any]:
    if out.exists():
        out.unlink()
    proc = subprocess.run([sys.executable, __file__, "--child", name, str(csv), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["failed"]
        return {"error": tail[0][:300]}
    import pyarrow.parquet as pq

    return {**json.loads(lines[-1]), "rows_out": pq.ParquetFile(out).metadata.num_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS),
                        help="comma-separated subset of " + ",".join(PATHS))
    parser.add_argument("--child", nargs=3, metavar=("PATH", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    names = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(names) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {unknown}; choose among {list(PATHS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    csv = WORK.parent / "file_processing" / f"input-{args.rows}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    make_csv(csv, args.rows)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            out = WORK / f"out-{name.replace('/', '_')}.parquet"
            runs[name].append(measure(name, csv, out))
            if out.exists():
                out.unlink()
    best = {}
    for name in names:
        good = [r for r in runs[name] if "seconds" in r]
        line: dict[str, Any] = {"bench": "csv_parquet", "path": name, "rows": args.rows,
                                "load_avg": round(os.getloadavg()[0], 1)}
        if not good:
            line["skipped"] = runs[name][0].get("error", "failed")
            print(json.dumps(line), flush=True)
            continue
        wall, cpu = min(r["seconds"] for r in good), min(r["cpu_seconds"] for r in good)
        best[name] = (wall, cpu)
        line |= {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                 "rows_per_s": round(args.rows / wall),
                 "runs": [[round(r["seconds"], 2), round(r["cpu_seconds"], 2)] for r in good],
                 "rows_out": sorted({r["rows_out"] for r in good})}
        if line["rows_out"] != [args.rows]:
            line["wrong_rows"] = True
        print(json.dumps(line), flush=True)
    ratios: dict[str, Any] = {}
    for ours in ("fsm_actors/in_process", "fsm_actors/attached"):
        for base in ("pyarrow", "duckdb"):
            if ours in best and base in best:
                key = f"{ours.split('/')[1]}_vs_{base}"
                ratios[key] = round(best[base][0] / best[ours][0], 2)
                ratios[key + "_cpu"] = round(best[base][1] / best[ours][1], 2)
    print(json.dumps({"bench": "csv_parquet", "path": "ratios", **ratios,
                      "target": {"vs_pyarrow": ">= 0.9"}}), flush=True)


if __name__ == "__main__":
    main()
