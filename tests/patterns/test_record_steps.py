"""File and ETL steps share one record pipeline (``patterns._records``): the same
``validation_schema`` keeps and rejects the same records, for the same reason, whether the
records come from a CSV file or a database table."""

from __future__ import annotations

import json
import sqlite3

import pytest

from fsm_actors.platform.errors import FSMConfigError
from patterns.etl import DatabaseETL
from patterns.file_processing import create_csv_processor

SCHEMA = {"type": "object", "required": ["id"],
          "properties": {"id": {"type": "integer"}, "a": {"type": "integer", "maximum": 10}}}
ROWS = [(1, 5), (2, None), (3, 11), (4, 3), (5, None), (6, 20)]


def _sqlite(path, rows):
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER);")
    con.executemany("INSERT INTO items VALUES (?, ?)", rows)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _etl(tmp_path, schema):
    src = _sqlite(str(tmp_path / "src.db"), ROWS)
    tgt = _sqlite(str(tmp_path / "tgt.db"), [])
    return DatabaseETL(source={"connection": src, "table": "items"},
                       target={"connection": tgt, "table": "items"}, mode="append",
                       validation_schema=schema, error_threshold=None,
                       work_dir=str(tmp_path / "work"), local=True)


def test_a_csv_file_and_a_table_are_judged_alike(ray_session, tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text("id,a\n" + "".join(f"{i},{'' if a is None else a}\n" for i, a in ROWS))
    out = tmp_path / "items.jsonl"
    file_result = create_csv_processor(str(csv), str(out), validation_schema=SCHEMA).run()
    file_kept = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    errors = map(json.loads, open(file_result["error_file"]).read().splitlines())
    file_reasons = {e["record"]: e["reason"] for e in errors}  # record n holds id n

    etl = _etl(tmp_path, SCHEMA)
    etl_result = etl.run_sync()
    con = sqlite3.connect(str(tmp_path / "tgt.db"))
    etl_kept = [r[0] for r in con.execute("SELECT id FROM items ORDER BY id")]
    etl_reasons = {json.loads(k)["id"]: reason for k, reason in
                   con.execute("SELECT record_key, reason FROM fsm_etl_rejects")}
    con.close()

    # NULL (a table's "no value") and an empty CSV cell are both a missing optional field
    assert file_kept == etl_kept == [1, 2, 4, 5]
    assert etl_result["rejected"] == 2
    assert etl_reasons == {3: "validate: a: 11 is above the maximum 10",
                           6: "validate: a: 20 is above the maximum 10"}
    assert file_reasons == etl_reasons


def test_a_misspelt_schema_keyword_is_refused_before_any_record_moves(ray_session, tmp_path):
    typo = {"properties": {"a": {"type": "integer", "maximun": 10}}}
    with pytest.raises(FSMConfigError, match="maximun") as etl_error:
        _etl(tmp_path, typo)
    assert "validation_schema.properties.a.maximun" in str(etl_error.value)
    with pytest.raises(FSMConfigError, match="maximun"):
        create_csv_processor(str(tmp_path / "x.csv"), str(tmp_path / "x.jsonl"),
                             validation_schema=typo)
