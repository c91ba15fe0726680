"""The pipeline-file examples of each kind run on the demo data (issue 15)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from tests.ops.ray_heads import REPO

pytestmark = pytest.mark.ray


@pytest.fixture
def examples(tmp_path):
    """A copy of examples/ with 2,000 demo orders, so runs write under tmp_path."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples", root / "examples",
                    ignore=shutil.ignore_patterns("data", "__pycache__"))
    subprocess.run([sys.executable, str(REPO / "examples" / "make_orders.py"), "--rows", "2000",
                    "--out", str(root / "examples" / "data" / "orders.csv")], check=True,
                   capture_output=True)
    return root


def _run(path, address):
    from patterns.pipeline import run_pipeline_file

    return run_pipeline_file(path, address=address)


def test_fsm_pipeline_example(ray_session, examples):
    result = _run(examples / "examples" / "orders_stream.yaml", ray_session.address)
    rows = (examples / "out" / "orders_routed.jsonl").read_text().splitlines()
    assert result["lines_read"] == 2000 and len(rows) == result["records_written"]
    assert {json.loads(r)["tier"] for r in rows} <= {"high", "standard"}
    assert result["excluded_by_state"].get("rejected", 0) == 2000 - len(rows)


def test_composition_example_loads_every_order_once(ray_session, examples):
    path = examples / "examples" / "orders_to_sqlite.yaml"
    (examples / "out").mkdir()
    with sqlite3.connect(examples / "out" / "orders.db") as conn:  # as the file's comment says
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, country TEXT,"
                     " quantity INTEGER, unit_price REAL, active BOOLEAN, score REAL,"
                     " created_at TEXT, total REAL, status TEXT)")
    first = _run(path, ray_session.address)
    again = _run(path, ray_session.address)
    with sqlite3.connect(examples / "out" / "orders.db") as conn:
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone()
        status = {s for (s,) in conn.execute("SELECT DISTINCT status FROM orders")}
    assert count == distinct == 2000 and status == {"processed"}
    assert set(first["steps"]) == set(again["steps"]) == {"clean", "load"}
