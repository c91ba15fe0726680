"""The plain cores of file processing, without Ray: pipeline, validation, aggregation, parts."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from fsm_actors.platform.io import RowError, read_record_batches
from fsm_actors.platform.jobs.parts import (
    Joiner,
    OutputSpec,
    Staging,
    commit,
    concat_errors,
    split_partitions,
)
from patterns._files.aggregate import merge, parse_aggregations, partial
from patterns._files.job import BatchPipeline
from patterns._records import is_batch_level, make_validator, vectorized

TABLE = pa.table(
    {"id": [1, 2, 3, 4], "amount": [10.0, -1.0, 5.0, 7.5], "tag": ["a", "b", "a", None]}
)


def test_record_steps_fuse_and_bad_records_are_rejected_alone():
    def explode(r):
        if r["id"] == 3:
            raise ValueError("no threes")
        return {**r, "double": r["amount"] * 2}

    pipeline = BatchPipeline(filters=[lambda r: r["amount"] > 0], transformations=[explode])
    result = pipeline.apply(TABLE, "f.csv", first_record=100)
    assert result.table.column("id").to_pylist() == [1, 4]
    assert result.table.column("double").to_pylist() == [20.0, 15.0]
    assert result.skipped == 1
    [error] = result.errors
    assert error.record == 103 and error.stage == "transform" and "no threes" in error.reason
    assert json.loads(error.raw)["id"] == 3


def test_transform_may_mutate_in_place_and_must_return_a_dict_or_none():
    pipeline = BatchPipeline(transformations=[lambda r: r.update(x=1), lambda r: "nope"])
    result = pipeline.apply(TABLE, None, 0)
    assert result.table.num_rows == 0 and len(result.errors) == 4
    assert "must return a dict" in result.errors[0].reason


def test_batch_level_steps():
    @vectorized
    def scale(table):
        return table.set_column(1, "amount", pc.multiply(table["amount"], 10))

    def is_a(table: pa.Table):
        return pc.equal(table["tag"], "a")

    assert is_batch_level(scale) and is_batch_level(is_a) and is_batch_level(pc.field("x") > 1)
    assert not is_batch_level(lambda r: r)
    pipeline = BatchPipeline(
        filters=[is_a, pc.field("amount") > 6], transformations=[scale, {"k": pc.field("id") + 1}]
    )
    result = pipeline.apply(TABLE, None, 0)
    assert result.table.to_pylist() == [{"id": 1, "amount": 100.0, "tag": "a", "k": 2}]
    assert result.skipped == 3


def test_failing_batch_step_rejects_its_batch():
    @vectorized
    def broken(table):
        raise RuntimeError("bug")

    result = BatchPipeline(transformations=[broken]).apply(TABLE, "x", 10)
    assert result.table.num_rows == 0
    assert [e.record for e in result.errors] == [11, 12, 13, 14]


def test_validation_schemas():
    class Row(BaseModel):
        id: int
        amount: float

    schema = {"required": ["id", "tag"], "properties": {"amount": {"type": "number", "minimum": 0}}}
    for validator, valid in [
        (make_validator(Row), [1, 2, 3, 4]),
        (make_validator(schema), [1, 3]),
        (make_validator(lambda r: r["id"] % 2), [1, 3]),
    ]:
        result = BatchPipeline(validator=validator).apply(TABLE, None, 0)
        assert result.table.column("id").to_pylist() == valid
        assert all(e.stage == "validate" for e in result.errors)
    with pytest.raises(TypeError):
        make_validator(42)


def test_aggregations_merge_across_partials():
    specs, callables = parse_aggregations(
        {
            "n": "count",
            "total": ("sum", "amount"),
            "avg": "mean:amount",
            "hi": "max:amount",
            "fn": lambda rs: len(rs),
        }
    )
    assert list(callables) == ["fn"]
    parts = [partial(TABLE.slice(0, 2), specs, []), partial(TABLE.slice(2), specs, [])]
    assert merge(parts, specs, []) == {"n": 4, "total": 21.5, "avg": 5.375, "hi": 10.0}
    grouped = merge(
        [partial(TABLE.slice(0, 3), specs, ["tag"]), partial(TABLE.slice(3), specs, ["tag"])],
        specs,
        ["tag"],
    )
    assert grouped[0] == {"tag": "a", "n": 2, "total": 15.0, "avg": 7.5, "hi": 10.0}
    assert grouped[-1]["tag"] is None
    with pytest.raises(ValueError, match="needs a field"):
        parse_aggregations({"x": "sum"})


def test_split_partitions():
    pieces = dict(split_partitions(TABLE, ["tag"]))
    assert sorted(pieces) == ["tag=__HIVE_DEFAULT_PARTITION__", "tag=a", "tag=b"]
    assert pieces["tag=a"]["id"].to_pylist() == [1, 3]


@pytest.mark.parametrize(
    "fmt,ext",
    [
        ("csv", ".csv.gz"),
        ("json", ".json"),
        ("xml", ".xml.zst"),
        ("jsonl", ".jsonl"),
        ("parquet", ".parquet"),
    ],
)
def test_parts_commit_in_order(tmp_path, fmt, ext):
    staging = Staging(tmp_path / "stage")
    compression = {".gz": "gzip", ".zst": "zstd"}.get(ext[ext.rfind(".") :])
    for file_index, batch, rows in [(1, 0, [5]), (0, 1, [3, 4]), (0, 0, [1, 2]), (0, 2, [])]:
        table = pa.table({"id": pa.array(rows, pa.int64())})
        if rows:
            staging.write_data(file_index, batch, table, fmt, ext, compression=compression)
    target = tmp_path / f"out{ext}"
    commit(target, staging.data_parts(ext), fmt, compression=compression)
    rows = [r for b in read_record_batches(target) for r in b]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]


def test_commit_unifies_drifting_schemas(tmp_path):
    staging = Staging(tmp_path / "s")
    staging.write_data(0, 0, pa.table({"a": [1], "b": ["x"]}), "parquet", ".parquet")
    staging.write_data(0, 1, pa.table({"a": [2.5]}), "parquet", ".parquet")
    staging.write_data(0, 2, pa.table({"a": ["seven"]}), "parquet", ".parquet")
    commit(tmp_path / "o.parquet", staging.data_parts(".parquet"), "parquet")
    table = pq.read_table(tmp_path / "o.parquet")
    assert table["a"].to_pylist() == ["1", "2.5", "seven"]
    assert table["b"].to_pylist() == ["x", None, None]
    staging.write_data(1, 0, pa.table({"a": [1], "b": ["x"]}), "csv", ".csv")
    staging.write_data(1, 1, pa.table({"c": [True], "a": [2]}), "csv", ".csv")
    commit(tmp_path / "o.csv", staging.data_parts(".csv", file_index=1), "csv")
    assert (tmp_path / "o.csv").read_text().splitlines() == [
        '"a","b","c"',
        '"1","x",',
        '"2",,"true"',
    ]


def test_error_parts_concatenate(tmp_path):
    staging = Staging(tmp_path / "s")
    staging.write_errors(0, 1, [RowError("f", "late", line=9)])
    staging.write_errors(0, 0, [RowError("f", "early", raw="x", line=2)])
    n = concat_errors(tmp_path / "e.jsonl", staging.error_parts())
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert n == 2 and [e["reason"] for e in lines] == ["early", "late"]
    assert set(lines[0]) == {"file", "line", "record", "raw", "reason", "stage", "function", "state"}


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_joiner_appends_parts_in_order_as_they_become_durable(tmp_path, fmt):
    staging = Staging(tmp_path / "s")
    output = OutputSpec(fmt, "gzip" if fmt != "parquet" else None)
    done: set[tuple[int, int]] = set()
    totals: dict[int, int] = {}
    joiner = Joiner(tmp_path / f"out{output.ext}", output, staging, [0, 1])

    def finish(file_index, batch, ids):
        if ids:
            staging.write_data(
                file_index,
                batch,
                pa.table({"id": ids}),
                fmt,
                output.ext,
                compression=output.compression,
            )
        done.add((file_index, batch))
        joiner.advance(lambda f, b: (f, b) in done, totals.get)

    finish(0, 1, [3, 4])
    assert joiner._parts == 0  # batch 0 of file 0 is not durable yet
    finish(0, 0, [1, 2])
    # byte formats are appended as they go; Parquet parts are stitched at the end
    assert joiner._parts == (0 if fmt == "parquet" else 2)
    finish(1, 0, [5])
    totals.update({0: 3, 1: 1})
    finish(0, 2, [])
    joiner.finish(lambda f, b: (f, b) in done, totals.get)
    rows = [r["id"] for b in read_record_batches(tmp_path / f"out{output.ext}") for r in b]
    assert rows == [1, 2, 3, 4, 5]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_joiner_falls_back_to_a_full_commit_when_columns_change(tmp_path):
    staging = Staging(tmp_path / "s")
    output = OutputSpec("csv")
    joiner = Joiner(tmp_path / "out.csv", output, staging, [0])
    staging.write_data(0, 0, pa.table({"a": [1]}), "csv", ".csv")
    staging.write_data(0, 1, pa.table({"b": ["x"]}), "csv", ".csv")
    joiner.finish(lambda f, b: b < 2, lambda f: 2)
    assert joiner.failed
    assert (tmp_path / "out.csv").read_text().splitlines() == ['"a","b"', '"1",', ',"x"']
