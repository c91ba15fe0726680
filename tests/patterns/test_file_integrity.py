"""File jobs on the job layer: resume settings, outputs that are exactly one run's, thresholds."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from patterns.errors import ErrorThresholdExceeded, PatternError
from patterns.file_processing import FileProcessingConfig, FileProcessor


def _csv(path, rows: int, bad_every: int | None = None) -> None:
    lines = ["id,region,amount"]
    for i in range(rows):
        if bad_every and i % bad_every == bad_every - 1:
            lines.append("broken")
        else:
            lines.append(f"{i},{['n', 's', 'e'][i % 3]},{i * 2}")
    path.write_text("\n".join(lines) + "\n")


def test_resume_with_other_settings_is_refused(ray_session, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _csv(src, 20_000)
    # a first run that leaves a checkpoint behind
    config = FileProcessingConfig(input_path=str(src), output_path=str(out), chunk_size=5000,
                                  checkpoint_id="cp1", error_threshold=1)
    bad = tmp_path / "bad.csv"
    _csv(bad, 20_000, bad_every=3)
    with pytest.raises(ErrorThresholdExceeded):
        FileProcessor(config.model_copy(update={"input_path": str(bad)})).run()
    for change in ({"chunk_size": 7000}, {"output_path": str(tmp_path / "out.csv")}):
        with pytest.raises(PatternError, match="other settings") as info:
            FileProcessor(config.model_copy(update={"input_path": str(bad), **change})).run()
        assert "checkpoint_id" in str(info.value)


def test_rerun_output_is_exactly_that_runs(ray_session, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "parts"
    _csv(src, 30)
    FileProcessor(FileProcessingConfig(input_path=str(src), output_path=str(out) + "/",
                                       partition_by=["region"], output_format="parquet")).run()
    assert len(ds.dataset(out, format="parquet", partitioning="hive").to_table()) == 30
    FileProcessor(FileProcessingConfig(
        input_path=str(src), output_path=str(out) + "/", partition_by=["region"],
        output_format="parquet", filters=[lambda r: r["region"] == "n"])).run()
    assert sorted(p.name for p in out.glob("region=*")) == ["region=n"]
    assert len(ds.dataset(out, format="parquet", partitioning="hive").to_table()) == 10


def test_clean_rerun_removes_the_old_error_file(ray_session, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _csv(src, 100, bad_every=10)
    first = FileProcessor(FileProcessingConfig(input_path=str(src), output_path=str(out))).run()
    assert first["errors"] == 10 and first["error_file"]
    _csv(src, 100)
    second = FileProcessor(FileProcessingConfig(input_path=str(src), output_path=str(out))).run()
    assert second["errors"] == 0 and second["error_file"] is None
    assert not (tmp_path / "out.jsonl.errors.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.jsonl"]


def test_compression_conflicting_with_the_name_is_refused(ray_session, tmp_path):
    src = tmp_path / "in.csv"
    _csv(src, 10)
    with pytest.raises(PatternError, match="conflicts with the output name"):
        FileProcessor(FileProcessingConfig(input_path=str(src),
                                           output_path=str(tmp_path / "o.jsonl.gz"),
                                           compression="zstd")).run()


def test_share_threshold_is_judged_on_the_run_not_the_first_block(ray_session, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    _csv(src, 50_000, bad_every=1000)  # 0.1% bad rows
    result = FileProcessor(FileProcessingConfig(input_path=str(src), output_path=str(out),
                                                chunk_size=500, error_threshold=0.01)).run()
    assert result["errors"] == 50 and result["records_written"] == 49_950
    entries = [json.loads(x) for x in open(result["error_file"])]
    assert len(entries) == 50


def test_large_csv_is_parsed_by_workers_in_byte_ranges(ray_session, tmp_path, monkeypatch):
    import fsm_actors.platform.jobs.file_kind as file_kind

    monkeypatch.setattr(file_kind, "RANGE_FILE", 1 << 20)
    monkeypatch.setattr(file_kind, "BYTES_PER_WORKER", 1 << 19)
    src = tmp_path / "big.csv"
    lines = ["id,text,amount"]
    for i in range(120_000):
        # quoted fields with line breaks make a byte cut inside a record possible
        text = f'"multi\nline {i}"' if i % 997 == 0 else f"t{i}"
        lines.append(f"{i},{text},{i % 100}" if i % 5000 != 4999 else "oops,\"unclosed")
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    config = FileProcessingConfig(input_path=str(src), output_path=str(out), chunk_size=10_000)
    kind_inputs = FileProcessor(config)._job().plan.inputs
    assert len(kind_inputs) > 1 and all(i.byte_range for i in kind_inputs)
    result = FileProcessor(config).run()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == result["records_written"]
    assert result["lines_read"] == result["records_written"] + result["errors"]
    assert rows[0]["text"] == "multi\nline 0"


def test_record_steps_keep_the_parquet_types(ray_session, tmp_path):
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    src, out = tmp_path / "t.parquet", tmp_path / "o.parquet"
    table = pa.table({
        "a": pa.array([1, 2], pa.int8()),
        "f": pa.array([1.5, 2.5], pa.float32()),
        "d": pa.array([decimal.Decimal("1.250"), decimal.Decimal("2.000")],
                      pa.decimal128(10, 3)),
        "ts": pa.array([datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1)],
                       pa.timestamp("ms")),
        "c": pa.array(["x", "y"]).dictionary_encode(),
    })
    pq.write_table(table, src)
    FileProcessor(FileProcessingConfig(input_path=str(src), output_path=str(out),
                                       transformations=[lambda r: {**r, "n": 1}])).run()
    written = pq.read_table(out)
    for name in table.column_names:
        assert written.schema.field(name).type == table.schema.field(name).type, name
    assert written.column("n").to_pylist() == [1, 1]


def test_log_groups_aggregate_as_numbers(ray_session, tmp_path):
    from patterns.file_processing import create_log_analyzer

    log = tmp_path / "access.log"
    log.write_text("GET /a 200 99\nGET /b 200 1000\nGET /c 404 5\n")
    result = create_log_analyzer(
        str(log), patterns=[r"(?P<method>\S+) (?P<path>\S+) (?P<status>\d+) (?P<bytes>\d+)"],
        aggregations={"biggest": "max:bytes", "total": "sum:bytes", "n": "count"},
    ).run()
    assert result["aggregations"] == {"biggest": 1000, "total": 1104, "n": 3}


def test_sum_over_text_names_the_column(ray_session, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,code\n1,A7\n2,B9\n")
    with pytest.raises(PatternError, match="'code'"):
        FileProcessor(FileProcessingConfig(input_path=str(src),
                                           aggregations={"s": "sum:code"})).run()


def test_a_record_rejected_by_a_function_has_its_csv_line(ray_session, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    src.write_text('a,b\n1,"x\ny"\n0,z\n\n2,w\n')

    def invert(r):
        return {**r, "i": 1 / r["a"]}

    result = FileProcessor(FileProcessingConfig(input_path=str(src), output_path=str(out),
                                                transformations=[invert])).run()
    (entry,) = [json.loads(x) for x in open(result["error_file"])]
    assert entry["line"] == 4 and entry["record"] == 2 and entry["function"] == "invert"
