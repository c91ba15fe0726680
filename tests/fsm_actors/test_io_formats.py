"""The format layer without Ray: detection, typed reading, writing, compression, chunking."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pytest

from fsm_actors.platform.io import (
    ArrowWriter,
    FormatError,
    ReadOptions,
    RecordWriter,
    detect_compression,
    detect_format,
    document_frame,
    iter_chunks,
    read_arrow_batches,
    read_record_batches,
)
from fsm_actors.platform.io.writers import encode_rows

ROWS = [{"id": i, "name": f'r{i}, "x" ü', "score": i / 4, "ok": i % 2 == 0} for i in range(25)]


def flat(path, **kw):
    return [r for batch in read_record_batches(path, **kw) for r in batch]


# Parquet compresses its pages, not the file: no .parquet.gz / .parquet.zst variants.
@pytest.mark.parametrize(
    "ext,comp",
    [(e, c) for e in (".csv", ".tsv", ".json", ".jsonl", ".xml") for c in ("", ".gz", ".zst")]
    + [(".parquet", "")],
)
def test_record_round_trip(tmp_path, ext, comp):
    path = tmp_path / f"data{ext}{comp}"
    with RecordWriter(path) as writer:
        writer.write(ROWS[:10])
        writer.write(ROWS[10:])
    assert flat(path, chunk_size=7) == ROWS
    assert [len(b) for b in read_record_batches(path, chunk_size=7)] == [7, 7, 7, 4]


def test_text_records(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("first\n\nsecond\r\nthird")
    assert flat(path) == [{"text": "first"}, {"text": "second"}, {"text": "third"}]
    assert flat(path, skip_empty_lines=False, text_field_name="line")[1] == {"line": ""}


def test_csv_values_are_typed(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c,d\n1,2.5,true,x\n2,,false,y\n")
    assert flat(path) == [
        {"a": 1, "b": 2.5, "c": True, "d": "x"},
        {"a": 2, "b": None, "c": False, "d": "y"},
    ]


def test_csv_without_header_and_custom_delimiter(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1;a\n2;b\n")
    rows = flat(path, csv_has_header=False, csv_delimiter=";")
    assert rows == [{"f0": 1, "f1": "a"}, {"f0": 2, "f1": "b"}]


def test_detection_by_extension_and_content(tmp_path):
    cases = {
        "a.csv.gz": "csv",
        "b.tsv": "tsv",
        "c.ndjson": "jsonl",
        "d.pq": "parquet",
        "e.log": "log",
    }
    for name, fmt in cases.items():
        assert detect_format(tmp_path / name) == fmt
    (tmp_path / "lines.json").write_text('{"a": 1}\n{"a": 2}\n')
    assert detect_format(tmp_path / "lines.json") == "jsonl"
    (tmp_path / "array.json").write_text('[{"a": 1}]')
    assert detect_format(tmp_path / "array.json") == "json"
    sniffed = {
        "x1": b'[{"a": 1}]',
        "x2": b'{"a": 1}\n{"a": 2}\n',
        "x3": b"<rows><r/></rows>",
        "x4": b"a,b\n1,2\n3,4\n",
        "x5": b"a\tb\n1\t2\n",
        "x6": b"just words\nmore words\n",
    }
    expected = {"x1": "json", "x2": "jsonl", "x3": "xml", "x4": "csv", "x5": "tsv", "x6": "text"}
    for name, data in sniffed.items():
        (tmp_path / name).write_bytes(data)
        assert detect_format(tmp_path / name) == expected[name], name
    (tmp_path / "g").write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    assert detect_compression(tmp_path / "g") == "gzip"
    assert detect_format(tmp_path / "g") == "csv"
    pa_path = tmp_path / "p"
    with ArrowWriter(pa_path, "parquet") as writer:
        writer.write(pa.table({"a": [1]}))
    assert detect_format(pa_path) == "parquet"


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01\x02binary\x00")
    with pytest.raises(FormatError, match="blob.bin") as info:
        detect_format(path)
    assert info.value.file == str(path)
    with pytest.raises(FormatError, match="blob.bin"):
        list(read_record_batches(path))


def test_streams_and_text_files(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n2\n")
    with open(path, "rb") as fh:
        assert flat(fh, format="csv") == [{"a": 1}, {"a": 2}]
    with open(path) as fh:
        assert flat(fh) == [{"a": 1}, {"a": 2}]


def test_chunks_are_exact_and_deterministic(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"v": i}) + "\n" for i in range(1000)))
    options = ReadOptions()
    first = [(c.index, c.first_record, c.batch.num_rows) for c in iter_chunks(path, options, 300)]
    again = [(c.index, c.first_record, c.batch.num_rows) for c in iter_chunks(path, options, 300)]
    assert first == again == [(0, 0, 300), (1, 300, 300), (2, 600, 300), (3, 900, 100)]
    batches = list(read_arrow_batches(path, chunk_size=512))
    assert [b.num_rows for b in batches] == [512, 488]


def test_json_encoding_matches_python_json():
    import datetime as dt

    table = pa.table(
        {
            "i": [1, None],
            "f": [2.0, float("nan")],
            "s": ['q"\\\n\t', None],
            "b": [True, None],
            "n": [{"k": [1, 2]}, None],
            "t": [dt.datetime(2024, 5, 6, 7, 8, 9), None],
            "u": ["\x01é", "ok"],
        }
    )
    lines = encode_rows(table, "\n").to_pybytes().decode().splitlines()
    decoded = [json.loads(line) for line in lines]
    assert decoded[0] == {
        "i": 1,
        "f": 2.0,
        "s": 'q"\\\n\t',
        "b": True,
        "n": {"k": [1, 2]},
        "t": "2024-05-06T07:08:09",
        "u": "\x01é",
    }
    assert decoded[1]["i"] is None and decoded[1]["f"] != decoded[1]["f"]
    assert isinstance(decoded[0]["f"], float)


def test_fragments_join_into_valid_compressed_documents(tmp_path):
    import zstandard

    parts = []
    for i, rows in enumerate([ROWS[:5], ROWS[5:]]):
        part = tmp_path / f"p{i}"
        with ArrowWriter(part, "json", compression="zstd", fragment=True) as writer:
            writer.write(pa.Table.from_pylist(rows))
        parts.append(part.read_bytes())
    prologue, sep, epilogue = document_frame("json")
    z = zstandard.ZstdCompressor()
    blob = z.compress(prologue) + parts[0] + z.compress(sep) + parts[1] + z.compress(epilogue)
    out = tmp_path / "joined.json.zst"
    out.write_bytes(blob)
    assert flat(out) == ROWS


def test_writer_rejects_new_columns_for_csv(tmp_path):
    with RecordWriter(tmp_path / "o.csv") as writer:
        writer.write([{"a": 1}])
        writer.write([{"a": 2}])
        with pytest.raises(FormatError, match="columns"):
            writer.write([{"a": 3, "b": 4}])
    assert flat(tmp_path / "o.csv") == [{"a": 1}, {"a": 2}]


def test_missing_columns_are_written_empty_and_types_may_drift(tmp_path):
    with RecordWriter(tmp_path / "o.csv") as writer:
        writer.write([{"a": 1, "b": "x"}])
        writer.write([{"a": "two"}])
    assert (tmp_path / "o.csv").read_text().splitlines() == ['"a","b"', '1,"x"', '"two",']
