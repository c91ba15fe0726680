"""ETL on actors: the seed's ETL blocks run literally (import prefix and connection URLs
changed), and chaos: a worker actor killed mid-run, the driver process SIGKILLed mid-run.

Seed blocks are from ``shared/seeds/000_875e407f129ea33b.txt``: "Quick Start" (1.),
"Pattern Composition", "Example: Complete ETL Pipeline" and the import reference.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime

import pytest
import ray
from sqlalchemy import create_engine, text

from fsm_actors import runtime
from patterns.errors import PatternError
from tests.patterns.test_etl_support import postgres_server, sqlite_db, sqlite_rows  # noqa: F401

pytestmark = [pytest.mark.ray]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _ray(ray_session):
    return ray_session


@pytest.fixture
def pg_db(postgres_server):  # noqa: F811
    """A fresh PostgreSQL database: ``(user URL, engine)``."""
    name = f"seed_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_server.url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = postgres_server.plain_url.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(postgres_server.url.rsplit("/", 1)[0] + "/" + name)
    yield url, engine
    engine.dispose()


def rows_of(engine, sql):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_seed_quick_start(pg_db):
    url, engine = pg_db
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT)"))
        conn.execute(text("INSERT INTO events SELECT g, 'k' || g FROM generate_series(1, 500) g"))
        conn.execute(text("CREATE TABLE events_copy (id INTEGER PRIMARY KEY, kind TEXT, "
                          "processed_at TIMESTAMP)"))
    # --- the seed block, literally (URLs replaced) -----------------------------------------
    from patterns.etl import ETLMode, create_etl_pipeline

    def quick_start(source_url, target_url, **tables):
        etl = create_etl_pipeline(
            source={
                "type": "database",
                "provider": "postgresql",
                "connection": source_url,
                **tables.get("source", {}),
            },
            target={
                "type": "database",
                "provider": "postgresql",
                "connection": target_url,
                **tables.get("target", {}),
            },
            mode=ETLMode.INCREMENTAL,
            transformations=[
                lambda row: {**row, "processed_at": datetime.now()}
            ]
        )
        return asyncio.run(etl.run())

    # the block names no table: a config error that says what to add
    with pytest.raises(PatternError, match='add "table"'):
        quick_start(url, url)
    tables = {"source": {"table": "events"}, "target": {"table": "events_copy"}}
    result = quick_start(url, url, **tables)
    assert result["records_processed"] == 500 and result["errors"] == 0
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events VALUES (501, 'new')"))
    again = quick_start(url, url, **tables)
    assert again["extracted"] == 2  # the watermark row again (de-duplicated) and the new one
    assert rows_of(engine, "SELECT COUNT(*), COUNT(processed_at) FROM events_copy") == [(501, 501)]


def test_seed_pattern_composition(pg_db, tmp_path, monkeypatch):
    url, engine = pg_db
    monkeypatch.chdir(tmp_path)
    with open("raw_data.csv", "w") as fh:
        fh.write("id,name,score\n" + "".join(f"{i},name {i},{i * 1.5}\n" for i in range(1, 301)))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE processed (id INTEGER PRIMARY KEY, name TEXT, "
                          "score DOUBLE PRECISION, validated BOOLEAN)"))
    # --- the seed block, literally (the connection URL replaced) ---------------------------
    from patterns.error_recovery import create_retry_workflow
    from patterns.etl import ETLMode, create_etl_pipeline
    from patterns.file_processing import create_csv_processor

    async def complex_workflow():
        """Compose multiple patterns in a workflow."""

        # Step 1: Process CSV file with retry logic
        csv_processor = create_csv_processor(
            input_file="raw_data.csv",
            output_file="processed.json",
            transformations=[lambda row: {**row, "validated": True}]
        )

        retry_wrapper = create_retry_workflow(
            max_attempts=3,
            backoff_strategy="exponential"
        )

        # Execute with retry
        file_result = await retry_wrapper.execute(
            csv_processor.process
        )

        # Step 2: Load to database
        etl = create_etl_pipeline(
            source={"type": "file", "path": "processed.json"},
            target={"type": "database", "connection": url},
            mode=ETLMode.UPSERT
        )

        etl_result = await etl.run()

        return {
            "file_processing": file_result,
            "etl": etl_result
        }

    # Run the composed workflow
    result = asyncio.run(complex_workflow())
    # --------------------------------------------------------------------------------------
    assert result["etl"]["loaded"] == 300 and result["etl"]["errors"] == 0
    assert rows_of(engine, "SELECT COUNT(*), SUM(score), BOOL_AND(validated) FROM processed") \
        == [(300, sum(i * 1.5 for i in range(1, 301)), True)]


def test_seed_complete_etl_pipeline(pg_db, capsys):
    url, engine = pg_db
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (user_id INTEGER PRIMARY KEY, user_name TEXT, "
                          "user_email TEXT)"))
        conn.execute(text("INSERT INTO users SELECT g, 'user ' || g, 'u' || g || '@x.org' "
                          "FROM generate_series(1, 400) g"))
        conn.execute(text("CREATE TABLE users_v2 (id INTEGER PRIMARY KEY, name TEXT, email TEXT, "
                          "migrated_at TIMESTAMP, version TEXT)"))
        conn.execute(text("INSERT INTO users_v2 (id, name) VALUES (9999, 'stale')"))
    # --- the seed block, literally (URLs replaced) -----------------------------------------
    from patterns.etl import create_data_migration

    async def run_migration():
        """Example of a complete data migration."""

        # Create migration with field mappings and transformations
        migration = create_data_migration(
            source={
                "provider": "postgresql",
                "connection": url,
                "table": "users"
            },
            target={
                "provider": "postgresql",
                "connection": url,
                "table": "users_v2"
            },
            field_mappings={
                "user_id": "id",
                "user_name": "name",
                "user_email": "email"
            },
            transformations=[
                lambda record: {
                    **record,
                    "migrated_at": datetime.now(),
                    "version": "2.0"
                }
            ]
        )

        # Run with checkpoint for resumability
        result = await migration.run(checkpoint_id="migration_2024")

        print(f"Migrated {result['records_processed']} records")
        print(f"Errors: {result['errors']}")

        return result

    result = asyncio.run(run_migration())
    # --------------------------------------------------------------------------------------
    assert "Migrated 400 records" in capsys.readouterr().out and result["errors"] == 0
    assert rows_of(engine, "SELECT COUNT(*), MIN(id), MAX(id), COUNT(DISTINCT version) "
                           "FROM users_v2") == [(400, 1, 400, 1)]
    assert rows_of(engine, "SELECT name, email FROM users_v2 WHERE id = 7") == [("user 7",
                                                                                  "u7@x.org")]


def test_seed_import_reference_and_warehouse_load(tmp_path):
    from patterns.etl import (  # noqa: F401
        DatabaseETL,
        ETLConfig,
        ETLMode,
        create_data_migration,
        create_data_warehouse_load,
        create_database_sync,
        create_etl_pipeline,
    )

    ddl = "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount INTEGER);"
    ins = "INSERT INTO sales VALUES (?, ?, ?)"
    east = sqlite_db(str(tmp_path / "east.db"), ddl, [(i, "east", i) for i in range(1, 101)], ins)
    west = sqlite_db(str(tmp_path / "west.db"), ddl, [(i, "west", i) for i in range(101, 151)], ins)
    dw = sqlite_db(str(tmp_path / "dw.db"), "CREATE TABLE sales (id INTEGER, region TEXT, "
                   "amount INTEGER, amount_x2 INTEGER);")
    loads = create_data_warehouse_load(
        sources=[{"connection": east, "table": "sales"}, {"connection": west, "table": "sales"}],
        warehouse={"connection": dw, "table": "sales"},
        aggregations=[lambda r: {**r, "amount_x2": 2 * r["amount"]}])
    assert all(isinstance(e, DatabaseETL) and e.config.mode is ETLMode.APPEND for e in loads)
    results = [e.run_sync() for e in loads]
    assert [r["loaded"] for r in results] == [100, 50]
    assert sqlite_rows(str(tmp_path / "dw.db"), "SELECT COUNT(*), SUM(amount_x2) FROM sales") \
        == [(150, 2 * sum(range(1, 151)))]
    sync = create_database_sync({"connection": east, "table": "sales"},
                                {"connection": dw, "table": "sales"})
    assert sync.config.mode is ETLMode.INCREMENTAL


# -- chaos -------------------------------------------------------------------------------------
ROWS = 12_000
SRC = "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT);"


def slow(record):
    time.sleep(0.0002)
    return record


def chaos_dbs(tmp_path, target_ddl="CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT);",
              old_rows=()):
    src = sqlite_db(str(tmp_path / "src.db"), SRC,
                    [(i, i, f"r{i}") for i in range(1, ROWS + 1)], "INSERT INTO items VALUES (?, ?, ?)")
    tgt = sqlite_db(str(tmp_path / "tgt.db"), target_ddl, list(old_rows),
                    "INSERT INTO items VALUES (?, ?, ?)")
    return src, tgt, str(tmp_path / "tgt.db")


def _count(path):
    try:
        return sqlite_rows(path, "SELECT COUNT(*) FROM items")[0][0]
    except sqlite3.OperationalError:
        return 0


def _exactly_once(path):
    assert sqlite_rows(path, "SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id), SUM(a) "
                             "FROM items") == [(ROWS, ROWS, 1, ROWS, ROWS * (ROWS + 1) // 2)]


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_worker_actor_killed_mid_run_loses_and_doubles_nothing(tmp_path, mode):
    from patterns.etl import DatabaseETL

    # no key on the APPEND target: a doubled batch would show
    ddl = ("CREATE TABLE items (id INTEGER, a INTEGER, b TEXT);" if mode == "append"
           else "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT);")
    src, tgt, path = chaos_dbs(tmp_path, ddl)
    checkpoint = f"kill-worker-{mode}-{uuid.uuid4().hex[:6]}"
    etl = DatabaseETL(source={"connection": src, "table": "items"},
                      target={"connection": tgt, "table": "items"}, mode=mode,
                      transformations=[slow], batch_size=250, checkpoint_interval=3_000,
                      parallel_workers=2, work_dir=str(tmp_path / "work"))
    killed: list[str] = []

    def killer():
        name = f"etl/{checkpoint}/worker/0"
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            if _count(path) >= 1_000:
                try:
                    actor = ray.get_actor(name, namespace=runtime.namespace())
                except ValueError:
                    time.sleep(0.05)
                    continue
                ray.kill(actor, no_restart=True)
                killed.append(name)
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = etl.run_sync(checkpoint)
    thread.join(timeout=5)
    assert killed, "the worker was not killed mid-run (the run ended first)"
    assert result["loaded"] == ROWS
    _exactly_once(path)


DRIVER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from fsm_actors import runtime
    runtime.ensure_ray(address={address!r})
    from patterns.etl import DatabaseETL

    def slow(record):
        time.sleep(0.0003)
        return record

    DatabaseETL(source={{"connection": {src!r}, "table": "items"}},
                target={{"connection": {tgt!r}, "table": "items"}}, mode={mode!r},
                transformations=[slow], batch_size=250, checkpoint_interval=3000,
                parallel_workers=2, work_dir={work!r}).run_sync({checkpoint!r})
""")


def _run_and_kill_driver(tmp_path, src, tgt, path, mode, checkpoint, until):
    """Run the ETL in a driver process attached to this session's Ray, SIGKILL it once
    ``until()`` holds (its worker actors die with it)."""
    script = DRIVER.format(root=ROOT, src=src, tgt=tgt, mode=mode, work=str(tmp_path / "w"),
                           checkpoint=checkpoint, address=runtime.ensure_ray().address)
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None and not until():
            time.sleep(0.05)
        assert proc.poll() is None, "the driver finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_driver_sigkilled_mid_run_then_resumed_loads_every_row_once(tmp_path, mode):
    from patterns.etl import DatabaseETL

    ddl = ("CREATE TABLE items (id INTEGER, a INTEGER, b TEXT);" if mode == "append"
           else "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT);")
    src, tgt, path = chaos_dbs(tmp_path, ddl)
    checkpoint = f"kill-driver-{mode}-{uuid.uuid4().hex[:6]}"
    _run_and_kill_driver(tmp_path, src, tgt, path, mode, checkpoint,
                         until=lambda: _count(path) >= 2_000)
    partial = _count(path)
    assert 0 < partial < ROWS
    result = DatabaseETL(source={"connection": src, "table": "items"},
                         target={"connection": tgt, "table": "items"}, mode=mode,
                         batch_size=250, checkpoint_interval=3_000,
                         work_dir=str(tmp_path / "w")).run_sync(checkpoint)
    assert result["loaded"] == ROWS
    _exactly_once(path)


def test_full_refresh_with_its_driver_killed_leaves_the_old_table_whole(tmp_path):
    from patterns.etl import DatabaseETL

    old = [(i, -i, "old") for i in range(1, 501)]
    src, tgt, path = chaos_dbs(tmp_path, old_rows=old)

    def staged():
        names = [r[0] for r in sqlite_rows(path, "SELECT name FROM sqlite_master")]
        staging = [n for n in names if "__etl_" in n]
        return bool(staging) and sqlite_rows(path, f'SELECT COUNT(*) FROM "{staging[0]}"')[0][0] > 2_000

    checkpoint = f"refresh-{uuid.uuid4().hex[:6]}"
    _run_and_kill_driver(tmp_path, src, tgt, path, "full", checkpoint, until=staged)
    assert sqlite_rows(path, "SELECT COUNT(*), MIN(b), MAX(b), SUM(a) FROM items") \
        == [(500, "old", "old", -sum(range(1, 501)))]
    DatabaseETL(source={"connection": src, "table": "items"},
                target={"connection": tgt, "table": "items"}, mode="full",
                batch_size=250, checkpoint_interval=3_000,
                work_dir=str(tmp_path / "w")).run_sync(checkpoint)
    _exactly_once(path)
