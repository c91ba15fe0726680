"""The seed's "Common Configurations" in pipeline files: ``options:`` and ``error_handling:``.

Each option is run through the public path (a pipeline file in tmp_path, ``run_pipeline_file``)
and checked with ``fsm-actors validate``; a kind that cannot honour an option refuses it.
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
from patterns.pipeline import load_pipeline, run_pipeline_file

SEED_BATCH = 'options:\n  batch_size: 1000\n  parallel_workers: 4\n  memory_limit: "1GB"\n'
SEED_STREAM = "options:\n  stream: true\n  buffer_size: 8192\n  backpressure: true\n"
SEED_ERRORS = ("error_handling:\n  strategy: exponential_backoff\n  max_retries: 3\n"
               "  timeout: 30\n  on_failure: compensate\n")
#: a vectorized step that takes a while, so batches pile up behind the workers
SLOW = "{vectorized: \"lambda t: (__import__('time').sleep(0.05), t)[1]\"}"


def _csv(path: Path, rows: int, width: int = 1) -> Path:
    path.write_text("id,name,amount\n" + "".join(
        f"{i},{'n' * width}{i},{i * 10}\n" for i in range(rows)))
    return path


def _job(tmp_path: Path, body: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text("kind: file_processing\ninput_path: in.csv\noutput_path: out.jsonl\n" + body)
    return path


def _validate(path: Path):
    return CliRunner().invoke(cli, ["validate", str(path)])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("block", [SEED_BATCH, SEED_STREAM, SEED_ERRORS,
                                   SEED_BATCH + SEED_ERRORS])
def test_the_seed_blocks_are_valid_file_processing_sections(tmp_path, block):
    _csv(tmp_path / "in.csv", 5)
    result = _validate(_job(tmp_path, block))
    assert result.exit_code == 0, result.output


def test_unknown_option_and_bad_value_are_named(tmp_path):
    _csv(tmp_path / "in.csv", 5)
    bad = _validate(_job(tmp_path, "options: {batch_sise: 10}\n"))
    assert bad.exit_code == 1 and "job.yaml:4: options.batch_sise: unknown key" in bad.output
    bad = _validate(_job(tmp_path, "error_handling: {on_failure: retry_forever}\n"))
    assert bad.exit_code == 1 and "error_handling.on_failure" in bad.output
    bad = _validate(_job(tmp_path, "chunk_size: 50\noptions: {batch_size: 10}\n"))
    assert bad.exit_code == 1 and "disagree" in bad.output


def test_batch_size_and_parallel_workers_size_the_tasks_and_the_pool(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 120)
    pid = "\"lambda r: {**r, 'pid': __import__('os').getpid()}\""
    job = _job(tmp_path, f"options: {{batch_size: 10, parallel_workers: 2}}\n"
                         f"transformations: [{SLOW}, {pid}]\n")
    seen = []
    result = run_pipeline_file(job, on_progress=lambda p: seen.append(p.batches_done))
    rows = _rows(tmp_path / "out.jsonl")
    assert result["records_written"] == 120 and max(seen) == 12  # 120 records / 10 per task
    assert len({r["pid"] for r in rows}) == 2  # a small file alone gets one worker


def test_memory_limit_bounds_the_bytes_in_flight(ray_session, tmp_path):
    source = _csv(tmp_path / "in.csv", 6000, width=40)
    batch = pacsv.read_csv(source).nbytes / 30  # 30 tasks of 200 records
    body = f"transformations: [{SLOW}]\noptions: {{batch_size: 200, parallel_workers: 2"
    free = run_pipeline_file(_job(tmp_path, body + "}\n", "free.yaml"))
    limit = int(batch * 2.5)
    total = ray.cluster_resources()["memory"]
    reserved: list[float] = []  # Ray memory held while the run goes: the workers' requests

    def watch(_progress) -> None:
        reserved.append(total - ray.available_resources().get("memory", 0))

    bounded = run_pipeline_file(_job(tmp_path, body + f", memory_limit: {limit}}}\n"),
                                on_progress=watch)
    assert max(reserved) >= 2 * (limit // 2)  # two workers, each asking for its share
    assert free["peak_bytes_in_flight"] > limit  # unbounded, reading runs ahead of the workers
    assert 0 < bounded["peak_bytes_in_flight"] <= limit
    assert bounded["records_written"] == free["records_written"] == 6000
    print(f"peak in flight: {free['peak_bytes_in_flight']} B unbounded, "
          f"{bounded['peak_bytes_in_flight']} B under memory_limit={limit}")


def test_stream_false_reads_each_file_whole_on_a_worker(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 300)
    streamed = run_pipeline_file(_job(tmp_path, "options: {stream: true, batch_size: 50}\n",
                                      "s.yaml"))
    whole = run_pipeline_file(_job(tmp_path, "options: {stream: false, batch_size: 50}\n"))
    assert streamed["peak_bytes_in_flight"] > 0  # batches read here, shipped to workers
    assert whole["peak_bytes_in_flight"] == 0  # the worker read the file itself
    assert whole["records_written"] == streamed["records_written"] == 300


def test_buffer_size_is_the_csv_read_block_and_needs_csv(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    from patterns._files.job import FileJob

    job = load_pipeline(_job(tmp_path, "options: {buffer_size: 4096}\n")).jobs[0]
    plan = FileJob(job.config, options=job.options).kind.step_spec()
    assert plan.read.csv_block_size == 4096
    assert run_pipeline_file(tmp_path / "job.yaml")["records_written"] == 50
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    other = tmp_path / "j.yaml"
    other.write_text("kind: file_processing\ninput_path: in.jsonl\noutput_path: o.jsonl\n"
                     "options: {buffer_size: 4096}\n")
    with pytest.raises(PatternError, match="block size of CSV reads"):
        run_pipeline_file(other)


def test_backpressure_false_is_refused_with_the_reason(tmp_path):
    _csv(tmp_path / "in.csv", 5)
    result = _validate(_job(tmp_path, "options: {backpressure: false}\n"))
    assert result.exit_code == 1 and "reading always waits for the workers" in result.output


def _flaky(marker: Path) -> str:
    """A transformation that fails the first time it runs (anywhere), then works."""
    return (f"\"lambda r: r if __import__('os').path.exists(r'{marker}') else "
            f"(open(r'{marker}', 'w').close(), 1 / 0)\"")


def test_error_handling_retries_a_failed_batch(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 40)
    plain = run_pipeline_file(_job(tmp_path, f"transformations: [{_flaky(tmp_path / 'm1')}]\n",
                                   "plain.yaml"))
    assert plain["errors"] == 1  # without a policy the record is rejected at once
    retried = run_pipeline_file(_job(
        tmp_path, f"transformations: [{_flaky(tmp_path / 'm2')}]\n"
                  "error_handling: {strategy: fixed_delay, initial_delay: 0.01, "
                  "max_retries: 2}\n"))
    assert retried["errors"] == 0 and retried["records_written"] == 40


def test_error_handling_timeout_abandons_a_slow_attempt(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 10)
    marker = tmp_path / "slow"
    hang = (f"\"lambda r: r if __import__('os').path.exists(r'{marker}') else "
            f"(open(r'{marker}', 'w').close(), __import__('time').sleep(30), r)[2]\"")
    result = run_pipeline_file(_job(
        tmp_path, f"transformations: [{hang}]\n"
                  "error_handling: {timeout: 0.5, max_retries: 1, initial_delay: 0}\n"))
    assert result["records_written"] == 10 and result["errors"] == 0


BAD_30 = "\"lambda r: 1 / 0 if r['id'] == 30 else r\""


def test_on_failure_skip_sends_the_failed_batch_to_the_error_file(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 100)
    result = run_pipeline_file(_job(
        tmp_path, f"chunk_size: 25\ntransformations: [{BAD_30}]\nerror_file: errors.jsonl\n"
                  "error_handling: {max_retries: 1, initial_delay: 0, on_failure: skip}\n"))
    errors = _rows(tmp_path / "errors.jsonl")
    assert result["records_written"] == 75 and len(errors) == 25
    assert {json.loads(e["raw"])["id"] for e in errors} == set(range(25, 50))
    assert "after 2 attempts" in errors[0]["reason"]


def test_on_failure_fail_stops_and_keeps_the_checkpoint(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 100)
    job = _job(tmp_path, f"chunk_size: 25\ntransformations: [{BAD_30}]\n"
                         "checkpoint_id: run-fail\n"
                         "error_handling: {max_retries: 1, initial_delay: 0}\n")
    with pytest.raises(PatternError, match="failed 2 attempts"):
        run_pipeline_file(job)
    assert list((tmp_path / ".fsm_actors" / "run-run-fail").rglob("*.jsonl"))  # kept to resume


def test_on_failure_compensate_removes_the_partial_run(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 100)
    job = _job(tmp_path, f"chunk_size: 25\ntransformations: [{BAD_30}]\n"
                         "checkpoint_id: run-comp\n"
                         "error_handling: {max_retries: 1, initial_delay: 0, "
                         "on_failure: compensate}\n")
    with pytest.raises(PatternError, match="compensated: removed"):
        run_pipeline_file(job)
    assert not (tmp_path / ".fsm_actors" / "run-run-comp").exists()
    assert not list(tmp_path.rglob("*.ckpt"))
    assert not (tmp_path / "out.jsonl").exists()


def test_on_failure_compensate_runs_the_named_function(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    note = tmp_path / "compensated.txt"
    job = _job(tmp_path, f"transformations: [{BAD_30}]\n"
                         "error_handling:\n  max_retries: 0\n  on_failure: compensate\n"
                         f"  compensation: \"lambda info: open(r'{note}', 'w')"
                         ".write(info['run_id'] + ' ' + info['error'])\"\n")
    with pytest.raises(PatternError, match="compensated: ran"):
        run_pipeline_file(job)
    assert "failed 1 attempts" in note.read_text()


@pytest.mark.parametrize(("kind", "body", "why"), [
    ("etl", "source: a.csv\ntarget: sqlite:///w.db\noptions: {memory_limit: 1GB}\n",
     "bound its memory with batch_size"),
    ("etl", "source: a.csv\ntarget: sqlite:///w.db\nerror_handling: {timeout: 2}\n",
     "cannot be abandoned"),
    ("api", "endpoints: [{name: a, url: 'http://127.0.0.1:9/a'}]\n"
            "options: {memory_limit: 1GB}\n", "holds no batches of file records"),
    ("fsm", "config: {name: m, states: [{name: s, is_start: true, is_end: true}]}\n"
            "input: in.csv\noutput: o.jsonl\noptions: {backpressure: false}\n",
     "reading always waits for the workers"),
])
def test_a_kind_refuses_what_it_cannot_honour(tmp_path, kind, body, why):
    _csv(tmp_path / "in.csv", 5)
    path = tmp_path / "job.yaml"
    path.write_text(f"kind: {kind}\n{body}")
    with pytest.raises(PatternError, match="not supported by kind " + kind):
        load_pipeline(path)
    result = _validate(path)
    assert result.exit_code == 1 and why in result.output and "Traceback" not in result.output


def test_batch_size_and_workers_are_the_etl_and_fsm_fields(tmp_path):
    _csv(tmp_path / "in.csv", 5)
    (tmp_path / "etl.yaml").write_text(
        "kind: etl\nsource: in.csv\ntarget: sqlite:///w.db\ntarget_table: t\n"
        "options: {batch_size: 123, parallel_workers: 2}\n")
    config = load_pipeline(tmp_path / "etl.yaml").jobs[0].config
    assert (config.batch_size, config.parallel_workers) == (123, 2)
    (tmp_path / "fsm.yaml").write_text(
        "kind: fsm\nconfig: {name: m, states: [{name: s, is_start: true, is_end: true}]}\n"
        "input: in.csv\noutput: o.jsonl\noptions: {batch_size: 7, parallel_workers: 3}\n")
    spec = load_pipeline(tmp_path / "fsm.yaml").jobs[0].spec
    assert (spec["chunk_size"], spec["workers"]) == (7, 3)


def test_steps_take_the_pipeline_options_as_defaults(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 60)
    (tmp_path / "steps.yaml").write_text(
        "kind: steps\noptions: {batch_size: 20}\nsteps:\n"
        "  - {name: a, kind: file_processing, input_path: in.csv, output_path: a.jsonl}\n"
        "  - {name: b, kind: file_processing, input_path: in.csv, output_path: b.jsonl,"
        " options: {batch_size: 30}}\n")
    pipeline = load_pipeline(tmp_path / "steps.yaml")
    assert [j.config.chunk_size for j in pipeline.jobs] == [20, 30]
    assert run_pipeline_file(tmp_path / "steps.yaml")["records_written"] == 120


def test_the_schema_takes_the_seed_sections_and_refuses_what_a_kind_refuses():
    import jsonschema
    import yaml

    from patterns.pipeline import PipelineFiles

    validator = jsonschema.Draft202012Validator(PipelineFiles.schema(None))
    seed = yaml.safe_load("kind: file_processing\ninput_path: a.csv\n" + SEED_BATCH + SEED_ERRORS)
    assert not list(validator.iter_errors(seed))
    assert [e.json_path for e in validator.iter_errors(
        {**seed, "options": {"batch_sise": 1}})] == ["$.options"]
    etl = {"kind": "etl", "source": "a", "target": "b"}
    assert not list(validator.iter_errors({**etl, "options": {"batch_size": 5}}))
    assert [e.json_path for e in validator.iter_errors(
        {**etl, "options": {"memory_limit": "1GB"}})] == ["$.options"]
    assert not list(validator.iter_errors({**etl, "error_handling": {"max_retries": 1}}))
