"""``fsm-actors run`` / ``validate`` as a person meets them: syntax errors with line and
column, one-line run-time errors, every problem of a pipeline file, and (under a real
pseudo-terminal) phases, a bar with a total, a summary, and a clean Ctrl-C that resumes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_actors.cli.main import cli
from tests.helpers.terminal import in_terminal

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    # a ClickException or sys.exit is a clean exit; anything else would be a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _csv(path: Path, rows: int) -> Path:
    path.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(rows)))
    return path


def _job(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize("command", ["run", "validate"])
def test_yaml_syntax_error_gives_file_line_column(tmp_path, command):
    bad = _job(tmp_path, "bad.yaml", "name: x\nstates: [a\nbad: 1\n")
    result = _invoke(command, str(bad))
    assert result.exit_code == 1
    assert re.search(rf"{re.escape(str(bad))}:3:4: expected .,. or .\].", result.output), result.output


@pytest.mark.parametrize("command", ["run", "validate"])
def test_json_syntax_error_gives_file_line_column(tmp_path, command):
    bad = _job(tmp_path, "bad.json", '{"name": "x",\n  "states": [}\n')
    result = _invoke(command, str(bad))
    assert result.exit_code == 1
    assert f"{bad}:2:14: Expecting value" in result.output, result.output


def test_validate_reports_every_unknown_key_at_its_line(tmp_path):
    _csv(tmp_path / "in.csv", 3)
    job = _job(tmp_path, "job.yaml", "kind: file_processing\ninput_path: in.csv\n"
               "output_path: out.jsonl\nbogus: 1\nother_bogus: 2\n")
    result = _invoke("validate", str(job))
    assert result.exit_code == 1
    assert f"{job}:4: bogus: unknown key" in result.output
    assert f"{job}:5: other_bogus: unknown key" in result.output


def test_validate_catches_what_would_fail_at_run_time(tmp_path):
    job = _job(tmp_path, "job.yaml", "kind: file_processing\ninput_path: nothing*.csv\n"
               "output_path: out.jsonl\naggregations:\n  n: count\n  m: 'median:a'\n")
    result = _invoke("validate", str(job))
    assert result.exit_code == 1
    assert f"{job}:2: input_path: no input files match" in result.output
    assert f"{job}:6: aggregations.m: " in result.output and "'median'" in result.output
    assert result.output.count(str(job)) == 2  # the path once per problem, never repeated


def test_an_unknown_kind_is_named_with_the_kinds_there_are(tmp_path):
    job = _job(tmp_path, "job.yaml", "kind: pipeline\nsteps: []\n")
    result = _invoke("run", str(job))
    assert result.exit_code == 1
    assert f"{job}:1: kind: unknown kind 'pipeline'" in result.output
    assert "file_processing" in result.output and "FSM configs" in result.output


def test_input_and_output_options_are_refused_for_a_pipeline_file(tmp_path):
    _csv(tmp_path / "in.csv", 3)
    job = _job(tmp_path, "job.yaml", "kind: file_processing\ninput_path: in.csv\n"
               "output_path: out.jsonl\n")
    result = _invoke("run", str(job), "-o", str(tmp_path / "other.jsonl"))
    assert result.exit_code == 1 and "names its input_path and output_path" in result.output
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "other.jsonl").exists()


def test_run_help_lists_every_input_format():
    result = _invoke("run", "--help")
    for fmt in ("CSV", "TSV", "JSON Lines", "XML", "Parquet", "text", ".gz/.zst"):
        assert fmt in result.output


@pytest.mark.ray
def test_a_run_stopped_by_its_error_threshold_is_one_message(ray_session, tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n" + "".join(
        f"{i},{'x' if i % 10 == 0 else i}\n" for i in range(200)))
    job = _job(tmp_path, "job.yaml", "kind: file_processing\ninput_path: in.csv\n"
               "output_path: out.jsonl\nerror_threshold: 3\n"
               "transformations: [\"lambda r: {**r, 'c': int(r['b']) + 1}\"]\n")
    result = _invoke("run", str(job), "--no-progress")
    assert result.exit_code == 1
    assert "error_threshold" in result.output
    assert result.output.count(f"{job}:") == 1


# -- under a real terminal -----------------------------------------------------------------

@pytest.mark.ray
def test_run_under_a_terminal_shows_phases_a_bar_with_a_total_and_a_summary(
        ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 60_000)
    job = _job(tmp_path, "job.yaml", "kind: file_processing\ninput_path: in.csv\n"
               "output_path: out.jsonl\nchunk_size: 5000\n")
    out, code = in_terminal(["run", str(job), "--address", ray_session.address], cwd=REPO)
    assert code == 0, out
    for phase in ("connecting to the Ray cluster at", "Ray ready", "actors ready; running",
                  "committing output"):
        assert phase in out, out
    assert re.search(r"records .*/60000 .*rec/s running ETA", out), out  # a bar with a total
    assert "60000/60000" in out
    assert "done: 60,000 records in, 60,000 written, 0 rejected" in out
    assert f"output: {tmp_path / 'out.jsonl'}" in out and "records/s" in out
    assert "Traceback" not in out
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 60_000


SLOW_FSM = """name: slow
states:
  - {name: start, is_start: true}
  - name: work
    transforms: ["lambda data, ctx: (__import__('time').sleep(0.001), data)[1]"]
  - {name: done, is_end: true}
arcs:
  - {from: start, to: work}
  - {from: work, to: done}
"""


@pytest.mark.ray
@pytest.mark.parametrize("kind", ["pipeline file", "FSM config"])
def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_resume_finishes(
        ray_session, tmp_path, kind):
    _csv(tmp_path / "in.csv", 10_000)
    if kind == "pipeline file":
        job = _job(tmp_path, "job.yaml", "kind: file_processing\ninput_path: in.csv\n"
                   "output_path: out.jsonl\nchunk_size: 250\n"
                   "transformations: [\"lambda r: (__import__('time').sleep(0.001), r)[1]\"]\n")
        args = ["run", str(job)]
    else:
        job = _job(tmp_path, "fsm.yaml", SLOW_FSM)
        args = ["run", str(job), "-i", str(tmp_path / "in.csv"), "-o",
                str(tmp_path / "out.jsonl"), "--chunk-size", "250"]
    args += ["--address", ray_session.address, "--checkpoint-id", "cc1"]
    out, code = in_terminal(args, cwd=REPO, interrupt_when=b"actors ready")
    assert code == 130, out
    assert "interrupted after" in out and "run the same command again to resume" in out
    assert "Traceback" not in out and "Error" not in out, out
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written in its place

    out, code = in_terminal([*args, "--json"], cwd=REPO)
    assert code == 0, out
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(int(r["a"]) for r in rows) == list(range(10_000))  # each exactly once


@pytest.mark.ray
def test_run_of_etl_steps_and_api_pipeline_files_prints_their_summaries(ray_session, tmp_path):
    import sqlite3

    from tests.patterns.api_servers import APITestServer

    _csv(tmp_path / "in.csv", 500)
    etl = _job(tmp_path, "etl.yaml", "kind: etl\nsource: {type: file, path: in.csv}\n"
               "target: {type: file, path: out/ab.parquet}\nmode: full_refresh\n")
    result = _invoke("run", str(etl), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "500 records in, 500 written" in result.output and "ab.parquet" in result.output
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b INTEGER, c INTEGER)")
    steps = _job(tmp_path, "steps.yaml", "kind: steps\nsteps:\n"
                 "  - {name: clean, kind: file_processing, input_path: in.csv,"
                 " output_path: out/c.jsonl, transformations: [\"lambda r: {**r, 'c': 1}\"]}\n"
                 "  - {name: load, kind: etl, source: {type: file, path: '${steps.clean.output_path}'},"
                 " target: 'sqlite:///t.db', target_table: t, mode: upsert}\n")
    result = _invoke("run", str(steps), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "done: 2 steps" in result.output
    assert "clean: 500 records in, 500 written" in result.output
    assert "load: 500 records in, 500 written" in result.output
    server = APITestServer().start()
    try:
        api = _job(tmp_path, "api.yaml", f"kind: api\nbase_url: {server.url}\nmode: parallel\n"
                   "endpoints: [{name: users, url: /users}, {name: gone, url: /status/404}]\n"
                   "output: out/api.json\n")
        result = _invoke("run", str(api), "--no-progress")
    finally:
        server.stop()
    assert result.exit_code == 1, result.output  # an endpoint failed
    assert "2 endpoints called, 1 failed" in result.output
