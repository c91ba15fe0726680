"""ETL benchmark: ``patterns.etl`` against plain single-process SQLAlchemy Core, same run.

Source table: ``--rows`` rows (default 1,000,000) of id, three ints, two floats, two text
columns; one per-record transformation. Pairs: SQLite -> SQLite (two files) and PostgreSQL
-> PostgreSQL (two databases of one server from ``tests/servers.py``), modes APPEND and
UPSERT (into an empty target, keyed by id). The baseline reads with ``yield_per`` and writes
with ``executemany`` in 10,000-row transactions (UPSERT: ``ON CONFLICT DO UPDATE``).

Prints one JSON line per (pair, mode) with rows/s of ours and the baseline, their ratio and
the peak RSS of each (ours: driver plus every Ray process it started). Targets: ratio >= 1.0
on SQLite, >= 3.0 on PostgreSQL. Then the peer, dataknobs-fsm 0.5.0, in its own venv (see
``benchmarks/_peer.py``): ``create_etl_pipeline`` SQLite -> SQLite APPEND with the same
transformation on ``--peer-rows`` rows (a subset: it is slow), source rows written through its
own SQLite backend (it reads only its own table layout); its line gives ours / peer (target
>= 100x), ours being the SQLite APPEND run above.

Usage: ``python benchmarks/etl.py [--rows N] [--no-postgres] [--modes append,upsert]
[--peer-rows N] [--no-peer]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._measure import PeakRSS, emit  # noqa: E402

COLUMNS = ("id", "i1", "i2", "i3", "f1", "f2", "t1", "t2")
DDL = ("(id BIGINT PRIMARY KEY, i1 BIGINT, i2 BIGINT, i3 BIGINT, f1 DOUBLE PRECISION, "
       "f2 DOUBLE PRECISION, t1 VARCHAR(64), t2 VARCHAR(64))")


PEER_ETL = r"""
import asyncio, json, os, sys, tempfile, time
from dataknobs_data import Record, database_factory
from dataknobs_fsm.patterns.etl import ETLMode, create_etl_pipeline
n = int(sys.argv[1])
d = tempfile.mkdtemp(prefix="etl-peer-")
src, dst = os.path.join(d, "src.db"), os.path.join(d, "dst.db")
db = database_factory.create(backend="sqlite", path=src, table="src")
db.connect()
for start in range(0, n, 5000):
    db.create_batch([Record({"id": i, "i1": i * 3, "i2": i % 1000, "i3": 0, "f1": i * 0.5,
                             "f2": i / 7, "t1": f"name-{i}", "t2": f"city-{i % 977}"})
                     for i in range(start + 1, min(n, start + 5000) + 1)])
db.close()
def transform(row):
    row["i3"] = row["i1"] + row["i2"]
    return row
etl = create_etl_pipeline({"type": "sqlite", "path": src, "table": "src"},
                          {"type": "sqlite", "path": dst, "table": "dst"}, mode=ETLMode.APPEND,
                          source_query=None, target_table="dst", transformations=[transform],
                          batch_size=10000)
started = time.perf_counter()
result = asyncio.run(etl.run())
print(json.dumps({"elapsed": time.perf_counter() - started, "loaded": result["loaded"]}))
"""


def transform(row: dict[str, Any]) -> dict[str, Any]:
    row["i3"] = row["i1"] + row["i2"]
    return row


def fill(url: str, rows: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS src"))
        conn.execute(text(f"CREATE TABLE src {DDL}"))
    step = 50_000
    marks = ", ".join(f":{c}" for c in COLUMNS)
    insert = text(f"INSERT INTO src ({', '.join(COLUMNS)}) VALUES ({marks})")
    for start in range(0, rows, step):
        batch = [{"id": i, "i1": i * 3, "i2": i % 1000, "i3": 0, "f1": i * 0.5, "f2": i / 7,
                  "t1": f"name-{i}", "t2": f"city-{i % 977}"}
                 for i in range(start + 1, min(rows, start + step) + 1)]
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                raw = conn.connection.driver_connection
                with raw.cursor() as cur, cur.copy(
                        f"COPY src ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                    for r in batch:
                        cp.write_row(tuple(r[c] for c in COLUMNS))
            else:
                conn.execute(insert, batch)
    engine.dispose()


def reset_target(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS dst"))
        conn.execute(text(f"CREATE TABLE dst {DDL}"))
        conn.execute(text("DROP TABLE IF EXISTS fsm_etl_checkpoints"))
        conn.execute(text("DROP TABLE IF EXISTS fsm_etl_rejects"))
    engine.dispose()


def plain_sqlalchemy(src_url: str, dst_url: str, mode: str) -> int:
    """The baseline: one process, yield_per read, executemany in 10k-row transactions."""
    src, dst = create_engine(src_url), create_engine(dst_url)
    marks = ", ".join(f":{c}" for c in COLUMNS)
    sql = f"INSERT INTO dst ({', '.join(COLUMNS)}) VALUES ({marks})"
    if mode == "upsert":
        sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        sql += f" ON CONFLICT (id) DO UPDATE SET {sets}"
    insert = text(sql)
    n = 0
    with src.connect() as rconn:
        result = rconn.execution_options(yield_per=10_000).execute(
            text(f"SELECT {', '.join(COLUMNS)} FROM src"))
        for part in result.mappings().partitions(10_000):
            batch = [transform(dict(r)) for r in part]
            with dst.begin() as wconn:
                wconn.execute(insert, batch)
            n += len(batch)
    src.dispose()
    dst.dispose()
    return n


def ours(src_url: str, dst_url: str, mode: str, workers: int | None) -> int:
    from patterns.etl import create_etl_pipeline

    etl = create_etl_pipeline(
        {"type": "database", "connection": src_url, "table": "src"},
        {"type": "database", "connection": dst_url, "table": "dst"},
        mode=mode, transformations=[transform], batch_size=10_000,
        parallel_workers=workers, work_dir=tempfile.mkdtemp(prefix="etl-bench-"))
    result = asyncio.run(etl.run())
    return result["loaded"]


def measure(fn, *args) -> tuple[float, int, float]:
    with PeakRSS() as rss:
        started = time.perf_counter()
        n = fn(*args)
        elapsed = time.perf_counter() - started
    return elapsed, n, rss.peak_mb


def bench(pair: str, src_url: str, dst_url: str, rows: int, modes: list[str],
          workers: int | None) -> dict[str, float]:
    """Run each mode; returns our rows/s by mode."""
    fill(src_url, rows)
    ours_rate: dict[str, float] = {}
    for mode in modes:
        reset_target(dst_url)
        base_s, base_n, base_mb = measure(plain_sqlalchemy, src_url, dst_url, mode)
        reset_target(dst_url)
        our_s, our_n, our_mb = measure(ours, src_url, dst_url, mode, workers)
        assert our_n == base_n == rows, (our_n, base_n, rows)
        ours_rate[mode] = rows / our_s
        emit(benchmark="etl", pair=pair, mode=mode, rows=rows,
             ours_rows_per_s=round(rows / our_s), sqlalchemy_rows_per_s=round(rows / base_s),
             ratio=round(base_s / our_s, 2), ours_seconds=round(our_s, 2),
             sqlalchemy_seconds=round(base_s, 2), ours_peak_rss_mb=our_mb,
             sqlalchemy_peak_rss_mb=base_mb)
    return ours_rate


def peer(rows: int, ours_rows_per_s: float | None) -> None:
    """The peer's SQLite -> SQLite APPEND on ``rows`` rows, against our rate."""
    from benchmarks._peer import run_peer

    out = run_peer(PEER_ETL, str(rows))
    if out is None:
        return
    rate = out["loaded"] / out["elapsed"]
    emit(benchmark="etl_peer", pair="sqlite->sqlite", mode="append", rows=rows,
         peer_loaded=out["loaded"], peer_rows_per_s=round(rate),
         ours_rows_per_s=round(ours_rows_per_s) if ours_rows_per_s else None,
         ours_vs_peer=round(ours_rows_per_s / rate, 1) if ours_rows_per_s else None,
         target=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--modes", default="append,upsert")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--peer-rows", type=int, default=20_000)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    modes = args.modes.split(",")
    from fsm_actors.platform import runtime

    runtime.ensure_ray(address="local", include_dashboard=False)
    sqlite_rates: dict[str, float] = {}
    if not args.no_sqlite:
        tmp = tempfile.mkdtemp(prefix="etl-bench-")
        sqlite_rates = bench("sqlite->sqlite", f"sqlite:///{tmp}/src.db",
                             f"sqlite:///{tmp}/dst.db", args.rows, modes, args.workers)
    if not args.no_postgres:
        from tests.servers import start_postgres

        server = start_postgres("etl_src")
        try:
            engine = create_engine(server.url)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("CREATE DATABASE etl_dst"))
            engine.dispose()
            src = server.url
            dst = src.rsplit("/", 1)[0] + "/etl_dst"
            bench("postgresql->postgresql", src, dst, args.rows, modes, args.workers)
        finally:
            server.stop()
    if not args.no_peer:
        peer(args.peer_rows, sqlite_rates.get("append"))


if __name__ == "__main__":
    main()
