"""The first ``fsm-actors run`` on a machine without Ray leaves a background head (issue 26
item 1): announced on stderr, started once (when that first run, in-process, ends), reused by the next run, stopped by
``fsm-actors down`` and by its own idle timer, with no process left either way."""

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


def test_first_run_starts_a_background_head_the_next_run_attaches_down_stops_it(tmp_path):
    env = _env(tmp_path, idle_minutes=10)
    first = cli("run", _job(tmp_path, "one"), "--no-progress", cwd=tmp_path, **env)
    head = None
    try:
        assert first.returncode == 0, first.stderr
        told = first.stderr
        assert "no Ray runs on this machine: this run goes in this process" in told
        assert "a Ray head starts in the background when it ends, for later runs" in told
        assert "stops itself after 10 min without runs, or with `fsm-actors down`" in told
        assert "Ray head starting in the background for later runs (pid" in told
        out = _records(tmp_path / "one.jsonl")
        assert len(out) == ROWS and all(r["double"] == r["qty"] * 2 for r in out)

        head = _head(tmp_path)
        assert session_processes(head["pid"])
        second = cli("run", _job(tmp_path, "two"), "--no-progress", cwd=tmp_path, **env)
        assert second.returncode == 0, second.stderr
        assert "Ray head start" not in second.stderr
        assert f"Ray ready: Ray cluster at {head['address']}" in second.stderr, second.stderr
        assert _records(tmp_path / "two.jsonl") == out
        assert json.loads((tmp_path / "home" / "head.json").read_text())["pid"] == head["pid"]
    finally:
        down = cli("down", cwd=tmp_path, **env)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert head is not None and not session_processes(head["pid"])
    assert not (tmp_path / "home" / "head.json").exists()


def test_background_head_stops_itself_when_idle(tmp_path):
    env = _env(tmp_path, idle_minutes=0.05)  # 3 s without drivers (the shortest allowed)
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
