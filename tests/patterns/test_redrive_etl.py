"""Redrive of an ETL load (``DatabaseETL.run(redrive=...)``, ``fsm-actors redrive``): after
fixing a transformation, only the rejected rows are re-run, the target equals a clean run's
(same rows, exactly once), a second redrive is a no-op, and a redrive killed mid-way resumes
exactly."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from patterns.errors import PatternError
from patterns.etl import DatabaseETL
from tests.resource_actors.conftest import postgres_server  # noqa: F401

ROWS = 60
TARGET = ("CREATE TABLE {t} (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, n INTEGER, "
          "total REAL)")


def bump(record):
    """Changes the record in place before ``price`` may reject it: a redrive must re-run the
    row as the source gives it (n would be 2 from the stored, bumped record)."""
    record["n"] = record.get("n", 0) + 1


def price(record):
    if record["qty"] % 4 == 0:
        raise ValueError(f"no price for {record['name']}")
    return {**record, "total": record["qty"] * 2.5}


def price_fixed(record):
    return {**record, "total": record["qty"] * 2.5}


def price_or_die(record):
    """``price_fixed``, but the process dies at the row ``REDRIVE_DIE_AT`` names (armed in the
    subprocess only: a resume must run the same transformation)."""
    if str(record["id"]) == os.environ.get("REDRIVE_DIE_AT"):
        os._exit(9)
    return {**record, "total": record["qty"] * 2.5}


def _db(tmp_path: Path, rows: int = ROWS) -> Path:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                         [(i, f"w{i}", i) for i in range(1, rows + 1)])
        for table in ("loaded", "clean"):
            conn.execute(TARGET.format(t=table))
    return db


def _etl(db: Path, tmp_path: Path, table: str, fix: bool, *, local: bool = False,
         source: dict | None = None, **kw) -> DatabaseETL:
    url = f"sqlite:///{db}"
    return DatabaseETL(source=source or {"type": "database", "connection": url,
                                         "table": "orders"},
                       target={"type": "database", "connection": url, "table": table},
                       mode=kw.pop("mode", "append"),
                       transformations=kw.pop("transformations", None)
                       or [bump, price_fixed if fix else price],
                       error_threshold=None, batch_size=kw.pop("batch_size", 7),
                       work_dir=kw.pop("work_dir", str(tmp_path / "work")), local=local,
                       **kw)


def _rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def _rejects(db: Path, run_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM fsm_etl_rejects WHERE run_id = ?",
                            (run_id,)).fetchone()[0]


def _counts(summary: dict) -> tuple[int, int, int]:
    return summary["redriven"], summary["succeeded"], summary["still_failing"]


@pytest.mark.parametrize("checkpoint_id, local", [
    pytest.param(None, False, marks=pytest.mark.ray), ("orders-1", True)])
def test_etl_redrive_after_the_fix_equals_a_clean_run(request, tmp_path, checkpoint_id, local):
    if not local:
        request.getfixturevalue("ray_session")
    db = _db(tmp_path)
    # the redrive runs on actors (or in-process); the runs around it in-process (faster)
    first = _etl(db, tmp_path, "loaded", fix=False, local=True).run_sync(checkpoint_id)
    run_id = first["run_id"]
    assert first["rejected"] == 15 and first["loaded"] == 45
    errors = Path(first["error_file"])
    assert len(errors.read_text().splitlines()) == 15
    summary = _etl(db, tmp_path, "loaded", fix=True, local=local).run_sync(
        redrive=str(errors) if checkpoint_id is None else True, checkpoint_id=checkpoint_id)
    _etl(db, tmp_path, "clean", fix=True, local=True).run_sync()
    again = _etl(db, tmp_path, "loaded", fix=True, local=True).run_sync(redrive=run_id)
    assert _counts(summary) == (15, 15, 0) and summary["loaded"] == 15
    assert summary["run_id"] == run_id and summary["error_file"] is None
    assert _rows(db, "loaded") == _rows(db, "clean")
    assert len(_rows(db, "loaded")) == ROWS and {r[3] for r in _rows(db, "loaded")} == {1}
    assert _counts(again) == (0, 0, 0)
    assert _rows(db, "loaded") == _rows(db, "clean")
    assert _rejects(db, run_id) == 0 and not errors.exists()


def test_etl_redrive_keeps_what_still_fails_and_reads_stored_records(tmp_path):
    """A query source has no key to read rows again by: the stored records are re-run."""
    db = _db(tmp_path, rows=20)
    query = {"type": "database", "connection": f"sqlite:///{db}",
             "query": "SELECT id, name, qty FROM orders"}

    def etl(fix):
        return DatabaseETL(source=query, target={"type": "database",
                                                 "connection": f"sqlite:///{db}",
                                                 "table": "loaded"},
                           mode="append", transformations=[price_fixed if fix else price],
                           error_threshold=None, batch_size=6,
                           work_dir=str(tmp_path / "work"), local=True)

    first = etl(False).run_sync()
    same = etl(False).run_sync(redrive=first["run_id"])  # not fixed: the same 5 fail again
    assert _counts(same) == (5, 0, 5) and same["loaded"] == 0
    lines = [json.loads(x) for x in Path(same["error_file"]).read_text().splitlines()]
    assert sorted(json.loads(x["raw"])["id"] for x in lines) == [4, 8, 12, 16, 20]
    assert all("no price" in x["reason"] for x in lines)
    fixed = etl(True).run_sync(redrive=first["run_id"])
    assert _counts(fixed) == (5, 5, 0)
    assert [r[0] for r in _rows(db, "loaded")] == list(range(1, 21))
    assert all(r[4] == r[2] * 2.5 for r in _rows(db, "loaded"))
    with pytest.raises(PatternError, match="no rejects of run 'nope'"):
        etl(True).run_sync(redrive="nope")


SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.patterns.test_redrive_etl import _etl, bump, price_or_die
_etl(Path({db!r}), Path({tmp!r}), "loaded", fix=True, local=True, batch_size=3,
     transformations=[bump, price_or_die]).run_sync(redrive={run_id!r})
"""


def test_a_redrive_killed_midway_resumes_exactly(tmp_path):
    db = _db(tmp_path)
    first = _etl(db, tmp_path, "loaded", fix=False, local=True).run_sync()
    run_id = first["run_id"]
    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "crash.py"
    script.write_text(SCRIPT.format(root=root, db=str(db), tmp=str(tmp_path), run_id=run_id))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=root, env={**os.environ, "REDRIVE_DIE_AT": "40"})
    assert done.returncode == 9, done.stderr
    loaded = len(_rows(db, "loaded"))
    assert 45 < loaded < ROWS  # some batches of the redrive committed, not all
    with pytest.raises(PatternError, match="interrupted"):  # other record work: refused
        _etl(db, tmp_path, "loaded", fix=True, local=True, batch_size=3).run_sync(
            redrive=run_id)
    resumed = _etl(db, tmp_path, "loaded", fix=True, local=True, batch_size=3,
                   transformations=[bump, price_or_die]).run_sync(redrive=run_id)
    _etl(db, tmp_path, "clean", fix=True, local=True).run_sync()
    assert _counts(resumed) == (15, 15, 0)
    assert _rows(db, "loaded") == _rows(db, "clean")
    assert _rejects(db, run_id) == 0 and _rejects(db, run_id + "~redrive") == 0


def stamp(record):
    """Needs the source's types (a datetime, a Decimal): the stored JSON record has text."""
    if record["qty"] % 4 == 0:
        raise ValueError(f"no stamp for {record['id']}")
    return {**record, "year": record["at"].year, "total": record["price"] * record["qty"]}


def stamp_fixed(record):
    return {**record, "year": record["at"].year, "total": record["price"] * record["qty"]}


def test_postgresql_upsert_redrive_reads_the_rows_again_with_their_types(
        postgres_server, tmp_path):  # noqa: F811
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_server.url)
    tag = os.urandom(3).hex()
    src, tgt, clean = f"src_{tag}", f"tgt_{tag}", f"clean_{tag}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, qty INTEGER, "
                          "price NUMERIC(8,2), at TIMESTAMP)"))
        for table in (tgt, clean):
            conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, qty INTEGER, "
                              "price NUMERIC(8,2), at TIMESTAMP, year INTEGER, "
                              "total NUMERIC(10,2))"))
        conn.execute(text(f"INSERT INTO {src} SELECT i, i, i + 0.25, "
                          "TIMESTAMP '2020-01-01' + i * INTERVAL '40 days' "
                          "FROM generate_series(1, 40) i"))

    def etl(table, fn):
        url = postgres_server.plain_url
        return DatabaseETL(source={"type": "database", "connection": url, "table": src},
                           target={"type": "database", "connection": url, "table": table},
                           mode="upsert", transformations=[fn], error_threshold=None,
                           batch_size=8, work_dir=str(tmp_path / "work"), local=True)

    first = etl(tgt, stamp).run_sync("pg-orders")
    assert first["rejected"] == 10
    summary = etl(tgt, stamp_fixed).run_sync("pg-orders", redrive=True)
    etl(clean, stamp_fixed).run_sync()
    again = etl(tgt, stamp_fixed).run_sync("pg-orders", redrive=True)
    assert _counts(summary) == (10, 10, 0) and _counts(again) == (0, 0, 0)
    with engine.connect() as conn:
        rows = [conn.execute(text(f"SELECT * FROM {t} ORDER BY id")).fetchall()
                for t in (tgt, clean)]
        conn.execute(text(f"DROP TABLE {src}, {tgt}, {clean}"))
        conn.commit()
    engine.dispose()
    assert rows[0] == rows[1] and len(rows[0]) == 40


PIPELINE = """kind: etl
source: {{type: database, connection: "sqlite:///shop.db", table: orders}}
target: {{type: database, connection: "sqlite:///shop.db", table: loaded}}
mode: append
error_threshold: null
batch_size: 7
transformations: [tests.patterns.test_redrive_etl.bump, tests.patterns.test_redrive_etl.{fn}]
"""


def test_redrive_command_on_an_etl_run_id(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fsm_actors.cli.main import cli

    monkeypatch.chdir(tmp_path)
    db = _db(tmp_path)
    first = _etl(db, tmp_path, "loaded", fix=False, local=True,
                 work_dir=None).run_sync()
    (tmp_path / "load.yaml").write_text(PIPELINE.format(fn="price_fixed"))
    done = CliRunner().invoke(cli, ["redrive", first["run_id"], "load.yaml", "--local"])
    assert done.exit_code == 0, done.output
    assert "redriven 15: 15 now succeed (added to table 'loaded'" in done.output
    assert "0 still fail" in done.output
    _etl(db, tmp_path, "clean", fix=True, local=True).run_sync()
    assert _rows(db, "loaded") == _rows(db, "clean")
    again = CliRunner().invoke(cli, ["redrive", first["error_file"], "load.yaml", "--local",
                                     "--json"])
    assert again.exit_code == 0, again.output
    assert _counts(json.loads(again.output)) == (0, 0, 0)
    missing = CliRunner().invoke(cli, ["redrive", "nope", "load.yaml", "--local"])
    assert missing.exit_code == 1 and "no rejects of run 'nope'" in missing.output
    assert "Traceback" not in missing.output


def test_etl_file_target_redrive_adds_the_rows_to_the_file_once(tmp_path):
    db = _db(tmp_path, rows=30)
    out = tmp_path / "orders.jsonl"

    def etl(fn, path):
        return DatabaseETL(source={"type": "database", "connection": f"sqlite:///{db}",
                                   "table": "orders"},
                           target={"type": "file", "path": str(path)}, mode="full_refresh",
                           transformations=[fn], error_threshold=None, batch_size=4,
                           local=True)

    first = etl(price, out).run_sync()
    assert first["rejected"] == 7
    summary = etl(price_fixed, out).run_sync(redrive=first["run_id"])
    etl(price_fixed, tmp_path / "clean.jsonl").run_sync()
    again = etl(price_fixed, out).run_sync(redrive=first["run_id"])

    def rows(path):
        return sorted((json.loads(x) for x in path.read_text().splitlines()),
                      key=lambda r: r["id"])

    assert _counts(summary) == (7, 7, 0) and _counts(again) == (0, 0, 0)
    assert rows(out) == rows(tmp_path / "clean.jsonl") and len(rows(out)) == 30
    assert not list((tmp_path / ".fsm_actors").glob("redrive-*"))


@pytest.mark.ray
def test_redrive_command_on_a_file_processing_pipeline(ray_session, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fsm_actors.cli.main import cli
    from patterns.file_processing import FileProcessor
    from patterns.pipeline import load_pipeline_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("".join(
        json.dumps({"id": i, "name": f"w{i}", "qty": i}) + "\n" for i in range(1, 13)))
    spec = ("kind: file_processing\ninput_path: in.jsonl\noutput_path: out.jsonl\n"
            "transformations: [tests.patterns.test_redrive_etl.{fn}]\n")
    (tmp_path / "broken.yaml").write_text(spec.format(fn="price"))
    (tmp_path / "fixed.yaml").write_text(spec.format(fn="price_fixed"))
    FileProcessor(load_pipeline_file(tmp_path / "broken.yaml")).run()
    done = CliRunner().invoke(cli, ["redrive", "out.jsonl.errors.jsonl", "fixed.yaml"])
    assert done.exit_code == 0, done.output
    assert "redriven 3: 3 now succeed" in done.output
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in out) == list(range(1, 13))


def test_a_full_refresh_run_again_keeps_only_its_own_rejects_to_redrive(tmp_path):
    """A FULL_REFRESH reload under the same checkpoint id replaces the table: the rejects of
    the load before are void (redriving them too would load those rows twice)."""
    db = _db(tmp_path)
    for _ in range(2):
        result = _etl(db, tmp_path, "loaded", fix=False, local=True,
                      mode="full_refresh").run_sync("nightly")
        assert result["rejected"] == 15
    assert _rejects(db, "nightly") == 15
    summary = _etl(db, tmp_path, "loaded", fix=True, local=True,
                   mode="full_refresh").run_sync("nightly", redrive=True)
    _etl(db, tmp_path, "clean", fix=True, local=True).run_sync()
    assert _counts(summary) == (15, 15, 0)
    assert _rows(db, "loaded") == _rows(db, "clean")


@pytest.mark.ray
def test_a_redrive_whose_worker_dies_midway_loads_each_row_once(ray_session, tmp_path):
    db = _db(tmp_path)
    first = _etl(db, tmp_path, "loaded", fix=False, local=True).run_sync()
    marker = tmp_path / "died"

    def dies_once(record):  # kills its worker actor at row 40, the first time only
        if record["id"] == 40 and not marker.exists():
            marker.write_text("x")
            os._exit(9)
        return {**record, "total": record["qty"] * 2.5}

    summary = _etl(db, tmp_path, "loaded", fix=True, batch_size=3,
                   transformations=[bump, dies_once]).run_sync(redrive=first["run_id"])
    _etl(db, tmp_path, "clean", fix=True, local=True).run_sync()
    assert marker.exists()
    assert _counts(summary) == (15, 15, 0)
    assert _rows(db, "loaded") == _rows(db, "clean")


def test_incremental_redrive_true_finds_the_sync_run(tmp_path):
    db = _db(tmp_path, rows=20)
    first = _etl(db, tmp_path, "loaded", fix=False, local=True, mode="incremental").run_sync()
    assert first["run_id"].startswith("etl-sync-") and first["rejected"] == 5
    summary = _etl(db, tmp_path, "loaded", fix=True, local=True,
                   mode="incremental").run_sync(redrive=True)
    assert _counts(summary) == (5, 5, 0) and summary["run_id"] == first["run_id"]
    assert [r[0] for r in _rows(db, "loaded")] == list(range(1, 21))
    with pytest.raises(PatternError, match="redrive=True redrives the run of checkpoint_id"):
        _etl(db, tmp_path, "loaded", fix=True, local=True).run_sync(redrive=True)
