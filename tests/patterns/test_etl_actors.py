"""ETL on actors: the seed's ETL blocks, run from their example files, and chaos: a worker
actor killed mid-run, the driver process SIGKILLed mid-run.

The seed blocks (``shared/seeds/000_875e407f129ea33b.txt``: "Quick Start" 1., "Pattern
Composition", "Example: Complete ETL Pipeline" and the import reference) live once, in
``examples/patterns/``; these tests run those files' ``main()`` in the session's Ray against
the test PostgreSQL server and check the rows they wrote.
"""

from __future__ import annotations

import os
import sqlite3
import uuid

import pytest

from examples._support import OUT_ENV, POSTGRES_ENV, query, run_example
from tests.patterns.test_etl_support import (  # noqa: F401
    etl_driver,
    kill_actor_when,
    postgres_server,
    run_and_sigkill,
    slow,
    sqlite_db,
    sqlite_rows,
)

pytestmark = [pytest.mark.ray]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _ray(ray_session):
    return ray_session


@pytest.fixture
def example_pg(postgres_server, tmp_path, monkeypatch):  # noqa: F811
    """The ETL examples' databases on the test PostgreSQL server; their files in tmp_path."""
    monkeypatch.setenv(POSTGRES_ENV, postgres_server.plain_url.rsplit("/", 1)[0])
    monkeypatch.setenv(OUT_ENV, str(tmp_path))
    return postgres_server


def test_seed_quick_start(example_pg):
    out = run_example("patterns", "quick_start_etl.py")
    # the block names no table: as written it stops with a config error that says what to add
    assert out["error"] and 'add "table"' in out["error"]
    assert example_pg.password not in out["error"]
    first, again = out["first"], out["again"]
    assert first["records_processed"] == 500 and first["loaded"] == 500 and first["errors"] == 0
    assert again["extracted"] == 2  # the watermark row again (de-duplicated) and the new one
    assert query(out["target_db"], "SELECT COUNT(*), COUNT(processed_at), MAX(id) FROM events") \
        == [(501, 501, 501)]
    assert query(out["source_db"], "SELECT COUNT(*) FROM events") == [(501,)]


def test_seed_pattern_composition(example_pg, tmp_path):
    out = run_example("patterns", "pattern_composition.py")
    result = out["result"]
    assert result["file_processing"]["records_written"] == 300
    assert result["etl"]["loaded"] == 300 and result["etl"]["errors"] == 0
    assert out["db_url"].startswith("postgresql://")
    assert query(out["db_url"], "SELECT COUNT(*), SUM(score), BOOL_AND(validated) "
                                "FROM processed") == [(300, sum(i * 1.5 for i in range(1, 301)),
                                                       True)]
    assert (tmp_path / "pattern_composition" / "processed.json").exists()


def test_seed_complete_etl_pipeline(example_pg, capsys):
    out = run_example("patterns", "data_migration.py")
    printed = capsys.readouterr().out
    assert "Migrated 400 records" in printed and "Errors: 0" in printed
    assert out["result"]["errors"] == 0
    assert query(out["target_db"], "SELECT COUNT(*), MIN(id), MAX(id), COUNT(DISTINCT version), "
                                   "COUNT(migrated_at) FROM users_v2") == [(400, 1, 400, 1, 400)]
    assert query(out["target_db"], "SELECT name, email, version FROM users_v2 WHERE id = 7") \
        == [("user 7", "u7@example.org", "2.0")]


def test_seed_import_reference_and_warehouse_load(tmp_path, monkeypatch):
    monkeypatch.setenv(OUT_ENV, str(tmp_path))
    etl_names = run_example("patterns", "import_reference.py")["patterns.etl"]
    (DatabaseETL, ETLConfig, ETLMode, create_etl_pipeline, create_database_sync,  # noqa: N806
     create_data_migration, create_data_warehouse_load) = etl_names
    assert isinstance(ETLConfig, type) and callable(create_etl_pipeline)
    assert callable(create_data_migration)

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
    thread, killed = kill_actor_when(f"etl/{checkpoint}/worker/0", lambda: _count(path) >= 1_000)
    result = etl.run_sync(checkpoint)
    thread.join(timeout=5)
    assert killed, "the worker was not killed mid-run (the run ended first)"
    assert result["loaded"] == ROWS
    _exactly_once(path)


def _run_and_kill_driver(tmp_path, src, tgt, path, mode, checkpoint, until):
    """Run the ETL in a driver process attached to this session's Ray, SIGKILL it once
    ``until()`` holds (its worker actors die with it)."""
    script = etl_driver(ROOT, {"connection": src, "table": "items"},
                        {"connection": tgt, "table": "items"}, mode, str(tmp_path / "w"),
                        checkpoint)
    run_and_sigkill(script, ROOT, until)


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
                         transformations=[slow], batch_size=250, checkpoint_interval=3_000,
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
                transformations=[slow], batch_size=250, checkpoint_interval=3_000,
                work_dir=str(tmp_path / "w")).run_sync(checkpoint)
    _exactly_once(path)
