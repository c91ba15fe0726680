"""A local file run (``run_job(local=True)``, the CLI's first run) runs Arrow-only steps on
several threads at once, each with its own step, like workers: every record once, in input
order; a step with the user's Python runs on one thread (user code need not be
thread-safe); a lane that fails stops the run with nothing committed."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pyarrow.compute as pc
import pytest

from fsm_actors.platform.jobs import file_step, run_job
from patterns._files.job import FileJob
from patterns.file_processing import FileProcessingConfig
from tests.helpers.csv_parts import csv_parts

CPUS = len(os.sched_getaffinity(0))


def _inputs(tmp_path, files: int = 6, rows: int = 500):
    return csv_parts(tmp_path / "in", files, rows, "id,file,x",
                     lambda n, f, i: f"{n},{f},{i % 7}")


def _job(tmp_path, src, **extra) -> FileJob:
    return FileJob(FileProcessingConfig(
        input_path=str(src), output_path=str(tmp_path / "out.jsonl"), format="csv", **extra,
    ))


@pytest.fixture
def threads_seen(monkeypatch):
    """The threads each step ran on, by step; fails a run in which one step ran two tasks
    at once (a step is not thread-safe: one lane, one task at a time)."""
    seen: dict[int, set[str]] = {}
    busy: set[int] = set()
    lock = threading.Lock()
    run = file_step.FileStep.run

    def spy(self, task):
        with lock:
            assert id(self) not in busy, "a step ran two tasks at once"
            busy.add(id(self))
            seen.setdefault(id(self), set()).add(threading.current_thread().name)
        try:
            return run(self, task)
        finally:
            with lock:
                busy.discard(id(self))

    monkeypatch.setattr(file_step.FileStep, "run", spy)
    return seen


def test_an_arrow_only_job_runs_on_several_lanes_every_record_once_in_order(
    tmp_path, threads_seen
):
    src = _inputs(tmp_path)
    job = _job(tmp_path, src, filters=[pc.field("x") != 3])
    assert job.kind.local_lanes == min(CPUS, 6)
    result = asyncio.run(run_job(job.kind, local=True))
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    expected = [i for i in range(3000) if (i % 500) % 7 != 3]
    assert [r["id"] for r in rows] == expected
    assert result["records_written"] == len(expected) and result["errors"] == 0
    # one step per lane, on the lanes' threads
    assert len(threads_seen) == min(CPUS, 6)
    assert set().union(*threads_seen.values()) <= {f"job-local_{i}" for i in range(CPUS)}


def test_a_job_with_a_python_function_runs_on_one_lane(tmp_path, threads_seen):
    src = _inputs(tmp_path, files=3)
    job = _job(tmp_path, src, transformations=[lambda r: {**r, "y": r["x"] * 2}])
    assert job.kind.local_lanes == 1
    result = asyncio.run(run_job(job.kind, local=True))
    assert result["records_written"] == 1500
    assert len(threads_seen) == 1


def test_a_failing_lane_stops_the_run_and_commits_nothing(tmp_path, monkeypatch):
    src = _inputs(tmp_path)
    job = _job(tmp_path, src)
    run = file_step.FileStep.run

    def fail_on_part3(self, task):
        if "p3.csv" in str(task.meta.get("path", task.partition)):
            raise OSError("disk gone")
        return run(self, task)

    monkeypatch.setattr(file_step.FileStep, "run", fail_on_part3)
    with pytest.raises(Exception, match="disk gone"):
        asyncio.run(run_job(job.kind, local=True))
    assert not (tmp_path / "out.jsonl").exists()
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and "in" not in p.parts]
    assert leftovers == []
