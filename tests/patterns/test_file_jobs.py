"""Jobs beyond one file in, one file out: aggregations, partitions, many inputs, factories,
pipeline files and progress."""

from __future__ import annotations

import json

import pytest

from fsm_actors.platform.io import read_record_batches
from patterns.file_processing import (
    FileProcessingConfig,
    FileProcessor,
    ProcessingMode,
    create_batch_file_processor,
    create_file_processor,
    create_json_processor,
    create_json_stream_processor,
    create_log_analyzer,
    create_log_processor,
)
from patterns.pipeline import load_pipeline_file, run_pipeline_file

pytestmark = pytest.mark.ray


def read_all(path) -> list[dict]:
    return [r for batch in read_record_batches(path) for r in batch]


def sales_csv(path, n=3000) -> None:
    regions = ["north", "south", "east"]
    path.write_text(
        "id,region,amount\n" + "".join(f"{i},{regions[i % 3]},{i % 100}\n" for i in range(n))
    )


def test_aggregations_merge_across_actors_and_partitions(ray_session, tmp_path):
    sales_csv(tmp_path / "sales.csv")
    out = tmp_path / "by_region"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(tmp_path / "sales.csv"),
            output_path=str(out),
            output_format="parquet",
            chunk_size=200,
            workers=2,
            partition_by="region",
            group_by=["region"],
            aggregations={
                "n": "count",
                "total": "sum:amount",
                "avg": ("mean", "amount"),
                "lo": "min:amount",
                "hi": "max:amount",
            },
        )
    ).run()
    groups = result["aggregations"]["groups"]
    expected = {}
    for i in range(3000):
        expected.setdefault(["north", "south", "east"][i % 3], []).append(i % 100)
    assert [g["region"] for g in groups] == sorted(expected)
    for g in groups:
        values = expected[g["region"]]
        assert (g["n"], g["total"], g["lo"], g["hi"]) == (len(values), sum(values), 0, 99)
        assert g["avg"] == pytest.approx(sum(values) / len(values))
    parts = sorted(p.relative_to(out).as_posix() for p in out.rglob("data.parquet"))
    assert parts == [f"region={r}/data.parquet" for r in sorted(expected)]
    ids = sorted(r["id"] for p in out.rglob("data.parquet") for r in read_all(p))
    assert ids == list(range(3000))


def test_many_inputs_by_glob_into_one_file_in_order(ray_session, tmp_path):
    for k in range(4):
        (tmp_path / f"part{k}.jsonl").write_text(
            "".join(json.dumps({"k": k, "i": i}) + "\n" for i in range(50))
        )
    out = tmp_path / "all.csv"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(tmp_path / "part*.jsonl"),
            output_path=str(out),
            mode=ProcessingMode.BATCH,
            chunk_size=20,
        )
    ).run()
    assert [(r["k"], r["i"]) for r in read_all(out)] == [
        (k, i) for k in range(4) for i in range(50)
    ]
    assert result["files"] == 4 and result["records_written"] == 200


def test_whole_mode_callable_aggregations_and_log_analyzer(ray_session, tmp_path):
    log = tmp_path / "app.log"
    log.write_text(
        "".join(
            f"2024-03-01 12:00:{i % 60:02d} {'ERROR' if i % 5 == 0 else 'INFO'} request {i}\n"
            for i in range(100)
        )
    )
    analyzer = create_log_analyzer(
        str(log),
        str(tmp_path / "parsed.json"),
        patterns=[r"^(?P<date>\S+) (?P<time>\S+) (?P<level>[A-Z]+) (?P<message>.*)$"],
        aggregations={"errors": lambda rs: sum(r["level"] == "ERROR" for r in rs)},
    )
    result = analyzer.run()
    assert result["aggregations"] == {"errors": 20}
    rows = json.loads((tmp_path / "parsed.json").read_text())
    assert rows[0]["level"] == "ERROR" and rows[1]["message"] == "request 1"
    streamed = create_log_analyzer(
        str(log),
        patterns=[r"(?P<level>ERROR|INFO)"],
        aggregations={"lines": "count"},
        group_by=["level"],
    ).run()
    assert streamed["aggregations"]["groups"] == [
        {"level": "ERROR", "lines": 20},
        {"level": "INFO", "lines": 80},
    ]


def test_log_processor_flags(ray_session, tmp_path):
    log = tmp_path / "svc.log"
    log.write_text(
        "2024-03-01T12:00:00Z ERROR disk full\n2024-03-01T12:00:01Z INFO ok\n"
        "no timestamp but an exception here\n"
    )
    out = tmp_path / "errors.jsonl"
    create_log_processor(str(log), str(out), parse_timestamps=True, extract_errors=True).run()
    rows = read_all(out)
    assert [r["message"] for r in rows] == ["disk full", None]
    assert rows[0]["timestamp"] == "2024-03-01T12:00:00Z" and rows[0]["level"] == "ERROR"


def test_json_factories_and_validation(ray_session, tmp_path):
    src = tmp_path / "events.jsonl"
    src.write_text(
        "".join(json.dumps({"id": i, "v": i if i % 4 else "bad"}) + "\n" for i in range(40))
    )
    schema = {"required": ["id", "v"], "properties": {"v": {"type": "integer"}}}
    result = create_json_stream_processor(
        str(src), str(tmp_path / "valid.jsonl"), validation_schema=schema, chunk_size=16
    ).run()
    assert result["records_written"] == 30 and result["errors"] == 10
    assert all(json.loads(x)["stage"] == "validate" for x in open(result["error_file"]))
    array = tmp_path / "arr.json"
    array.write_text(json.dumps([{"a": i} for i in range(10)]))
    out = tmp_path / "copy.json"
    assert (
        create_json_processor(str(array), str(out), pretty_print=True).run()["records_written"]
        == 10
    )
    assert json.loads(out.read_text()) == [{"a": i} for i in range(10)]


def test_batch_and_generic_file_processors_select_files(ray_session, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        (data / f"t{k}.csv").write_text("x\n" + "".join(f"{k * 10 + i}\n" for i in range(10)))
    (data / "ignore.txt").write_text("not me\n")
    out = tmp_path / "out"
    result = create_batch_file_processor([str(data)], f"{out}/", patterns=["*.csv"]).run()
    assert result["files"] == 3 and sorted(p.name for p in out.iterdir()) == [
        "t0.csv",
        "t1.csv",
        "t2.csv",
    ]
    merged = tmp_path / "merged.jsonl"
    create_file_processor(
        str(data), str(merged), pattern="t*.csv", transformations=[lambda r: {"y": r["x"] * 2}]
    ).run()
    assert [r["y"] for r in read_all(merged)] == [2 * i for i in range(30)]


def test_pipeline_file_and_progress(ray_session, tmp_path):
    sales_csv(tmp_path / "sales.csv", 500)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: file_processing\n"
        "input_path: sales.csv\n"
        "output_path: out/north.jsonl\n"
        "chunk_size: 100\n"
        "transformations:\n"
        "  - \"lambda r: {**r, 'cents': r['amount'] * 100}\"\n"
        "  - {vectorized: \"lambda t: t.append_column('one', pa.array([1] * t.num_rows))\"}\n"
        "filters:\n"
        "  - {expression: \"pc.field('region') == 'north'\"}\n"
        "aggregations: {rows: count, cents: 'sum:cents'}\n"
    )
    config = load_pipeline_file(spec)
    assert config.input_path == str(tmp_path / "sales.csv")
    seen = []
    result = run_pipeline_file(spec, on_progress=lambda p: seen.append(p.records_processed))
    rows = read_all(tmp_path / "out" / "north.jsonl")
    assert {r["region"] for r in rows} == {"north"} and rows[0]["one"] == 1
    assert result["aggregations"]["rows"] == len(rows) == 167
    assert result["aggregations"]["cents"] == sum(r["amount"] * 100 for r in rows)
    assert seen == sorted(seen) and seen[-1] == 500 and len(seen) == 5


def test_pipeline_file_errors_name_the_file_and_key(tmp_path):
    from patterns.errors import PatternError

    spec = tmp_path / "bad.yaml"
    spec.write_text("kind: file_processing\ninput_path: x.csv\nfilters: ['lambda r: r[']\n")
    with pytest.raises(PatternError, match=r"bad.yaml: filters\[0\]"):
        load_pipeline_file(spec)
    spec.write_text("kind: file_processing\ninput_path: x.csv\nmode: sideways\n")
    with pytest.raises(PatternError, match="invalid file_processing job"):
        load_pipeline_file(spec)


def test_cli_runs_and_validates_a_pipeline_file(ray_session, tmp_path):
    from click.testing import CliRunner

    from fsm_actors.cli.main import cli

    sales_csv(tmp_path / "sales.csv", 300)
    spec = tmp_path / "job.json"
    spec.write_text(
        json.dumps(
            {
                "kind": "file_processing",
                "input_path": "sales.csv",
                "output_path": "out.parquet",
                "filters": ["lambda r: r['amount'] >= 50"],
            }
        )
    )
    runner = CliRunner()
    checked = runner.invoke(cli, ["validate", str(spec)])
    assert checked.exit_code == 0, checked.output
    ran = runner.invoke(cli, ["run", str(spec), "--no-progress", "--json"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output[ran.output.index("{") :])
    assert result["records_written"] == 150 and result["lines_read"] == 300
    assert len(read_all(tmp_path / "out.parquet")) == 150
