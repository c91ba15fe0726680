"""``fsm-actors run ... 2>&1 | head``: when stderr's reader goes away, the run's messages
fall silent and the run still finishes and commits its output (rich's answer to a broken
pipe, ``SystemExit``, ended the run at its first message, or hung it for good when the
message came from the run's worker thread), and a function that prints still succeeds on a
forked lane (its ``print`` failed with ``BrokenPipeError``, rejecting every record)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.csv_parts import csv_parts
from tests.ops.ray_heads import client_env


@pytest.mark.parametrize("transform", [
    "lambda r: {**r, 'c': r['a'] * 2}",
    # a function that prints: its lines go to stderr and must not fail its records
    "lambda r: (print('row', r['a']), {**r, 'c': r['a'] * 2})[1]",
], ids=["quiet", "printing"])
def test_a_run_whose_stderr_reader_is_gone_finishes_and_commits(tmp_path: Path, transform):
    csv_parts(tmp_path / "in", 2, 500)  # two inputs: two lanes, whose start its thread reports
    job = tmp_path / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: in/*.csv\noutput_path: out.jsonl\n"
                   f"transformations: [\"{transform}\"]\n")
    (tmp_path / "rt").mkdir()
    env = client_env(FSM_ACTORS_HOME=str(tmp_path / "home"), RAY_TMPDIR=str(tmp_path / "rt"),
                     FSM_ACTORS_BACKGROUND_HEAD="1")
    run = subprocess.Popen([sys.executable, "-m", "fsm_actors.cli.main", "run", str(job),
                            "--no-progress"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=env)
    assert run.stderr is not None
    run.stderr.close()  # the reader is gone before the first message
    assert run.wait(timeout=120) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["a"] for r in rows) == list(range(1000))
    assert all(r["c"] == 2 * r["a"] for r in rows)
    assert not (tmp_path / "out.jsonl.errors.jsonl").exists()
