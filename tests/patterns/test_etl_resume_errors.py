"""Issue 19 items 11-13 on actors: a resume with other transformations is refused, a load
failure is one ``PatternError`` saying where and why, and leftovers of earlier runs of a
target are cleaned."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from patterns.errors import PatternError
from patterns.etl import DatabaseETL
from tests.patterns.test_etl_support import (  # noqa: F401
    execute,
    fetch_rows,
    mariadb_server,
    name_tag,
    postgres_server,
)

pytestmark = [pytest.mark.ray]


@pytest.fixture(autouse=True)
def _ray(ray_session):
    return ray_session


def _etl(url, src, tgt, mode, tmp_path, **kw):
    return DatabaseETL(source={"type": "database", "connection": url, "table": src},
                       target={"type": "database", "connection": url, "table": tgt},
                       mode=mode, batch_size=100, parallel_workers=2,
                       work_dir=str(tmp_path / "work"), **kw)


def _assert_clear(err: PatternError, password: str, *expected: str) -> str:
    message = str(err)
    assert "\x1b[" not in message and "Traceback" not in message, message
    assert "RayTaskError" not in message and password not in message, message
    assert len(message) < 1500, message
    for part in expected:
        assert part in message, message
    return message


def test_duplicate_key_on_an_append_rerun_is_one_clear_error(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    tag = name_tag()
    src, tgt = f"src_{tag}", f"tgt_{tag}"
    execute(engine, f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, v TEXT)",
            f"CREATE TABLE {tgt} (id INTEGER PRIMARY KEY, v TEXT)",
            f"INSERT INTO {tgt} VALUES (150, 'already here')",
            rows=(f"INSERT INTO {src} VALUES (:id, :v)",
                  [{"id": i, "v": f"r{i}"} for i in range(1, 301)]))
    with pytest.raises(PatternError) as err:
        _etl(postgres_server.plain_url, src, tgt, "append", tmp_path).run_sync()
    _assert_clear(err.value, postgres_server.password, repr(tgt), "duplicate key", "id 101..150",
                  "Key (id)=(150)")
    assert type(err.value) is PatternError
    engine.dispose()


@pytest.mark.parametrize("case", ["nan", "too_long"])
def test_mariadb_refusing_a_value_is_one_clear_error(mariadb_server, tmp_path, case):  # noqa: F811
    engine = create_engine(mariadb_server.url)
    tag = name_tag()
    src, tgt = f"src_{tag}", f"tgt_{tag}"
    column = "x DOUBLE" if case == "nan" else "x VARCHAR(200)"
    target_column = "x DOUBLE" if case == "nan" else "x VARCHAR(5)"
    execute(engine, f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, {column})",
            f"CREATE TABLE {tgt} (id INTEGER PRIMARY KEY, {target_column})",
            rows=(f"INSERT INTO {src} VALUES (:id, :x)",
                  [{"id": i, "x": (1.5 if case == "nan" else "ok")} for i in range(1, 301)]))
    execute(engine, f"UPDATE {src} SET x = {'1.5' if case == 'nan' else repeat_sql()} WHERE id = 222")

    def poison(record):
        if record["id"] == 222 and case == "nan":
            record["x"] = float("nan")
        return record

    with pytest.raises(PatternError) as err:
        _etl(mariadb_server.plain_url, src, tgt, "append", tmp_path,
             transformations=[poison]).run_sync()
    message = _assert_clear(err.value, mariadb_server.password, repr(tgt), "id 151..250", "column 'x'")
    print(message)
    engine.dispose()


def repeat_sql() -> str:
    return "REPEAT('y', 50)"


def _double(record):
    record["v"] = record["v"] * 2
    return record


def _triple(record):
    record["v"] = record["v"] * 3
    return record


def test_a_resume_with_other_transformations_is_refused_saying_what_changed(tmp_path):
    import sqlite3

    from tests.patterns.test_etl_support import run_inline, sqlite_db, sqlite_rows

    path = str(tmp_path / "t.db")
    url = sqlite_db(path, "CREATE TABLE src (id INTEGER PRIMARY KEY, v INTEGER);"
                    "CREATE TABLE tgt (id INTEGER PRIMARY KEY, v INTEGER);"
                    "INSERT INTO tgt VALUES (250, 0);",
                    [(i, i) for i in range(1, 301)], "INSERT INTO src VALUES (?, ?)")
    config = {"source": {"type": "database", "connection": url, "table": "src"},
              "target": {"type": "database", "connection": url, "table": "tgt"},
              "mode": "append", "batch_size": 100, "checkpoint_interval": 100,
              "work_dir": str(tmp_path / "w")}
    with pytest.raises(PatternError, match="UNIQUE"):  # stops part-way: a key is there already
        run_inline({**config, "transformations": [_double]}, checkpoint_id="c1", workers=1)
    with sqlite3.connect(path) as conn:  # the obstacle goes; the run may resume
        conn.execute("DELETE FROM tgt WHERE id = 250 AND v = 0")
    loaded = sqlite_rows(path, "SELECT count(*) FROM tgt")
    with pytest.raises(PatternError, match="transformations") as err:
        run_inline({**config, "transformations": [_triple]}, checkpoint_id="c1", workers=1)
    assert "_double" in str(err.value) and "_triple" in str(err.value)
    assert sqlite_rows(path, "SELECT count(*) FROM tgt") == loaded  # nothing more written
    run_inline({**config, "transformations": [_double]}, checkpoint_id="c1", workers=1)
    assert sqlite_rows(path, "SELECT count(*), sum(v) FROM tgt") == [(300, 300 * 301)]
