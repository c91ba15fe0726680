"""ETL reading exactly every source row once (issue 19, items 1 and 2), against real servers.

1. A source with no usable key (a query, a table without a unique NOT NULL key) is read in one
   pass in a stable order: paged by LIMIT/OFFSET of an unordered query, PostgreSQL starts each
   page wherever its synchronized scan is (tables past a quarter of ``shared_buffers``; here a
   server with the minimum, 128kB) and repeats some rows and never gives others.
2. Keyset pages only on a key the catalog proves unique and NOT NULL; a repeated key or a NULL
   made pages skip rows. De-duplication within a batch keeps rows whose key holds NULL (SQL
   NULLs are distinct).
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from patterns.errors import PatternError
from tests.patterns.test_etl_support import (  # noqa: F401
    Crash,
    crash_once,
    fetch_rows,
    make_table,
    mariadb_server,
    postgres_server,
    run_inline,
    table_names,
)
from tests.resource_actors.conftest import _serve
from tests.servers import start_postgres

BIG = 60_000


@pytest.fixture(scope="module")
def small_pg():
    """A PostgreSQL server with the smallest ``shared_buffers`` (16 blocks): every table past
    4 blocks is read by synchronized scans."""
    yield from _serve(lambda: start_postgres(settings={"shared_buffers": "128kB",
                                                       "max_connections": "30"}))


def _config(url, source, tgt, mode, work, **kw):
    return {"source": {"connection": url, **source}, "target": {"connection": url, "table": tgt},
            "mode": mode, "work_dir": str(work), **kw}


@contextmanager
def _scanning(engine, table):
    """Another reader scanning ``table`` in a loop meanwhile: its scans move the
    synchronized-scan start too (as in production)."""
    stop = threading.Event()

    def scan():
        with engine.connect() as conn:
            while not stop.is_set():
                conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()

    scanner = threading.Thread(target=scan, daemon=True)
    scanner.start()
    try:
        yield
    finally:
        stop.set()
        scanner.join(10)


# -- 1. one stable pass --------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["query", "table"])
def test_postgres_keyless_source_under_synchronized_scans_gives_every_row_once(small_pg, tmp_path,
                                                                            source):
    engine = create_engine(small_pg.url)
    src, tgt = table_names("big", "dst")
    make_table(engine, src, "id INTEGER, pad TEXT")
    make_table(engine, tgt, "id INTEGER, pad TEXT")
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {src} SELECT g, repeat('x', 40) "
                          f"FROM generate_series(1, {BIG}) g"))
    what = {"query": f"SELECT * FROM {src}"} if source == "query" else {"table": src}
    with _scanning(engine, src):
        result = run_inline(_config(small_pg.plain_url, what, tgt, "append", tmp_path,
                                    batch_size=1_000))
    assert result["loaded"] == BIG
    assert fetch_rows(engine, f"SELECT COUNT(*), COUNT(DISTINCT id), SUM(id) FROM {tgt}") == [
        (BIG, BIG, BIG * (BIG + 1) // 2)]
    engine.dispose()


def _keyless_source(engine, src, n=3_000):
    """A table without a key: ``n`` rows with a NULL every 7th ``v`` and 50 rows twice."""
    rows = [(i, None if i % 7 == 0 else f"v{i % 300}") for i in range(1, n + 1)]
    rows += rows[100:150]
    make_table(engine, src, "id INTEGER, v VARCHAR(20)", rows, ("id", "v"))
    return rows


@pytest.mark.parametrize("source", ["query", "table"])
def test_a_keyless_source_lands_row_for_row(db, tmp_path, source):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    rows = _keyless_source(engine, src)
    make_table(engine, tgt, "id INTEGER, v VARCHAR(20)")
    what = {"query": f"SELECT id, v FROM {src}"} if source == "query" else {"table": src}
    result = run_inline(_config(url, what, tgt, "append", tmp_path, batch_size=250))
    assert result["loaded"] == len(rows)
    assert Counter(fetch_rows(engine, f"SELECT id, v FROM {tgt}")) == Counter(rows)


@pytest.mark.parametrize("mode", ["append", "full"])
def test_a_keyless_query_resumed_after_a_crash_loads_every_row_once(db, tmp_path, mode):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    rows = _keyless_source(engine, src)
    make_table(engine, tgt, "id INTEGER, v VARCHAR(20)")
    dies, disarm = crash_once(lambda record, n: n == 1_700)
    cfg = _config(url, {"query": f"SELECT id, v FROM {src}"}, tgt, mode, tmp_path, batch_size=250)
    cfg = {**cfg, "transformations": [dies]}
    with pytest.raises(Crash):
        run_inline(cfg, f"resume-{mode}")
    if mode == "append":
        assert 0 < len(fetch_rows(engine, f"SELECT id FROM {tgt}")) < len(rows)
    disarm()
    result = run_inline(cfg, f"resume-{mode}")
    assert result["loaded"] == len(rows)
    assert Counter(fetch_rows(engine, f"SELECT id, v FROM {tgt}")) == Counter(rows)


def test_a_resume_that_cannot_be_exact_stops_and_says_so(db, tmp_path):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    _keyless_source(engine, src)
    make_table(engine, tgt, "id INTEGER, v VARCHAR(20)")
    dies, disarm = crash_once(lambda record, n: record["id"] == 2_000)
    cfg = _config(url, {"query": f"SELECT id, v FROM {src}"}, tgt, "append", tmp_path,
                  batch_size=250)
    cfg = {**cfg, "transformations": [dies]}
    with pytest.raises(Crash):
        run_inline(cfg, "changed")
    disarm()
    loaded = fetch_rows(engine, f"SELECT COUNT(*) FROM {tgt}")
    with engine.begin() as conn:  # a row now sorting among the ones already loaded
        conn.execute(text(f"DELETE FROM {src} WHERE id = 1"))
    with pytest.raises(PatternError, match="cannot resume exactly"):
        run_inline(cfg, "changed")
    assert fetch_rows(engine, f"SELECT COUNT(*) FROM {tgt}") == loaded


def test_postgres_query_of_unordered_types_resumes_exactly(small_pg, tmp_path):
    """json has no ordering, and a column may be named like the ordering's alias: the query
    is ordered by each whole row's text. (Ordered by a part of the row, synchronized scans
    shuffle the ties and the resume cannot be exact.)"""
    engine = create_engine(small_pg.url)
    src, tgt = table_names("src", "tgt")
    make_table(engine, src, "id INTEGER, doc JSON")
    make_table(engine, tgt, "id INTEGER, doc JSON, etl_src INTEGER")
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {src} SELECT g, json_build_object('g', g) "
                          "FROM generate_series(1, 20000) g"))
    dies, disarm = crash_once(lambda record, n: n == 13_000)
    cfg = _config(small_pg.plain_url,
                  {"query": f"SELECT id, doc, id % 7 AS etl_src FROM {src}"}, tgt, "append",
                  tmp_path, batch_size=1_000)
    cfg = {**cfg, "transformations": [dies]}
    with _scanning(engine, src):
        with pytest.raises(Crash):
            run_inline(cfg, "json")
        disarm()
        assert run_inline(cfg, "json")["loaded"] == 20_000
    assert fetch_rows(engine, f"SELECT COUNT(*), COUNT(DISTINCT id), SUM(etl_src) FROM {tgt}") \
        == fetch_rows(engine, f"SELECT COUNT(*), COUNT(DISTINCT id), SUM(id % 7) FROM {src}")
    assert fetch_rows(engine, f"SELECT COUNT(*) FROM {tgt} WHERE CAST(doc ->> 'g' AS INTEGER) <> id") \
        == [(0,)]
    engine.dispose()


@pytest.mark.ray
def test_postgres_keyless_query_on_actors(ray_session, small_pg, tmp_path):
    from patterns.etl import DatabaseETL

    engine = create_engine(small_pg.url)
    src, tgt = table_names("big", "dst")
    make_table(engine, src, "id INTEGER, pad TEXT")
    make_table(engine, tgt, "id INTEGER, pad TEXT")
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {src} SELECT g, repeat('y', 40) "
                          "FROM generate_series(1, 20000) g"))
    result = DatabaseETL(source={"connection": small_pg.plain_url, "query": f"SELECT * FROM {src}"},
                         target={"connection": small_pg.plain_url, "table": tgt}, mode="append",
                         batch_size=500, parallel_workers=2,
                         work_dir=str(tmp_path)).run_sync()
    assert result["loaded"] == 20_000
    assert fetch_rows(engine, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {tgt}") == [(20_000, 20_000)]
    engine.dispose()


# -- 2. keyset only on a unique NOT NULL key --------------------------------------------------------
def test_a_query_keyed_on_a_repeated_column_loads_every_row(db, tmp_path):
    backend, url, engine = db
    src, tgt = table_names("orders", "tgt")
    rows = [(i, f"c{i % 5}", i * 10) for i in range(1, 101)]
    make_table(engine, src, "id INTEGER, cust VARCHAR(10), amount INTEGER", rows,
               ("id", "cust", "amount"))
    make_table(engine, tgt, "id INTEGER, cust VARCHAR(10), amount INTEGER")
    result = run_inline(_config(url, {"query": f"SELECT id, cust, amount FROM {src}"}, tgt,
                                "append", tmp_path, key_columns=["cust"], batch_size=7))
    assert result["loaded"] == 100
    assert sorted(fetch_rows(engine, f"SELECT id, cust, amount FROM {tgt}")) == rows


def test_a_keyless_table_keyed_on_a_column_with_nulls_loads_every_row(db, tmp_path):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    rows = [(None if i % 10 == 0 else i, f"v{i}") for i in range(1, 1001)]
    make_table(engine, src, "k INTEGER, v VARCHAR(20)", rows, ("k", "v"))
    make_table(engine, tgt, "k INTEGER, v VARCHAR(20)")
    result = run_inline(_config(url, {"table": src}, tgt, "append", tmp_path, key_columns=["k"],
                                batch_size=64, checkpoint_interval=300))
    assert result["loaded"] == 1000 and result["rejected"] == 0
    assert Counter(fetch_rows(engine, f"SELECT k, v FROM {tgt}")) == Counter(rows)


@pytest.mark.parametrize("transformed", [False, True])
def test_upsert_on_a_key_with_nulls_keeps_the_rows_sql_keeps(db, tmp_path, transformed):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    rows = [(1, 1, "p"), (1, 2, "q"), (2, 1, "r"), (2, 2, "s"), (3, 3, "t"),
            (None, 1, "n"), (1, None, "a"), (1, None, "b")]
    make_table(engine, src, "k1 INTEGER, k2 INTEGER, v VARCHAR(10), UNIQUE (k1, k2)", rows,
               ("k1", "k2", "v"))
    make_table(engine, tgt, "k1 INTEGER, k2 INTEGER, v VARCHAR(10), UNIQUE (k1, k2)")
    extra = {"transformations": [lambda r: r]} if transformed else {}
    result = run_inline(_config(url, {"table": src}, tgt, "upsert", tmp_path,
                                key_columns=["k1", "k2"], batch_size=3, **extra))
    assert result["loaded"] == 8
    key = lambda r: tuple((v is None, v) for v in r)  # noqa: E731 - sort with NULLs
    assert sorted(fetch_rows(engine, f"SELECT k1, k2, v FROM {tgt}"), key=key) == sorted(rows, key=key)
    with engine.begin() as conn:  # again: the keyed rows update, the NULL-keyed ones append
        conn.execute(text(f"UPDATE {src} SET v = 'z'"))
    run_inline(_config(url, {"table": src}, tgt, "upsert", tmp_path, key_columns=["k1", "k2"],
                       batch_size=3, **extra))
    got = fetch_rows(engine, f"SELECT k1, k2, v FROM {tgt}")
    assert len(got) == 11 and Counter(v for *_, v in got)["z"] == 8


def test_sqlite_primary_key_holding_nulls_is_not_paged_by_keyset(tmp_path):
    url = f"sqlite:///{tmp_path / 'etl.db'}"
    engine = create_engine(url)
    src, tgt = table_names("src", "tgt")
    rows = [(None if i % 4 == 0 else f"k{i:04d}", i) for i in range(1, 401)]
    make_table(engine, src, "k TEXT PRIMARY KEY, n INTEGER", rows, ("k", "n"))
    make_table(engine, tgt, "k TEXT, n INTEGER")
    result = run_inline(_config(url, {"table": src}, tgt, "append", tmp_path, batch_size=32))
    assert result["loaded"] == 400
    assert Counter(fetch_rows(engine, f"SELECT k, n FROM {tgt}")) == Counter(rows)
    engine.dispose()


def test_the_catalog_names_only_unique_not_null_keys(db):
    from patterns._etl.catalog import stable_order, unique_keys
    from patterns._etl.endpoints import DatabaseEndpoint
    from resource_actors.database import DatabaseResourceAdapter

    backend, url, engine = db
    pk, uniq, none, query = table_names("pk", "uniq", "none", "q")
    make_table(engine, pk, "id INTEGER PRIMARY KEY, a INTEGER NOT NULL, UNIQUE (a)")
    make_table(engine, uniq, "a INTEGER NOT NULL, b INTEGER NOT NULL, c INTEGER, d INTEGER NOT NULL, "
                             "UNIQUE (c), UNIQUE (a, b), UNIQUE (c, d)")
    make_table(engine, none, "a INTEGER, b INTEGER")
    with engine.begin() as c:  # a NULL in the nullable unique column c: no key on it
        c.execute(text(f"INSERT INTO {uniq} (a, b, c, d) VALUES (1, 1, NULL, 1)"))
    big_pk, = table_names("bigpk")  # SQLite lets this key hold NULL; it holds none
    make_table(engine, big_pk, "id BIGINT PRIMARY KEY, v VARCHAR(10)")
    with engine.begin() as c:
        c.execute(text(f"INSERT INTO {big_pk} (id, v) VALUES (1, 'x'), (2, NULL)"))
    adapter = DatabaseResourceAdapter("cat", backend, url)
    conn = adapter.acquire()
    try:
        def keys(table=None, q=None):
            return unique_keys(conn, DatabaseEndpoint(backend, url, table, q))

        assert keys(pk) == [["id"], ["a"]]
        assert keys(uniq) == [["a", "b"]]
        assert keys(none) == []
        assert keys(big_pk) == [["id"]]
        assert keys(q=f"SELECT * FROM {pk}") == []
        order = stable_order(conn, DatabaseEndpoint(backend, url, none), ["a", "b"])
        assert order == {"postgresql": "etl_src.tableoid, etl_src.ctid", "sqlite": "etl_src.rowid",
                         "mysql": "1, 2"}[backend]
        if backend == "sqlite":
            text_pk, int_pk, no_rowid = table_names("t", "i", "w")
            make_table(engine, text_pk, "k TEXT PRIMARY KEY, rowid INTEGER")
            make_table(engine, int_pk, "k INTEGER PRIMARY KEY, v TEXT")
            with engine.begin() as c:
                c.execute(text(f"CREATE TABLE {no_rowid} (k TEXT PRIMARY KEY, v TEXT) "
                               "WITHOUT ROWID"))
                c.execute(text(f"INSERT INTO {text_pk} (k, rowid) VALUES (NULL, 1)"))
            assert keys(text_pk) == [] and keys(int_pk) == [["k"]]
            assert keys(no_rowid) == [["k"]]
            assert stable_order(conn, DatabaseEndpoint(backend, url, text_pk),
                                ["k", "rowid"]) == "etl_src._rowid_"
    finally:
        adapter.release(conn)
        adapter.close()


def test_dedupe_keeps_every_record_whose_key_holds_null():
    from patterns._etl.load import dedupe

    records = [{"k1": 1, "k2": None, "v": "a"}, {"k1": 1, "k2": None, "v": "b"},
               {"k1": 1, "k2": 2, "v": "c"}, {"k1": 1, "k2": 2, "v": "d"},
               {"k1": None, "k2": 2, "v": "e"}]
    assert [r["v"] for r in dedupe(records, ["k1", "k2"])] == ["a", "b", "d", "e"]
    assert [r["v"] for r in dedupe(records, ["k1"])] == ["d", "e"]
    from patterns._etl.load import last_per_key

    assert last_per_key(["x", "y", "z"], [None, None, 1]) == ["x", "y", "z"]
