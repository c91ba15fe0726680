"""Silent data loss through the public paths (FileProcessor, create_csv_processor,
SimpleFSM.process_stream): every input record reaches the output, or the error file names it.

A. empty fields of a boolean CSV column are null, not rejected rows; a rejected row's
   ``raw`` keeps its CSV quoting;
B. floats with 16-17 significant digits (``repr``/pandas output) stay doubles in Parquet and
   JSON output;
C. ``format=JSON`` on one object per line reads every line.
"""

from __future__ import annotations

import csv
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsm_actors import SimpleFSM
from patterns.file_processing import (
    FileFormat,
    FileProcessingConfig,
    FileProcessor,
    create_csv_processor,
)

pytestmark = pytest.mark.ray

ROWS = 30_000


def _bool_csv(path, rows=ROWS) -> list[dict]:
    """A CSV whose int, float and bool columns all have empty fields; the expected rows."""
    rng = random.Random(11)
    expected = []
    with open(path, "w") as out:
        out.write("id,n,x,b\n")
        for i in range(rows):
            n = "" if rng.random() < 0.1 else str(rng.randrange(1000))
            x = "" if rng.random() < 0.1 else f"{rng.randrange(10**4)}.25"
            b = rng.choice(["true", "false", "", "True"])
            out.write(f"{i},{n},{x},{b}\n")
            expected.append(
                {
                    "id": i,
                    "n": int(n) if n else None,
                    "x": float(x) if x else None,
                    "b": {"": None, "false": False}.get(b, True),
                }
            )
    return expected


@pytest.fixture(params=["whole", "ranges"])
def read_path(request, monkeypatch):
    """The file read whole, or parsed by workers in byte ranges (a large CSV's path)."""
    if request.param == "ranges":
        import fsm_actors.platform.jobs.file_kind as file_kind

        monkeypatch.setattr(file_kind, "RANGE_FILE", 1 << 18)
        monkeypatch.setattr(file_kind, "BYTES_PER_WORKER", 1 << 18)
    return request.param


def _ranged(processor, read_path: str) -> bool:
    """Whether the plan cuts the input into byte ranges exactly when the fixture says so."""
    inputs = processor._job().plan.inputs
    return all(i.byte_range for i in inputs) == (read_path == "ranges") and (
        len(inputs) > 1 or read_path == "whole"
    )


def test_empty_bool_fields_are_null_in_parquet_and_jsonl(ray_session, tmp_path, read_path):
    src = tmp_path / "in.csv"
    expected = _bool_csv(src)
    for name in ("out.parquet", "out.jsonl"):
        out = tmp_path / name
        processor = create_csv_processor(str(src), str(out), chunk_size=4000)
        assert _ranged(processor, read_path)
        result = processor.run()
        assert result["errors"] == 0 and result["error_file"] is None, name
        assert result["lines_read"] == result["records_written"] == ROWS, name
        if name.endswith(".parquet"):
            table = pq.read_table(out)
            assert table.schema.field("b").type == pa.bool_()
            assert table.schema.field("n").type == pa.int64()
            assert table.schema.field("x").type == pa.float64()
            rows = table.to_pylist()
        else:
            rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(rows, key=lambda r: r["id"]) == expected, name


def test_rejected_csv_row_raw_keeps_its_quoting(ray_session, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(
        b'id,s,t\n1,"comma, inside",x\n2,"bad \xff, byte","q ""x"""\n3,plain,"two\nlines"\n'
        b'4,"one, two",3,"extra field"\n5,ok,ok\n'
    )
    out = tmp_path / "out.jsonl"
    result = create_csv_processor(str(src), str(out)).run()
    assert result["records_written"] == 3 and result["errors"] == 2
    entries = [json.loads(line) for line in open(result["error_file"])]
    assert [(e["line"], e["raw"]) for e in entries] == [
        (3, '2,"bad \\xff, byte","q ""x"""'),
        (6, '4,"one, two",3,"extra field"'),
    ]
    for entry in entries:  # a redrive parses the raw text back into the same fields
        (fields,) = list(csv.reader(io.StringIO(entry["raw"])))
        assert fields[1] in ("bad \\xff, byte", "one, two")
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["s"] for r in written] == ["comma, inside", "plain", "ok"]


def test_repr_floats_stay_doubles_in_parquet_and_json(ray_session, tmp_path, read_path):
    rng = random.Random(5)
    values = [rng.uniform(-1e6, 1e6) for _ in range(ROWS)]
    values[7] = 1.0
    values[8] = -352334.4703336753
    src = tmp_path / "in.csv"
    src.write_text("id,x\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values)))
    parquet, jsonl = tmp_path / "out.parquet", tmp_path / "out.jsonl"
    for out in (parquet, jsonl):
        processor = create_csv_processor(str(src), str(out), chunk_size=5000)
        assert _ranged(processor, read_path)
        result = processor.run()
        assert result["errors"] == 0 and result["records_written"] == ROWS
    table = pq.read_table(parquet)
    assert table.schema.field("x").type == pa.float64()
    assert dict(zip(table["id"].to_pylist(), table["x"].to_pylist(), strict=True)) == dict(
        enumerate(values)
    )
    rows = {r["id"]: r["x"] for r in map(json.loads, jsonl.read_text().splitlines())}
    assert rows[7] == 1.0 and isinstance(rows[7], float)
    assert rows == dict(enumerate(values))


JSON_LINES = '{"a": 1, "s": "x"}\n\n{"a": 2, "s": "y"}\n   \n{"a": 3, "s": "z"}\n'


@pytest.mark.parametrize("fmt", [FileFormat.JSON, None])
@pytest.mark.parametrize("read_on", ["driver", "workers"])
def test_json_format_on_json_lines_reads_every_line(
    ray_session, tmp_path, monkeypatch, fmt, read_on
):
    if read_on == "driver":
        monkeypatch.setattr("fsm_actors.platform.jobs.file_kind.SMALL_FILE", 0)
    src = tmp_path / "in.json"
    src.write_text(JSON_LINES)
    out = tmp_path / "out.jsonl"
    result = FileProcessor(
        FileProcessingConfig(input_path=str(src), output_path=str(out), format=fmt)
    ).run()
    assert result["lines_read"] == result["records_written"] == 3
    assert result["errors"] == 0
    assert [json.loads(x)["a"] for x in out.read_text().splitlines()] == [1, 2, 3]


def test_json_format_names_the_line_that_does_not_parse(ray_session, tmp_path):
    src = tmp_path / "in.json"
    src.write_text('{"a": 1}\n{"a": 2,\n{"a": 3}\n')
    out = tmp_path / "out.jsonl"
    result = FileProcessor(
        FileProcessingConfig(input_path=str(src), output_path=str(out), format=FileFormat.JSON)
    ).run()
    assert result["records_written"] == 2 and result["errors"] == 1
    (entry,) = [json.loads(x) for x in open(result["error_file"])]
    assert entry["line"] == 2 and entry["stage"] == "parse"
    assert [json.loads(x)["a"] for x in out.read_text().splitlines()] == [1, 3]


KEEP = {
    "name": "keep",
    "states": [{"name": "s", "is_start": True}, {"name": "e", "is_end": True}],
    "arcs": [{"from": "s", "to": "e"}],
}


@pytest.mark.parametrize("input_format", ["auto", "json"])
def test_process_stream_reads_every_line_of_a_json_file(ray_session, tmp_path, input_format):
    src, out = tmp_path / "in.json", tmp_path / "out.jsonl"
    records = [{"a": i, "only_some": i} if i % 2 else {"a": i} for i in range(7)]
    src.write_text("\n\n".join(json.dumps(r) for r in records) + "\n")
    with SimpleFSM(KEEP, local=True) as fsm:
        result = fsm.process_stream(str(src), str(out), chunk_size=3, input_format=input_format)
    assert [json.loads(x) for x in out.read_text().splitlines()] == records
    assert result["records_written"] == 7 and result["errors"] == 0
