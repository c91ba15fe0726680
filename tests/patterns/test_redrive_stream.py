"""Redrive of an FSM stream: after fixing a function, only the failed records are re-run and
the output equals a clean run's, exactly once; a second redrive is a no-op."""

from __future__ import annotations

import json

import pytest

from fsm_actors import SimpleFSM

# "bump" changes the record in place before "check" runs: a redrive must re-run the record
# as it was given, not as it was when it failed (n would be 2 then).
MACHINE = {
    "name": "bump_check",
    "data_mode": "direct",
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
    data["n"] = data.get("n", 0) + 1
    return data


def broken(data):
    if data["id"] % 3 == 0:
        raise ValueError(f"cannot check {data['id']}")
    return {**data, "checked": True}


def fixed(data):
    return {**data, "checked": True}


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _key(r):
    return r["id"]


@pytest.mark.parametrize("local", [True, False])
def test_stream_redrive_after_the_fix_equals_a_clean_run(ray_session, tmp_path, local):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "name": f"r{i}"}) + "\n" for i in range(50)))
    out, clean = tmp_path / "out.jsonl", tmp_path / "clean.jsonl"
    with SimpleFSM(MACHINE, custom_functions={"bump": bump, "check": broken},
                   local=local, actors=1) as fsm:
        first = fsm.process_stream(str(src), str(out), chunk_size=7)
    assert first["failed"] == 17
    errors = tmp_path / "out.jsonl.errors.jsonl"
    assert len(_lines(errors)) == 17
    with SimpleFSM(MACHINE, custom_functions={"bump": bump, "check": fixed},
                   local=local, actors=1) as fsm:
        summary = fsm.process_stream(str(src), str(out), chunk_size=7, redrive=True)
        fsm.process_stream(str(src), str(clean), chunk_size=7)
        again = fsm.process_stream(str(src), str(out), chunk_size=7, redrive=True)
    assert (summary["redriven"], summary["succeeded"], summary["still_failing"]) == (17, 17, 0)
    assert sorted(_lines(out), key=_key) == sorted(_lines(clean), key=_key)
    assert errors.read_text() == ""
    assert (again["redriven"], again["succeeded"], again["still_failing"]) == (0, 0, 0)
    assert sorted(_lines(out), key=_key) == sorted(_lines(clean), key=_key)
