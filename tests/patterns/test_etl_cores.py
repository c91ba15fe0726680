"""ETL on SQLite files, in this process: the four modes, resume, rejects, config errors.

Every run goes through the same plan, step (batch + checkpoint row per transaction) and
commit the actor path uses; ``run_inline`` only replaces the job layer's driver.
"""

from __future__ import annotations

import json

import pytest

from patterns.errors import PatternError
from tests.patterns.test_etl_support import Crash, crash_once, run_inline, sqlite_db, sqlite_rows

N = 2_500
SRC_DDL = "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, updated INTEGER);"
TGT_DDL = ("CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, updated INTEGER, "
           "tag TEXT); CREATE INDEX items_b ON items (b);")
INSERT = "INSERT INTO items (id, a, b, updated) VALUES (?, ?, ?, ?)"


@pytest.fixture
def dbs(tmp_path):
    src = sqlite_db(str(tmp_path / "src.db"), SRC_DDL,
                    [(i, i * 2, f"row {i}", i // 100) for i in range(1, N + 1)], INSERT)
    tgt = sqlite_db(str(tmp_path / "tgt.db"), TGT_DDL)
    return {"src": src, "tgt": tgt, "src_path": str(tmp_path / "src.db"),
            "tgt_path": str(tmp_path / "tgt.db"), "work": str(tmp_path / "work")}


def config(dbs, mode, **kw):
    return {"source": {"type": "database", "provider": "sqlite", "connection": dbs["src"],
                       "table": "items"},
            "target": {"type": "database", "provider": "sqlite", "connection": dbs["tgt"],
                       "table": "items"},
            "mode": mode, "batch_size": 300, "checkpoint_interval": 1_000,
            "work_dir": dbs["work"], **kw}


def target_rows(dbs, sql="SELECT id, a, b, tag FROM items ORDER BY id"):
    return sqlite_rows(dbs["tgt_path"], sql)


def count_distinct(dbs):
    return sqlite_rows(dbs["tgt_path"], "SELECT COUNT(*), COUNT(DISTINCT id) FROM items")[0]


def test_append_inserts_and_a_finished_checkpoint_is_a_noop(dbs):
    cfg = config(dbs, "append", transformations=[lambda r: {**r, "tag": "t"}])
    result = run_inline(cfg, "load-1")
    assert result["extracted"] == result["loaded"] == N
    assert count_distinct(dbs) == (N, N)
    assert target_rows(dbs)[41] == (42, 84, "row 42", "t")
    again = run_inline(cfg, "load-1")
    assert again["already_done"] and again["loaded"] == N
    assert count_distinct(dbs) == (N, N)


def test_append_really_appends(dbs):
    # no primary key on this target: APPEND twice holds every row twice
    sqlite_rows(dbs["tgt_path"], "DROP TABLE items")
    sqlite_db(dbs["tgt_path"], "CREATE TABLE items (id INTEGER, a INTEGER, b TEXT, updated INTEGER)")
    run_inline(config(dbs, "append"))
    run_inline(config(dbs, "append"))
    assert count_distinct(dbs) == (2 * N, N)


def test_upsert_updates_by_key_and_inserts_the_rest(dbs):
    sqlite_db(dbs["tgt_path"], "", [(i, -1, "old", 0) for i in range(1, 101)], INSERT)
    result = run_inline(config(dbs, "upsert"))
    assert result["loaded"] == N
    assert count_distinct(dbs) == (N, N)
    assert target_rows(dbs)[0] == (1, 2, "row 1", None)


def test_upsert_needs_a_key(dbs):
    sqlite_rows(dbs["tgt_path"], "DROP TABLE items")
    sqlite_db(dbs["tgt_path"], "CREATE TABLE items (id INTEGER, a INTEGER, b TEXT, updated INTEGER)")
    with pytest.raises(PatternError, match="key_columns"):
        run_inline(config(dbs, "upsert"))


def test_full_refresh_swaps_in_a_new_table_with_its_indexes(dbs):
    sqlite_db(dbs["tgt_path"], "", [(i, 0, "stale", 0) for i in range(N + 1, N + 51)], INSERT)
    run_inline(config(dbs, "full"))
    assert count_distinct(dbs) == (N, N)
    assert sqlite_rows(dbs["tgt_path"], "SELECT MAX(id) FROM items")[0][0] == N
    names = {r[0] for r in sqlite_rows(dbs["tgt_path"], "SELECT name FROM sqlite_master")}
    assert "items_b" in names
    assert not [n for n in names if "__etl_" in n]


def test_full_refresh_killed_mid_run_leaves_the_old_table_then_resumes(dbs):
    sqlite_db(dbs["tgt_path"], "", [(i, 0, "old", 0) for i in range(1, 11)], INSERT)
    dies, disarm = crash_once(lambda record, n: record["id"] == 1_700)

    with pytest.raises(Crash):
        run_inline(config(dbs, "full", transformations=[dies]), "refresh-1")
    assert target_rows(dbs, "SELECT COUNT(*), MIN(b), MAX(b) FROM items") == [(10, "old", "old")]
    disarm()  # the process "restarts": the same transformation, which now goes through
    result = run_inline(config(dbs, "full", transformations=[dies]), "refresh-1")
    assert count_distinct(dbs) == (N, N)
    # the batches committed before the crash count once
    assert result["extracted"] == N


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_resume_after_a_crash_loads_every_row_exactly_once(dbs, mode):
    dies, disarm = crash_once(lambda record, n: record["id"] == 1_234)

    with pytest.raises(Crash):
        run_inline(config(dbs, mode, transformations=[dies]), "resume-1")
    partial = count_distinct(dbs)[0]
    assert 0 < partial < N
    disarm()  # resumed with the same transformation, which now goes through
    run_inline(config(dbs, mode, transformations=[dies]), "resume-1")
    assert count_distinct(dbs) == (N, N)
    assert target_rows(dbs)[-1] == (N, 2 * N, f"row {N}", None)


def test_incremental_reads_past_the_watermark_and_dedupes_the_boundary(dbs):
    cfg = config(dbs, "incremental", watermark_column="updated")
    first = run_inline(cfg)
    assert first["loaded"] == N
    # new rows, and a row changed at the boundary value (updated == max) after the first run
    top = N // 100
    sqlite_db(dbs["src_path"], "", [(i, 7, "new", top + 1) for i in range(N + 1, N + 11)], INSERT)
    sqlite_rows(dbs["src_path"], "SELECT 1")
    import sqlite3

    conn = sqlite3.connect(dbs["src_path"])
    conn.execute("UPDATE items SET b = 'edited' WHERE id = ?", (N,))
    conn.commit()
    conn.close()
    second = run_inline(cfg)
    boundary = sum(1 for i in range(1, N + 1) if i // 100 == top)
    assert second["extracted"] == boundary + 10
    assert count_distinct(dbs) == (N + 10, N + 10)
    assert target_rows(dbs, f"SELECT b FROM items WHERE id = {N}") == [("edited",)]
    third = run_inline(cfg)
    assert third["extracted"] == 10  # only the rows at the watermark value again
    assert count_distinct(dbs) == (N + 10, N + 10)


def test_incremental_defaults_to_the_primary_key(dbs):
    run_inline(config(dbs, "incremental"), "sync")
    sqlite_db(dbs["src_path"], "", [(N + 1, 1, "x", 0)], INSERT)
    second = run_inline(config(dbs, "incremental"), "sync")
    assert second["extracted"] == 2  # the boundary row (id = N) and the new one
    assert count_distinct(dbs) == (N + 1, N + 1)


def test_a_transformation_raising_rejects_those_rows_with_key_and_reason(dbs):
    def picky(record):
        if record["id"] % 500 == 0:
            raise ValueError(f"no multiples of 500 ({record['id']})")
        return record

    result = run_inline(config(dbs, "append", transformations=[picky]))
    assert result["rejected"] == 5 and result["loaded"] == N - 5
    rejects = sqlite_rows(dbs["tgt_path"],
                          "SELECT record_key, stage, reason FROM fsm_etl_rejects ORDER BY 1")
    assert len(rejects) == 5
    keys = sorted(json.loads(r[0])["id"] for r in rejects)
    assert keys == [500, 1000, 1500, 2000, 2500]
    assert all(r[1] == "transform" and "no multiples of 500" in r[2] for r in rejects)
    lines = open(f"{dbs['work']}/{result['run_id']}.errors.jsonl").read().splitlines()
    assert len(lines) == 5 and "no multiples of 500" in json.loads(lines[0])["reason"]


def test_field_mappings_and_validation_schema(dbs):
    sqlite_rows(dbs["tgt_path"], "DROP TABLE items")
    sqlite_db(dbs["tgt_path"], "CREATE TABLE items (item_id INTEGER PRIMARY KEY, amount INTEGER, "
              "label TEXT, updated INTEGER)")
    schema = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 4000}}}
    result = run_inline(config(dbs, "upsert", field_mappings={"id": "item_id", "a": "amount",
                                                              "b": "label"},
                               validation_schema=schema))
    assert result["rejected"] == N - 2000
    assert sqlite_rows(dbs["tgt_path"], "SELECT COUNT(*), MAX(amount) FROM items") == [(2000, 4000)]
    reason = sqlite_rows(dbs["tgt_path"], "SELECT reason FROM fsm_etl_rejects LIMIT 1")[0][0]
    assert "4000" in reason


def test_bad_input_is_a_config_error_that_says_what_to_do(dbs):
    with pytest.raises(PatternError, match="source table 'nope' does not exist"):
        run_inline({**config(dbs, "append"), "source": {"connection": dbs["src"], "table": "nope"}})
    with pytest.raises(PatternError, match="column 'missing'"):
        run_inline(config(dbs, "append", field_mappings={"b": "missing"}))
    with pytest.raises(PatternError, match="add \"table\""):
        run_inline({**config(dbs, "append"), "source": dbs["src"]})
    with pytest.raises(PatternError, match="has no column for"):
        run_inline(config(dbs, "append", transformations=[lambda r: {**r, "extra": 1}]))


def test_json_file_source_upserts_into_a_table(tmp_path, dbs):
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"id": i, "a": i, "b": f"f{i}"} for i in range(1, 51)]))
    cfg = {"source": {"type": "file", "path": str(path)},
           "target": {"connection": dbs["tgt"], "table": "items"}, "mode": "upsert",
           "work_dir": dbs["work"]}
    assert run_inline(cfg)["loaded"] == 50
    assert run_inline(cfg)["loaded"] == 50
    assert count_distinct(dbs) == (50, 50)


def test_vectorized_transformation_and_the_facade_in_process(dbs):
    import pyarrow as pa
    import pyarrow.compute as pc

    from patterns.etl import DatabaseETL
    from patterns.file_processing import Vectorized

    def tag(table: pa.Table) -> pa.Table:
        return table.append_column("tag", pc.cast(table["a"], pa.string()))

    result = DatabaseETL(config(dbs, "append", transformations=[Vectorized(tag)]),
                         local=True).run_sync("vector")
    assert result["records_processed"] == result["loaded"] == N and result["errors"] == 0
    assert target_rows(dbs)[9] == (10, 20, "row 10", "20")


def test_error_threshold_stops_the_run_and_says_where_the_rejects_are(dbs):
    from patterns.etl import DatabaseETL, ErrorThresholdExceeded

    def bad(record):
        if record["id"] % 4 == 0:
            raise ValueError("quarter")
        return record

    etl = DatabaseETL(config(dbs, "append", transformations=[bad], error_threshold=10),
                      local=True)
    with pytest.raises(ErrorThresholdExceeded, match="fsm_etl_rejects") as info:
        etl.run_sync()
    assert info.value.error_file and "quarter" in open(info.value.error_file).read()


@pytest.mark.parametrize("keyed", [True, False])
def test_a_source_query_is_paged_by_key_or_by_position(dbs, keyed):
    query = "SELECT id, a, b FROM items WHERE a % 2 = 0 ORDER BY id"
    cfg = config(dbs, "upsert", source_query=query)
    if keyed:
        cfg["key_columns"] = ["id"]
    result = run_inline(cfg, f"query-{keyed}")
    assert result["loaded"] == N
    assert count_distinct(dbs) == (N, N)


def test_text_and_composite_keys_are_paged_by_keyset(tmp_path):
    ddl = "CREATE TABLE t (k TEXT, n INTEGER, v TEXT, PRIMARY KEY (k, n));"
    rows = [(f"key{i % 37:02d}", i, f"v{i}") for i in range(1, 1001)]
    src = sqlite_db(str(tmp_path / "s.db"), ddl, rows, "INSERT INTO t VALUES (?, ?, ?)")
    tgt = sqlite_db(str(tmp_path / "t.db"), ddl)
    result = run_inline({"source": {"connection": src, "table": "t"},
                         "target": {"connection": tgt, "table": "t"}, "mode": "append",
                         "batch_size": 64, "work_dir": str(tmp_path)})
    assert result["loaded"] == 1000
    assert sqlite_rows(str(tmp_path / "t.db"), "SELECT COUNT(*), SUM(n) FROM t") == [
        (1000, sum(range(1, 1001)))]


def test_a_resume_with_other_settings_is_refused(dbs):
    def dies(record):
        if record["id"] == 700:
            raise Crash()
        return record

    with pytest.raises(Crash):
        run_inline(config(dbs, "append", transformations=[dies]), "settings")
    with pytest.raises(PatternError, match="other settings"):
        run_inline(config(dbs, "upsert"), "settings")


def test_incremental_with_nothing_new_loads_nothing(dbs):
    from patterns.etl import DatabaseETL

    etl = DatabaseETL(config(dbs, "incremental"), local=True)
    assert etl.run_sync("quiet")["loaded"] == N
    again = etl.run_sync("quiet")
    assert again["extracted"] == 1 and again["loaded"] == 1  # the watermark row, upserted
    assert count_distinct(dbs) == (N, N)


def test_the_url_scheme_names_the_database_when_the_provider_says_otherwise(tmp_path):
    from patterns._etl.endpoints import parse_endpoint

    # a PostgreSQL config pointed at an SQLite file (how the seed's blocks run on a laptop)
    ep = parse_endpoint({"type": "database", "provider": "postgresql",
                         "connection": f"sqlite:///{tmp_path}/x.db", "table": "t"}, "source")
    assert (ep.backend, ep.table) == ("sqlite", "t")
    assert parse_endpoint({"provider": "mysql", "connection": "mariadb://u:pw@h/db",
                           "table": "t"}, "target").backend == "mysql"
    assert parse_endpoint({"provider": "postgresql", "host": "h", "database": "d",
                           "table": "t"}, "target").backend == "postgresql"


def test_a_database_sync_runs_every_sync_interval_moving_only_new_rows(dbs):
    import asyncio
    import time

    from patterns.etl import create_database_sync

    sync = create_database_sync({"connection": dbs["src"], "table": "items"},
                                {"connection": dbs["tgt"], "table": "items"},
                                sync_interval=0.3, work_dir=dbs["work"], local=True)
    starts: list[float] = []

    def between(result):
        starts.append(time.monotonic())
        new = len(starts) * 1_000 + N
        sqlite_db(dbs["src_path"], "", [(i, 1, "new", 10_000 + i) for i in range(new, new + 5)],
                  INSERT)

    results = asyncio.run(sync.run_periodically(runs=3, on_result=between))
    assert results[0]["loaded"] == N
    assert count_distinct(dbs)[0] == N + 10  # the rows added after the first two runs
    # each later run: the 5 new rows and the 1 row at the saved watermark (upserted again)
    assert [r["extracted"] for r in results[1:]] == [6, 6] and len(starts) == 3
    with pytest.raises(PatternError, match="sync_interval"):
        asyncio.run(create_database_sync(dbs["src"], dbs["tgt"]).run_periodically(runs=1))


def test_rejects_keep_their_keys_through_filters_mappings_and_several_stages():
    import pyarrow as pa
    import pyarrow.compute as pc

    from patterns._etl.records import RecordPipeline

    def add(r):
        if r["id"] % 7 == 0:
            raise ValueError("seven")
        r["b"] = r["a"] * 2
        return r

    def double(table: pa.Table) -> pa.Table:
        return table.set_column(table.column_names.index("b"), "b", pc.multiply(table["b"], 2))

    def late(r):
        if r["id"] % 5 == 0:
            raise ValueError("five")
        return None  # keep the (mutated) record

    pipeline = RecordPipeline(key=["id"], filters=[lambda r: r["id"] % 3 != 0],
                              field_mappings={"x": "a"}, transformations=[add, double, late])
    out = pipeline.apply([{"id": i, "x": i} for i in range(1, 31)])
    kept = [i for i in range(1, 31) if i % 3 and i % 7 and i % 5]
    assert [r["id"] for r in out.records] == kept
    assert all(r["b"] == r["a"] * 4 for r in out.records)
    assert out.skipped == 10
    rejected = {json.loads(r.key)["id"]: r.reason for r in out.rejects}
    assert sorted(rejected) == sorted({i for i in range(1, 31) if i % 3 and (i % 7 == 0 or i % 5 == 0)})
    assert all(("seven" in v) == (k % 7 == 0) for k, v in rejected.items())
    assert [r.index for r in out.rejects if "seven" in r.reason] == [6, 13, 27]  # batch positions
