"""The first ``fsm-actors run`` (in-process, no Ray) of a job with Python functions runs
on lanes forked from the CLI: under a real terminal, Ctrl-C stops it with one clean message
and no lane left running, and the resume (in-process again)
finishes with every record once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil

from tests.fsm_actors.test_cli_person import cli
from tests.helpers.csv_parts import csv_parts
from tests.helpers.terminal import in_terminal

REPO = Path(__file__).resolve().parents[2]
FILES, ROWS = 4, 1_000


def _lanes_of(job: Path) -> list[psutil.Process]:
    """Live processes running this job file's CLI (the CLI and its forked lanes)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if (str(job) in " ".join(proc.info["cmdline"] or [])
                    and proc.info["status"] != psutil.STATUS_ZOMBIE):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_ctrl_c_stops_forked_lanes_and_the_resume_finishes_every_record_once(tmp_path):
    csv_parts(tmp_path / "in", FILES, ROWS)
    job = tmp_path / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: in/*.csv\noutput_path: out.jsonl\n"
                   "chunk_size: 100\n"
                   "transformations: [\"lambda r: (__import__('time').sleep(0.002), r)[1]\"]\n")
    (tmp_path / "rt").mkdir()
    env = {"FSM_ACTORS_HOME": str(tmp_path / "home"), "RAY_TMPDIR": str(tmp_path / "rt"),
           "FSM_ACTORS_BACKGROUND_HEAD": "1", "FSM_ACTORS_IDLE_MINUTES": "5"}
    args = ["run", str(job), "--checkpoint-id", "lanes1"]
    try:
        out, code = in_terminal(args, cwd=tmp_path, interrupt_when=b"actors ready", **env)
        assert code == 130, out
        assert "running in this process, without Ray" in out
        assert "its tasks run on 2 processes forked from this one" in out
        assert "interrupted after" in out and "; stopping its processes" in out
        assert "run the same command again to resume" in out
        assert "Traceback" not in out and "Error" not in out, out
        assert not (tmp_path / "out.jsonl").exists()
        deadline = time.monotonic() + 10
        while _lanes_of(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _lanes_of(job)  # no lane outlived the interrupted run

        done = cli(*args, "--no-progress", cwd=tmp_path, **env)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert sorted(r["a"] for r in rows) == list(range(FILES * ROWS))
    finally:
        cli("down", cwd=tmp_path, **env)
