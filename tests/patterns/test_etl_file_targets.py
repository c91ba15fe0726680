"""ETL into files: every format of the format layer, parts and one atomic commit, resume after
a killed worker or driver, rejects with key and reason, and the modes a file cannot take."""

from __future__ import annotations

import datetime
import decimal
import gzip
import json
import os
import uuid
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from patterns.errors import ErrorThresholdExceeded, PatternError
from patterns.etl import DatabaseETL, ETLMode, create_etl_pipeline
from tests.patterns.test_etl_support import (  # noqa: F401
    etl_driver,
    kill_actor_when,
    postgres_server,
    run_and_sigkill,
    slow,
    sqlite_db,
)

pytestmark = pytest.mark.ray

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS = 12_000


@pytest.fixture(autouse=True)
def _ray(ray_session):
    return ray_session


def items_db(tmp_path: Path, rows: int = ROWS) -> str:
    return sqlite_db(str(tmp_path / "src.db"),
                     "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, b TEXT);",
                     [(i, i * 2, f"r{i}") for i in range(1, rows + 1)],
                     "INSERT INTO items VALUES (?, ?, ?)")


def read_ids(path: Path) -> list[int]:
    """The ``id`` column of an output file, in file order."""
    name = path.name
    if name.endswith(".parquet"):
        return pq.read_table(path).column("id").to_pylist()
    if ".csv" in name:
        return pacsv.read_csv(path).column("id").to_pylist()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["id"] for line in fh if line.strip()]


def add_c(record):
    record["c"] = record["a"] + 1
    return record


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.parquet", "out.jsonl.gz"])
def test_a_table_lands_in_a_file_of_each_format_every_row_once_in_key_order(tmp_path, name):
    src = items_db(tmp_path)
    out = tmp_path / "files" / name
    result = DatabaseETL(source={"connection": src, "table": "items"},
                         target={"type": "file", "path": str(out)}, mode=ETLMode.FULL_REFRESH,
                         transformations=[add_c], batch_size=1_000, checkpoint_interval=2_500,
                         parallel_workers=2, work_dir=str(tmp_path / "w")).run_sync()
    assert (result["extracted"], result["loaded"], result["rejected"]) == (ROWS, ROWS, 0)
    assert result["output_path"] == str(out)
    assert read_ids(out) == list(range(1, ROWS + 1))
    if name.endswith(".parquet"):
        table = pq.read_table(out)
        assert table.column_names == ["id", "a", "b", "c"]
        assert table.slice(6, 1).to_pylist() == [{"id": 7, "a": 14, "b": "r7", "c": 15}]
    assert not (tmp_path / "w" / result["run_id"]).exists()  # staging gone after the commit


def test_postgres_types_round_trip_into_parquet(tmp_path, postgres_server):  # noqa: F811
    when = datetime.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=datetime.UTC)
    raw_url = postgres_server.url.replace("+psycopg", "")
    table = f"types_{uuid.uuid4().hex[:6]}"
    rows = [(1, decimal.Decimal("12345.678900"), when, "Grüße, 世界", b"\x00\xffbytes", True),
            (2, None, None, None, None, None)]
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, amount NUMERIC(12, 6), "
                     "at TIMESTAMPTZ, name TEXT, blob BYTEA, flag BOOLEAN)")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s)", rows)
    out = tmp_path / "types.parquet"
    result = create_etl_pipeline({"type": "database", "connection": postgres_server.url,
                                  "table": table}, {"type": "file", "path": str(out)},
                                 mode=ETLMode.FULL_REFRESH, work_dir=str(tmp_path / "w"))
    result = result.run_sync()
    assert result["loaded"] == 2
    back = pq.read_table(out).to_pylist()
    assert [tuple(r.values()) for r in back] == rows
    assert "secret" not in json.dumps(result, default=str)


def test_records_a_transformation_rejects_go_to_the_error_file_and_the_rest_is_written(tmp_path):
    src = items_db(tmp_path, 3_000)
    out = tmp_path / "out.jsonl"

    def picky(record):
        if record["id"] % 100 == 0:
            raise ValueError(f"no multiples of 100 ({record['id']})")
        return record

    result = DatabaseETL(source={"connection": src, "table": "items"},
                         target={"type": "file", "path": str(out)}, mode="full_refresh",
                         transformations=[picky], batch_size=500, parallel_workers=2,
                         work_dir=str(tmp_path / "w")).run_sync()
    assert (result["extracted"], result["loaded"], result["rejected"]) == (3_000, 2_970, 30)
    assert read_ids(out) == [i for i in range(1, 3_001) if i % 100]
    lines = [json.loads(line) for line in Path(result["error_file"]).read_text().splitlines()]
    assert sorted(json.loads(e["key"])["id"] for e in lines) == list(range(100, 3_001, 100))
    assert all("no multiples of 100" in e["reason"] and e["stage"] == "transform" for e in lines)


def test_modes_a_file_cannot_take_and_append_onto_an_existing_file_are_refused(tmp_path):
    src = items_db(tmp_path, 100)
    out = tmp_path / "out.jsonl"
    for mode in ("upsert", "incremental"):
        with pytest.raises(PatternError, match="database"):
            DatabaseETL(source={"connection": src, "table": "items"},
                        target={"type": "file", "path": str(out)}, mode=mode).run_sync()
    etl = DatabaseETL(source={"connection": src, "table": "items"},
                      target={"type": "file", "path": str(out)}, mode="append",
                      work_dir=str(tmp_path / "w"))
    first = etl.run_sync("append-once")
    assert first["loaded"] == 100 and read_ids(out) == list(range(1, 101))
    again = etl.run_sync("append-once")  # finished under this id: a no-op
    assert again["already_done"] and again["loaded"] == 100
    with pytest.raises(PatternError, match="exists"):
        etl.run_sync()  # a new run would have to append onto the file
    assert read_ids(out) == list(range(1, 101))


def test_a_failed_full_refresh_leaves_the_old_file_as_it_was(tmp_path):
    src = items_db(tmp_path, 2_000)
    out = tmp_path / "out.csv"
    out.write_text("id,a,b\n0,0,old\n")

    def broken(record):
        raise RuntimeError("upstream schema changed")

    with pytest.raises(ErrorThresholdExceeded):
        DatabaseETL(source={"connection": src, "table": "items"},
                    target={"type": "file", "path": str(out)}, mode="full_refresh",
                    transformations=[broken], error_threshold=0.1, batch_size=500,
                    work_dir=str(tmp_path / "w")).run_sync()
    assert out.read_text() == "id,a,b\n0,0,old\n"




def _staged_parts(work: Path, run_id: str) -> int:
    data = work / run_id / "staging" / "data"
    return len(list(data.glob("*.jsonl"))) if data.exists() else 0


def test_a_worker_killed_mid_run_leaves_every_row_once_in_the_file(tmp_path):
    src = items_db(tmp_path)
    out, work = tmp_path / "out.jsonl", tmp_path / "w"
    checkpoint = f"file-kill-worker-{uuid.uuid4().hex[:6]}"
    etl = DatabaseETL(source={"connection": src, "table": "items"},
                      target={"type": "file", "path": str(out)}, mode="full_refresh",
                      transformations=[slow], batch_size=250, checkpoint_interval=3_000,
                      parallel_workers=2, work_dir=str(work))
    thread, killed = kill_actor_when(f"etl/{checkpoint}/worker/0",
                                     lambda: _staged_parts(work, checkpoint) >= 4)
    result = etl.run_sync(checkpoint)
    thread.join(timeout=5)
    assert killed, "the worker was not killed mid-run (the run ended first)"
    assert result["loaded"] == ROWS
    assert read_ids(out) == list(range(1, ROWS + 1))


def test_a_driver_sigkilled_mid_run_resumes_and_the_file_holds_every_row_once(tmp_path):
    src = items_db(tmp_path)
    out, work = tmp_path / "out.jsonl", tmp_path / "w"
    checkpoint = f"file-kill-driver-{uuid.uuid4().hex[:6]}"
    script = etl_driver(ROOT, {"connection": src, "table": "items"},
                        {"type": "file", "path": str(out)}, "full_refresh", str(work), checkpoint)
    run_and_sigkill(script, ROOT, lambda: _staged_parts(work, checkpoint) >= 16)
    assert not out.exists()  # nothing committed yet
    result = DatabaseETL(source={"connection": src, "table": "items"},
                         target={"type": "file", "path": str(out)}, mode="full_refresh",
                         transformations=[slow], batch_size=250, checkpoint_interval=3_000,
                         parallel_workers=2,
                         work_dir=str(work)).run_sync(checkpoint)
    assert result["loaded"] == ROWS
    assert read_ids(out) == list(range(1, ROWS + 1))
