"""Issue 19 items 7 and 8 against the real servers: table names as the user wrote them
(case kept, another database), and values whose type the load must keep (arrays, JSON,
intervals, declared decimals)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text

from tests.patterns.test_etl_support import mariadb_server, postgres_server, run_inline  # noqa: F401


def _tag() -> str:
    return uuid.uuid4().hex[:6]


def _exec(engine, *statements):
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _fetch(engine, sql):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def _config(url, src, tgt, mode, tmp_path, target_url=None, **kw):
    return {"source": {"type": "database", "connection": url, "table": src},
            "target": {"type": "database", "connection": target_url or url, "table": tgt},
            "mode": mode, "batch_size": 100, "work_dir": str(tmp_path / "w"), **kw}


# -- item 8: names -------------------------------------------------------------------------------
def test_postgres_mixed_case_tables_are_found(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    src, tgt = f"MixedS_{_tag()}", f"MixedT_{_tag()}"
    _exec(engine, f'CREATE TABLE "{src}" (id INTEGER PRIMARY KEY, a TEXT)',
          f'CREATE TABLE "{tgt}" (id INTEGER PRIMARY KEY, a TEXT)',
          f"INSERT INTO \"{src}\" SELECT g, 'r' || g FROM generate_series(1, 250) g")
    for mode in ("upsert", "full"):
        result = run_inline(_config(postgres_server.plain_url, src, tgt, mode, tmp_path))
        assert result["loaded"] == 250
    assert _fetch(engine, f'SELECT COUNT(*), MAX(a) FROM "{tgt}"') == [(250, "r99")]
    engine.dispose()


def test_postgres_quoted_table_beside_its_lower_case_twin_uses_its_own_key(postgres_server,  # noqa: F811
                                                                           tmp_path):
    engine = create_engine(postgres_server.url)
    tag = _tag()
    src, lower, upper = f"osrc_{tag}", f"orders_{tag}", f"Orders_{tag}"
    _exec(engine, f"CREATE TABLE {src} (code TEXT PRIMARY KEY, id INTEGER, qty INTEGER)",
          f"CREATE TABLE {lower} (id INTEGER PRIMARY KEY, code TEXT, qty INTEGER)",
          f'CREATE TABLE "{upper}" (code TEXT PRIMARY KEY, id INTEGER, qty INTEGER)',
          f"INSERT INTO {src} VALUES ('a', 1, 10), ('b', 1, 20), ('c', 2, 30)",
          f"""INSERT INTO "{upper}" VALUES ('a', 9, 0)""")
    result = run_inline(_config(postgres_server.plain_url, src, upper, "upsert", tmp_path))
    assert result["loaded"] == 3
    assert _fetch(engine, f'SELECT code, id, qty FROM "{upper}" ORDER BY code') == [
        ("a", 1, 10), ("b", 1, 20), ("c", 2, 30)]
    assert _fetch(engine, f"SELECT COUNT(*) FROM {lower}") == [(0,)]
    engine.dispose()


def test_mariadb_target_in_another_database(mariadb_server, tmp_path):  # noqa: F811
    engine = create_engine(mariadb_server.url)
    tag = _tag()
    other, src = f"mother_{tag}", f"msrc_{tag}"
    _exec(engine, f"CREATE DATABASE {other}",
          f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, a VARCHAR(20))",
          f"CREATE TABLE {other}.o (id INTEGER PRIMARY KEY, a VARCHAR(20))",
          f"INSERT INTO {other}.o VALUES (1, 'old'), (500, 'gone')",
          f"INSERT INTO {src} VALUES " + ", ".join(f"({i}, 'r{i}')" for i in range(1, 151)))
    try:
        for mode in ("upsert", "full"):
            result = run_inline(_config(mariadb_server.plain_url, src, f"{other}.o", mode,
                                        tmp_path))
            assert result["loaded"] == 150
        assert _fetch(engine, f"SELECT COUNT(*), MIN(a) FROM {other}.o") == [(150, "r1")]
        assert _fetch(engine, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                      f"TABLE_SCHEMA = '{other}' AND TABLE_NAME LIKE 'o\\_\\_etl%%'") == [(0,)]
    finally:
        _exec(engine, f"DROP DATABASE {other}")
        engine.dispose()
