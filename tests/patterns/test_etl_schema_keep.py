"""Issue 19 items 5-6: FULL_REFRESH swaps the data, not the table. The target keeps what it
carried (grants, triggers, foreign keys both ways, comment, row-level security and policies,
index names) and the objects that depend on it (views, child tables' foreign keys)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text

from tests.patterns.test_etl_support import (  # noqa: F401
    execute,
    fetch_rows,
    mariadb_server,
    postgres_server,
    run_inline,
    sqlite_rows,
)


def _config(url, src, tgt, work):
    return {"source": {"type": "database", "connection": url, "table": src},
            "target": {"type": "database", "connection": url, "table": tgt},
            "mode": "full_refresh", "batch_size": 50, "checkpoint_interval": 100,
            "work_dir": work}


def _definition(engine, tgt):
    """What PostgreSQL says the target carries besides its rows."""
    return {
        "grants": fetch_rows(engine, "SELECT grantee, privilege_type FROM "
                             f"information_schema.role_table_grants WHERE table_name = '{tgt}' "
                             "AND grantee <> current_user ORDER BY 1, 2"),
        "triggers": fetch_rows(engine, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND "
                               f"tgrelid = '{tgt}'::regclass"),
        "constraints": fetch_rows(engine, "SELECT conname, contype FROM pg_constraint WHERE "
                                  f"conrelid = '{tgt}'::regclass ORDER BY 1"),
        "indexes": fetch_rows(engine, f"SELECT indexname FROM pg_indexes WHERE tablename = '{tgt}' "
                              "ORDER BY 1"),
        "comment": fetch_rows(engine, f"SELECT obj_description('{tgt}'::regclass, 'pg_class')"),
        "rls": fetch_rows(engine, f"SELECT relrowsecurity FROM pg_class WHERE oid = '{tgt}'::regclass"),
        "policies": fetch_rows(engine, f"SELECT policyname FROM pg_policies WHERE tablename = '{tgt}'"),
    }


def test_postgres_full_refresh_keeps_the_target_and_what_depends_on_it(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    tag = uuid.uuid4().hex[:6]
    src, tgt, ref, child, log, view = (f"src_{tag}", f"tgt_{tag}", f"ref_{tag}", f"child_{tag}",
                                       f"log_{tag}", f"v_{tag}")
    role = f"reader_{tag}"
    execute(engine,
            f"CREATE ROLE {role}",
            f"CREATE TABLE {ref} (id INTEGER PRIMARY KEY)",
            f"INSERT INTO {ref} SELECT generate_series(0, 9)",
            f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, r INTEGER, v TEXT)",
            f"INSERT INTO {src} SELECT i, i % 10, 'new' || i FROM generate_series(1, 200) i",
            f"CREATE TABLE {tgt} (id INTEGER PRIMARY KEY, r INTEGER REFERENCES {ref}(id), v TEXT)",
            f"CREATE INDEX {tgt}_v_idx ON {tgt} (v)",
            f"INSERT INTO {tgt} SELECT i, 0, 'old' FROM generate_series(1, 300) i",
            f"GRANT SELECT ON {tgt} TO {role}",
            f"COMMENT ON TABLE {tgt} IS 'the orders'",
            f"ALTER TABLE {tgt} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY p_{tag} ON {tgt} FOR SELECT TO {role} USING (r < 5)",
            f"CREATE TABLE {log} (n INTEGER)",
            f"CREATE FUNCTION f_{tag}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN INSERT INTO {log} VALUES (1); RETURN NULL; END $$",
            f"CREATE TRIGGER t_{tag} AFTER INSERT ON {tgt} FOR EACH STATEMENT EXECUTE FUNCTION f_{tag}()",
            f"CREATE VIEW {view} AS SELECT id, v FROM {tgt} WHERE id <= 10",
            f"CREATE TABLE {child} (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES {tgt}(id))",
            f"INSERT INTO {child} VALUES (1, 5), (2, 7)")
    before = _definition(engine, tgt)
    for _ in range(2):  # twice: nothing may drift from run to run
        result = run_inline(_config(postgres_server.plain_url, src, tgt, str(tmp_path / "w")))
        assert result["loaded"] == 200
        assert _definition(engine, tgt) == before
    assert fetch_rows(engine, f"SELECT count(*), min(v), max(id) FROM {tgt}") == [(200, "new1", 200)]
    assert fetch_rows(engine, f"SELECT count(*) FROM {view}") == [(10,)]
    assert fetch_rows(engine, f"SELECT parent FROM {child} ORDER BY id") == [(5,), (7,)]
    assert fetch_rows(engine, f"SELECT count(*) FROM {log}") != [(0,)]  # the trigger still fires
    leftovers = fetch_rows(engine, f"SELECT relname FROM pg_class WHERE relname LIKE '{tgt}__etl%'")
    assert leftovers == []
    engine.dispose()


def test_sqlite_full_refresh_keeps_triggers_and_views(tmp_path):
    import sqlite3

    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE tgt (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TABLE log (n INTEGER);
        CREATE TRIGGER tgt_log AFTER INSERT ON tgt BEGIN INSERT INTO log VALUES (NEW.id); END;
        CREATE VIEW small AS SELECT id, v FROM tgt WHERE id <= 10;
        INSERT INTO tgt VALUES (1, 'old'), (500, 'old');
    """)
    conn.executemany("INSERT INTO src VALUES (?, ?)", [(i, f"new{i}") for i in range(1, 101)])
    conn.commit()
    conn.close()
    url = f"sqlite:///{path}"
    result = run_inline(_config(url, "src", "tgt", str(tmp_path / "w")))
    assert result["loaded"] == 100
    assert sqlite_rows(str(path), "SELECT count(*), max(id) FROM tgt") == [(100, 100)]
    assert sqlite_rows(str(path), "SELECT name FROM sqlite_master WHERE type = 'trigger'") \
        == [("tgt_log",)]
    assert sqlite_rows(str(path), "SELECT count(*) FROM small") == [(10,)]
    assert sqlite_rows(str(path), "SELECT name FROM sqlite_master WHERE name LIKE 'tgt__etl%'") == []


def test_mariadb_full_refresh_of_a_parent_table_keeps_the_children_pointing_at_it(
        mariadb_server, tmp_path):  # noqa: F811
    engine = create_engine(mariadb_server.url)
    tag = uuid.uuid4().hex[:6]
    src, tgt, child = f"src_{tag}", f"tgt_{tag}", f"child_{tag}"
    execute(engine,
            f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, v VARCHAR(20))",
            f"CREATE TABLE {tgt} (id INTEGER PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
            f"CREATE TABLE {child} (id INTEGER PRIMARY KEY, parent INTEGER, "
            f"FOREIGN KEY (parent) REFERENCES {tgt}(id)) ENGINE=InnoDB",
            f"INSERT INTO {tgt} VALUES (1, 'old'), (2, 'old'), (900, 'old')",
            f"INSERT INTO {child} VALUES (1, 2)")
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {src} VALUES (:i, :v)"),
                      [{"i": i, "v": f"new{i}"} for i in range(1, 151)])
    result = run_inline(_config(mariadb_server.plain_url, src, tgt, str(tmp_path / "w")))
    assert result["loaded"] == 150
    assert fetch_rows(engine, f"SELECT count(*), max(id) FROM {tgt}") == [(150, 150)]
    refs = fetch_rows(engine, "SELECT REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
                      f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{child}' "
                      "AND REFERENCED_TABLE_NAME IS NOT NULL")
    assert refs == [(tgt,)]
    left = fetch_rows(engine, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                      f"TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '{tgt}\\_\\_etl%'")
    assert left == []
    engine.dispose()
