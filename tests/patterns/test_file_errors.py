"""Bad input through FileProcessor: the run goes on, the error file says where, the threshold
stops it with a message that names the error file."""

from __future__ import annotations

import json

import pytest

from patterns.errors import ErrorThresholdExceeded, PatternError
from patterns.file_processing import FileProcessingConfig, FileProcessor, ProcessingMode

pytestmark = pytest.mark.ray

BAD_INPUTS = {
    "csv": b"a,b\n1,x\n2\n3,\xff\n4,y\n",
    "jsonl": b'{"a": 1}\n{"a": \n{"a": 4}\n\xff\n',
    "json": b'[{"a": 1}, {"a": nope}, {"a": 4}]',
    "xml": b"<rows><r><a>1</a></r><r><a>2</b></r><r><a>4</a></r></rows>",
    "txt": b"one\n\xff\xfe\nfour\n",
}
GOOD = dict.fromkeys(BAD_INPUTS, 2)


@pytest.mark.parametrize("read_on", ["driver", "workers"])
def test_malformed_records_go_to_the_error_file(ray_session, tmp_path, monkeypatch, read_on):
    if read_on == "driver":
        monkeypatch.setattr("fsm_actors.platform.jobs.file_kind.SMALL_FILE", 0)
    for fmt, data in BAD_INPUTS.items():
        (tmp_path / f"bad.{fmt}").write_bytes(data)
    out = tmp_path / "out"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(tmp_path / "bad.*"),
            output_path=f"{out}/",
            output_format="jsonl",
            mode=ProcessingMode.STREAM,
        )
    ).run()
    assert result["records_written"] == sum(GOOD.values())
    assert result["errors"] == result["lines_read"] - result["records_processed"] > 0
    assert result["error_file"] == str(out / "_errors.jsonl")
    entries = [json.loads(x) for x in open(result["error_file"])]
    assert len(entries) == result["errors"]
    assert {e["file"] for e in entries} == {str(tmp_path / f"bad.{f}") for f in BAD_INPUTS}
    assert all(e["reason"] and e["stage"] == "parse" for e in entries)
    assert all(e["line"] or e["raw"] for e in entries)
    outputs = sorted(p.name for p in out.glob("*-bad.jsonl"))
    assert outputs == [f"{i:04d}-bad.jsonl" for i in range(len(BAD_INPUTS))]
    assert all(len((out / name).read_text().splitlines()) == 2 for name in outputs)


def test_failing_transformation_rejects_records_not_the_run(ray_session, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"v": i}) + "\n" for i in range(100)))

    def invert(r):
        return {**r, "inv": 1 / (r["v"] % 10)}

    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(src),
            output_path=str(tmp_path / "o.jsonl"),
            transformations=[invert],
            chunk_size=16,
        )
    ).run()
    assert result["records_written"] == 90 and result["errors"] == 10
    entries = [json.loads(x) for x in open(result["error_file"])]
    assert [e["record"] for e in entries] == [i + 1 for i in range(0, 100, 10)]
    assert all("ZeroDivisionError" in e["reason"] and e["stage"] == "transform" for e in entries)
    assert all(e["function"] == "invert" for e in entries)


def test_error_threshold_stops_the_run_and_names_the_error_file(ray_session, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n" + "".join("1,2\n" if i % 2 else "3\n" for i in range(2000)))
    error_file = tmp_path / "rejects.jsonl"
    config = FileProcessingConfig(
        input_path=str(src),
        output_path=str(tmp_path / "o.csv"),
        chunk_size=100,
        error_threshold=0.1,
        error_file=str(error_file),
    )
    with pytest.raises(ErrorThresholdExceeded) as info:
        FileProcessor(config).run()
    assert str(error_file) in str(info.value) and info.value.error_file == str(error_file)
    assert error_file.exists() and not (tmp_path / "o.csv").exists()
    assert not (tmp_path / ".fsm_actors").exists()
    count_config = config.model_copy(
        update={"error_threshold": 5000, "output_path": str(tmp_path / "p.csv")}
    )
    assert FileProcessor(count_config).run()["errors"] == 1000


def test_unknown_format_is_a_clear_error_naming_the_file(ray_session, tmp_path):
    src = tmp_path / "mystery.dat"
    src.write_bytes(b"\x00\x01\x02\x03")
    with pytest.raises(PatternError, match="mystery.dat") as info:
        FileProcessor(FileProcessingConfig(input_path=str(src))).run()
    assert info.value.file == str(src)
    with pytest.raises(PatternError, match="does not exist"):
        FileProcessor(FileProcessingConfig(input_path=str(tmp_path / "nope.csv"))).run()


def test_callable_aggregations_need_whole_mode(ray_session, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    with pytest.raises(PatternError, match="WHOLE"):
        FileProcessor(
            FileProcessingConfig(input_path=str(src), aggregations={"n": lambda rs: len(rs)})
        ).run()
