"""Issue 19 items 7 and 8 against the real servers: table names as the user wrote them
(case kept, another database), and values whose type the load must keep (arrays, JSON,
intervals, declared decimals)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.patterns.test_etl_support import (  # noqa: F401
    execute,
    fetch_rows,
    mariadb_server,
    name_tag,
    postgres_server,
    run_inline,
)


def _config(url, src, tgt, mode, tmp_path, target_url=None, **kw):
    return {"source": {"type": "database", "connection": url, "table": src},
            "target": {"type": "database", "connection": target_url or url, "table": tgt},
            "mode": mode, "batch_size": 100, "work_dir": str(tmp_path / "w"), **kw}


# -- item 8: names -------------------------------------------------------------------------------
def test_postgres_mixed_case_tables_are_found(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    src, tgt = f"MixedS_{name_tag()}", f"MixedT_{name_tag()}"
    execute(engine, f'CREATE TABLE "{src}" (id INTEGER PRIMARY KEY, a TEXT)',
            f'CREATE TABLE "{tgt}" (id INTEGER PRIMARY KEY, a TEXT)',
            f"INSERT INTO \"{src}\" SELECT g, 'r' || g FROM generate_series(1, 250) g")
    for mode in ("upsert", "full"):
        result = run_inline(_config(postgres_server.plain_url, src, tgt, mode, tmp_path))
        assert result["loaded"] == 250
    assert fetch_rows(engine, f'SELECT COUNT(*), MAX(a) FROM "{tgt}"') == [(250, "r99")]
    engine.dispose()


def test_postgres_quoted_table_beside_its_lower_case_twin_uses_its_own_key(postgres_server,  # noqa: F811
                                                                           tmp_path):
    engine = create_engine(postgres_server.url)
    tag = name_tag()
    src, lower, upper = f"osrc_{tag}", f"orders_{tag}", f"Orders_{tag}"
    execute(engine, f"CREATE TABLE {src} (code TEXT PRIMARY KEY, id INTEGER, qty INTEGER)",
            f"CREATE TABLE {lower} (id INTEGER PRIMARY KEY, code TEXT, qty INTEGER)",
            f'CREATE TABLE "{upper}" (code TEXT PRIMARY KEY, id INTEGER, qty INTEGER)',
            f"INSERT INTO {src} VALUES ('a', 1, 10), ('b', 1, 20), ('c', 2, 30)",
            f"""INSERT INTO "{upper}" VALUES ('a', 9, 0)""")
    result = run_inline(_config(postgres_server.plain_url, src, upper, "upsert", tmp_path))
    assert result["loaded"] == 3
    assert fetch_rows(engine, f'SELECT code, id, qty FROM "{upper}" ORDER BY code') == [
        ("a", 1, 10), ("b", 1, 20), ("c", 2, 30)]
    assert fetch_rows(engine, f"SELECT COUNT(*) FROM {lower}") == [(0,)]
    engine.dispose()


def test_mariadb_target_in_another_database(mariadb_server, tmp_path):  # noqa: F811
    engine = create_engine(mariadb_server.url)
    tag = name_tag()
    other, src = f"mother_{tag}", f"msrc_{tag}"
    execute(engine, f"CREATE DATABASE {other}",
            f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, a VARCHAR(20))",
            f"CREATE TABLE {other}.o (id INTEGER PRIMARY KEY, a VARCHAR(20))",
            f"INSERT INTO {other}.o VALUES (1, 'old'), (500, 'gone')",
            f"INSERT INTO {src} VALUES " + ", ".join(f"({i}, 'r{i}')" for i in range(1, 151)))
    try:
        for mode in ("upsert", "full"):
            result = run_inline(_config(mariadb_server.plain_url, src, f"{other}.o", mode,
                                        tmp_path))
            assert result["loaded"] == 150
        assert fetch_rows(engine, f"SELECT COUNT(*), MIN(a) FROM {other}.o") == [(150, "r1")]
        assert fetch_rows(engine, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                          f"TABLE_SCHEMA = '{other}' AND TABLE_NAME LIKE 'o\\_\\_etl%%'") == [(0,)]
    finally:
        execute(engine, f"DROP DATABASE {other}")
        engine.dispose()


# -- item 7: types -------------------------------------------------------------------------------
DOCS = ['{"a": 3}', '"a JSON string"', "true", "null", None, '{"b": 1, "c": [1, 2]}']


def _typed_source(engine, table):
    execute(engine, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, ints INTEGER[], "
            "texts TEXT[], doc JSONB, raw JSON, span INTERVAL, amount NUMERIC(12, 2))")
    with engine.begin() as conn:
        for i, doc in enumerate(DOCS, start=1):
            conn.execute(text(
                f"INSERT INTO {table} VALUES (:id, :ints, :texts, CAST(:doc AS jsonb), "
                "CAST(:raw AS json), CAST(:span AS interval), :amount)"),
                {"id": i, "ints": [i, i + 1], "texts": ["x", f"y{i}"], "doc": doc,
                 "raw": '{"k":1,"k":2}' if i == 1 else doc, "span": f"{i} days 02:00:00.5",
                 "amount": f"{i}.50"})


def test_postgres_arrays_and_json_values_load_as_they_are(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    tag = name_tag()
    src = f"tsrc_{tag}"
    _typed_source(engine, src)
    shown = ("SELECT id, CAST(ints AS text), CAST(texts AS text), CAST(doc AS text), "
             "doc IS NULL, CAST(raw AS text), span, amount FROM {} ORDER BY id")
    want = fetch_rows(engine, shown.format(src))
    assert want[3][3] == "null" and want[4][4] is True  # JSON null and SQL NULL apart
    for mode in ("append", "upsert"):
        tgt = f"ttgt_{mode}_{tag}"
        execute(engine, f"CREATE TABLE {tgt} (LIKE {src} INCLUDING ALL)")
        if mode == "upsert":  # a row of the range is there: the temp-table upsert path
            execute(engine, f"INSERT INTO {tgt} (id) VALUES (2)")
        result = run_inline(_config(postgres_server.plain_url, src, tgt, mode, tmp_path))
        assert result["loaded"] == len(DOCS) and result["rejected"] == 0
        assert fetch_rows(engine, shown.format(tgt)) == want, mode
    engine.dispose()


def test_postgres_json_into_mariadb_keeps_json(postgres_server, mariadb_server, tmp_path):  # noqa: F811
    pg, maria = create_engine(postgres_server.url), create_engine(mariadb_server.url)
    tag = name_tag()
    src, tgt = f"jsrc_{tag}", f"jtgt_{tag}"
    execute(pg, f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, doc JSONB)",
            f"""INSERT INTO {src} VALUES (1, 'true'), (2, '"s"'), (3, '{{"a": [1, false]}}'), """
            "(4, 'null'), (5, NULL)")
    execute(maria, f"CREATE TABLE {tgt} (id INTEGER PRIMARY KEY, doc JSON)")
    result = run_inline(_config(postgres_server.plain_url, src, tgt, "append", tmp_path,
                                target_url=mariadb_server.plain_url))
    assert result["loaded"] == 5
    assert fetch_rows(maria, f"SELECT id, doc FROM {tgt} ORDER BY id") == [
        (1, "true"), (2, '"s"'), (3, '{"a": [1, false]}'), (4, "null"), (5, None)]
    pg.dispose()
    maria.dispose()


def test_postgres_interval_into_sqlite(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    src = f"isrc_{name_tag()}"
    execute(engine, f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, span INTERVAL)",
            f"INSERT INTO {src} VALUES (1, '1 day 02:03:04.5'), (2, '-00:00:30'), (3, NULL)")
    path = tmp_path / "t.db"
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE spans (id INTEGER PRIMARY KEY, span TEXT)")
    result = run_inline(_config(postgres_server.plain_url, src, "spans", "append", tmp_path,
                                target_url=f"sqlite:///{path}"))
    assert result["loaded"] == 3
    with sqlite3.connect(path) as conn:
        got = conn.execute("SELECT id, span FROM spans ORDER BY id").fetchall()
    assert got == [(1, "P1DT2H3M4.5S"), (2, "-P0DT0H0M30S"), (3, None)]
    engine.dispose()


def test_postgres_into_parquet_keeps_json_text_and_declared_decimals(postgres_server,  # noqa: F811
                                                                    tmp_path):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    engine = create_engine(postgres_server.url)
    src = f"psrc_{name_tag()}"
    execute(engine, f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, doc JSONB, "
            "amount NUMERIC(12, 2))",
            f"""INSERT INTO {src} VALUES (1, '{{"a": 3}}', 1.5), (2, '{{"b": null, "c": 1}}', """
            "123.25), (3, 'null', NULL)")
    out = tmp_path / "out.parquet"
    result = run_inline({"source": {"connection": postgres_server.plain_url, "table": src},
                         "target": {"type": "file", "path": str(out)}, "mode": "full",
                         "work_dir": str(tmp_path / "w")})
    assert result["loaded"] == 3
    table = pq.read_table(out)
    assert table.schema.field("amount").type == pa.decimal128(12, 2)
    assert table.schema.field("doc").type == pa.string()
    assert table.column("doc").to_pylist() == ['{"a": 3}', '{"b": null, "c": 1}', "null"]
    assert table.column("amount").to_pylist() == [decimal.Decimal("1.50"),
                                                  decimal.Decimal("123.25"), None]
    engine.dispose()
