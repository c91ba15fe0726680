"""Every example runs: the seed's file-processing blocks as written (import prefix changed)
and every pipeline file / FSM config in examples/ validates."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from tests.ops.ray_heads import REPO, client_env

EXAMPLES = REPO / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_file_validates(path):
    proc = subprocess.run([sys.executable, "-m", "fsm_actors.cli.main", "validate", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=client_env())
    if "data/orders.csv" in path.read_text() and proc.returncode:
        # a pipeline file's input is made by make_orders.py; the message must say so
        assert "input_path: no input files match" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


@pytest.mark.ray
def test_the_seed_file_processing_blocks_run_as_written(ray_session, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed_file_processing.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=REPO,
        env=client_env(FSM_ACTORS_ADDRESS=ray_session.address),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    results = {d["block"]: d["result"] for d in map(json.loads, proc.stdout.splitlines())}
    with open(tmp_path / "data.csv", newline="") as fh:
        source = list(csv.DictReader(fh))

    processed = json.loads((tmp_path / "processed.json").read_text())
    assert results["FileProcessor"]["records_written"] == len(processed) == len(source)
    assert all(r["processed"] is True for r in processed)

    kept = json.loads((tmp_path / "output.json").read_text())
    active = [r for r in source if r["active"] == "true"]
    assert len(kept) == len(active) == results["create_csv_processor"]["records_written"]
    assert all(r["active"] is True and r["status"] == "processed" for r in kept)
