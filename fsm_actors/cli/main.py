"""The ``fsm-actors`` command: run, validate and describe FSM pipelines."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import click

from fsm_actors.cli.progress import stream_progress_bar


def _load_functions(modules: tuple[str, ...]) -> dict[str, Any]:
    """Public callables of each module, by name, for ``custom_functions``."""
    functions: dict[str, Any] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise click.BadParameter(
                f"cannot import {name!r}: {exc}", param_hint="--functions"
            ) from exc
        for attr, value in vars(module).items():
            if not attr.startswith("_") and inspect.isfunction(value):
                functions[attr] = value
    return functions


def _read_mapping(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a mapping at the top level")
    return data


def _is_pipeline_file(spec: dict[str, Any]) -> bool:
    return spec.get("kind") in {"file_processing", "pipeline"} or "file_processing" in spec


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fsm-actors")
def cli() -> None:
    """Run finite-state-machine pipelines on Ray actors (local or on a cluster)."""


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, path_type=Path),
              help="Input file (CSV, JSON, JSON Lines, TXT) for an FSM config.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path),
              help="Output file; its extension picks the format.")
@click.option("--address", default=None,
              help="Ray address (auto, host:port, ray://host:10001). Default: RAY_ADDRESS, "
              "FSM_ACTORS_ADDRESS, a running local cluster, else an embedded local Ray.")
@click.option("--actors", type=int, default=None, help="Number of FSM actors (default: CPUs).")
@click.option("--local", is_flag=True, help="Run in this process, without Ray.")
@click.option("--chunk-size", type=int, default=5000, show_default=True,
              help="Records per actor call.")
@click.option("--functions", "function_modules", multiple=True,
              help="Module whose functions the config may name (repeatable).")
@click.option("--no-progress", is_flag=True, help="Do not draw a progress bar.")
def run(
    config: Path,
    input_path: Path | None,
    output_path: Path | None,
    address: str | None,
    actors: int | None,
    local: bool,
    chunk_size: int,
    function_modules: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Run CONFIG over --input into --output, or run a pipeline file.

    CONFIG is an FSM config (YAML/JSON), or a pipeline file declaring a job
    (``kind: file_processing``), which carries its own input and output.
    """
    spec = _read_mapping(config)
    if _is_pipeline_file(spec):
        from patterns.pipeline import run_pipeline_file

        with stream_progress_bar(enabled=not no_progress, label="records") as on_progress:
            result = run_pipeline_file(config, on_progress=on_progress, address=address)
        click.echo(json.dumps(result, default=str, indent=2))
        return
    if input_path is None:
        raise click.UsageError("an FSM config needs --input (and usually --output)")
    from fsm_actors.errors import FSMError
    from fsm_actors.simple import SimpleFSM

    functions = _load_functions(function_modules)
    try:
        fsm = SimpleFSM(spec, custom_functions=functions, local=local, actors=actors,
                        address=address)
    except FSMError as exc:
        raise click.ClickException(f"{config}: {exc}") from exc
    info = fsm.runtime_info
    if info is not None:
        where = "embedded local Ray" if info.started_local else f"Ray cluster at {info.address}"
        dashboard = f", dashboard {info.dashboard_url}" if info.dashboard_url else ""
        click.echo(f"running {fsm.name!r} on the {where}{dashboard}", err=True)
    with fsm, stream_progress_bar(enabled=not no_progress, label="records") as on_progress:
        result = fsm.process_stream(str(input_path), output_path, chunk_size=chunk_size,
                                    on_progress=on_progress)
    click.echo(json.dumps(result, default=str, indent=2))
    if result["failed"]:
        click.echo(
            f"{result['failed']} records failed; see {result.get('error_file', 'the errors')}",
            err=True,
        )


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--functions", "function_modules", multiple=True,
              help="Module whose functions the config may name (repeatable).")
def validate(config: Path, function_modules: tuple[str, ...]) -> None:
    """Check CONFIG: schema, states, arcs, functions. Exit code 1 on errors."""
    from fsm_actors.engine import compile_machine
    from fsm_actors.errors import FSMError

    spec = _read_mapping(config)
    if _is_pipeline_file(spec):
        from patterns.pipeline import load_pipeline_file

        try:
            load_pipeline_file(config)
        except Exception as exc:  # every load error is reported the same way
            click.echo(f"{config}: {exc}", err=True)
            sys.exit(1)
        click.echo(f"{config}: valid pipeline file")
        return
    try:
        machine = compile_machine(spec, _load_functions(function_modules))
    except FSMError as exc:
        click.echo(f"{config}: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{config}: valid FSM {machine.name!r} with {len(machine.state_names)} states "
        f"(start: {machine.start_state})"
    )


@cli.command()
def schema() -> None:
    """Print the JSON schema of FSM configs."""
    from fsm_actors.config import config_json_schema

    click.echo(json.dumps(config_json_schema(), indent=2))


if __name__ == "__main__":
    cli()
