"""Byte ranges of a CSV file: cut at record starts, every record read exactly once, one type
per column across ranges, error lines of the whole file."""

from __future__ import annotations

import gzip
import random

import pytest

from fsm_actors.platform.io import FormatError, ReadOptions, iter_chunks
from fsm_actors.platform.io.csv_ranges import (
    csv_file_types,
    merge_scans,
    plan_byte_ranges,
    read_csv_range,
    scan_csv_range,
)


def messy_csv(path, rows=3000, seed=7):
    """Quoted newlines, doubled quotes, delimiters in quotes, CRLF, blank and bad lines."""
    rng = random.Random(seed)
    lines = ["id,text,n"]
    for i in range(rows):
        kind = rng.random()
        if kind < 0.2:
            lines.append(f'{i},"multi\nline ""quoted"", with comma",{i}')
        elif kind < 0.25:
            lines.append(f'{i},"crlf\r\ninside",{i}\r')
        elif kind < 0.27:
            lines.append("")
        elif kind < 0.29:
            lines.append(f"{i},too,many,fields")
        else:
            lines.append(f"{i},plain {i},{i}")
    lines.append(f"{rows},last,C{rows}")  # the type of n changes in the last range
    path.write_text("\n".join(lines) + "\n")


def whole(path):
    rows, errors = [], []
    for chunk in iter_chunks(path, ReadOptions(), 500):
        rows += chunk.batch.to_pylist()
        errors += [(e.line, e.raw) for e in chunk.errors]
    return rows, errors


def by_ranges(path, ranges, types=None, multiline=True):
    rows, errors, schemas = [], [], set()
    for r in ranges:
        for chunk in read_csv_range(
            path,
            r.start,
            r.end,
            first_line=r.first_line,
            types=types,
            multiline=multiline,
            chunk_size=500,
        ):
            rows += chunk.batch.to_pylist()
            errors += [(e.line, e.raw) for e in chunk.errors]
            if chunk.batch.num_rows:
                schemas.add(chunk.batch.schema)
    return rows, errors, schemas


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_ranges_read_every_record_exactly_once(tmp_path, n):
    path = tmp_path / "m.csv"
    messy_csv(path)
    ranges = plan_byte_ranges(path, n, min_bytes=1)
    assert ranges == plan_byte_ranges(path, n, min_bytes=1)  # deterministic
    assert 1 <= len(ranges) <= n
    data = path.read_bytes()
    assert ranges[0].start == len(b"id,text,n\n") and ranges[-1].end == len(data)
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.end == b.start and data[b.start - 1 : b.start] == b"\n"
        assert b.first_line == data[: b.start].count(b"\n") + 1
    names, types, multiline = csv_file_types(path)
    expected_rows, expected_errors = whole(path)
    rows, errors, schemas = by_ranges(path, ranges, types, multiline)
    assert rows == expected_rows
    assert errors == expected_errors and errors
    assert len(schemas) == 1 and str(schemas.pop().field("n").type) == "string"


def test_parallel_type_scans_merge_into_the_file_types(tmp_path):
    path = tmp_path / "m.csv"
    messy_csv(path)
    ranges = plan_byte_ranges(path, 4, min_bytes=1)
    scans = [scan_csv_range(path, r.start, r.end) for r in ranges]
    assert scans[0].kinds["n"] == "int" and scans[-1].kinds["n"] == "string"
    names, types, multiline = csv_file_types(path)
    assert merge_scans(scans, names) == (types, multiline)
    # without types, a range scans the whole file itself: the same one type per column
    rows, _, schemas = by_ranges(path, ranges[:1])
    assert str(schemas.pop().field("n").type) == "string" and rows[0]["n"] == "0"


def test_declared_types_apply_to_ranges(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "".join(f"{i:03d},{i}\n" for i in range(200)))
    options = ReadOptions(csv_column_types={"a": "int64"}, csv_infer="text")
    ranges = plan_byte_ranges(path, 3, options, min_bytes=1)
    rows = [
        row
        for r in ranges
        for chunk in read_csv_range(path, r.start, r.end, options)
        for row in chunk.batch.to_pylist()
    ]
    assert rows[5] == {"a": 5, "b": "5"} and len(rows) == 200


def test_small_files_and_refusals(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("a,b\n1,2\n")
    assert len(plan_byte_ranges(path, 8)) == 1  # below min_bytes: one range
    (tmp_path / "h.csv").write_text("a,b\n")
    assert plan_byte_ranges(tmp_path / "h.csv", 4) == []
    (tmp_path / "e.csv").write_text("")
    assert plan_byte_ranges(tmp_path / "e.csv", 4) == []
    gz = tmp_path / "c.csv.gz"
    gz.write_bytes(gzip.compress(b"a\n1\n"))
    with pytest.raises(FormatError, match="compressed"):
        plan_byte_ranges(gz, 2)
    with pytest.raises(FormatError, match="ASCII"):
        plan_byte_ranges(path, 2, ReadOptions(encoding="utf-16"))
