"""A run the CLI sends in-process (its first run, no Ray) runs a step with the user's Python
on processes forked from the CLI (``fsm_actors.platform.jobs.forked_lanes``): every record
once and in order, figures that move while tasks run, a child that dies is named and leaves
nothing behind; the Python API's ``local=True`` never forks (its caller may read what a
function changed in this process)."""

from __future__ import annotations

import asyncio
import json
import os

import psutil
import pytest

from fsm_actors.platform.errors import FSMActorsError
from fsm_actors.platform.jobs import progress, run_job
from patterns._files.job import FileJob
from patterns.file_processing import FileProcessingConfig
from tests.helpers.csv_parts import csv_parts

CPUS = len(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(CPUS < 2, reason="forked lanes need 2 CPUs")


def _inputs(tmp_path, files: int = 4, rows: int = 400):
    return csv_parts(tmp_path / "in", files, rows, "id,x", lambda n, f, i: f"{n},{i % 5}")


def _job(tmp_path, src, transform) -> FileJob:
    return FileJob(FileProcessingConfig(
        input_path=str(src), output_path=str(tmp_path / "out.jsonl"), format="csv",
        transformations=[transform],
    ))


def _with_pid(r):
    return {**r, "pid": os.getpid()}


@pytest.fixture
def cli_in_process():
    progress.run_in_process("test")
    yield
    progress.run_in_process(None)


def _rows(tmp_path):
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


@needs_two
def test_an_in_process_cli_run_forks_lanes_every_record_once_in_order(tmp_path, cli_in_process):
    job = _job(tmp_path, _inputs(tmp_path), _with_pid)
    assert job.kind.forked_lanes == min(CPUS, 4)
    before = progress.LIVE.snapshot()["records_read"]
    result = asyncio.run(run_job(job.kind, local=True))
    rows = _rows(tmp_path)
    assert [r["id"] for r in rows] == list(range(1600))
    assert result["records_written"] == 1600 and result["errors"] == 0
    pids = {r["pid"] for r in rows}
    assert os.getpid() not in pids and len(pids) == min(CPUS, 4)  # one process per lane
    # the children's per-batch figures reached this process (bars and status read them)
    assert progress.LIVE.snapshot()["records_read"] - before == 1600
    assert not pids & {c.pid for c in psutil.Process().children()}  # all gone


def test_the_python_apis_local_run_never_forks(tmp_path):
    job = _job(tmp_path, _inputs(tmp_path), _with_pid)
    asyncio.run(run_job(job.kind, local=True))
    assert {r["pid"] for r in _rows(tmp_path)} == {os.getpid()}


def _die_on_part2(r):
    if r["id"] == 800:  # the first record of part2.csv
        os._exit(7)
    return r


@needs_two
def test_a_lane_that_dies_is_named_and_the_run_commits_nothing(tmp_path, cli_in_process):
    job = _job(tmp_path, _inputs(tmp_path), _die_on_part2)
    children = {c.pid for c in psutil.Process().children()}
    with pytest.raises(FSMActorsError, match=r"local worker process \d+ ended \(exit code 7\)"):
        asyncio.run(run_job(job.kind, local=True))
    assert not (tmp_path / "out.jsonl").exists()
    assert {c.pid for c in psutil.Process().children()} <= children  # every lane is gone
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and "in" not in p.parts]
    assert leftovers == []

