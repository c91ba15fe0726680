"""Issue 25 (1): diagrams of the compiled machine (Mermaid, DOT, SVG) from Python and the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fsm_actors import SimpleFSM
from fsm_actors.cli.main import cli
from fsm_actors.engine import compile_machine
from fsm_actors.engine.diagram import to_dot, to_mermaid

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "orders_fsm.yaml"

NETWORKS = {
    "name": "nested",
    "main_network": "main",
    "networks": [
        {
            "name": "main",
            "states": [
                {"name": "start", "is_start": True, "resources": [],
                 "validators": ["lambda d: 'x' in d"],
                 "arcs": [
                     {"target": "enrich", "condition": "data['x'] > 0", "priority": 3,
                      "transform": "lambda d: {**d, 'pos': True}"},
                     {"target": "reject"},
                 ]},
                {"name": "enrich",
                 "arcs": [{"target": "finish", "target_network": "sub"}]},
                {"name": "finish", "is_end": True},
                {"name": "reject", "is_end": True, "emit_output": False},
            ],
        },
        {
            "name": "sub",
            "states": [
                {"name": "sub_in", "is_start": True, "transforms": ["lambda d: {**d, 's': 1}"],
                 "arcs": [{"target": "sub_out"}]},
                {"name": "sub_out", "is_end": True},
            ],
        },
    ],
}

STATES = ["start", "enrich", "finish", "reject", "sub_in", "sub_out"]
ARCS = [("start", "enrich"), ("start", "reject"), ("enrich", "sub_in"), ("enrich", "finish"),
        ("sub_in", "sub_out")]


def _ids(text: str, pattern: str) -> dict[str, str]:
    """state name -> node id, read back from the drawn nodes."""
    return {m.group(2): m.group(1) for m in re.finditer(pattern, text)}


def test_mermaid_has_every_state_arc_condition_and_call():
    machine = compile_machine(NETWORKS)
    text = to_mermaid(machine)
    ids = _ids(text, r"^\s+(s\d+_\w+)\(?\[+\"?(\w+)", )
    ids = {name: node for node, name in
           re.findall(r"^\s+(s\d+_\w+)[\[\(]+\"(\w+)", text, flags=re.M)}
    assert set(ids) == set(STATES)
    for source, target in ARCS:
        assert re.search(rf"{ids[source]} [-.].*[->] {ids[target]}$", text, flags=re.M), (
            source, target)
    assert "if data['x'] #gt; 0" in text and "priority 3" in text
    assert "call sub" in text and "network sub" in text
    assert "validate: lambda d: 'x' in d" in text
    assert "(start)" in text and "(end, not emitted)" in text


def test_dot_has_every_state_and_arc_and_graphviz_parses_it():
    text = to_dot(compile_machine(NETWORKS))
    ids = {name: node for node, name in re.findall(r"^\s+(s\d+_\w+) \[label=\"(\w+)", text,
                                                   flags=re.M)}
    assert set(ids) == set(STATES)
    for source, target in ARCS:
        assert re.search(rf"^\s+{ids[source]} -> {ids[target]} ", text, flags=re.M)
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    svg = done.stdout.decode()
    for name in STATES:
        assert f">{name}" in svg


def test_simple_fsm_draws_itself_with_its_counts(ray_session):
    with SimpleFSM(EXAMPLE, local=True) as fsm:
        assert "flowchart" in fsm.to_mermaid() and "digraph" in fsm.to_dot()
        fsm.process_batch([{"quantity": q, "unit_price": 300.0} for q in (0, 1, 5, 5)])
        overlay = fsm.to_dot(fsm.stats())
    assert "in 4 · ended 0 · failed 0" in overlay  # start
    assert "in 2 · ended 2" in overlay  # high_value
    assert "taken 1" in overlay and "taken 3" in overlay


def test_cli_graph_writes_svg_mermaid_and_dot(tmp_path):
    runner = CliRunner()
    mermaid = runner.invoke(cli, ["graph", str(EXAMPLE)])
    assert mermaid.exit_code == 0, mermaid.output
    assert mermaid.output.startswith("flowchart")
    dot_file = tmp_path / "orders.dot"
    done = runner.invoke(cli, ["graph", str(EXAMPLE), "-o", str(dot_file)])
    assert done.exit_code == 0 and dot_file.read_text().startswith("digraph")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    svg = tmp_path / "orders.svg"
    done = runner.invoke(cli, ["graph", str(EXAMPLE), "--format", "svg", "-o", str(svg)])
    assert done.exit_code == 0, done.output
    assert "<svg" in svg.read_text() and "high_value" in svg.read_text()


def test_cli_graph_without_graphviz_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    done = CliRunner().invoke(cli, ["graph", str(EXAMPLE), "-o", str(tmp_path / "x.svg")])
    assert done.exit_code == 1
    assert "apt-get install graphviz" in done.output and "Traceback" not in done.output


def test_cli_graph_draws_the_fsm_of_a_pipeline_file():
    done = CliRunner().invoke(cli, ["graph", str(ROOT / "examples" / "orders_stream.yaml")])
    assert done.exit_code == 0, done.output
    assert "high_value" in done.output and "data['total'] #gt;= 1000" in done.output


def test_a_config_that_does_not_load_gets_validates_messages(tmp_path):
    bad = tmp_path / "bad.yaml"
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["arcs"].append({"from": "price", "to": "nowhere"})
    bad.write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    graph = runner.invoke(cli, ["graph", str(bad)])
    validate = runner.invoke(cli, ["validate", str(bad)])
    assert graph.exit_code == validate.exit_code == 1
    assert graph.output == validate.output and "nowhere" in graph.output


def test_cli_graph_overlays_the_counts_of_a_run(tmp_path):
    counts = tmp_path / "result.json"
    counts.write_text(json.dumps({"total_processed": 10, "states": {
        "start": {"entered": 10, "ended": 0, "failed": 0, "seconds": 0.1},
        "price": {"entered": 8, "ended": 2, "failed": 2, "seconds": 0.2,
                  "errors": {"KeyError": 2}}}, "arcs": {"start->price": 8}}))
    done = CliRunner().invoke(cli, ["graph", str(EXAMPLE), "--format", "dot",
                                    "--counts", str(counts)])
    assert done.exit_code == 0, done.output
    assert "in 8 · ended 2 · failed 2 (25.0%) · KeyError 2" in done.output
    assert 'fillcolor="#ff' in done.output  # coloured by failures
    assert "taken 8" in done.output
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    done = CliRunner().invoke(cli, ["graph", str(EXAMPLE), "--counts", str(junk)])
    assert done.exit_code == 1 and "no per-state counts" in done.output


def test_the_dashboard_has_a_panel_repeated_per_state_over_every_state_metric():
    from fsm_actors.platform.metrics import STATE_CATALOG

    board = json.loads((ROOT / "dashboards" / "fsm-actors.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "state" in variables and "fsm" in variables
    per_state = [p for p in board["panels"] if p.get("repeat") == "state"]
    assert len(per_state) == 1
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for name in STATE_CATALOG:
        assert any(f"ray_fsm_actors_{name}_total" in e for e in exprs), name
    assert all('state=~\\"$state\\"' in t["expr"] or "state=~\"$state\"" in t["expr"]
               for t in per_state[0]["targets"])


def test_run_shows_a_state_table_and_its_json_feeds_graph_counts(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text("quantity,unit_price\n" + "".join(f"{i % 7},250.5\n" for i in range(70)))
    runner = CliRunner()
    shown = runner.invoke(cli, ["run", str(EXAMPLE), "-i", str(orders), "-o",
                                str(tmp_path / "a.jsonl"), "--local", "--no-progress"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.split()[:2] == ["state", "entered"]):]
    assert table[0].split()[:4] == ["state", "entered", "ended", "failed"]
    assert table[1].split()[:4] == ["start", "70", "0", "0"]
    assert table[5].split()[:3] == ["rejected", "10", "10"]
    result = runner.invoke(cli, ["run", str(EXAMPLE), "-i", str(orders), "-o",
                                 str(tmp_path / "b.jsonl"), "--local", "--no-progress", "--json"])
    assert result.exit_code == 0 and result.stdout.strip(), (result.output, result.exception)
    counts = tmp_path / "result.json"
    counts.write_text(result.stdout)
    assert json.loads(result.stdout)["arcs"]["start->rejected"] == 10
    drawn = runner.invoke(cli, ["graph", str(EXAMPLE), "-f", "dot", "--counts", str(counts)])
    assert drawn.exit_code == 0 and "in 70 · ended 0 · failed 0" in drawn.output
