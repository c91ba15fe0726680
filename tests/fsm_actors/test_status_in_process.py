"""``fsm-actors status`` while a small run goes in-process (no Ray on the machine): the run is
listed with its pipeline, lanes and live progress from the document its CLI keeps under
``$FSM_ACTORS_HOME/live``; once it ends, status says no cluster runs and nothing is listed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.fsm_actors.test_cli_person import cli
from tests.helpers.csv_parts import csv_parts
from tests.ops.ray_heads import client_env


def test_status_lists_an_in_process_run_while_it_runs_and_not_after(tmp_path: Path):
    csv_parts(tmp_path / "in", 2, 3000)
    job = tmp_path / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: in/*.csv\noutput_path: out.jsonl\n"
                   "chunk_size: 100\n"
                   "transformations: [\"lambda r: (__import__('time').sleep(0.002), r)[1]\"]\n")
    (tmp_path / "rt").mkdir()
    env = {"FSM_ACTORS_HOME": str(tmp_path / "home"), "RAY_TMPDIR": str(tmp_path / "rt"),
           "FSM_ACTORS_BACKGROUND_HEAD": "1", "FSM_ACTORS_PROGRESS_EVERY": "0"}
    run = subprocess.Popen([sys.executable, "-m", "fsm_actors.cli.main", "run", str(job),
                            "--no-progress"], cwd=tmp_path, stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, text=True, env=client_env(**env))
    try:
        seen = ""
        assert run.stderr is not None
        for line in run.stderr:
            seen += line
            if "actors ready" in line:
                break
        listed = ""
        deadline = time.monotonic() + 60
        while "progress:" not in listed and time.monotonic() < deadline and run.poll() is None:
            shown = cli("status", cwd=tmp_path, **env)
            assert shown.returncode == 0, shown.stderr
            listed = shown.stdout
            time.sleep(0.3)
        assert "this run goes in this process" in seen, seen
        assert "no Ray cluster runs on this machine" in listed, listed
        assert "in-process runs on this machine: 1" in listed, listed
        assert "file_processing run " in listed and f"(pid {run.pid}, 2 lanes)" in listed
        assert "in/*.csv" in listed and "progress: " in listed, listed
    finally:
        rest = run.communicate(timeout=120)[1]
    assert run.returncode == 0, seen + rest
    after = cli("status", cwd=tmp_path, **env)
    assert after.returncode != 0 and "no Ray cluster runs on this machine" in after.stderr
    assert not list((tmp_path / "home" / "live").glob("*.json"))
