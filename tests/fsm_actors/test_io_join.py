"""Joining parts into one output: atomic and durable writes, Parquet stitching, one schema
policy, and compression that agrees with the output's name."""

from __future__ import annotations

import gzip
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsm_actors.platform.io import (
    ArrowWriter,
    FormatError,
    RecordWriter,
    atomic_write,
    compress_bytes,
    conform,
    join_parts,
    output_compression,
    read_record_batches,
    stitch_parquet,
    stitchable,
    unify_schemas,
    unify_types,
)


def flat(path, **kw):
    return [r for b in read_record_batches(path, **kw) for r in b]


def parquet_parts(tmp_path, n=3, rows=2000, row_group_size=700, **write):
    parts = []
    for i in range(n):
        table = pa.table(
            {
                "id": pa.array(range(i * rows, (i + 1) * rows), pa.int64()),
                "name": [f"n{j % 13}" for j in range(rows)],
                "nested": [{"k": j} if j % 3 else None for j in range(rows)],
            }
        )
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(table, path, row_group_size=row_group_size, **write)
        parts.append(path)
    return parts


def test_stitched_parquet_holds_every_row_group_unchanged(tmp_path):
    parts = parquet_parts(tmp_path, compression="zstd", write_page_index=True)
    target = tmp_path / "out.parquet"
    assert stitch_parquet(target, parts) == 6000
    stitched = pq.ParquetFile(target)
    assert stitched.metadata.num_row_groups == 9
    expected = pa.concat_tables([pq.read_table(p) for p in parts])
    assert stitched.read().equals(expected)
    # row groups are readable one by one (their offsets were moved correctly)
    assert stitched.read_row_group(7)["id"][0].as_py() == 2000 * 2 + 700
    assert stitched.metadata.row_group(4).column(0).compression == "ZSTD"


def test_stitch_refuses_parts_that_differ(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), a)
    pq.write_table(pa.table({"x": ["s"]}), b)
    assert not stitchable([a, b])
    with pytest.raises(FormatError, match="another schema"):
        stitch_parquet(tmp_path / "o.parquet", [a, b])
    assert not (tmp_path / "o.parquet").exists()
    assert not stitchable([a], codec="zstd")  # written with snappy pages


def test_join_parts_parquet_stitches_or_unifies(tmp_path):
    parts = parquet_parts(tmp_path, n=2)
    join_parts(tmp_path / "s.parquet", parts, "parquet")
    assert pq.read_table(tmp_path / "s.parquet").num_rows == 4000
    a, b, c = (tmp_path / f"{n}.parquet" for n in "abc")
    pq.write_table(pa.table({"x": [1, 2], "y": [1, 2]}), a)
    pq.write_table(pa.table({"x": [2.5], "y": ["t"]}), b)
    pq.write_table(pa.table({"z": [True]}), c)
    join_parts(tmp_path / "u.parquet", [a, b, c], "parquet", compression="zstd")
    out = pq.read_table(tmp_path / "u.parquet")
    assert out.schema.field("x").type == pa.float64()
    assert out.schema.field("y").type == pa.string()
    assert out.to_pylist() == [
        {"x": 1.0, "y": "1", "z": None},
        {"x": 2.0, "y": "2", "z": None},
        {"x": 2.5, "y": "t", "z": None},
        {"x": None, "y": None, "z": True},
    ]


def test_stitching_is_faster_than_decode_and_reencode(tmp_path):
    """Prints the ratio (no timing assert): the point of stitching."""
    parts = parquet_parts(tmp_path, n=4, rows=100_000, row_group_size=None, compression="snappy")
    t0 = time.perf_counter()
    join_parts(tmp_path / "s.parquet", parts, "parquet", compression="snappy")
    stitched = time.perf_counter() - t0
    t0 = time.perf_counter()
    with pq.ParquetWriter(tmp_path / "r.parquet", pq.read_schema(parts[0])) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part))
    rewritten = time.perf_counter() - t0
    print(f"stitch {stitched:.3f}s vs decode+re-encode {rewritten:.3f}s")
    assert pq.read_table(tmp_path / "s.parquet").equals(pq.read_table(tmp_path / "r.parquet"))


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "xml"])
def test_join_parts_byte_formats(tmp_path, fmt, compression):
    rows = [{"a": i, "b": f"v{i}"} for i in range(9)]
    parts = []
    for i in range(3):
        part = tmp_path / f"p{i}"
        with ArrowWriter(part, fmt, compression=compression, fragment=True) as writer:
            writer.write(pa.Table.from_pylist(rows[i * 3 : (i + 1) * 3]))
        parts.append(part)
    suffix = {None: "", "gzip": ".gz", "zstd": ".zst"}[compression]
    target = tmp_path / f"out.{fmt}{suffix}"
    join_parts(target, parts, fmt, compression=compression, columns=[["a", "b"]] * 3)
    assert flat(target) == rows
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_join_parts_csv_with_other_columns_writes_the_union(tmp_path):
    parts = []
    for i, table in enumerate(
        [pa.table({"a": [1], "b": ["x"]}), pa.table({"c": [True], "a": [2]})]
    ):
        part = tmp_path / f"p{i}.csv"
        with ArrowWriter(part, "csv", fragment=True) as writer:
            writer.write(table)
        parts.append(part)
    join_parts(tmp_path / "o.csv", parts, "csv", columns=[["a", "b"], ["c", "a"]])
    assert (tmp_path / "o.csv").read_text().splitlines() == [
        '"a","b","c"',
        '"1","x",',
        '"2",,"true"',
    ]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_writers_fsync_on_close(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    for fmt in ("parquet", "jsonl"):
        with ArrowWriter(tmp_path / f"p.{fmt}", fmt, fsync=True) as writer:
            writer.write(pa.table({"a": [1]}))
    with ArrowWriter(tmp_path / "n.jsonl", "jsonl") as writer:
        writer.write(pa.table({"a": [1]}))
    atomic_write(tmp_path / "x.txt", lambda tmp: tmp.write_text("x"))
    assert str(tmp_path / "p.parquet") in synced and str(tmp_path / "p.jsonl") in synced
    assert str(tmp_path / "n.jsonl") not in synced
    # the temp file before its rename, then the directory that holds the new name
    assert any(p.startswith(str(tmp_path / ".x.txt.")) for p in synced) and str(tmp_path) in synced


def test_compress_bytes_are_whole_members():
    assert gzip.decompress(compress_bytes(b"abc", "gzip") + compress_bytes(b"d", "gz")) == b"abcd"
    assert compress_bytes(b"", "zstd") == b"" and compress_bytes(b"x", None) == b"x"


def test_compression_must_agree_with_the_output_name(tmp_path):
    """Issue 9 item 24: zstd bytes under a .gz name are refused; no compression follows it."""
    with pytest.raises(FormatError, match=r"\.gz.*\.zst"):
        RecordWriter(tmp_path / "out.jsonl.gz", compression="zstd")
    assert not (tmp_path / "out.jsonl.gz").exists()
    assert output_compression("out.jsonl.gz", None) == "gzip"
    assert output_compression("out.jsonl.gz", "gz") == "gzip"
    assert output_compression("out.jsonl", "zstd") == "zstd"
    assert output_compression("out.parquet", "zstd", "parquet") == "zstd"
    with RecordWriter(tmp_path / "ok.jsonl.zst", compression="zstd") as writer:
        writer.write([{"a": 1}])
    assert flat(tmp_path / "ok.jsonl.zst") == [{"a": 1}]


def test_one_schema_policy():
    assert unify_types([pa.null(), pa.int64()]) == pa.int64()
    assert unify_types([pa.int8(), pa.int32()]) == pa.int32()
    assert unify_types([pa.int64(), pa.float64()]) == pa.float64()
    assert unify_types([pa.uint32(), pa.int32()]) == pa.int64()
    assert unify_types([pa.uint64(), pa.int64()]) == pa.string()
    assert unify_types([pa.int64(), pa.string()]) == pa.string()
    schema = unify_schemas(
        [
            pa.schema([("a", pa.int64())]),
            pa.schema([("b", pa.list_(pa.int64()))]),
            pa.schema([("b", pa.string())]),
        ]
    )
    assert schema == pa.schema([("a", pa.int64()), ("b", pa.string())])
    table = conform(pa.table({"b": [[1, 2]]}), schema)
    assert table.to_pylist() == [{"a": None, "b": "[1,2]"}]
    with pytest.raises(FormatError, match="'zz'"):
        conform(pa.table({"zz": [1]}), schema)
    with pytest.raises(FormatError, match="declare"):
        conform(pa.table({"a": ["x"]}), schema)


def test_declared_schema_fixes_types_and_header(tmp_path):
    schema = pa.schema([("id", pa.int64()), ("v", pa.string())])
    with ArrowWriter(tmp_path / "empty.csv", "csv", schema=schema):
        pass
    assert (tmp_path / "empty.csv").read_text() == '"id","v"\n'
    with ArrowWriter(tmp_path / "empty.parquet", "parquet", schema=schema):
        pass
    assert pq.read_schema(tmp_path / "empty.parquet").names == ["id", "v"]
    with ArrowWriter(tmp_path / "t.parquet", "parquet", schema=schema) as writer:
        writer.write(pa.table({"id": pa.array([1], pa.int32()), "v": [7]}))
    assert pq.read_table(tmp_path / "t.parquet").to_pylist() == [{"id": 1, "v": "7"}]
