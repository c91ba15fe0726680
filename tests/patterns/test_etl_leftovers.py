"""Issue 19 item 13: what a killed run leaves is cleaned by the next run of its target, a
config's dumps hold no password, ``repr(DatabaseETL)`` never raises (PostgreSQL server)."""

from __future__ import annotations

import json
import logging
import os

from sqlalchemy import create_engine, text

from patterns._etl.config import ETLConfig
from patterns.etl import DatabaseETL
from tests.patterns.test_etl_support import (  # noqa: F401
    fetch_rows,
    name_tag,
    postgres_server,
    run_and_sigkill,
    run_inline,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS = 20_000

_LOCAL_DRIVER = """
import sys
sys.path.insert(0, {root!r})
from patterns.etl import DatabaseETL
from tests.patterns.test_etl_support import slow

DatabaseETL(source={source!r}, target={target!r}, mode="full", transformations=[slow],
            batch_size=250, checkpoint_interval=5000, work_dir={work!r}, local=True).run_sync()
"""


def _staging_tables(engine, table):
    return [r[0] for r in fetch_rows(engine, "SELECT tablename FROM pg_tables WHERE tablename "
                                     "LIKE :p", {"p": f"{table}__etl_%"})]


def _runs_of(engine, table):
    rows = fetch_rows(engine, "SELECT run_id, state FROM fsm_etl_checkpoints WHERE part = '@run'")
    return [r[0] for r in rows
            if json.loads(r[1])["settings"]["target"]["table"] == table]


def test_sigkilled_full_refresh_leftovers_are_removed_by_the_next_run(postgres_server, tmp_path,  # noqa: F811
                                                                       caplog):
    engine = create_engine(postgres_server.url)
    tag = name_tag()
    src, tgt = f"lsrc_{tag}", f"ltgt_{tag}"
    with engine.begin() as conn:
        for t in (src, tgt):
            conn.execute(text(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)"))
        conn.execute(text(f"INSERT INTO {src} SELECT g, g * 2, 'r' || g FROM "
                          f"generate_series(1, {ROWS}) g"))
        conn.execute(text(f"INSERT INTO {tgt} VALUES (1, -1, 'old')"))
    source = {"connection": postgres_server.plain_url, "table": src}
    target = {"connection": postgres_server.plain_url, "table": tgt}

    def loading() -> bool:
        staged = _staging_tables(engine, tgt)
        return bool(staged) and fetch_rows(engine, f'SELECT COUNT(*) FROM "{staged[0]}"')[0][0] > 0

    script = _LOCAL_DRIVER.format(root=ROOT, source=source, target=target,
                                  work=str(tmp_path / "w"))
    run_and_sigkill(script, ROOT, loading)
    left = _staging_tables(engine, tgt)
    killed = _runs_of(engine, tgt)
    assert len(left) == 1 and len(killed) == 1  # what the killed run left

    with caplog.at_level(logging.WARNING, logger="patterns._etl.leftovers"):
        result = run_inline({"source": source, "target": target, "mode": "full",
                             "batch_size": 5000, "work_dir": str(tmp_path / "w")})
    assert result["loaded"] == ROWS
    assert _staging_tables(engine, tgt) == []
    assert _runs_of(engine, tgt) == []
    assert fetch_rows(engine, "SELECT COUNT(*) FROM fsm_etl_checkpoints WHERE run_id = :r",
                      {"r": killed[0]}) == [(0,)]
    said = [r.getMessage() for r in caplog.records if killed[0] in r.getMessage()]
    assert said and left[0] in said[0], caplog.text
    assert fetch_rows(engine, f"SELECT COUNT(*), MIN(b) FROM {tgt} WHERE id = 1") == [(1, "r1")]
    engine.dispose()


def test_a_config_dump_holds_no_password_and_still_connects(postgres_server, tmp_path):  # noqa: F811
    engine = create_engine(postgres_server.url)
    tag = name_tag()
    src, tgt = f"dsrc_{tag}", f"dtgt_{tag}"
    with engine.begin() as conn:
        for t in (src, tgt):
            conn.execute(text(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, a INTEGER)"))
        conn.execute(text(f"INSERT INTO {src} VALUES (1, 10), (2, 20)"))
    password = postgres_server.password
    config = ETLConfig(source={"connection": postgres_server.plain_url, "table": src},
                       target=postgres_server.plain_url, target_table=tgt, mode="append",
                       work_dir=str(tmp_path / "w"))
    dumped = config.model_dump_json()
    assert password not in dumped and password not in str(config.model_dump())
    assert "***" in dumped
    assert run_inline(config)["loaded"] == 2  # the config itself still has it
    assert fetch_rows(engine, f"SELECT COUNT(*) FROM {tgt}") == [(2,)]
    engine.dispose()


def test_repr_of_a_query_source_with_no_target_table_does_not_raise(postgres_server):  # noqa: F811
    etl = DatabaseETL(source={"connection": postgres_server.plain_url,
                              "query": "SELECT 1 AS id"},
                      target=postgres_server.plain_url)
    shown = repr(etl)
    assert "no table" in shown and postgres_server.password not in shown
