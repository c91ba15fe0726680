"""FileProcessor on the session Ray: the seed's examples, every format in every mode."""

from __future__ import annotations

import asyncio
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fsm_actors.platform.io import read_record_batches
from patterns.file_processing import (
    FileFormat,
    FileProcessingConfig,
    FileProcessor,
    ProcessingMode,
    create_csv_processor,
    vectorized,
)

pytestmark = pytest.mark.ray

CSV_TEXT = "id,name,active,amount\n1,alice,true,10.5\n2,bob,false,3\n3,carol,true,7\n"


def records(n: int = 300) -> list[dict]:
    return [
        {"id": i, "name": f'n{i}, "q" é', "amount": i * 1.5, "active": i % 3 == 0} for i in range(n)
    ]


def read_all(path) -> list[dict]:
    return [r for batch in read_record_batches(path) for r in batch]


def test_seed_direct_instantiation(ray_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(CSV_TEXT)
    config = FileProcessingConfig(
        input_path="data.csv",
        output_path="processed.json",
        mode=ProcessingMode.STREAM,
        transformations=[lambda record: {**record, "processed": True}],
    )
    processor = FileProcessor(config)
    result = asyncio.run(processor.process())
    out = json.loads((tmp_path / "processed.json").read_text())
    assert [r["id"] for r in out] == [1, 2, 3]
    assert all(r["processed"] is True for r in out)
    assert out[0]["amount"] == 10.5 and out[0]["active"] is True
    assert result["lines_read"] == 3 and result["records_processed"] == 3
    assert result["records_written"] == 3 and result["errors"] == 0 and result["skipped"] == 0
    assert result["files"] == 1 and result["error_file"] is None
    assert result["duration"] > 0 and result["throughput"] > 0
    assert not (tmp_path / ".fsm_actors").exists()


def test_seed_csv_factory_filter_keeps_active_rows(ray_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(CSV_TEXT)
    csv_processor = create_csv_processor(
        input_file="data.csv",
        output_file="output.json",
        transformations=[lambda row: {**row, "status": "processed"}],
        filters=[lambda row: row.get("active") == True],  # noqa: E712 - the seed's own filter
    )
    result = csv_processor.run()
    out = json.loads((tmp_path / "output.json").read_text())
    assert [r["name"] for r in out] == ["alice", "carol"]
    assert {r["status"] for r in out} == {"processed"}
    assert result["records_written"] == 2 and result["skipped"] == 1


INPUTS = [
    "csv",
    "tsv",
    "json",
    "jsonl",
    "xml",
    "parquet",
    "txt",
    "csv.gz",
    "json.zst",
    "jsonl.gz",
    "xml.zst",
    "txt.zst",
]


def write_inputs(directory) -> dict[str, list[dict]]:
    from fsm_actors.platform.io import RecordWriter

    directory.mkdir()
    expected = {}
    for i, name in enumerate(INPUTS):
        data = [{"text": f"line {j} of {name}"} for j in range(200)] if "txt" in name else records()
        with RecordWriter(directory / f"f{i:02d}.{name}") as writer:
            writer.write(data[:150])
            writer.write(data[150:])
        expected[f"f{i:02d}.{name}"] = data
    return expected


# WHOLE mode always reads on the workers, so it has no driver-read variant.
@pytest.mark.parametrize(
    "mode,read_on",
    [(m, r) for m in ProcessingMode for r in ("driver", "workers")
     if not (m is ProcessingMode.WHOLE and r == "driver")],
)
def test_round_trip_every_format_and_mode(ray_session, tmp_path, monkeypatch, mode, read_on):
    """Each input keeps its format and compression in the per-file output directory."""
    if read_on == "driver":
        monkeypatch.setattr("fsm_actors.platform.jobs.file_kind.SMALL_FILE", 0)
    expected = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(tmp_path / "in"),
            output_path=f"{out}/",
            mode=mode,
            chunk_size=64,
            workers=2,
        )
    ).run()
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, data in expected.items():
        assert read_all(out / name) == data, name
    total = sum(len(d) for d in expected.values())
    assert result["records_written"] == total == result["lines_read"]
    assert result["files"] == len(INPUTS)


def test_log_patterns_and_text_output(ray_session, tmp_path):
    lines = [
        f"2024-01-0{1 + i % 9}T10:00:00 {'ERROR' if i % 4 == 0 else 'INFO'} event {i}"
        for i in range(200)
    ]
    src = tmp_path / "app.log"
    src.write_text("\n".join(lines) + "\n")
    parsed = tmp_path / "parsed.jsonl"
    FileProcessor(
        FileProcessingConfig(
            input_path=str(src),
            output_path=str(parsed),
            chunk_size=50,
            log_config={"patterns": [r"^(?P<ts>\S+) (?P<level>[A-Z]+) (?P<message>.*)$"]},
        )
    ).run()
    rows = read_all(parsed)
    assert [r["message"] for r in rows] == [f"event {i}" for i in range(200)]
    assert sum(r["level"] == "ERROR" for r in rows) == 50


def test_vectorized_transform_expression_filter_and_csv_to_parquet(ray_session, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,price,qty\n" + "".join(f"{i},{i * 0.5},{i % 7}\n" for i in range(1000)))

    @vectorized
    def add_total(table: pa.Table) -> pa.Table:
        return table.append_column("total", pc.multiply(table["price"], table["qty"]))

    out = tmp_path / "out.parquet"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(src),
            output_path=str(out),
            chunk_size=128,
            transformations=[add_total, {"double_id": pc.field("id") * 2}],
            filters=[pc.field("qty") > 3],
        )
    ).run()
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    expected = [i for i in range(1000) if i % 7 > 3]
    assert table["id"].to_pylist() == expected
    assert table["double_id"].to_pylist() == [2 * i for i in expected]
    assert table["total"].to_pylist() == [i * 0.5 * (i % 7) for i in expected]
    assert result["skipped"] == 1000 - len(expected)


def test_annotated_table_function_is_batch_level(ray_session, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"v": i}) + "\n" for i in range(10)))

    def keep_even(table: pa.Table):
        return pc.equal(pc.bit_wise_and(table["v"], 1), 0)

    out = tmp_path / "out.jsonl"
    FileProcessor(
        FileProcessingConfig(input_path=str(src), output_path=str(out), filters=[keep_even])
    ).run()
    assert [r["v"] for r in read_all(out)] == [0, 2, 4, 6, 8]


def test_format_enum_names_and_resolution(ray_session, tmp_path):
    src = tmp_path / "notes"
    src.write_text("a\nb\n")
    processor = FileProcessor(
        FileProcessingConfig(
            input_path=str(src), output_path=str(tmp_path / "o.jsonl"), format=FileFormat.TEXT
        )
    )
    assert processor.resolved_format is FileFormat.TEXT
    assert processor.resolved_output_format is FileFormat.JSONL
    assert processor.run()["records_written"] == 2
