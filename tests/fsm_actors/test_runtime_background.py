"""Where ``fsm-actors run`` goes when it names no cluster (issue 26 item 1): a small file
job runs in this process and starts no Ray, first run or not, with a line saying so; a big
one starts a background head (announced), the next big one attaches to it, a small one still
goes in-process beside it, ``fsm-actors down`` and the head's own idle timer stop it, with no
process left either way."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fsm_actors.platform.background_head import session_processes
from tests.fsm_actors.test_cli_person import cli

ROWS = 500


def _job(tmp_path: Path, name: str) -> str:
    (tmp_path / "in.csv").write_text("id,qty\n" + "".join(f"{i},{i % 5}\n" for i in range(ROWS)))
    (tmp_path / f"{name}.yaml").write_text(
        "kind: file_processing\ninput_path: in.csv\n"
        f"output_path: {name}.jsonl\n"
        "transformations: [\"lambda r: {**r, 'double': r['qty'] * 2}\"]\n"
    )
    return f"{name}.yaml"


def _env(tmp_path: Path, idle_minutes: float) -> dict[str, str]:
    # RAY_TMPDIR: a `ray start` of someone else on this machine is not "Ray running here"
    (tmp_path / "rt").mkdir(exist_ok=True)
    return {"FSM_ACTORS_HOME": str(tmp_path / "home"), "RAY_TMPDIR": str(tmp_path / "rt"),
            "FSM_ACTORS_BACKGROUND_HEAD": "1", "FSM_ACTORS_IDLE_MINUTES": str(idle_minutes)}


def _head(tmp_path: Path, timeout: float = 240) -> dict:
    path = tmp_path / "home" / "head.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.1)
    log = tmp_path / "home" / "head.log"
    raise AssertionError(f"no head.json; head.log: {log.read_text()[-3000:] if log.exists() else '-'}")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_small_runs_go_in_process_big_ones_start_a_head_the_next_attaches_down_stops_it(
        tmp_path):
    env = _env(tmp_path, idle_minutes=10)
    big = {**env, "FSM_ACTORS_IN_PROCESS_MB": "0"}  # any input is "big"
    first = cli("run", _job(tmp_path, "one"), "--no-progress", cwd=tmp_path, **env)
    head = None
    try:
        assert first.returncode == 0, first.stderr
        assert "this run goes in this process: 0.0 MB of input (runs of up to " \
               "FSM_ACTORS_IN_PROCESS_MB=128 MB do; bigger ones start a Ray head in the " \
               "background)" in first.stderr, first.stderr
        assert "Ray head" not in first.stderr.replace("start a Ray head in the background", "")
        out = _records(tmp_path / "one.jsonl")
        assert len(out) == ROWS and all(r["double"] == r["qty"] * 2 for r in out)
        assert not (tmp_path / "home" / "head.json").exists()  # nothing left running

        second = cli("run", _job(tmp_path, "two"), "--no-progress", cwd=tmp_path, **big)
        assert second.returncode == 0, second.stderr
        told = second.stderr
        assert "no Ray runs on this machine: starting a Ray head in the background" in told
        assert "stops itself after 10 min without runs, or with `fsm-actors down`" in told
        head = _head(tmp_path)
        assert session_processes(head["pid"])
        assert f"Ray ready: Ray cluster at {head['address']}" in told, told
        assert _records(tmp_path / "two.jsonl") == out

        third = cli("run", _job(tmp_path, "three"), "--no-progress", cwd=tmp_path, **big)
        assert third.returncode == 0, third.stderr
        assert "Ray head start" not in third.stderr and "starting a Ray head" not in third.stderr
        assert f"Ray ready: Ray cluster at {head['address']}" in third.stderr, third.stderr
        assert _records(tmp_path / "three.jsonl") == out

        fourth = cli("run", _job(tmp_path, "four"), "--no-progress", cwd=tmp_path, **env)
        assert fourth.returncode == 0, fourth.stderr
        assert (f"this run goes in this process: 0.0 MB of input (runs of up to "
                f"FSM_ACTORS_IN_PROCESS_MB=128 MB do; the background Ray head (pid "
                f"{head['pid']}) takes bigger ones)") in fourth.stderr, fourth.stderr
        assert "Ray ready" not in fourth.stderr
        assert _records(tmp_path / "four.jsonl") == out
        assert json.loads((tmp_path / "home" / "head.json").read_text())["pid"] == head["pid"]
    finally:
        down = cli("down", cwd=tmp_path, **env)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert head is not None and not session_processes(head["pid"])
    assert not (tmp_path / "home" / "head.json").exists()


def test_background_head_stops_itself_when_idle(tmp_path):
    env = _env(tmp_path, idle_minutes=0.05)  # 3 s without drivers (the shortest allowed)
    env["FSM_ACTORS_IN_PROCESS_MB"] = "0"  # a run that starts the head
    first = cli("run", _job(tmp_path, "one"), "--no-progress", cwd=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert "stops itself after 0.05 min without runs" in first.stderr
    head = _head(tmp_path)
    try:
        deadline = time.monotonic() + 180
        while session_processes(head["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not session_processes(head["pid"])
        assert not (tmp_path / "home" / "head.json").exists()
        assert "idle for 3s: stopped itself" in (tmp_path / "home" / "head.log").read_text()
    finally:
        cli("down", cwd=tmp_path, **env)
