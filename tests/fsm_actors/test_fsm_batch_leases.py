"""A resource leased once per batch looks to each record like a fresh lease (issue 9 item 3)."""

from __future__ import annotations

import sqlite3

import pytest

from fsm_actors import SimpleFSM

CONFIG = {
    "name": "leases",
    "states": [
        {"name": "start", "is_start": True, "resources": ["db"], "transforms": ["store"]},
        {"name": "end", "is_end": True},
    ],
    "arcs": [{"from": "start", "to": "end"}],
}


def insert_then_maybe_fail(data, context):
    """Record 2 opens a transaction, inserts, then raises; the others insert plainly."""
    db = context.resources["db"]
    if data["id"] == 2:
        db.begin()
        db.execute("INSERT INTO t (id) VALUES (:id)", {"id": data["id"]})
        raise ValueError("record 2 fails after its insert")
    db.execute("INSERT INTO t (id) VALUES (:id)", {"id": data["id"]})
    return data


def transactional(data, context):
    """Every record begins and commits its own transaction; record 2 fails before commit."""
    db = context.resources["db"]
    db.begin()
    db.execute("INSERT INTO t (id) VALUES (:id)", {"id": data["id"]})
    if data["id"] == 2:
        raise ValueError("record 2 fails inside its transaction")
    db.commit()
    return data


def _db(tmp_path):
    path = tmp_path / "leases.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    return path


def _rows(path):
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute("SELECT id FROM t"))


@pytest.mark.parametrize("store", [insert_then_maybe_fail, transactional])
@pytest.mark.parametrize("mode", ["local", "actors"])
def test_each_record_sees_a_fresh_lease_within_a_batch(request, tmp_path, store, mode):
    if mode == "actors":
        request.getfixturevalue("ray_session")
    path = _db(tmp_path)
    resources = {"db": {"type": "database", "backend": "sqlite", "database": str(path)}}
    with SimpleFSM(CONFIG, resources=resources, custom_functions={"store": store},
                   local=mode == "local", **({"actors": 1} if mode == "actors" else {})) as fsm:
        out = fsm.process_batch([{"id": i} for i in (1, 2, 3, 4)], batch_size=4)
    assert [r["success"] for r in out] == [True, False, True, True], [r["error"] for r in out]
    assert "record 2 fails" in out[1]["error"]
    assert _rows(path) == [1, 3, 4]  # record 2's work rolled back alone; the others kept
