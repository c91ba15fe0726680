"""``fsm-actors graph``: draw an FSM config (or the FSM step of a pipeline file).

Mermaid and DOT are text and need nothing installed; SVG and PNG are rendered by Graphviz's
``dot`` when it is on the PATH. A config that does not load gets the messages ``validate``
gives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click

from fsm_actors.cli.documents import UserError, document_kind, read_document
from fsm_actors.cli.run import (
    _message,
    fsm_config_problems,
    load_functions,
    load_pipeline_file,
    user_errors,
)

FORMATS = ("mermaid", "dot", "svg", "png")
_SUFFIXES = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot",
             ".svg": "svg", ".png": "png"}
INSTALL_HINT = ("Graphviz's 'dot' is not on the PATH: install it (Debian/Ubuntu: "
                "apt-get install graphviz; macOS: brew install graphviz), or use "
                "--format mermaid or --format dot, which need nothing installed")


def machine_of(config: Path, functions: dict[str, Any]) -> Any:
    """The compiled machine of an FSM config, or of the FSM step of a pipeline file
    (``kind: fsm``); ``UserError`` with ``validate``'s messages when it does not load."""
    from fsm_actors.engine import compile_machine

    spec = read_document(config)
    kind = document_kind(config, spec)
    if kind == "fsm_config":
        machine, problems = fsm_config_problems(config, spec, functions)
        if problems or machine is None:
            raise UserError("\n".join(problems))
        return machine
    job, problems = load_pipeline_file(config, spec)
    if problems:
        raise UserError("\n".join(problems))
    job_spec = getattr(job, "spec", None) or {}
    if getattr(job, "kind", None) != "fsm" or "config" not in job_spec:
        raise UserError(f"{config}: a {kind} pipeline file has no FSM to draw; graph draws FSM "
                        "configs and pipeline files of kind fsm")
    fsm_config = job_spec["config"]
    try:
        return compile_machine(fsm_config, {**dict(job_spec.get("functions") or {}),
                                            **functions})
    except user_errors() as exc:
        where = Path(fsm_config) if isinstance(fsm_config, str | Path) else config
        raise UserError(_message(where, exc)) from None


def read_counts(path: Path) -> dict[str, Any]:
    """Per-state counts from a JSON file: ``SimpleFSM.stats()``, or a run's ``--json``
    result (which holds ``states`` and ``arcs``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--counts {path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--counts {path}: not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("stats"), dict):
        data = data["stats"]
    if not isinstance(data, dict) or not isinstance(data.get("states"), dict):
        raise UserError(f"--counts {path}: no per-state counts in it (expected the JSON of "
                        "`fsm-actors run --json` or SimpleFSM.stats(), with a 'states' key)")
    return data


def render(source: str, fmt: str) -> bytes:
    """DOT ``source`` rendered by Graphviz as ``fmt`` (svg or png)."""
    dot = shutil.which("dot")
    if dot is None:
        raise UserError(INSTALL_HINT)
    done = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True,
                          check=False, timeout=120)
    if done.returncode != 0:
        raise UserError(f"Graphviz could not render the diagram: "
                        f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: from -o's extension, else mermaid). svg and png "
              "need Graphviz's dot.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write here (default: stdout; svg/png need -o).")
@click.option("--counts", "counts_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None,
              help="A run's counts (the JSON of `fsm-actors run --json`, or SimpleFSM.stats()): "
              "label each state with them and colour it by failures.")
@click.option("--functions", "function_modules", multiple=True,
              help="Module whose functions the config may name (repeatable).")
def graph(config: Path, fmt: str | None, output: Path | None, counts_path: Path | None,
          function_modules: tuple[str, ...]) -> None:
    """Draw CONFIG (an FSM config, or a pipeline file of kind fsm): every network, state, arc
    and sub-network call, from the compiled machine the engine runs.

    \b
      fsm-actors graph examples/orders_fsm.yaml                  # Mermaid on stdout
      fsm-actors graph examples/orders_fsm.yaml -o orders.svg    # via Graphviz
      fsm-actors graph examples/orders_fsm.yaml --counts result.json -o run.svg
    """
    from fsm_actors.engine.diagram import to_dot, to_mermaid

    if fmt is None:
        fmt = _SUFFIXES.get(output.suffix.lower(), "mermaid") if output is not None else "mermaid"
    if fmt in ("svg", "png") and output is None:
        raise UserError(f"--format {fmt} is binary/markup for a file: give -o FILE.{fmt}")
    machine = machine_of(config, load_functions(function_modules))
    counts = read_counts(counts_path) if counts_path is not None else None
    if fmt == "mermaid":
        data: bytes = to_mermaid(machine, counts).encode()
    else:
        source = to_dot(machine, counts)
        data = source.encode() if fmt == "dot" else render(source, fmt)
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(data)
    except OSError as exc:
        raise UserError(f"-o {output}: cannot write it: {exc.strerror or exc}") from None
    click.echo(f"{config}: wrote {fmt} diagram of FSM {machine.name!r} to {output}", err=True)
