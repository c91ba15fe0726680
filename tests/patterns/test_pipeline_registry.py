"""Pipeline kinds by registration: a new kind is one module; the schema discriminates on kind."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from patterns.errors import PatternError
from patterns.pipeline import PipelineFiles, load_pipeline, unregister_kind

FSM_ACTORS = Path(sys.executable).with_name("fsm-actors")

#: a whole kind in one module: its config model, its static check and its run
TOY_KIND = textwrap.dedent('''
    """kind: shout: upper-cases words into a text file."""
    from pathlib import Path

    from pydantic import BaseModel, ConfigDict

    from patterns.pipeline import PipelineKind, register_kind


    class ShoutConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        words: list[str]
        output: str


    def prepare(job, base, where):
        if "output" in job:
            job["output"] = str(base / job["output"])
        return job


    def problems(job):
        return [(["words", i], "an empty word") for i, w in enumerate(job.config.words) if not w]


    async def run(spec, config, context):
        Path(config.output).write_text("\\n".join(w.upper() for w in config.words))
        return {"records_written": len(config.words), "output_path": config.output}


    register_kind(PipelineKind(name="shout", model=ShoutConfig, prepare=prepare,
                               problems=problems, run=run, input_key="words"))
''')


def _toy_package(root: Path) -> None:
    """The toy kind as an installed plugin: its module and an entry point naming it."""
    (root / "shout_kind.py").write_text(TOY_KIND)
    info = root / "shout_kind-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-kind\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fsm_actors.pipeline_kinds]\nshout = shout_kind\n")


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    _toy_package(plugin)
    monkeypatch.syspath_prepend(str(plugin))
    importlib.import_module("shout_kind")
    yield plugin
    unregister_kind("shout")
    sys.modules.pop("shout_kind", None)


def test_a_registered_kind_runs_validates_and_has_a_schema(toy_kind, tmp_path):
    (tmp_path / "job.yaml").write_text("kind: shout\nwords: [a, bc]\noutput: out.txt\n")
    assert "shout" in PipelineFiles.kinds
    result = PipelineFiles.run(tmp_path / "job.yaml")
    assert result["records_written"] == 2
    assert (tmp_path / "out.txt").read_text() == "A\nBC"
    (tmp_path / "empty.yaml").write_text("kind: shout\nwords: [a, '']\noutput: out.txt\n")
    job = PipelineFiles.load(tmp_path / "empty.yaml")
    assert PipelineFiles.problems(job) == [(["words", 1], "an empty word")]
    validator = jsonschema.Draft202012Validator(PipelineFiles.schema(None))
    error = jsonschema.exceptions.best_match(validator.iter_errors(
        {"kind": "shout", "words": ["a"], "output": "o", "wrds": 1}))
    assert "wrds" in error.message
    # a kind that says nothing about options refuses them rather than ignoring them
    (tmp_path / "opts.yaml").write_text(
        "kind: shout\nwords: [a]\noutput: o.txt\noptions: {batch_size: 2}\n")
    with pytest.raises(PatternError, match="not supported by kind shout"):
        load_pipeline(tmp_path / "opts.yaml")
    # a step may be of the new kind too
    (tmp_path / "steps.yaml").write_text(
        "kind: steps\nsteps:\n  - {kind: shout, name: s, words: [x], output: s.txt}\n")
    assert PipelineFiles.run(tmp_path / "steps.yaml")["records_written"] == 1


def test_the_command_line_validates_a_plugin_kind(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    _toy_package(plugin)
    env = {**os.environ, "PYTHONPATH": str(plugin)}
    (tmp_path / "good.yaml").write_text("kind: shout\nwords: [a]\noutput: out.txt\n")
    (tmp_path / "bad.yaml").write_text("kind: shout\nwords: [a]\noutput: o.txt\nwrds: 1\n")
    (tmp_path / "empty.yaml").write_text("kind: shout\nwords: ['']\noutput: o.txt\n")

    def validate(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(FSM_ACTORS), "validate", str(tmp_path / name)],
                              capture_output=True, text=True, env=env, timeout=120)

    good = validate("good.yaml")
    assert good.returncode == 0, good.stderr
    assert "valid shout pipeline file" in good.stdout
    bad = validate("bad.yaml")
    assert bad.returncode == 1 and "wrds" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    empty = validate("empty.yaml")
    assert empty.returncode == 1 and "an empty word" in empty.stderr + empty.stdout


def test_an_unknown_kind_names_the_registered_ones(tmp_path):
    (tmp_path / "job.yaml").write_text("kind: shout\nwords: [a]\n")
    with pytest.raises(PatternError, match="file_processing, fsm, etl, api, steps"):
        load_pipeline(tmp_path / "job.yaml")


def test_the_pipeline_schema_points_at_the_misspelled_key_of_its_kind():
    validator = jsonschema.Draft202012Validator(PipelineFiles.schema(None))
    etl = jsonschema.exceptions.best_match(validator.iter_errors(
        {"kind": "etl", "source": "a", "target": "b", "modee": "full"}))
    assert "modee" in etl.message
    step = jsonschema.exceptions.best_match(validator.iter_errors(
        {"kind": "steps", "steps": [{"kind": "etl", "source": "a", "target": "b",
                                     "modee": "full"}]}))
    assert "modee" in step.message and step.json_path == "$.steps[0]"
    api = list(validator.iter_errors({"kind": "api", "base_url": "http://h", "endpoints": [
        {"name": "a", "path": "/a", "methd": "GET"}]}))
    assert [e.json_path for e in api] == ["$.endpoints[0]"] and "methd" in api[0].message
    assert not list(validator.iter_errors({"kind": "api", "base_url": "http://h", "endpoints": [
        {"name": "a", "path": "/a", "method": "GET"}]}))
    assert not list(validator.iter_errors({"file_processing": {"input_path": "a.csv"}}))


@pytest.mark.parametrize("kind", ["file_processing", "fsm", "etl", "api", "steps"])
def test_each_kind_schema_is_a_whole_draft_2020_12_schema(kind):
    schema = PipelineFiles.schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    json.dumps(schema)
