"""File processing benchmark: one generated CSV, every path, one JSON line each.

    .venv/bin/python benchmarks/file_processing.py [--rows 1000000] [--peer-rows 20000]

The same CSV (``--rows`` x 8 columns) goes CSV -> JSON Lines and CSV -> Parquet with one
transformation (``total = amount * qty``) and one filter (``active``, half the rows) through:

* ``fsm_actors/per_record``: ``FileProcessor`` with per-record lambdas (STREAM, 2 workers);
* ``fsm_actors/vectorized``: the same with a ``@vectorized`` transform and an expression filter;
* ``ray_data``: ``read_csv -> map_batches`` (the same lambdas, 64k-row batches, actor pool of
  2 at 0.5 CPU) -> write;
* ``pyarrow``: plain single-process streaming pyarrow (JSON Lines via ``json.dumps`` per row,
  since pyarrow has no JSON writer);
* ``python``: ``csv.DictReader`` -> the lambdas -> ``json.dumps`` (or Parquet) per row;
* ``dataknobs_fsm``: the peer 0.5.0 ``create_csv_processor`` (to JSON) on the first
  ``--peer-rows`` rows, in ``.bench/peer-venv`` (Python 3.12; created on first use).

Every path runs in a fresh process; peak RSS is sampled over that process and all its
descendants (Ray's own processes included). Rows/s counts input rows over the processing
time (Ray start-up excluded). Ray Data needs numpy and pandas, installed on first use into
``.bench/raydata-deps``. Then the STREAM memory check: the per-record path on --rows/10 and
--rows rows. Absolute numbers are noisy on a shared machine; the ratios in one run count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import PeakRSS  # noqa: E402
from _peer import peer_python  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"
RAYDATA_DEPS = BENCH / "raydata-deps"


def transform(r: dict) -> dict:
    return {**r, "total": r["amount"] * r["qty"]}


def keep(r: dict) -> bool:
    return r["active"] is True


# ---------------------------------------------------------------- the paths (child side)


def run_ours(csv: str, out: str, vectorized: bool) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    from fsm_actors.platform import runtime
    from patterns.file_processing import FileProcessingConfig, FileProcessor
    from patterns.file_processing import vectorized as batch_level

    runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)

    @batch_level
    def add_total(table: pa.Table) -> pa.Table:
        return table.append_column("total", pc.multiply(table["amount"], table["qty"]))

    steps = (
        {"transformations": [add_total], "filters": [pc.field("active")]}
        if vectorized
        else {"transformations": [transform], "filters": [keep]}
    )
    start = time.perf_counter()
    FileProcessor(FileProcessingConfig(input_path=csv, output_path=out, workers=2, **steps)).run()
    return report(start)


def run_ray_data(csv: str, out: str) -> int:
    import pyarrow as pa
    import ray

    from fsm_actors.platform import runtime

    runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)

    class Apply:
        def __call__(self, batch: pa.Table) -> pa.Table:
            return pa.Table.from_pylist([transform(r) for r in batch.to_pylist() if keep(r)])

    start = time.perf_counter()
    ds = ray.data.read_csv(csv).map_batches(
        Apply,
        batch_format="pyarrow",
        batch_size=65536,
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=0.5,
    )
    (ds.write_parquet if out.endswith(".parquet") else ds.write_json)(out)
    return report(start)


def run_pyarrow(csv: str, out: str) -> int:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    start = time.perf_counter()
    reader = pacsv.open_csv(csv)
    writer = None
    with open(out, "w") as fh:
        for batch in reader:
            batch = batch.append_column("total", pc.multiply(batch["amount"], batch["qty"]))
            batch = batch.filter(batch["active"])
            if out.endswith(".parquet"):
                writer = writer or pq.ParquetWriter(out, batch.schema)
                writer.write_batch(batch)
            else:
                fh.writelines(json.dumps(r) + "\n" for r in batch.to_pylist())
    if writer:
        writer.close()
    return report(start)


def run_python(csv: str, out: str) -> int:
    import csv as pycsv

    start = time.perf_counter()
    with open(csv, newline="") as src:
        rows = (
            {
                **r,
                "id": int(r["id"]),
                "amount": float(r["amount"]),
                "qty": int(r["qty"]),
                "score": float(r["score"]),
                "active": r["active"] == "true",
            }
            for r in pycsv.DictReader(src)
        )
        if out.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer, chunk = None, []
            for r in rows:
                if keep(r):
                    chunk.append(transform(r))
                if len(chunk) == 65536 or (chunk and r is None):
                    table = pa.Table.from_pylist(chunk)
                    writer = writer or pq.ParquetWriter(out, table.schema)
                    writer.write_table(table)
                    chunk = []
            if chunk:
                table = pa.Table.from_pylist(chunk)
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            writer.close()
        else:
            with open(out, "w") as fh:
                fh.writelines(json.dumps(transform(r)) + "\n" for r in rows if keep(r))
    return report(start)


PEER_SCRIPT = """
import asyncio, json, sys, time
from dataknobs_fsm.patterns.file_processing import create_csv_processor
csv, out = sys.argv[1], sys.argv[2]
processor = create_csv_processor(
    input_file=csv, output_file=out,
    transformations=[lambda r: {**r, "total": float(r["amount"]) * int(r["qty"])}],
    filters=[lambda r: r.get("active") in (True, "true")],
)
start = time.perf_counter()
asyncio.run(processor.process())
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def report(start: float) -> int:
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
    return 0


# ---------------------------------------------------------------- the parent side


def make_csv(path: Path, rows: int) -> None:
    if path.exists():
        return
    rnd = random.Random(7)
    cities = ["paris", "tokyo", "lima", "oslo", "cairo", "quito"]
    with open(path, "w") as fh:
        fh.write("id,name,city,amount,qty,score,active,note\n")
        for start in range(0, rows, 100_000):
            fh.write(
                "".join(
                    f"{i},user{i},{cities[i % 6]},{rnd.random() * 1000:.2f},{i % 17},"
                    f"{rnd.random():.5f},{'true' if i % 2 else 'false'},order note {i}\n"
                    for i in range(start, min(rows, start + 100_000))
                )
            )


def head(src: Path, dst: Path, rows: int) -> None:
    if dst.exists():
        return
    with open(src) as fh, open(dst, "w") as out:
        for i, line in enumerate(fh):
            if i > rows:
                break
            out.write(line)


def measure(cmd: list[str], env: dict | None = None) -> tuple[dict | None, int, str]:
    """Run ``cmd``; return its last JSON line, the peak RSS of its process tree, stderr tail."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    with PeakRSS(pid=proc.pid) as rss:
        out, err = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines and proc.returncode == 0 else None), rss.peak, err[-600:]


def ensure_peer() -> str | None:
    return None if peer_python() is not None else "dataknobs-fsm 0.5.0 could not be set up"


def ensure_ray_data() -> str | None:
    if (RAYDATA_DEPS / "pandas").exists():
        return None
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--target",
            str(RAYDATA_DEPS),
            "numpy",
            "pandas",
        ],
        capture_output=True,
        text=True,
    )
    return None if install.returncode == 0 else f"pip install failed: {install.stderr[-300:]}"


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peer-rows", type=int, default=20_000)
    parser.add_argument("--child", nargs=3, metavar=("PATH", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, csv, out = args.child
        runners = {
            "fsm_actors/per_record": lambda: run_ours(csv, out, vectorized=False),
            "fsm_actors/vectorized": lambda: run_ours(csv, out, vectorized=True),
            "ray_data": lambda: run_ray_data(csv, out),
            "pyarrow": lambda: run_pyarrow(csv, out),
            "python": lambda: run_python(csv, out),
        }
        sys.exit(runners[name]())

    work = BENCH / "file_processing"
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"input-{args.rows}.csv"
    make_csv(csv, args.rows)
    results: dict[tuple[str, str], dict] = {}

    def record(name: str, fmt: str, rows: int, timing: dict | None, peak: int, err: str) -> None:
        line = {"bench": "file_processing", "path": name, "output": fmt, "rows": rows}
        if timing is None:
            line["skipped"] = err.strip().splitlines()[-1] if err.strip() else "failed"
        else:
            line |= {
                "seconds": round(timing["seconds"], 3),
                "rows_per_s": round(rows / timing["seconds"]),
                "peak_rss_mb": round(peak / 2**20),
            }
            results[(name, fmt)] = line
        emit(line)

    raydata_problem = ensure_ray_data()
    for fmt in ("jsonl", "parquet"):
        for name in (
            "fsm_actors/per_record",
            "fsm_actors/vectorized",
            "ray_data",
            "pyarrow",
            "python",
        ):
            out = work / f"out-{name.replace('/', '_')}.{fmt}"
            env = dict(os.environ)
            if name == "ray_data":
                if raydata_problem:
                    record(name, fmt, args.rows, None, 0, f"Ray Data skipped: {raydata_problem}")
                    continue
                env["PYTHONPATH"] = os.pathsep.join([str(RAYDATA_DEPS), env.get("PYTHONPATH", "")])
            timing, peak, err = measure(
                [sys.executable, __file__, "--child", name, str(csv), str(out)], env
            )
            record(name, fmt, args.rows, timing, peak, err)

    peer_problem = ensure_peer()
    if peer_problem:
        record("dataknobs_fsm", "json", args.peer_rows, None, 0, f"peer skipped: {peer_problem}")
    else:
        subset = work / f"input-{args.peer_rows}.csv"
        head(csv, subset, args.peer_rows)
        script = work / "peer_run.py"
        script.write_text(PEER_SCRIPT)
        timing, peak, err = measure(
            [
                str(peer_python()),
                str(script),
                str(subset),
                str(work / "out-peer.json"),
            ]
        )
        record("dataknobs_fsm", "json", args.peer_rows, timing, peak, err)

    small = work / f"input-{args.rows // 10}.csv"
    head(csv, small, args.rows // 10)
    peaks = {}
    for rows, path in ((args.rows // 10, small), (args.rows, csv)):
        timing, peak, err = measure(
            [
                sys.executable,
                __file__,
                "--child",
                "fsm_actors/per_record",
                str(path),
                str(work / "out-memory.jsonl"),
            ]
        )
        peaks[rows] = peak
    emit(
        {
            "bench": "file_processing",
            "path": "stream_memory",
            "peak_rss_mb": {str(k): round(v / 2**20) for k, v in peaks.items()},
            "ratio_10x_rows": round(peaks[args.rows] / max(peaks[args.rows // 10], 1), 3),
            "target": "< 1.3",
        }
    )
    emit_ratios(results)


def emit_ratios(results: dict[tuple[str, str], dict]) -> None:
    def rate(name: str, fmt: str) -> float | None:
        line = results.get((name, fmt))
        return line["rows_per_s"] if line else None

    ratios = {}
    peer = rate("dataknobs_fsm", "json")
    for fmt in ("jsonl", "parquet"):
        ours, vec = rate("fsm_actors/per_record", fmt), rate("fsm_actors/vectorized", fmt)
        ray_data, arrow = rate("ray_data", fmt), rate("pyarrow", fmt)
        if ours and peer:
            ratios[f"per_record_vs_dataknobs_{fmt}"] = round(ours / peer, 1)
        if ours and ray_data:
            ratios[f"per_record_vs_ray_data_{fmt}"] = round(ours / ray_data, 2)
        if vec and arrow:
            ratios[f"vectorized_vs_pyarrow_{fmt}"] = round(vec / arrow, 2)
    emit(
        {
            "bench": "file_processing",
            "path": "ratios",
            **ratios,
            "targets": {
                "per_record_vs_dataknobs": ">= 100",
                "per_record_vs_ray_data": ">= 1.5",
                "vectorized_vs_pyarrow": ">= 0.8",
            },
        }
    )


if __name__ == "__main__":
    main()
