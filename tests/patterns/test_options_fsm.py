"""``options:`` and ``error_handling:`` of ``kind: fsm`` pipeline files take effect.

Each test writes a pipeline file as a user would and runs it through ``run_pipeline_file``
(or the CLI), on the session Ray's job workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
import ray
from click.testing import CliRunner

from fsm_actors.cli.main import cli
from patterns.errors import PatternError
from patterns.pipeline import run_pipeline_file


def _csv(path: Path, rows: int, width: int = 1) -> Path:
    path.write_text("id,name,amount\n" + "".join(
        f"{i},{'n' * width}{i},{i * 10}\n" for i in range(rows)))
    return path


def _job(tmp_path: Path, function: str, body: str = "", name: str = "job.yaml") -> Path:
    """A kind: fsm file whose one state transforms each record with ``function``."""
    path = tmp_path / name
    path.write_text(
        "kind: fsm\n"
        "config:\n"
        "  name: opts\n"
        "  states:\n"
        "    - {name: s, is_start: true, transforms: [step]}\n"
        "    - {name: e, is_end: true}\n"
        "  arcs: [{from: s, to: e}]\n"
        f"functions:\n  step: {json.dumps(function)}\n"
        "input: in.csv\noutput: out.jsonl\nactors: 1\n" + body)
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


#: a pause at the first record of each chunk of 200, so chunks pile up behind the workers
SLOW = "lambda d: (__import__('time').sleep(0.05 if d['id'] % 200 == 0 else 0), d)[1]"
PID = "lambda d: {**d, 'pid': __import__('os').getpid()}"
BAD_30 = "lambda d: 1 / 0 if d['id'] == 30 else d"


def _flaky(marker: Path) -> str:
    """Raises for the first record it sees anywhere (a marker file says it did), then works."""
    return (f"lambda d: d if __import__('os').path.exists(r'{marker}') else "
            f"(open(r'{marker}', 'w').close(), 1 / 0)")


def test_batch_size_and_parallel_workers_size_the_chunks_and_the_workers(ray_session,
                                                                           tmp_path):
    _csv(tmp_path / "in.csv", 120)
    seen: list[int] = []
    result = run_pipeline_file(
        _job(tmp_path, PID, "options: {batch_size: 10, parallel_workers: 2}\n"),
        on_progress=lambda p: seen.append(p.batches_done))
    rows = _rows(tmp_path / "out.jsonl")
    assert result["records_written"] == 120 and max(seen) == 12  # 120 records / 10 a chunk
    assert len({r["pid"] for r in rows}) == 2


def test_memory_limit_bounds_the_bytes_in_flight_and_asks_ray_for_memory(ray_session,
                                                                          tmp_path):
    source = _csv(tmp_path / "in.csv", 6000, width=40)
    chunk = pacsv.read_csv(source).nbytes / 30  # 30 chunks of 200 records
    body = "options: {batch_size: 200, parallel_workers: 2"
    free = run_pipeline_file(_job(tmp_path, SLOW, body + "}\n", "free.yaml"))
    limit = int(chunk * 2.5)
    total = ray.cluster_resources()["memory"]
    reserved: list[float] = []

    def watch(_progress) -> None:
        reserved.append(total - ray.available_resources().get("memory", 0))

    bounded = run_pipeline_file(_job(tmp_path, SLOW, body + f", memory_limit: {limit}}}\n"),
                                on_progress=watch)
    assert max(reserved) >= 2 * (limit // 2)  # two workers, each asking for its share
    assert free["peak_bytes_in_flight"] > limit
    assert 0 < bounded["peak_bytes_in_flight"] <= limit
    assert bounded["records_written"] == free["records_written"] == 6000
    print(f"fsm peak in flight: {free['peak_bytes_in_flight']} B unbounded, "
          f"{bounded['peak_bytes_in_flight']} B under memory_limit={limit}")


def test_stream_false_has_a_worker_read_the_whole_file(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 300)
    streamed = run_pipeline_file(_job(tmp_path, PID, "options: {stream: true, batch_size: 50}\n",
                                      "s.yaml"))
    whole = run_pipeline_file(_job(tmp_path, PID, "options: {stream: false, batch_size: 50}\n"))
    assert streamed["peak_bytes_in_flight"] > 0  # chunks read here, shipped to the workers
    assert whole["peak_bytes_in_flight"] == 0  # the worker read the file itself
    assert whole["records_written"] == streamed["records_written"] == 300


def test_buffer_size_sets_the_csv_block_and_backpressure_false_is_refused(ray_session,
                                                                          tmp_path):
    _csv(tmp_path / "in.csv", 400, width=30)
    # a block smaller than one chunk's bytes: the rows still all arrive, once each
    result = run_pipeline_file(_job(tmp_path, SLOW, "options: {buffer_size: 1024, "
                                                    "backpressure: true, stream: true}\n"))
    assert result["records_written"] == 400
    assert sorted(r["id"] for r in _rows(tmp_path / "out.jsonl")) == list(range(400))
    path = _job(tmp_path, SLOW, "options: {backpressure: false}\n", "bp.yaml")
    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 1 and "reading always waits for the workers" in out.output
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    other = _job(tmp_path, SLOW, "options: {buffer_size: 4096}\n", "j.yaml")
    other.write_text(other.read_text().replace("input: in.csv", "input: in.jsonl"))
    with pytest.raises(PatternError, match="block size of CSV reads"):
        run_pipeline_file(other)


def test_error_handling_retries_the_failed_records_of_a_chunk(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 40)
    plain = run_pipeline_file(_job(tmp_path, _flaky(tmp_path / "m1"), "", "plain.yaml"))
    assert plain["errors"] == 1  # without a policy the record fails at once
    retried = run_pipeline_file(_job(
        tmp_path, _flaky(tmp_path / "m2"),
        "error_handling: {strategy: fixed_delay, initial_delay: 0.01, max_retries: 2}\n"))
    assert retried["errors"] == 0 and retried["records_written"] == 40
    assert sorted(r["id"] for r in _rows(tmp_path / "out.jsonl")) == list(range(40))


def test_error_handling_timeout_abandons_a_hung_attempt(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 10)
    marker = tmp_path / "slow"
    hang = (f"lambda d: d if __import__('os').path.exists(r'{marker}') else "
            f"(open(r'{marker}', 'w').close(), __import__('time').sleep(5), d)[2]")
    result = run_pipeline_file(_job(
        tmp_path, hang,
        "local: true\nerror_handling: {timeout: 1, max_retries: 1, initial_delay: 0}\n"))
    assert result["records_written"] == 10 and result["errors"] == 0


def test_on_failure_skip_sends_the_failed_chunk_to_the_error_file(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 100)
    result = run_pipeline_file(_job(
        tmp_path, BAD_30, "chunk_size: 25\nlocal: true\n"
        "error_handling: {max_retries: 1, initial_delay: 0, on_failure: skip}\n"))
    errors = _rows(Path(result["error_file"]))
    assert result["records_written"] == 75 and len(errors) == 25
    assert {json.loads(e["raw"])["id"] for e in errors} == set(range(25, 50))
    assert "after 2 attempts" in errors[0]["reason"]
    written = {r["id"] for r in _rows(tmp_path / "out.jsonl")}
    assert written == set(range(100)) - set(range(25, 50))


def test_on_failure_fail_stops_the_job(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 100)
    with pytest.raises(PatternError, match="failed 2 attempts"):
        run_pipeline_file(_job(tmp_path, BAD_30, "chunk_size: 25\nlocal: true\n"
                               "error_handling: {max_retries: 1, initial_delay: 0}\n"))
    assert not (tmp_path / "out.jsonl").exists()


def test_on_failure_compensate_removes_the_partial_run(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 100)
    job = _job(tmp_path, BAD_30, "chunk_size: 25\nlocal: true\ncheckpoint_id: fsm-comp\n"
               "error_handling: {max_retries: 1, initial_delay: 0, on_failure: compensate}\n")
    with pytest.raises(PatternError, match="compensated: removed"):
        run_pipeline_file(job)
    assert not list(tmp_path.rglob("*fsm-comp*"))  # no staged parts, no checkpoint
    assert not (tmp_path / "out.jsonl").exists()


def test_on_failure_compensate_runs_the_named_function(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    note = tmp_path / "compensated.txt"
    job = _job(tmp_path, BAD_30,
               "local: true\nerror_handling:\n  max_retries: 0\n  on_failure: compensate\n"
               f"  compensation: \"lambda info: open(r'{note}', 'w')"
               ".write(info['output'] + ' ' + info['error'])\"\n")
    with pytest.raises(PatternError, match="compensated: ran"):
        run_pipeline_file(job)
    assert "failed 1 attempts" in note.read_text() and "out.jsonl" in note.read_text()


def test_the_seed_blocks_validate_for_kind_fsm(tmp_path):
    _csv(tmp_path / "in.csv", 5)
    for block in ('options: {batch_size: 1000, parallel_workers: 4, memory_limit: "1GB"}\n',
                  "options: {stream: true, buffer_size: 8192, backpressure: true}\n",
                  "error_handling: {strategy: exponential_backoff, max_retries: 3, "
                  "timeout: 30, on_failure: compensate}\n"):
        out = CliRunner().invoke(cli, ["validate", str(_job(tmp_path, SLOW, block))])
        assert out.exit_code == 0, out.output
