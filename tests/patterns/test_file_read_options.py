"""One typed options object from a file-processing config to the reader (issue 21 item 4):
``FileProcessingConfig.read_options()`` is built once, held by the job spec, and reaches the
plan and every worker's step unchanged; a run reads with exactly those options."""

from __future__ import annotations

import asyncio
import json

from fsm_actors.platform.io import ReadOptions
from fsm_actors.platform.jobs import run_job
from patterns._files.job import FileJob
from patterns.file_processing import FileProcessingConfig


def _config(tmp_path, **extra):
    src = tmp_path / "in.csv"
    src.write_bytes("1;Zoë;3,5\n2;Ärne;4\n".encode("latin-1"))
    return FileProcessingConfig(
        input_path=str(src), output_path=str(tmp_path / "out.jsonl"), format="csv",
        csv_delimiter=";", csv_has_header=False, encoding="latin-1", **extra,
    )


def test_the_config_builds_one_read_options_that_reaches_the_step_unchanged(tmp_path):
    config = _config(tmp_path, text_field_name="line", log_config={"patterns": [r"(?P<x>\d)"]})
    read = config.read_options()
    assert isinstance(read, ReadOptions)
    assert (read.format, read.csv_delimiter, read.csv_has_header, read.encoding) == (
        "csv", ";", False, "latin-1")
    assert (read.text_field_name, tuple(read.log_patterns)) == ("line", (r"(?P<x>\d)",))

    job = FileJob(config)
    assert job.kind.spec.read == read
    assert job.plan.read is job.kind.spec.read  # the plan takes it as it is
    assert job.kind.step_spec().read is job.plan.read  # and ships the same object


def test_a_run_reads_with_the_configs_options(tmp_path):
    config = _config(tmp_path)
    job = FileJob(config)
    result = asyncio.run(run_job(job.kind, local=True))
    assert result["records_written"] == 2 and result["errors"] == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows == [{"f0": 1, "f1": "Zoë", "f2": "3,5"}, {"f0": 2, "f1": "Ärne", "f2": "4"}]


def test_buffer_size_is_the_read_block_before_the_plan(tmp_path):
    class Options:  # a pipeline file's options, read by attribute
        buffer_size = 4096
        stream = None

    job = FileJob(_config(tmp_path), options=Options())
    assert job.kind.spec.read.csv_block_size == 4096
    assert job.kind.step_spec().read.csv_block_size == 4096
