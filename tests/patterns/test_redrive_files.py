"""``FileProcessor.redrive``: CSV in, JSON Lines or Parquet out; after the transformation is
fixed, the output equals a clean run's (same records, exactly once) and a second redrive is
a no-op. Error lines are turned back into records (JSON, or CSV text with its dialect)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from fsm_actors.redrive import error_records
from patterns.file_processing import FileProcessingConfig, FileProcessor, ProcessingMode

pytestmark = pytest.mark.ray



def price(record):
    if record["qty"] % 4 == 0:
        raise ValueError(f"no price for {record['sku']}")
    return {**record, "total": record["qty"] * 2.5}


def price_fixed(record):
    return {**record, "total": record["qty"] * 2.5}


def _read(path, fmt):
    if fmt == "parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return sorted(rows, key=lambda r: r["sku"])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_file_redrive_after_the_fix_equals_a_clean_run(ray_session, tmp_path, fmt):
    src = tmp_path / "orders.csv"
    src.write_text("sku,name,qty\n" + "".join(
        f'S{i:03d},"Widget, size {i}",{i}\n' for i in range(1, 41)))

    def config(out, function=price_fixed):
        return FileProcessingConfig(input_path=str(src), output_path=str(out),
                                    transformations=[function], mode=ProcessingMode.STREAM,
                                    chunk_size=6)

    out, clean = tmp_path / f"out.{fmt}", tmp_path / f"clean.{fmt}"
    first = FileProcessor(config(out, price)).run()
    assert first["errors"] == 10
    summary = FileProcessor(config(out)).redrive()
    FileProcessor(config(clean)).run()
    again = FileProcessor(config(out)).redrive()
    assert (summary["redriven"], summary["succeeded"], summary["still_failing"]) == (10, 10, 0)
    assert _read(out, fmt) == _read(clean, fmt)
    assert len(_read(out, fmt)) == 40
    assert (again["redriven"], again["succeeded"], again["still_failing"]) == (0, 0, 0)
    assert _read(out, fmt) == _read(clean, fmt)
    assert (tmp_path / f"out.{fmt}.errors.jsonl").read_text() == ""


def test_file_redrive_keeps_what_still_fails(ray_session, tmp_path):
    src = tmp_path / "orders.csv"
    src.write_text("sku,name,qty\n" + "".join(f"S{i:03d},w,{i}\n" for i in range(1, 13)))
    out = tmp_path / "out.jsonl"
    config = FileProcessingConfig(input_path=str(src), output_path=str(out),
                                  transformations=[price], mode=ProcessingMode.STREAM)
    FileProcessor(config).run()
    summary = FileProcessor(config).redrive()  # not fixed: the same 3 fail again
    assert (summary["redriven"], summary["succeeded"], summary["still_failing"]) == (3, 0, 3)
    errors = [json.loads(x) for x in (tmp_path / "out.jsonl.errors.jsonl").open()]
    assert sorted(e["record"] for e in errors) == [4, 8, 12]
    assert all(e["file"] == str(src) and "no price" in e["reason"] for e in errors)
    assert len(_read(out, "jsonl")) == 9


def test_csv_error_lines_are_parsed_with_the_dialect_and_header(tmp_path):
    errors = tmp_path / "e.jsonl"
    lines = [
        {"file": "in.csv", "reason": "x", "raw": 'S1;"Smith; J ""Jr""";3', "line": 2},
        {"file": "in.csv", "reason": "x", "raw": "S2;too;many;fields", "line": 3},
        {"file": "in.csv", "reason": "x", "raw": '{"sku": "S3", "qty": 3}', "record": 3},
        {"file": "in.csv", "reason": "x", "raw": "{" + "x" * 5000 + "...", "record": 4},
    ]
    errors.write_text("".join(json.dumps(x) + "\n" for x in lines))
    records, kept = error_records(errors, input_format="csv", csv_delimiter=";",
                                  header=["sku", "name", "qty"])
    assert [r for r, _ in records] == [
        {"sku": "S1", "name": 'Smith; J "Jr"', "qty": "3"}, {"sku": "S3", "qty": 3}]
    assert [json.loads(k).get("line") or json.loads(k)["record"] for k in kept] == [3, 4]
