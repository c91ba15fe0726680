"""ETL benchmark against dlt: ``patterns.etl`` vs dlt vs plain SQLAlchemy, same run.

PostgreSQL -> PostgreSQL APPEND of ``--rows`` rows (default 1,000,000) of the table and the
transformation of ``benchmarks/etl.py`` (``i3 = i1 + i2``), both databases on one server
from ``tests/servers.py`` (127.0.0.1). dlt (``pip install -e .[bench]``) reads with
``sql_table(..., backend="pyarrow")``, applies the transformation as a pyarrow ``add_map``
and loads into its ``postgres`` destination (credentials strings, ``write_disposition=
"append"``, the pipelines dir in a temp dir) in its fastest file format for PostgreSQL
(``--dlt-format``, default ``csv``: COPY); the table goes into a fresh dataset each run.

The machine may be shared, so ours and dlt run interleaved (``--rounds`` each), plain
SQLAlchemy once, and every run reports its CPU seconds beside its wall time: ``cpu_s`` is
all processes under this one (the driver, Ray's processes, the database server and its
backends; sampled every 0.25 s, the sampler's own CPU left out, see ``TreeCPU``),
``db_cpu_s`` the database server's part. dlt's line also gives its extract / normalize /
load seconds. One JSON line per run, then one summary line with ours / dlt and ours / SQLAlchemy by best
wall time and by CPU seconds. Targets: ours >= 3x dlt, >= 2x plain SQLAlchemy.

Usage: ``python benchmarks/etl_dlt.py [--rows N] [--rounds N] [--dlt-format csv|insert_values]
[--no-sqlalchemy]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
from sqlalchemy import create_engine, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import emit  # noqa: E402
from benchmarks.etl import fill, ours, plain_sqlalchemy, reset_target  # noqa: E402

DLT_DATASET = "dlt_bench"
DLT_STEPS: dict[str, float] = {}  # the last dlt run's seconds per step (extract, normalize, load)


class TreeCPU:
    """CPU seconds (user + system) of this process and all its descendants over a run.

    Ray's worker processes are descendants of the driver that started Ray, and the database
    server of ``tests/servers.py`` is a child of this process. Every process's own times are
    sampled every ``interval`` s, keyed by (pid, start time), and kept after it ends: a
    process gone between samples loses at most its last ``interval`` s (summing the
    children's times reaped by their parents instead missed ~40 % of ours: Ray's workers
    are not reaped within the tree)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.base = self._sample()
        self.seen: dict[tuple[int, float], tuple[float, int]] = dict(self.base)
        self.own = 0.0  # the sampling thread's CPU seconds, not counted

    def _sample(self) -> dict[tuple[int, float], tuple[float, int]]:
        """``{(pid, start time): (own CPU seconds, parent pid)}`` of the tree now."""
        out: dict[tuple[int, float], tuple[float, int]] = {}
        root = psutil.Process(os.getpid())
        for proc in (root, *root.children(recursive=True)):
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    out[(proc.pid, proc.create_time())] = (t.user + t.system, proc.ppid())
            except psutil.Error:
                continue
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.seen.update(self._sample())
        self.own = time.thread_time()

    def __enter__(self) -> TreeCPU:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(self._sample())

    def seconds(self, under: int | None = None) -> float:
        """CPU seconds used during the run, of every process or of ``under``'s subtree."""
        parents = {pid: ppid for (pid, _), (_, ppid) in self.seen.items()}

        def inside(pid: int) -> bool:
            while pid in parents and pid != under:
                pid = parents[pid] if parents[pid] != pid else -1
            return pid == under

        used = sum(cpu - self.base.get(key, (0.0, 0))[0] for key, (cpu, _) in self.seen.items()
                   if under is None or inside(key[0]))
        return used - self.own if under is None else used


def measure(fn: Callable[..., int], db_pid: int, *args: Any) -> dict[str, float]:
    """Run ``fn(*args)``; wall seconds, rows, CPU seconds of every process and of the DB."""
    with TreeCPU() as cpu:
        started = time.perf_counter()
        n = fn(*args)
        wall = time.perf_counter() - started
    return {"rows": n, "wall_s": wall, "cpu_s": cpu.seconds(), "db_cpu_s": cpu.seconds(db_pid)}


def add_i3(table: Any) -> Any:
    """The benchmark's transformation on a pyarrow table: ``i3 = i1 + i2``."""
    import pyarrow.compute as pc

    return table.set_column(table.schema.get_field_index("i3"), "i3",
                            pc.add(table["i1"], table["i2"]))


def run_dlt(src_url: str, dst_url: str, loader_format: str) -> int:
    """dlt's sql_table (pyarrow backend) -> add_map -> postgres destination, APPEND."""
    import dlt
    from dlt.sources.sql_database import sql_table

    pipelines_dir = tempfile.mkdtemp(prefix="etl-dlt-")
    try:
        source = sql_table(credentials=src_url, table="src", backend="pyarrow")
        source.add_map(add_i3)
        pipeline = dlt.pipeline(
            pipeline_name="etl_bench", pipelines_dir=pipelines_dir,
            destination=dlt.destinations.postgres(credentials=dst_url),
            dataset_name=DLT_DATASET)
        pipeline.run(source, table_name="dst", write_disposition="append",
                     loader_file_format=loader_format)
        DLT_STEPS.clear()
        DLT_STEPS.update({step.step: round((step.finished_at - step.started_at).total_seconds(), 2)
                          for step in pipeline.last_trace.steps
                          if step.started_at and step.finished_at and step.step != "run"})
        engine = create_engine(dst_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            n = conn.execute(text(f"SELECT count(*) FROM {DLT_DATASET}.dst")).scalar_one()
        engine.dispose()
        return int(n)
    finally:
        shutil.rmtree(pipelines_dir, ignore_errors=True)


def reset_dlt(dst_url: str) -> None:
    engine = create_engine(dst_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {DLT_DATASET} CASCADE"))
    engine.dispose()


def record(path: str, rows: int, run: dict[str, float], **extra: Any) -> dict[str, Any]:
    assert run["rows"] == rows, (path, run["rows"], rows)
    return emit(benchmark="etl_dlt", path=path, pair="postgresql->postgresql", mode="append",
                rows=rows, rows_per_s=round(rows / run["wall_s"]),
                wall_s=round(run["wall_s"], 2), cpu_s=round(run["cpu_s"], 2),
                db_cpu_s=round(run["db_cpu_s"], 2), **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--dlt-format", default="csv", choices=("csv", "insert_values"))
    parser.add_argument("--no-sqlalchemy", action="store_true")
    args = parser.parse_args()
    from fsm_actors.platform import runtime
    from tests.servers import start_postgres

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no calls home from a benchmark
    runtime.ensure_ray(address="local", include_dashboard=False)
    import dlt.sources.sql_database  # noqa: F401  imports out of the timed runs, both sides

    import patterns.etl  # noqa: F401
    server = start_postgres("etl_src")
    try:
        engine = create_engine(server.url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CREATE DATABASE etl_dst"))
        engine.dispose()
        src, dst = server.url, server.url.rsplit("/", 1)[0] + "/etl_dst"
        dlt_src = server.plain_url.replace("postgresql://", "postgresql+psycopg://", 1)
        dlt_dst = server.plain_url.rsplit("/", 1)[0] + "/etl_dst"
        db_pid = server.process.pid
        fill(src, args.rows)
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "dlt": [], "sqlalchemy": []}
        for i in range(args.rounds):
            reset_target(dst)
            run = measure(ours, db_pid, src, dst, "append", args.workers)
            runs["ours"].append(run)
            record("ours", args.rows, run, round=i + 1)
            reset_dlt(dst)
            run = measure(run_dlt, db_pid, dlt_src, dlt_dst, args.dlt_format)
            runs["dlt"].append(run)
            record("dlt", args.rows, run, round=i + 1, loader_file_format=args.dlt_format,
                   step_seconds=dict(DLT_STEPS))
        if not args.no_sqlalchemy:
            reset_target(dst)
            run = measure(plain_sqlalchemy, db_pid, src, dst, "append")
            runs["sqlalchemy"].append(run)
            record("sqlalchemy", args.rows, run, round=1)
        best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items() if v}
        cpu = {k: min(r["cpu_s"] for r in v) for k, v in runs.items() if v}
        summary: dict[str, Any] = {
            f"{k}_rows_per_s": round(args.rows / r["wall_s"]) for k, r in best.items()}
        for other in ("dlt", "sqlalchemy"):
            if other in best:
                summary[f"ours_vs_{other}_wall"] = round(
                    best[other]["wall_s"] / best["ours"]["wall_s"], 2)
                summary[f"ours_vs_{other}_cpu"] = round(cpu[other] / cpu["ours"], 2)
        emit(benchmark="etl_dlt", path="summary", pair="postgresql->postgresql", mode="append",
             rows=args.rows, rounds=args.rounds, load_avg_1m=round(os.getloadavg()[0], 1),
             **summary, target_vs_dlt=3.0, target_vs_sqlalchemy=2.0)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
