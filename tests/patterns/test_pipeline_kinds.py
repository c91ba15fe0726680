"""Pipeline files of every kind: fsm, etl, api, and steps that pass outputs on."""

from __future__ import annotations

import json
import sqlite3

import pytest

from patterns.errors import PatternError
from patterns.pipeline import KINDS, load_pipeline, run_pipeline_file


def _csv(path, rows):
    path.write_text("id,name,amount\n" + "".join(f"{i},n{i},{i * 10}\n" for i in range(rows)))


def test_every_kind_is_known():
    assert set(KINDS) == {"file_processing", "fsm", "etl", "api", "steps"}


def test_fsm_pipeline_file(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    (tmp_path / "job.yaml").write_text(
        "kind: fsm\n"
        "config:\n"
        "  name: tag\n"
        "  states:\n"
        "    - {name: s, is_start: true, transforms: [tag]}\n"
        "    - {name: e, is_end: true}\n"
        "  arcs: [{from: s, to: e}]\n"
        "functions:\n"
        "  tag: \"lambda d: {**d, 'tagged': d['amount'] > 100}\"\n"
        "input: in.csv\n"
        "output: out/tagged.jsonl\n"
        "local: true\n"
        "chunk_size: 20\n"
    )
    result = run_pipeline_file(tmp_path / "job.yaml")
    rows = [json.loads(x) for x in (tmp_path / "out" / "tagged.jsonl").read_text().splitlines()]
    assert result["records_written"] == 50 and len(rows) == 50
    assert [r["tagged"] for r in rows] == [i * 10 > 100 for i in range(50)]


def test_steps_compose_csv_to_json_with_retry_then_upsert(ray_session, tmp_path, monkeypatch):
    _csv(tmp_path / "data.csv", 40)
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT, amount INTEGER,"
                     " status TEXT)")
        conn.execute("INSERT INTO records VALUES (1, 'old', 0, 'stale')")
    monkeypatch.setenv("WAREHOUSE_DB", f"sqlite:///{db}")
    (tmp_path / "compose.yaml").write_text(
        "kind: steps\n"
        "steps:\n"
        "  - name: to_json\n"
        "    kind: file_processing\n"
        "    input_path: data.csv\n"
        "    output_path: out/data.jsonl\n"
        "    transformations: [\"lambda r: {**r, 'status': 'processed'}\"]\n"
        "    retry: {max_attempts: 3, backoff_strategy: exponential, initial_delay: 0.01}\n"
        "  - name: load\n"
        "    kind: etl\n"
        "    source: {type: file, path: '${steps.to_json.output_path}'}\n"
        "    target: {type: database, provider: sqlite, connection: '${WAREHOUSE_DB}',"
        " table: records}\n"
        "    mode: upsert\n"
        "    key_columns: [id]\n"
    )
    pipeline = load_pipeline(tmp_path / "compose.yaml")
    assert [j.name for j in pipeline.jobs] == ["to_json", "load"]
    result = run_pipeline_file(tmp_path / "compose.yaml")
    assert set(result["steps"]) == {"to_json", "load"}
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, name, status FROM records ORDER BY id").fetchall()
    assert len(rows) == 40 and rows[1] == (1, "n1", "processed")
    assert "sqlite" not in json.dumps(result, default=str).replace(str(db), "")


def test_missing_environment_variable_is_named_not_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_DB", raising=False)
    (tmp_path / "etl.yaml").write_text(
        "kind: etl\nsource: '${NOPE_DB}'\ntarget: sqlite:///t.db\n"
    )
    with pytest.raises(PatternError, match="NOPE_DB is not set"):
        load_pipeline(tmp_path / "etl.yaml")


def test_unknown_step_reference_is_an_error(ray_session, tmp_path):
    _csv(tmp_path / "data.csv", 3)
    (tmp_path / "s.yaml").write_text(
        "kind: steps\nsteps:\n"
        "  - {name: a, kind: file_processing, input_path: data.csv, output_path: a.jsonl}\n"
        "  - {name: b, kind: file_processing, input_path: '${steps.zzz.output_path}',"
        " output_path: b.jsonl}\n"
    )
    with pytest.raises(PatternError, match="names no earlier step"):
        run_pipeline_file(tmp_path / "s.yaml")


def test_api_pipeline_file_writes_its_results(tmp_path, monkeypatch):
    from tests.patterns.api_servers import APITestServer

    server = APITestServer().start()
    try:
        monkeypatch.setenv("API_TOKEN", "s3cr3t-token")
        (tmp_path / "api.yaml").write_text(
            "kind: api\n"
            f"base_url: {server.url}\n"
            "mode: hybrid\n"
            "auth: {type: bearer, token: '${API_TOKEN}'}\n"
            "endpoints:\n"
            "  - {name: auth, url: /auth, method: POST, body: {user: '{user}'}}\n"
            "  - {name: data, url: '/data?token={auth[token]}', depends_on: [auth],"
            " transform: \"lambda r: r['data']\"}\n"
            "input: {user: ann}\n"
            "output: out/api.json\n"
        )
        result = run_pipeline_file(tmp_path / "api.yaml")
    finally:
        server.stop()
    saved = json.loads((tmp_path / "out" / "api.json").read_text())
    assert saved["auth"] == {"token": "tok-ann"} and saved["data"] == [1, 2, 3]
    assert result["errors"] == 0 and result["output_path"].endswith("api.json")
    assert "s3cr3t-token" not in json.dumps(result, default=str)
