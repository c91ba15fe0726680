"""``process_stream`` on the one job layer: records unchanged, atomic output, resume, threshold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fsm_actors import SimpleFSM
from fsm_actors.platform.jobs import JobError

# Routes on the presence of a key: a record without "a" must not gain one on the way.
HAS_A = {
    "name": "has_a",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "with_a", "is_end": True},
        {"name": "without_a", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "with_a", "condition": "'a' in data", "priority": 1},
        {"from": "start", "to": "without_a"},
    ],
}

RECORDS = [
    {"a": 1, "b": "x"},
    {"b": "no a here"},
    {"a": "text now", "mixed": [1, "a", None]},
    {"a": {"nested": {"deep": 1}}, "c": 2**63 + 5},
    {},
    {"a": None},
]


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("local", [True, False])
def test_stream_writes_the_records_it_was_given(ray_session, tmp_path, local):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _jsonl(src, RECORDS)
    with SimpleFSM(HAS_A, local=local, actors=1) as fsm:
        result = fsm.process_stream(str(src), str(out), chunk_size=2)
        batch = fsm.process_batch(RECORDS)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == RECORDS
    assert result["total_processed"] == result["successful"] == len(RECORDS)
    by_state = {}
    for r in batch:
        by_state[r["final_state"]] = by_state.get(r["final_state"], 0) + 1
    assert by_state == {"with_a": 4, "without_a": 2}
    assert result["records_written"] == result["emitted"] == len(RECORDS)
    for key in ("lines_read", "records_processed", "errors", "skipped", "run_id", "output_path",
                "error_file", "duration", "throughput", "failed"):
        assert key in result


def test_stream_from_an_iterator_keeps_python_types(ray_session, tmp_path):
    out = tmp_path / "out.jsonl"
    seen = []

    def keep(data):
        seen.append(type(data.get(1)).__name__)
        return data

    records = [{1: "int key", "big": 2**70}, {"x": 1}, "not a dict"]
    with SimpleFSM({"name": "keep", "states": [
        {"name": "s", "is_start": True, "transforms": ["keep"]},
        {"name": "e", "is_end": True}], "arcs": [{"from": "s", "to": "e"}]},
            custom_functions={"keep": keep}, local=True) as fsm:
        result = fsm.process_stream(iter(records), str(out))
    assert seen[0] == "str"  # the int key reached the function as an int key's value
    assert result["total_processed"] == 3 and result["failed"] == 1
    assert result["records_written"] == 2


def test_output_equal_to_input_is_refused(ray_session, tmp_path):
    src = tmp_path / "same.jsonl"
    _jsonl(src, RECORDS)
    with SimpleFSM(HAS_A, local=True) as fsm, pytest.raises(JobError, match="both an input"):
        fsm.process_stream(str(src), str(src))
    assert [json.loads(x) for x in src.read_text().splitlines()] == RECORDS


SLOW = {
    "name": "slow",
    "states": [
        {"name": "s", "is_start": True, "transforms": ["nap"]},
        {"name": "e", "is_end": True},
    ],
    "arcs": [{"from": "s", "to": "e"}],
}


def nap(data):
    time.sleep(0.05)
    return data


def test_a_stream_that_fails_midway_leaves_the_old_output(ray_session, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _jsonl(src, [{"i": i} for i in range(400)])
    out.write_text("OLD OUTPUT\n")
    with SimpleFSM(SLOW, custom_functions={"nap": nap}, local=True) as fsm:
        with pytest.raises(TimeoutError):
            fsm.process_stream(str(src), str(out), chunk_size=10, timeout=0.5)
    assert out.read_text() == "OLD OUTPUT\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_stream_error_threshold_stops_the_run(ray_session, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _jsonl(src, [{"x": i} for i in range(200)])

    def picky(data):
        if data["x"] % 2:
            raise ValueError("odd")
        return data

    cfg = {**SLOW, "name": "picky", "states": [
        {"name": "s", "is_start": True, "transforms": ["picky"]},
        {"name": "e", "is_end": True}]}
    with SimpleFSM(cfg, custom_functions={"picky": picky}, local=True) as fsm:
        with pytest.raises(JobError, match="error_threshold") as info:
            fsm.process_stream(str(src), str(out), chunk_size=20, error_threshold=10)
    assert not out.exists()
    entries = [json.loads(x) for x in open(info.value.error_file)]
    assert entries and all(e["stage"] == "fsm" and e["state"] == "s" for e in entries)
    assert all(e["reason"] and e["record"] for e in entries)


CRASHING_RUN = textwrap.dedent(
    """
    import sys, time
    from fsm_actors import SimpleFSM
    from fsm_actors.platform.jobs import driver
    driver.SAVE_EVERY = 0.0
    cfg = {"name": "count", "states": [
        {"name": "s", "is_start": True, "transforms": ["tick"]},
        {"name": "e", "is_end": True}], "arcs": [{"from": "s", "to": "e"}]}
    DELAY = float(sys.argv[3])
    def tick(data):
        time.sleep(DELAY)
        return {**data, "seen": True}
    with SimpleFSM(cfg, custom_functions={"tick": tick}, actors=2,
                   address="local") as fsm:
        r = fsm.process_stream(sys.argv[1], sys.argv[2], chunk_size=200,
                               checkpoint_id="resume-me", workers=2)
    print("DONE", r["total_processed"], r["records_written"])
    """
)


def test_stream_resumes_after_its_driver_is_killed_every_record_once(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    n = 6000
    _jsonl(src, [{"i": i} for i in range(n)])
    script = tmp_path / "run.py"
    script.write_text(CRASHING_RUN)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(out), "0.004"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    checkpoints = tmp_path / ".fsm_actors" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not any(checkpoints.glob("*.ckpt")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = subprocess.run([sys.executable, str(script), str(src), str(out), "0"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert "DONE" in done.stdout, done.stderr[-3000:]
    assert not (tmp_path / "out.jsonl.errors.jsonl").exists()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["i"] for r in rows) == list(range(n))
    assert all(r["seen"] for r in rows)
    total, written = done.stdout.split("DONE")[1].split()
    assert int(total) == n and int(written) == n
