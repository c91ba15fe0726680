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


SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
import fsm_actors.redrive as redrive
from fsm_actors import SimpleFSM
from tests.patterns.test_redrive_stream import MACHINE, bump, fixed

where = sys.argv[1]

def crashing(data):
    if where == "job" and data["id"] == 27:
        os._exit(9)  # killed mid-job: chunks before this one are committed
    return fixed(data)

if where == "join":  # killed right after the output was replaced, before the journal says so
    save = redrive._save
    def dying(path, state):
        if state.get("phase") == "errors":
            os._exit(9)
        save(path, state)
    redrive._save = dying

with SimpleFSM(MACHINE, custom_functions={{"bump": bump, "check": crashing}}, local=True) as fsm:
    fsm.process_stream({src!r}, {out!r}, chunk_size=3, redrive=True)
"""


@pytest.mark.parametrize("where", ["job", "join"])
def test_a_redrive_killed_midway_and_run_again_ends_exact(tmp_path, where):
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(60)))
    out, clean = tmp_path / "out.jsonl", tmp_path / "clean.jsonl"
    with SimpleFSM(MACHINE, custom_functions={"bump": bump, "check": broken}, local=True) as fsm:
        fsm.process_stream(str(src), str(out), chunk_size=3)
    script = tmp_path / "crash.py"
    root = str(Path(__file__).resolve().parents[2])
    script.write_text(SCRIPT.format(root=root, src=str(src), out=str(out)))
    done = subprocess.run([sys.executable, str(script), where], capture_output=True, text=True,
                          timeout=120, cwd=root)
    assert done.returncode == 9, done.stderr
    assert (tmp_path / "out.jsonl.errors.jsonl.redrive.json").exists()
    with SimpleFSM(MACHINE, custom_functions={"bump": bump, "check": fixed}, local=True) as fsm:
        summary = fsm.process_stream(str(src), str(out), chunk_size=3, redrive=True)
        fsm.process_stream(str(src), str(clean), chunk_size=3)
    assert (summary["redriven"], summary["succeeded"], summary["still_failing"]) == (20, 20, 0)
    assert sorted(_lines(out), key=_key) == sorted(_lines(clean), key=_key)
    assert not (tmp_path / "out.jsonl.errors.jsonl.redrive.json").exists()
    assert not list((tmp_path / ".fsm_actors").glob("redrive-*"))


def test_redrive_command_by_output_and_by_error_file(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fsm_actors.cli.main import cli

    monkeypatch.chdir(tmp_path)
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    src.write_text("id,name\n" + "".join(f'{i},"r, {i}"\n' for i in range(12)))
    configs = {}
    for name in ("broken", "fixed"):
        machine = json.loads(json.dumps(MACHINE))
        machine["states"][2]["functions"]["transform"] = name
        configs[name] = tmp_path / f"{name}.json"
        configs[name].write_text(json.dumps(machine))
    base = ["--local", "--functions", "tests.patterns.test_redrive_stream"]
    done = CliRunner().invoke(cli, ["run", str(configs["broken"]), "-i", str(src), "-o",
                                    str(out), "--no-progress", "--checkpoint-id", "orders1",
                                    "--strict", *base])
    assert done.exit_code == 1, done.output  # --strict: any rejected record exits 1
    redriven = CliRunner().invoke(cli, ["redrive", str(out), str(configs["fixed"]), *base])
    assert redriven.exit_code == 0, redriven.output
    assert "redriven 4: 4 now succeed" in redriven.output and "0 still fail" in redriven.output
    rows = sorted(_lines(out), key=_key)
    assert [r["id"] for r in rows] == list(range(12))
    assert rows[3] == {"id": 3, "name": "r, 3", "n": 1, "checked": True}
    again = CliRunner().invoke(cli, ["redrive", str(out) + ".errors.jsonl",
                                     str(configs["fixed"]), *base])
    assert "redriven 0: 0 now succeed" in again.output
    assert len(_lines(out)) == 12
    missing = CliRunner().invoke(cli, ["redrive", "nope", str(configs["fixed"]), *base])
    assert missing.exit_code != 0 and "give the error file" in missing.output
