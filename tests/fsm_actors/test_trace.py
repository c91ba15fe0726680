"""Where a record went: ``trace=N`` keeps N sampled records and every failed one with the
data after each state; ``fsm-actors trace`` prints one record's journey."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fsm_actors import SimpleFSM
from fsm_actors.cli.main import cli

MACHINE = {
    "name": "traced",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "bump", "functions": {"transform": "bump"}},
        {"name": "check", "functions": {"transform": "check"}},
        {"name": "done", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "bump"},
        {"from": "bump", "to": "check"},
        {"from": "check", "to": "done"},
    ],
}


def bump(data):
    return {**data, "n": data["id"] * 10}


def check(data):
    if data["id"] % 7 == 3:
        raise ValueError(f"id {data['id']} is unlucky")
    return {**data, "checked": True}


@pytest.mark.parametrize("local", [True, False])
def test_trace_keeps_n_sampled_and_every_failed_record(ray_session, tmp_path, local):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(40)))
    with SimpleFSM(MACHINE, custom_functions={"bump": bump, "check": check},
                   local=local, actors=1) as fsm:
        result = fsm.process_stream(str(src), str(out), chunk_size=4, trace=5)
    failed = {i + 1 for i in range(40) if i % 7 == 3}  # record numbers are 1-based
    assert result["failed"] == len(failed) == 6
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl.trace.jsonl").open()]
    assert result["trace_file"] == str(tmp_path / "out.jsonl.trace.jsonl")
    assert [x["record"] for x in lines] == sorted({1, 2, 3, 4, 5} | failed)
    for x in lines:
        i = x["record"] - 1
        assert x["input"] == {"id": i}
        assert x["success"] is (x["record"] not in failed)
        assert [s["state"] for s in x["steps"]] == (
            ["start", "bump", "check"] if i % 7 == 3 else ["start", "bump", "check", "done"])
        assert x["steps"][1]["data"] == {"id": i, "n": i * 10}
    assert not (tmp_path / "out.jsonl.trace.d").exists()
    assert len(out.read_text().splitlines()) == 34


def test_trace_command_prints_a_failed_records_journey(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(12)))
    with SimpleFSM(MACHINE, custom_functions={"bump": bump, "check": check}, local=True) as fsm:
        fsm.process_stream(str(src), str(out), trace=1)
    errors = [json.loads(x) for x in (tmp_path / "out.jsonl.errors.jsonl").open()]
    record = errors[0]["record"]
    shown = CliRunner().invoke(cli, ["trace", str(out), "--record", str(record)])
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert f"record {record} of {src}: FAILED, final state 'check'" in text
    assert text.index("1. start") < text.index("2. bump") < text.index("3. check")
    assert "+ n: 30" in text
    assert "ERROR: Transform 'check' failed in state 'check': ValueError: id 3 is unlucky" in text
    missing = CliRunner().invoke(cli, ["trace", str(out), "--record", "2"])
    assert missing.exit_code != 0 and "only the first N records" in missing.output
    none = CliRunner().invoke(cli, ["trace", str(src), "--record", "2"])
    assert none.exit_code != 0 and "--trace N" in none.output


def test_run_trace_writes_the_trace_beside_the_output(tmp_path):
    config, src, out = tmp_path / "m.json", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    config.write_text(json.dumps(MACHINE))
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(10)))
    done = CliRunner().invoke(cli, [
        "run", str(config), "-i", str(src), "-o", str(out), "--local", "--no-progress",
        "--functions", "tests.fsm_actors.test_trace", "--trace", "2", "--strict"])
    assert done.exit_code == 1, done.output  # record 4 (id 3) failed (--strict)
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl.trace.jsonl").open()]
    assert [x["record"] for x in lines] == [1, 2, 4]
    shown = CliRunner().invoke(cli, ["trace", str(tmp_path / "out.jsonl.trace.jsonl"),
                                     "--record", "4"])
    assert "3. check" in shown.output and "ERROR:" in shown.output
