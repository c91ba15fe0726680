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
                       work_dir=str(tmp_path / "work"), local=local, **kw)


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
