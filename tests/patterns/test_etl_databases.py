"""ETL against real servers (PostgreSQL, MariaDB) and SQLite, in this process: the four modes,
type round trips, bad credentials and unreachable servers."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pytest
from sqlalchemy import create_engine, text

from patterns.errors import PatternError
from tests.patterns.test_etl_support import (  # noqa: F401
    fetch_rows,
    make_table,
    mariadb_server,
    postgres_server,
    run_inline,
    table_names,
)
from tests.servers import free_port

UTC = dt.UTC
TYPES = {
    "postgresql": ("id INTEGER PRIMARY KEY, big BIGINT, amount NUMERIC(14,4), at TIMESTAMPTZ, "
                   "name TEXT, note TEXT, raw BYTEA, flag BOOLEAN, doc JSONB"),
    "mysql": ("id INTEGER PRIMARY KEY, big BIGINT, amount DECIMAL(14,4), at DATETIME(6), "
              "name VARCHAR(200) CHARACTER SET utf8mb4, note TEXT, raw BLOB, flag BOOLEAN, doc JSON"),
    "sqlite": ("id INTEGER PRIMARY KEY, big INTEGER, amount NUMERIC, at TEXT, name TEXT, "
               "note TEXT, raw BLOB, flag BOOLEAN, doc TEXT"),
}
SIMPLE = "id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR(100), updated INTEGER"


def simple_config(url, src, tgt, mode, work, **kw):
    return {"source": {"type": "database", "connection": url, "table": src},
            "target": {"type": "database", "connection": url, "table": tgt},
            "mode": mode, "batch_size": 100, "checkpoint_interval": 300, "work_dir": work, **kw}


def test_four_modes(db, tmp_path):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    cols = ("id", "a", "b", "updated")
    make_table(engine, src, SIMPLE, [(i, i, f"r{i}", i // 100) for i in range(1, 1001)], cols)
    make_table(engine, tgt, SIMPLE, [(i, -1, "old", 0) for i in range(1, 51)]
               + [(i, -1, "stale", 0) for i in range(5001, 5011)], cols)
    work = str(tmp_path / "work")
    count = f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {tgt}"

    up = run_inline(simple_config(url, src, tgt, "upsert", work))
    assert up["loaded"] == 1000
    assert fetch_rows(engine, count) == [(1010, 1010)]
    assert fetch_rows(engine, f"SELECT a, b FROM {tgt} WHERE id = 7") == [(7, "r7")]

    run_inline(simple_config(url, src, tgt, "full", work))
    assert fetch_rows(engine, count) == [(1000, 1000)]
    assert fetch_rows(engine, f"SELECT COUNT(*) FROM {tgt} WHERE b = 'stale'") == [(0,)]

    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {tgt} WHERE id > 500"))
    inc = run_inline(simple_config(url, src, tgt, "incremental", work, watermark_column="updated"),
                     "inc")
    assert inc["extracted"] == 1000  # first run: everything
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {src} (id, a, b, updated) VALUES (1001, 1, 'n', 10)"))
        conn.execute(text(f"UPDATE {src} SET b = 'edited' WHERE id = 1000"))
    inc2 = run_inline(simple_config(url, src, tgt, "incremental", work, watermark_column="updated"),
                      "inc")
    assert inc2["extracted"] == 2  # the boundary row (updated = 10) and the new one
    assert fetch_rows(engine, count) == [(1001, 1001)]
    assert fetch_rows(engine, f"SELECT b FROM {tgt} WHERE id = 1000") == [("edited",)]

    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {tgt}"))
    run_inline(simple_config(url, src, tgt, "append", work, key_columns=["id"]), "app")
    assert fetch_rows(engine, count) == [(1001, 1001)]
    assert run_inline(simple_config(url, src, tgt, "append", work, key_columns=["id"]),
                      "app")["already_done"]
    assert fetch_rows(engine, count) == [(1001, 1001)]


def _typed_rows(backend):
    rows = []
    for i in range(1, 301):
        at = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC) + dt.timedelta(minutes=i, microseconds=i)
        if backend == "mysql":
            at = at.replace(tzinfo=None)
        elif backend == "sqlite":
            at = at.isoformat()
        doc = json.dumps({"k": i, "list": [1, "a", None], "nested": {"x": None, "ü": "✓"}})
        rows.append((i, 2**40 + i, decimal.Decimal("1234.5678") + i, at,
                     f"héllo ✓ 日本 {i}", None if i % 2 else f"n{i}",
                     bytes([i % 256, 0, 255]), i % 3 == 0, doc))
    return rows


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_types_round_trip(db, tmp_path, mode):
    backend, url, engine = db
    src, tgt = table_names("src", "tgt")
    cols = ("id", "big", "amount", "at", "name", "note", "raw", "flag", "doc")
    rows = _typed_rows(backend)
    make_table(engine, src, TYPES[backend], rows, cols)
    make_table(engine, tgt, TYPES[backend])
    result = run_inline(simple_config(url, src, tgt, mode, str(tmp_path / "w")))
    assert result["loaded"] == len(rows) and result["rejected"] == 0
    select = f"SELECT {', '.join(cols)} FROM {{}} ORDER BY id"
    assert fetch_rows(engine, select.format(tgt)) == fetch_rows(engine, select.format(src))
    first = fetch_rows(engine, select.format(tgt))[0]
    assert first[1] == 2**40 + 1 and decimal.Decimal(str(first[2])) == decimal.Decimal("1235.5678")
    assert first[4] == "héllo ✓ 日本 1" and first[5] is None and bytes(first[6]) == b"\x01\x00\xff"
    doc = first[8] if isinstance(first[8], dict) else json.loads(first[8])
    assert doc == {"k": 1, "list": [1, "a", None], "nested": {"x": None, "ü": "✓"}}
    if backend == "postgresql":
        assert first[3] == dt.datetime(2024, 3, 1, 12, 1, 0, 1, tzinfo=UTC)


def test_postgres_to_mariadb_keeps_values(postgres_server, mariadb_server, tmp_path):  # noqa: F811
    pg, maria = create_engine(postgres_server.url), create_engine(mariadb_server.url)
    src, tgt = table_names("src", "tgt")
    cols = ("id", "big", "amount", "at", "name", "note", "raw", "flag", "doc")
    make_table(pg, src, TYPES["postgresql"], _typed_rows("postgresql"), cols)
    make_table(maria, tgt, TYPES["mysql"])
    result = run_inline({"source": {"connection": postgres_server.plain_url, "table": src},
                         "target": {"connection": mariadb_server.plain_url, "table": tgt},
                         "mode": "upsert", "work_dir": str(tmp_path / "w")})
    assert result["loaded"] == 300
    row = fetch_rows(maria, f"SELECT amount, at, name, doc, flag FROM {tgt} WHERE id = 2")[0]
    assert row[0] == decimal.Decimal("1236.5678")
    assert row[1] == dt.datetime(2024, 3, 1, 12, 2, 0, 2)  # stored in UTC
    assert row[2] == "héllo ✓ 日本 2" and json.loads(row[3])["nested"]["ü"] == "✓"
    pg.dispose()
    maria.dispose()


def test_bad_credentials_and_unreachable_servers_hide_the_password(postgres_server, tmp_path):  # noqa: F811
    s = postgres_server
    _, tgt = table_names("src", "tgt")
    engine = create_engine(s.url)
    make_table(engine, tgt, SIMPLE)
    engine.dispose()
    wrong = f"postgresql://{s.user}:not-the-password-123@{s.host}:{s.port}/{s.database}"
    with pytest.raises(PatternError) as bad:
        run_inline({"source": {"connection": wrong, "table": "x"},
                    "target": {"connection": s.plain_url, "table": tgt}, "mode": "append",
                    "work_dir": str(tmp_path)})
    message = str(bad.value)
    assert "not-the-password-123" not in message and s.password not in message
    assert "cannot connect to the source" in message and "authentication failed" in message
    down = f"postgresql://{s.user}:{s.password}@127.0.0.1:{free_port()}/{s.database}"
    with pytest.raises(PatternError, match="cannot connect to the target") as unreachable:
        run_inline({"source": {"connection": s.plain_url, "table": "x"},
                    "target": {"connection": down, "table": "y", "connect_timeout": 2},
                    "mode": "append", "work_dir": str(tmp_path)})
    assert s.password not in str(unreachable.value)


def test_full_refresh_keeps_a_serial_column_working(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    src, tgt = table_names("src", "tgt")
    make_table(engine, src, "id SERIAL PRIMARY KEY, v TEXT")
    make_table(engine, tgt, "id SERIAL PRIMARY KEY, v TEXT")
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {src} (v) SELECT 'v' || g FROM generate_series(1, 200) g"))
    url = postgres_server.plain_url
    for _ in range(2):
        run_inline(simple_config(url, src, tgt, "full", str(tmp_path)))
    with engine.begin() as conn:  # the target's sequence still exists and is owned by it
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{tgt}', 'id'), 200)"))
        conn.execute(text(f"INSERT INTO {tgt} (v) VALUES ('next')"))
    assert fetch_rows(engine, f"SELECT COUNT(*), MAX(id) FROM {tgt}") == [(201, 201)]
    engine.dispose()


def test_config_repr_hides_credentials(postgres_server):  # noqa: F811
    from patterns.etl import DatabaseETL, ETLConfig

    cfg = ETLConfig(source={"connection": postgres_server.plain_url, "table": "a"},
                    target=postgres_server.plain_url, target_table="b")
    for text_ in (repr(cfg), str(cfg), repr(DatabaseETL(cfg))):
        assert postgres_server.password not in text_ and "***" in text_


def test_postgres_upsert_copies_into_a_fresh_key_range_and_upserts_when_one_appears(
        postgres_server):  # noqa: F811
    """The fresh-range fast path (COPY when the batch's key range is empty in the target),
    and its fallback when a row of the range is there after all (here: the probe is made to
    miss it, as a concurrent writer would): the batch is upserted, nothing doubled."""
    from patterns._etl import dialect as sql
    from patterns._etl.load import Loader
    from resource_actors.database import DatabaseResourceAdapter

    _, table = table_names("src", "tgt")
    engine = create_engine(postgres_server.url)
    make_table(engine, table, SIMPLE, [(5, -5, "old", 0)], ["id", "a", "b", "updated"])
    adapter = DatabaseResourceAdapter("pg", "postgresql", postgres_server.plain_url)
    conn = adapter.acquire()
    try:
        conn.execute(sql.checkpoint_ddl("postgresql"))
        loader = Loader(conn, "postgresql", table, ["id", "a", "b", "updated"], ["id"], "run1")
        rows = [(i, i, "new", 1) for i in range(10, 20)]
        assert loader._fresh_range(["id", "a", "b", "updated"], rows)  # 10..19: empty
        loader.commit_batch("p", 0, ["id", "a", "b", "updated"], rows, [], {"seq": 1})
        clash = [(i, i, "newer", 2) for i in range(1, 12)]  # 5, 10 and 11 are there
        assert not loader._fresh_range(["id", "a", "b", "updated"], clash)

        class Blind(Loader):
            def _fresh_range(self, columns, rows):
                return True  # as if another writer added the rows after the probe

        Blind(conn, "postgresql", table, ["id", "a", "b", "updated"], ["id"], "run1") \
            .commit_batch("p", 1, ["id", "a", "b", "updated"], clash, [], {"seq": 2})
    finally:
        adapter.release(conn)
        adapter.close()
    got = fetch_rows(engine, f"SELECT id, b FROM {table} ORDER BY id")
    assert [r[0] for r in got] == list(range(1, 20))
    assert dict(got)[5] == dict(got)[10] == "newer" and dict(got)[15] == "new"
    engine.dispose()
