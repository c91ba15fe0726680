"""``process_batch(trace=N)`` keeps the path and the data after each state of the first N
records and of every failed record: returned as the results' ``traces`` (the lines
``process_stream`` writes) and written to ``trace_file`` (issue 25, item 3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fsm_actors import AsyncSimpleFSM, SimpleFSM
from fsm_actors.cli.main import cli
from tests.fsm_actors.test_trace import MACHINE, bump, check

FUNCTIONS = {"bump": bump, "check": check}


@pytest.mark.parametrize("local", [True, False])
def test_process_batch_traces_n_sampled_and_every_failed_record(ray_session, tmp_path, local):
    records = [{"id": i} for i in range(40)]
    target = tmp_path / "batch.trace.jsonl"
    with SimpleFSM(MACHINE, custom_functions=FUNCTIONS, local=local, actors=2) as fsm:
        out = fsm.process_batch(records, batch_size=4, trace=5, trace_file=target)
        plain = fsm.process_batch(records, batch_size=4)
    failed = {i + 1 for i in range(40) if i % 7 == 3}  # 1-based positions
    assert sum(not r["success"] for r in out) == len(failed) == 6
    assert [x["record"] for x in out.traces] == sorted({1, 2, 3, 4, 5} | failed)
    for x in out.traces:
        i = x["record"] - 1
        assert x["input"] == {"id": i} and x["file"] is None
        assert x["success"] is (x["record"] not in failed)
        assert x["final_state"] == out[i]["final_state"]
        assert [s["state"] for s in x["steps"]] == out[i]["path"] == (
            ["start", "bump", "check"] if i % 7 == 3 else ["start", "bump", "check", "done"])
        assert x["steps"][1]["data"] == {"id": i, "n": i * 10}
        if i % 7 == 3:
            assert "unlucky" in x["steps"][2]["error"] and "unlucky" in x["error"]
    # the results keep their shape; the file holds the same lines
    assert all("trace" not in r for r in out)
    assert [r["data"] for r in out] == [r["data"] for r in plain]
    assert out.trace_file == str(target)
    assert [json.loads(x) for x in target.read_text().splitlines()] == json.loads(
        json.dumps(out.traces))
    assert plain.traces is None and plain.trace_file is None
    shown = CliRunner().invoke(cli, ["trace", str(target), "--record", "4"])
    assert shown.exit_code == 0, shown.output
    assert "record 4: FAILED, final state 'check'" in shown.output
    assert "ERROR: Transform 'check' failed in state 'check'" in shown.output


async def test_async_process_batch_traces_without_a_file():
    async with AsyncSimpleFSM(MACHINE, custom_functions=FUNCTIONS, local=True) as fsm:
        out = await fsm.process_batch([{"id": i} for i in range(10)], trace=1)
    assert [x["record"] for x in out.traces] == [1, 4]
    assert out.trace_file is None


def test_trace_must_be_a_count(tmp_path):
    with SimpleFSM(MACHINE, custom_functions=FUNCTIONS, local=True) as fsm:
        with pytest.raises(ValueError, match="number of records to trace"):
            fsm.process_batch([{"id": 1}], trace=-1)
        with pytest.raises(ValueError, match="trace_file is given but trace=0"):
            fsm.process_batch([{"id": 1}], trace_file=tmp_path / "t.jsonl")
