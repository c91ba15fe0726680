"""Malformed input of every format: bad records are reported with a location, the rest read."""

from __future__ import annotations

import gzip

import pytest

from fsm_actors.platform.io import MalformedRecordError, RowError, read_record_batches


def read(path, **kw) -> tuple[list[dict], list[RowError]]:
    errors: list[RowError] = []
    rows = [r for b in read_record_batches(path, on_error=errors.append, **kw) for r in b]
    return rows, errors


def test_csv_wrong_field_count(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n3\n4,5,6\n7,8\n")
    rows, errors = read(path)
    assert rows == [{"a": 1, "b": 2}, {"a": 7, "b": 8}]
    assert [(e.line, e.raw) for e in errors] == [(3, "3"), (4, "4,5,6")]
    assert "expected 2 fields, got 1" in errors[0].reason


def test_csv_undecodable_bytes(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"a,b\n1,ok\n2,\xff\xfebad\n3,fine\n")
    rows, errors = read(path)
    assert rows == [{"a": 1, "b": "ok"}, {"a": 3, "b": "fine"}]
    assert len(errors) == 1 and "UTF-8" in errors[0].reason and "\\xff" in errors[0].raw


def test_csv_value_that_breaks_the_inferred_type_keeps_every_record(tmp_path):
    path = tmp_path / "a.csv"
    pad = "x" * 100  # rows past the first 4 MB block, where the types were inferred
    body = "".join(f"{i},{pad}\n" for i in range(50000)) + "abc,y\n7,z\n"
    path.write_text("n,s\n" + body)
    rows, errors = read(path, chunk_size=10000)
    assert not errors
    assert len(rows) == 50002
    # Issue 9 item 9: one type for the whole column (text from row 1), not a switch mid-file.
    assert rows[0]["n"] == "0" and rows[50000]["n"] == "abc" and rows[50001]["n"] == "7"


def test_csv_bad_rows_across_a_type_restart_are_reported_once(tmp_path):
    path = tmp_path / "a.csv"
    body = "".join(f"{i},x\n" for i in range(30000)) + "bad\n" + "abc,y\n"
    path.write_text("n,s\n" + "1\n" + body)
    rows, errors = read(path)
    assert len(rows) == 30001
    assert sorted(e.line for e in errors) == [2, 30003]


def test_jsonl_bad_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n\n[1, 2]\n{"a": 3}\n\xff\xfe\n{"a": 4}\n')
    rows, errors = read(path)
    assert rows == [{"a": 1}, {"a": 3}, {"a": 4}]
    assert [e.line for e in errors] == [2, 4, 6]
    assert "bad JSON" in errors[0].reason
    assert "not a JSON object" in errors[1].reason
    assert "undecodable" in errors[2].reason


def test_json_array_bad_element_resyncs(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"a": 1},\n  {"a": oops},\n  {"a": 3},\n  7,\n  {"a": 4}\n]\n')
    rows, errors = read(path)
    assert rows == [{"a": 1}, {"a": 3}, {"a": 4}]
    assert [e.line for e in errors] == [3, 5]
    assert "oops" in errors[0].raw


def test_json_array_truncated(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1}, {"a": 2}, {"a": ')
    rows, errors = read(path)
    assert rows == [{"a": 1}, {"a": 2}] and len(errors) == 1


def test_xml_bad_element(tmp_path):
    path = tmp_path / "a.xml"
    path.write_bytes(
        b"<?xml version='1.0'?>\n<rows>\n<row><a>1</a></row>\n<row><a>2</b></row>\n"
        b"<row><a>\xff</a></row>\n<row><a>3</a></row>\n</rows>\n"
    )
    rows, errors = read(path)
    assert rows == [{"a": 1}, {"a": 3}]
    assert [e.line for e in errors] == [4, 5]


def test_text_undecodable_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"good\n\xc3\x28bad\nalso good\n")
    rows, errors = read(path)
    assert rows == [{"text": "good"}, {"text": "also good"}]
    assert errors[0].line == 2


def test_corrupt_gzip_and_parquet_are_errors_not_crashes(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    data = gzip.compress(b"".join(b'{"a": %d}\n' % i for i in range(1000)))
    path.write_bytes(data[: len(data) // 2])
    # Issue 10 item 8: a truncated stream is a row error naming the file, not a raw OSError.
    rows, errors = read(path)
    assert len(errors) == 1 and str(path) in errors[0].reason and "truncated" in errors[0].reason
    bad = tmp_path / "b.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(Exception, match="Parquet"):
        read(bad)


def test_without_on_error_the_first_bad_record_raises(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(MalformedRecordError, match="line 3"):
        list(read_record_batches(path))
