"""The fsm-actors command: run, validate, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from examples.make_orders import write_orders
from fsm_actors.cli.main import cli

REPO = Path(__file__).resolve().parents[2]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders_fsm.yaml"


def test_every_command_has_help():
    runner = CliRunner()
    for args in (["--help"], ["run", "--help"], ["validate", "--help"], ["schema", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_validate_accepts_the_example():
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "orders" in result.output


def test_validate_reports_the_key_path_of_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstates:\n  - {name: a, is_start: true}\n  - {name: b, is_end: true}\n"
        "arcs:\n  - {from: a, to: nowhere}\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "nowhere" in result.output and "arcs" in result.output


def test_schema_prints_the_json_schema():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "properties" in schema and "states" in schema["properties"]


def test_run_locally_over_a_csv(tmp_path):
    src = write_orders(tmp_path / "orders.csv", 500)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli, ["run", str(EXAMPLE), "--input", str(src), "--output", str(out), "--local", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary["total_processed"] == 500
    assert summary["emitted"] == len(rows)
    assert sum(summary["excluded_by_state"].values()) + len(rows) == 500
    assert all(r["tier"] in {"high", "standard"} and r["quantity"] > 0 for r in rows)


@pytest.mark.ray
def test_run_on_actors_matches_local(ray_session, tmp_path):
    src = write_orders(tmp_path / "orders.csv", 2000)
    outs = []
    for extra in (["--local"], ["--actors", "2"]):
        out = tmp_path / f"out{len(outs)}.jsonl"
        result = CliRunner().invoke(
            cli, ["run", str(EXAMPLE), "-i", str(src), "-o", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        outs.append(out.read_text())
        if extra[0] == "--actors":  # says where it runs, for finding the actors in the dashboard
            assert "FSM 'orders': running on job workers (fsm/<run id>/worker/<i>" in result.output
    assert outs[0] == outs[1]


def test_pipeline_schemas_accept_every_example_and_name_what_is_wrong():
    import glob

    import jsonschema
    import yaml

    result = CliRunner().invoke(cli, ["schema", "--kind", "pipeline"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = [p for p in sorted(glob.glob(str(REPO / "examples" / "*.yaml")))
             if {"kind", "file_processing"} & set(yaml.safe_load(open(p)))]
    assert len(files) >= 5  # a pipeline file for each job kind
    for path in files:
        assert not list(validator.iter_errors(yaml.safe_load(open(path)))), path
    assert list(validator.iter_errors({"kind": "etl", "source": "a", "target": "b",
                                       "batch_size": "big"}))
    for kind in ("file_processing", "fsm-job", "etl", "api", "steps"):
        result = CliRunner().invoke(cli, ["schema", "--kind", kind])
        one = jsonschema.Draft202012Validator(json.loads(result.output))
        errors = list(one.iter_errors({"kind": "steps" if kind == "steps" else "x", "nope": 1}))
        assert any("nope" in e.message or "const" in str(e.schema) for e in errors), kind
    etl = jsonschema.Draft202012Validator(json.loads(
        CliRunner().invoke(cli, ["schema", "--kind", "etl"]).output))
    [error] = list(etl.iter_errors({"kind": "etl", "source": "a", "target": "b",
                                    "batch_size": "big"}))
    assert error.json_path == "$.batch_size"
