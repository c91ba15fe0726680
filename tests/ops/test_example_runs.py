"""The pipeline-file examples of each kind run on the demo data (issue 15)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.helpers.examples import copy_examples
from tests.helpers.examples import run_example as _run

pytestmark = pytest.mark.ray


@pytest.fixture
def examples(tmp_path):
    """A copy of examples/ with 2,000 demo orders, so runs write under tmp_path."""
    return copy_examples(tmp_path / "repo")


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


def test_etl_example_writes_one_parquet_file(ray_session, examples):
    import pyarrow.parquet as pq

    result = _run(examples / "examples" / "orders_to_parquet.yaml", ray_session.address)
    table = pq.read_table(examples / "out" / "orders.parquet")
    # the demo data has malformed rows on purpose: rejected with key and reason, not written
    assert table.num_rows == result["loaded"] and result["rejected"] > 0
    assert result["loaded"] + result["rejected"] == result["extracted"] == 2000
    rejects = [json.loads(line) for line in open(result["error_file"], encoding="utf-8")]
    assert len(rejects) == result["rejected"] and all(r["reason"] for r in rejects)
    rows = table.slice(0, 50).to_pylist()
    assert all(r["total"] == round(r["quantity"] * r["unit_price"], 2) for r in rows)
    ids = table.column("id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_api_example_writes_its_results(ray_session, examples, monkeypatch):
    from tests.patterns.api_servers import APITestServer

    server = APITestServer().start()
    try:
        monkeypatch.setenv("API_BASE_URL", server.url)
        monkeypatch.setenv("API_TOKEN", "dev-token-123")
        result = _run(examples / "examples" / "users_api.yaml", ray_session.address)
    finally:
        server.stop()
    saved = json.loads((examples / "out" / "users_api.json").read_text())
    assert saved["auth"] == {"token": "tok-ann"} and saved["data"] == [1, 2, 3]
    assert saved["users"] and saved["posts"] and result["errors"] == 0
    assert "dev-token-123" not in json.dumps(result, default=str) + json.dumps(saved)
