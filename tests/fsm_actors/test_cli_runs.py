"""``fsm-actors runs`` lists the runs a folder holds (a stopped run's checkpoint, staged
parts, temp files a killed run left); ``runs clean`` removes what no run will use again and
lists it, keeping stopped runs that can resume unless told they are abandoned."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_actors import SimpleFSM
from fsm_actors.cli.main import cli

FAILING = {"name": "boom", "states": [
    {"name": "s", "is_start": True},
    {"name": "w", "transforms": ["lambda data, ctx: {**data, 'x': 1 // (int(data['a']) < 1500)}"]},
    {"name": "e", "is_end": True}],
    "arcs": [{"from": "s", "to": "w"}, {"from": "w", "to": "e"}]}


def _invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


def _stopped_run(tmp_path: Path) -> Path:
    """A resumable run stopped by its error threshold (records from 1500 on fail)."""
    (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(3000)))
    with SimpleFSM(FAILING, local=True) as fsm, pytest.raises(Exception, match="error_threshold"):
        fsm.process_stream(str(tmp_path / "in.csv"), str(tmp_path / "out" / "o.jsonl"),
                           chunk_size=100, checkpoint_id="c1", error_threshold=5)
    return tmp_path / "out"


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_runs_lists_a_stopped_run_and_clean_removes_only_what_is_left_behind(tmp_path):
    out = _stopped_run(tmp_path)
    checkpoint = out / ".fsm_actors" / "checkpoints" / "c1.ckpt"
    assert checkpoint.exists()
    stale = out / ".o.jsonl.0badc0de.tmp"  # what a run killed outright leaves
    stale.write_bytes(b"x" * 5000)
    _age(stale, 3600)
    orphan = out / ".fsm_actors" / "run-gone"
    (orphan / "data").mkdir(parents=True)
    listing = _invoke("runs", "-C", str(tmp_path), "--active-minutes", "0")
    row = next(line for line in listing.splitlines() if line.startswith("c1 "))
    assert row.split()[3:5] == ["stopped", "1,600"], listing
    assert str(out / "o.jsonl") in row and str(checkpoint) in row
    assert "gone" in listing and "orphaned" in listing
    assert f"  {stale} (5,000 bytes)" in listing

    cleaned = _invoke("runs", "clean", "-C", str(tmp_path), "--older-than", "0")
    assert f"removed {stale} (5,000 bytes)" in cleaned
    assert f"removed {orphan}" in cleaned
    assert "kept 1 stopped run(s) that can resume" in cleaned
    assert not stale.exists() and not orphan.exists() and checkpoint.exists()

    cleaned = _invoke("runs", "clean", "-C", str(tmp_path), "--older-than", "0", "--abandoned",
                      "--days", "0")
    assert f"removed {checkpoint}" in cleaned
    assert f"removed {out / '.fsm_actors' / 'run-c1'}" in cleaned
    assert not checkpoint.exists()
    assert "no runs" in _invoke("runs", "-C", str(tmp_path))
