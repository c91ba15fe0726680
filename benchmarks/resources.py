"""Resource layer benchmarks: lease round trips and bulk inserts through a provider handle.

Prints one JSON line per measurement:
- ``acquire_release``: acquire + release round trips per second from one driver: in-process
  (``ResourceManager(local=True)``); in the cluster, where the caller talks to the
  resource's provider actor directly (one call to acquire, one to release; providers and
  broker restartable, owners swept); and the same while the ``resource-manager`` broker is
  killed at the start of the run (it is off the lease path, so it must not matter).
  Target >= 500/s (it was 83/s with two actor hops each way through the broker);
- ``insert_batch``: 200,000 rows into SQLite and PostgreSQL through a provider handle (the rows
  travel as one Arrow table; the provider inserts them by the backend's bulk path) against
  plain SQLAlchemy ``executemany`` of the same rows in this process; ``ratio`` = ours /
  baseline (target >= 0.7).

Usage: ``python benchmarks/resources.py [--rows 200000] [--cycles 500] [--no-postgres]``.
PostgreSQL is started from ``tests/servers.py`` (needs scripts/install-servers.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

import pyarrow as pa
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fsm_actors.platform import runtime  # noqa: E402
from resource_actors import (  # noqa: E402
    DatabaseResourceAdapter,
    PoolConfig,
    ResourceManager,
    SimpleResourceProvider,
)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def provider_rss_mb(name: str) -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "ProviderActor" in cmd or f"resource/{name}" in cmd:
            return round(proc.memory_info().rss / 2**20, 1)
    return None


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "resources", **fields, "peak_rss_mb": peak_rss_mb()}), flush=True)


def round_trips(manager: ResourceManager, name: str, cycles: int) -> float:
    manager.acquire(name, "warm")
    manager.release(name, "warm")
    started = time.perf_counter()
    for _ in range(cycles):
        manager.acquire(name, "bench")
        manager.release(name, "bench")
    return cycles / (time.perf_counter() - started)


def make_rows(n: int) -> tuple[pa.Table, list[dict[str, Any]]]:
    table = pa.table({"id": pa.array(range(n), pa.int64()),
                      "name": [f"name-{i}" for i in range(n)],
                      "value": [i * 0.5 for i in range(n)]})
    return table, table.to_pylist()


def baseline_insert(url: str, rows: list[dict[str, Any]]) -> float:
    """Plain SQLAlchemy Core executemany in one transaction."""
    engine = create_engine(url)
    meta = MetaData()
    table = Table("bench_base", meta, Column("id", Integer), Column("name", String(32)),
                  Column("value", Float))
    meta.drop_all(engine)
    meta.create_all(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    elapsed = time.perf_counter() - started
    meta.drop_all(engine)
    engine.dispose()
    return elapsed


def handle_insert(manager: ResourceManager, name: str, data: Any) -> float:
    with manager.resource_context(name, "bench") as db:
        db.execute("DROP TABLE IF EXISTS bench_ours")
        db.execute("CREATE TABLE bench_ours (id INTEGER, name VARCHAR(32), value FLOAT)")
        started = time.perf_counter()
        inserted = db.insert_batch("bench_ours", data)
        elapsed = time.perf_counter() - started
        assert inserted == len(data)
        db.execute("DROP TABLE bench_ours")
    return elapsed


def bench_inserts(manager: ResourceManager, backend: str, url: str, rows: int) -> None:
    table, dicts = make_rows(rows)
    name = f"bench_{backend}"
    manager.register_provider(name, DatabaseResourceAdapter(name, backend, url),
                              PoolConfig(min_size=1, max_size=2))
    handle_insert(manager, name, table.slice(0, 1000))  # warm the provider
    base = baseline_insert(url, dicts)
    emit(case="insert_batch", backend=backend, path="sqlalchemy_executemany_in_process",
         rows=rows, seconds=round(base, 3), rows_per_s=round(rows / base))
    for label, data in (("provider_handle_arrow", table), ("provider_handle_dicts", dicts)):
        ours = handle_insert(manager, name, data)
        emit(case="insert_batch", backend=backend, path=label, rows=rows, seconds=round(ours, 3),
             rows_per_s=round(rows / ours), ratio=round(base / ours, 2),
             provider_rss_mb=provider_rss_mb(name))
    manager.unregister_provider(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)

    local = ResourceManager(local=True)
    local.register_provider("rt", SimpleResourceProvider("rt", {"k": 1}))
    local.register_provider("rt_db", DatabaseResourceAdapter("rt_db", "memory"), PoolConfig(max_size=4))
    cluster = ResourceManager()
    cluster.register_provider("rt_db", DatabaseResourceAdapter("rt_db", "memory"), PoolConfig(max_size=4))
    emit(case="acquire_release", path="local", resource="pooled_database",
         ops_per_s=round(round_trips(local, "rt_db", args.cycles * 20)))
    emit(case="acquire_release", path="cluster_direct_to_provider", resource="pooled_database",
         restartable=True, ops_per_s=round(round_trips(cluster, "rt_db", args.cycles)),
         target_ops_per_s=500)
    import ray

    from resource_actors.broker_actor import BROKER_NAME

    ray.kill(ray.get_actor(BROKER_NAME), no_restart=False)
    emit(case="acquire_release", path="cluster_while_broker_restarts", resource="pooled_database",
         restartable=True, ops_per_s=round(round_trips(cluster, "rt_db", args.cycles)))
    cluster.resource_names()  # the broker is back

    with tempfile.TemporaryDirectory() as tmp:
        bench_inserts(cluster, "sqlite", f"sqlite:///{tmp}/bench.db", args.rows)
    if not args.no_postgres:
        from tests.servers import ServerUnavailable, start_postgres

        try:
            server = start_postgres()
        except ServerUnavailable as exc:
            emit(case="insert_batch", backend="postgresql", skipped=str(exc))
        else:
            try:
                bench_inserts(cluster, "postgresql", server.url, args.rows)
            finally:
                server.stop()
    cluster.close()
    local.close()
    runtime.shutdown()


if __name__ == "__main__":
    main()
