"""``fsm-actors redrive RUN CONFIG``: re-run exactly the records a finished run rejected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def error_file_of(run: str, folders: tuple[Path, ...]) -> Path:
    """The error file RUN names: its path, an output path, or the run id / checkpoint id of
    a run under ``folders`` (``fsm-actors runs``)."""
    path = Path(run)
    if path.is_file() and path.name.endswith(".errors.jsonl"):
        return path
    if Path(f"{run}.errors.jsonl").is_file():
        return Path(f"{run}.errors.jsonl")
    from fsm_actors.cli.runs import find_runs

    found, _ = find_runs(list(folders) or [Path(".")])
    for candidate in found:
        if candidate.run_id == run and candidate.output not in ("", "None"):
            errors = Path(f"{candidate.output}.errors.jsonl")
            if errors.is_file():
                return errors
    raise click.ClickException(
        f"{run}: not an error file, an output with one beside it, or the id of a run under "
        f"{', '.join(str(f) for f in folders) or '.'} that has one; give the error file the "
        "run printed (<output>.errors.jsonl)"
    )


@click.command("redrive")
@click.argument("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, path_type=Path),
              default=None, help="The run's input (default: the file its error lines name); "
              "a CSV input's header and dialect parse its error lines.")
@click.option("--functions", "function_modules", multiple=True,
              help="Module whose functions the config may name (repeatable).")
@click.option("--local", is_flag=True, help="Run in this process, without Ray.")
@click.option("--address", default=None, help="The cluster (as for run).")
@click.option("--actors", type=int, default=None, help="Number of FSM actors.")
@click.option("--chunk-size", type=int, default=5000, show_default=True)
@click.option("--dir", "-C", "folders", multiple=True, type=click.Path(
    exists=True, file_okay=False, path_type=Path),
    help="Where to look for a run given by id (repeatable; default: here).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def redrive(run: str, config: Path, input_path: Path | None, function_modules: tuple[str, ...],
            local: bool, address: str | None, actors: int | None, chunk_size: int,
            folders: tuple[Path, ...], as_json: bool) -> None:
    """Re-run the records a finished run of the FSM CONFIG rejected, with the current CONFIG
    and functions. RUN is the run's error file, its output, or the checkpoint id of a run
    whose checkpoint is still there (``fsm-actors runs`` lists them).

    Records that now succeed are added to the run's output once (the output is replaced
    atomically); those that still fail make the new error file. Running it again with
    nothing left does nothing; an interrupted redrive resumes where it stopped.
    """
    from fsm_actors.cli.documents import read_document
    from fsm_actors.cli.run import load_functions
    from fsm_actors.simple import SimpleFSM

    errors = error_file_of(run, folders)
    output = Path(str(errors)[: -len(".errors.jsonl")])
    source: Any = input_path or _named_input(errors)
    spec = read_document(config)
    if not isinstance(spec, dict) or "states" not in spec:
        raise click.ClickException(
            f"{config}: redrive runs FSM configs here; a file_processing pipeline is "
            "redriven with FileProcessor(config).redrive()"
        )
    try:
        with SimpleFSM(spec, custom_functions=load_functions(function_modules), local=local,
                       actors=actors, address=address) as fsm:
            summary = fsm.process_stream(str(source) if source else [], str(output),
                                         chunk_size=chunk_size, redrive=str(errors))
    except Exception as exc:
        from fsm_actors.platform.errors import FSMError

        if not isinstance(exc, FSMError):
            raise
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"redriven {summary['redriven']}: {summary['succeeded']} now succeed (added to "
        f"{summary['output_path']}), {summary['still_failing']} still fail (in "
        f"{summary['error_file']})"
        + (f", {summary['not_redrivable']} could not be re-read as records"
           if summary["not_redrivable"] else "")
    )


def _named_input(errors: Path) -> Path | None:
    """The input the first error line names, if it still exists."""
    with open(errors, encoding="utf-8") as src:
        for text in src:
            if text.strip():
                name = json.loads(text).get("file")
                return Path(name) if name and Path(name).is_file() else None
    return None
