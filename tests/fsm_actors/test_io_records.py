"""Records and Arrow: exact conversion or none, big unsigned integers, and input whose bytes
go bad (invalid UTF-8 in JSON Lines, truncated gzip/zstd) turning into row errors."""

from __future__ import annotations

import gzip
import math
import zlib

import pyarrow as pa
import pytest
import zstandard

from fsm_actors.platform.io import RowError, read_record_batches, records_to_table


def read(path, **kw):
    errors: list[RowError] = []
    rows = [r for b in read_record_batches(path, on_error=errors.append, **kw) for r in b]
    return rows, errors


@pytest.mark.parametrize(
    "records",
    [
        [{"a": 1}, {"b": 2}],  # a missing key would become null
        [{"a": 1}, {"a": "x"}],  # mixed types would become text
        [{"a": 1}, {"a": 2.5}],  # 1 would become 1.0
        [{"a": True}, {"a": 1}],
        [{"a": [1, "a"]}],  # a mixed list would become text
        [{1: "int key"}],
        [{"a": 2**64}],  # beyond uint64
        [{"a": -1}, {"a": 2**63}],  # neither int64 nor uint64
        [{"n": {"x": 1}}, {"n": {"y": 2}}],  # nested dicts would gain null keys
        [{}],
        [{"a": 1, "b": 2}, {"b": 3, "a": 4}],  # key order would change
        [],
    ],
)
def test_records_that_arrow_would_change_are_refused(records):
    """Issue 9 item 8: ``exact=True`` gives None, so callers keep the dicts."""
    assert records_to_table(records, exact=True) is None


@pytest.mark.parametrize(
    "records",
    [
        [
            {"a": 1, "s": "x", "f": 1.5, "b": True, "n": None},
            {"a": 2, "s": "y", "f": 2.0, "b": False, "n": None},
        ],
        [{"u": 2**63}, {"u": 5}, {"u": None}],
        [{"l": [1, 2]}, {"l": []}, {"l": None}],
        [{"n": {"x": 1, "y": "a"}}, {"n": {"x": 2, "y": "b"}}],
        [{"f": float("nan")}, {"f": 1.0}],
        [{"raw": b"\x00\xff"}],
    ],
)
def test_records_that_round_trip_give_a_table(records):
    table = records_to_table(records, exact=True)
    assert table is not None and table.num_rows == len(records)
    back = table.to_pylist()
    assert repr(back) == repr(records) or all(
        math.isnan(x["f"]) and math.isnan(y["f"]) or x == y
        for x, y in zip(back, records, strict=True)
    )


def test_uint64_values_convert_without_overflow():
    """Issue 9 item 20: values >= 2**63 give a uint64 column, not an OverflowError."""
    table = records_to_table([{"u": 2**63 + 1, "v": 1}, {"u": 3, "v": 2}])
    assert table.schema.field("u").type == pa.uint64()
    assert table.to_pylist()[0]["u"] == 2**63 + 1
    mixed = records_to_table([{"u": -1}, {"u": 2**64 + 5}])
    assert mixed.to_pylist() == [{"u": "-1"}, {"u": str(2**64 + 5)}]


def test_invalid_utf8_in_json_lines_is_a_rejected_row(tmp_path):
    """Issue 9 item 12: the bad line is rejected, the rest of its block still reads."""
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "bad\xff"}\n{"a": {"n": "deep\xfe"}}\n{"a": "fine"}\n')
    rows, errors = read(path)
    assert rows == [{"a": "ok"}, {"a": "fine"}]
    assert [e.line for e in errors] == [2, 3] and all("undecodable" in e.reason for e in errors)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "txt", "json", "xml"])
@pytest.mark.parametrize("codec", ["gz", "zst"])
def test_truncated_compressed_input_keeps_what_came_before(tmp_path, fmt, codec):
    """Issue 10 item 8: a cut gzip/zstd file gives its records before the cut and one row
    error naming the file, never a raw OSError."""
    n = 120_000
    if fmt == "csv":
        body = b"a\n" + b"".join(b"%d\n" % i for i in range(n))
    elif fmt == "txt":
        body = b"".join(b"%d\n" % i for i in range(n))
    elif fmt == "json":
        body = b"[" + b",".join(b'{"a": %d}' % i for i in range(n)) + b"]"
    elif fmt == "xml":
        body = b"<r>" + b"".join(b"<i><a>%d</a></i>" % i for i in range(n)) + b"</r>"
    else:
        body = b"".join(b'{"a": %d}\n' % i for i in range(n))
    data = gzip.compress(body) if codec == "gz" else zstandard.ZstdCompressor().compress(body)
    path = tmp_path / f"in.{fmt}.{codec}"
    path.write_bytes(data[: len(data) // 2])
    rows, errors = read(path)
    assert len(errors) == 1 and str(path) in errors[0].reason
    assert "truncated" in errors[0].reason
    if codec == "gz":
        readable = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2])
    else:
        readable = zstandard.ZstdDecompressor().decompressobj().decompress(data[: len(data) // 2])
    record_bytes = len(body) / n
    # all but the decoder's last buffer (at most 256 KB) of what can be decompressed
    assert len(rows) >= (len(readable) - (256 << 10)) / record_bytes and len(rows) > 1000
    values = [int(r.get("a", r.get("text"))) for r in rows]
    assert values == list(range(len(rows)))  # in order, none changed, the cut line dropped
