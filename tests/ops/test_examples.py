"""Every example runs: the seed 000 blocks of examples/patterns/ (run in this session's Ray
by their ``main()``, outcomes checked), each example file is exercised by a test, the ones
that need no Ray also run as scripts, and every pipeline file in examples/ validates."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest

from examples._support import OUT_ENV, run_example
from tests.ops.ray_heads import REPO, client_env

EXAMPLES = REPO / "examples"
PATTERN_EXAMPLES = sorted((EXAMPLES / "patterns").glob("[!_]*.py"))


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """The examples' output directory (``examples/_support.out``) for one test."""
    monkeypatch.setenv(OUT_ENV, str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_file_validates(path):
    # the API example reads its server and token from the environment, as its header says
    env = client_env(API_BASE_URL="http://127.0.0.1:8900", API_TOKEN="dev-token")
    proc = subprocess.run([sys.executable, "-m", "fsm_actors.cli.main", "validate", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    if "data/orders.csv" in path.read_text() and proc.returncode:
        # a pipeline file's input is made by make_orders.py; the message must say so, under
        # the file's own key (input_path for file_processing, input for kind: fsm)
        key = "input" if "\ninput:" in path.read_text() else "input_path"
        assert f"{key}: no input files match" in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


@pytest.mark.parametrize("path", PATTERN_EXAMPLES, ids=lambda p: p.name)
def test_every_seed_example_names_its_block_and_is_run_by_a_test(path):
    doc = path.read_text().split('"""')[1]
    assert re.match(r"Seed \d{3} \(", doc), f"{path.name}: the docstring names no seed"
    assert "Changed:" in doc, f"{path.name}: the docstring does not say what was changed"
    mentioned = f'"{path.parent.name}", "{path.name}"'
    tests = [t for t in (REPO / "tests").rglob("test_*.py") if mentioned in t.read_text()]
    assert tests, f"no test runs {path.parent.name}/{path.name} (run_example({mentioned}))"


@pytest.mark.ray
def test_quick_start_file_processor(ray_session, out_dir):
    out = run_example("patterns", "quick_start_file_processor.py")
    work = out["workdir"]
    assert work == out_dir / "quick_start_file_processor"
    with open(work / "data.csv", newline="") as fh:
        source = list(csv.DictReader(fh))
    processed = json.loads((work / "processed.json").read_text())
    assert out["result"]["records_written"] == len(processed) == len(source) == 5000
    assert all(r["processed"] is True for r in processed)
    assert [r["id"] for r in processed] == [int(r["id"]) for r in source]


@pytest.mark.ray
def test_factory_functions(ray_session, out_dir, capsys):
    out = run_example("patterns", "factory_functions.py")
    # File Processing: the transformation on every kept row, the filter kept the active ones
    work = out["workdir"]
    with open(work / "data.csv", newline="") as fh:
        source = list(csv.DictReader(fh))
    kept = json.loads((work / "output.json").read_text())
    active = [r for r in source if r["active"] == "true"]
    assert len(kept) == len(active) == out["files"]["records_written"]
    assert out["files"]["records_processed"] == len(source) == 2000
    assert all(r["active"] is True and r["status"] == "processed" for r in kept)
    # API Orchestration: both endpoints once, with the bearer token, which no result shows
    calls = out["calls"]
    assert calls["users"] == {"users": [{"id": 1}], "auth": True}
    assert calls["posts"] == {"posts": [{"id": 7}]} and calls["errors"] == {}
    assert sorted(out["served"]) == [("GET", "/posts"), ("GET", "/users")]
    assert calls["_metrics"]["read_count"] == 2
    assert "your-api-token" not in repr(calls) + repr(out["api_orchestrator"].config)
    assert "your-api-token" not in capsys.readouterr().out
    # Error Recovery: the call that failed once succeeded on its second attempt
    assert out["outcome"] == "ok" and out["metrics"]["total_attempts"] == 2


def test_import_reference(out_dir):
    imported = run_example("patterns", "import_reference.py")
    assert [len(names) for names in imported.values()] == [7, 8, 6, 7]
    for module, names in imported.items():
        loaded = __import__(module, fromlist=["_"])
        assert all(getattr(loaded, n.__name__) is n for n in names), module


@pytest.mark.parametrize("name, expect", [
    ("import_reference.py", "patterns.error_recovery: ErrorRecoveryWorkflow (class)"),
    ("monitoring_metrics.py", "Average retry count: 1.0"),
    ("customizing_api.py", "data: [1, 2, 3]"),
])
def test_examples_without_ray_run_as_scripts(name, expect, tmp_path):
    """From the repo root with no PYTHONPATH, as a user runs them (these start no Ray)."""
    env = {k: v for k, v in client_env(**{OUT_ENV: str(tmp_path)}).items()
           if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join("examples", "patterns", name)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout
