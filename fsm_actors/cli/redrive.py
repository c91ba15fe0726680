"""``fsm-actors redrive RUN CONFIG``: re-run exactly the records a finished run rejected.

CONFIG is an FSM config (its stream's error file, ``fsm_actors.redrive``) or a pipeline file
of kind ``etl`` (the run's rejects table; RUN its run id or error file) or
``file_processing`` (through the ``pipeline_files`` hook, which the patterns package
registers)."""

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
    """Re-run the records a finished run of CONFIG rejected, with the current CONFIG and
    functions. For an FSM config, RUN is the run's error file, its output, or the checkpoint
    id of a run whose checkpoint is still there (``fsm-actors runs`` lists them). For an
    ETL pipeline file (kind: etl), RUN is the run id the run printed (or its checkpoint id,
    or its error file): the rows it rejected are re-run and those that now pass loaded into
    its target once, with the same batch-and-checkpoint transactions as a load.

    Records that now succeed are added to the run's output once (the output is replaced
    atomically); those that still fail make the new error file. Running it again with
    nothing left does nothing; an interrupted redrive resumes where it stopped.
    """
    from fsm_actors.cli.documents import document_kind, read_document
    from fsm_actors.cli.run import load_functions
    from fsm_actors.simple import SimpleFSM

    spec = read_document(config)
    kind = document_kind(config, spec) if isinstance(spec, dict) else "fsm_config"
    if kind != "fsm_config":
        summary = _pipeline_redrive(config, run, local=local, address=address)
        _report(summary, as_json)
        return
    errors = error_file_of(run, folders)
    output = Path(str(errors)[: -len(".errors.jsonl")])
    source: Any = input_path or _named_input(errors)
    if not isinstance(spec, dict) or "states" not in spec:
        raise click.ClickException(
            f"{config}: redrive runs FSM configs with 'states', and etl and "
            "file_processing pipeline files"
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
    _report(summary, as_json)


def _pipeline_redrive(config: Path, run: str, *, local: bool,
                      address: str | None) -> dict[str, Any]:
    """The redrive of a pipeline file's run (the ``pipeline_files`` hook); a user's mistake
    is a one-line error."""
    from fsm_actors.cli.run import pipeline_files, user_errors

    try:
        return pipeline_files().redrive(config, run, address=address, local=local)
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from None


def _report(summary: dict[str, Any], as_json: bool) -> None:
    """The summary: how many were redriven, now succeed (and where they went), still fail."""
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    where = summary.get("output_path") or summary.get("target")
    errors = summary.get("error_file")
    click.echo(
        f"redriven {summary['redriven']}: {summary['succeeded']} now succeed"
        + (f" (added to {where})" if where else
           f" ({summary.get('loaded', 0)} rows loaded)" if "loaded" in summary else "")
        + f", {summary['still_failing']} still fail"
        + (f" (in {errors})" if errors else "")
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
