"""``fsm-actors run``, ``validate`` and ``schema``.

Mistakes in what the user gave (a file that does not parse, a bad key, an input that does
not exist, a run stopped by its error threshold) are printed as one message and exit 1,
never as a traceback. Ctrl-C stops a run cleanly (exit 130) and says how to resume.
"""

from __future__ import annotations

import glob
import importlib
import inspect
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from fsm_actors.cli import cold_start, leaving
from fsm_actors.cli.address import FORMS as ADDRESS_FORMS
from fsm_actors.cli.address import driver_options, find, given_address, ray_address
from fsm_actors.cli.checks import fsm_problems, reference_problems
from fsm_actors.cli.documents import (
    UserError,
    at,
    document_kind,
    read_document,
    without_path,
)
from fsm_actors.cli.interrupts import interrupts_kept, stderr_muted
from fsm_actors.cli.outputs import output_paths, unwritable
from fsm_actors.cli.progress import RunDisplay, install_interrupt_exit, rejected_any
from fsm_actors.cli.state_table import state_table
from fsm_actors.cli.stdout_sink import StdoutSink, stdout_for_data
from fsm_actors.cli.stopping import Terminated, catch_sigterm, remove, stale_temp_files
from fsm_actors.platform.jobs.progress import in_process

#: Input formats ``run`` reads (by extension; .gz/.zst compressed forms too).
INPUT_FORMATS = "CSV, TSV, JSON, JSON Lines, XML, Parquet, text (.txt/.log); .gz/.zst compressed"


def user_errors() -> tuple[type[BaseException], ...]:
    """The project's error root: every error under it is a user-facing message."""
    from fsm_actors.platform.errors import FSMActorsError

    return (FSMActorsError,)


def pipeline_files() -> Any:
    """The pipeline-file hooks (``patterns.pipeline.PipelineFiles``, registered by name)."""
    from fsm_actors.platform.extensions import lookup

    return lookup("pipeline_files")


def load_functions(modules: tuple[str, ...]) -> dict[str, Any]:
    """Public callables of each module, by name, for ``custom_functions``."""
    functions: dict[str, Any] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import {name!r}: {exc}",
                                     param_hint="--functions") from exc
        for attr, value in vars(module).items():
            if not attr.startswith("_") and inspect.isfunction(value):
                functions[attr] = value
    return functions


def _message(path: Path, exc: BaseException) -> str:
    """One message for a failed load or run: the file once, then what was wrong."""
    text = without_path(path, str(exc).strip())
    key_path = getattr(exc, "key_path", None)
    if key_path:
        return at(path, key_path, without_path(path, text).removeprefix(f"{key_path}: "))
    return f"{path}: {text}"


def resolve_address(address: str | None) -> str | None:
    """The address ``ray.init`` is given for ``address`` in any of Ray's forms
    (``fsm_actors.cli.address``); None or ``"local"`` as they are (the latest local cluster or
    an embedded Ray; a new embedded Ray)."""
    given = given_address(address)
    if address == "local" or given is None:
        return address
    resolved = ray_address(find(address))
    if address is None and resolved == given[0]:
        return None  # the runtime finds it the same way, and says where it came from
    return resolved


def _connect(display: RunDisplay, address: str | None) -> Any:
    from fsm_actors.platform import runtime

    display.phase(f"connecting to {runtime.connect_target(address)}")
    # Ray's notice that it turned token auth on is not news to a person watching a run
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    given = given_address(address)
    was_connected = runtime.connected()
    with interrupts_kept():  # a Ctrl-C while Ray starts is not dropped by a finalizer
        info = runtime.ensure_ray(address, **driver_options(given[0] if given else None))
    leaving.connected(info, was_connected)
    catch_sigterm()  # Ray installed its own, which prints a stack of addresses
    where = "embedded local Ray" if info.started_local else f"Ray cluster at {info.address}"
    dashboard = f"; dashboard {info.dashboard_url}" if info.dashboard_url else ""
    display.phase(f"Ray ready: {where}{dashboard}")
    return info


def _interrupted(display: RunDisplay, resume: str, targets: list[Path],
                 stop: KeyboardInterrupt) -> None:
    """Stop after Ctrl-C or SIGTERM: stop the actors (and an embedded Ray), remove the run's
    temp files beside ``targets``, say how to resume, exit 130 (143 for SIGTERM).

    What the run's threads print while their actors go away is teardown noise after the
    user asked to stop, so stderr is muted (at the descriptor, where Ray writes too) until
    everything is down.
    """
    terminated = isinstance(stop, Terminated)
    display.stop_bar()
    display.phase(f"{'stopped (SIGTERM)' if terminated else 'interrupted'} after "
                  f"{display.done:,} records; stopping "
                  + ("its processes" if in_process() else "the actors"))
    install_interrupt_exit(lambda: "stopped")
    with stderr_muted():
        from fsm_actors.platform import runtime

        runtime.shutdown()
    remove(stale_temp_files(targets))
    click.echo(resume, err=True)
    sys.stderr.flush()
    os._exit(143 if terminated else 130)  # the run's own threads must not print again


def _before_work(display: RunDisplay, targets: list[Path]) -> None:
    """Remove the temp files a killed earlier run left beside the outputs."""
    gone = remove(stale_temp_files(targets))
    if gone:
        display.phase(f"removed {len(gone)} temp file(s) an earlier stopped run left: "
                      + ", ".join(str(p) for p in gone))


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, path_type=Path),
              help=f"Input file of an FSM config: {INPUT_FORMATS}.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path),
              help="Output file of an FSM config; its extension picks the format "
              "(.jsonl, .json, .csv, .tsv, .parquet, .xml, .txt; .gz/.zst compresses). "
              "Without it the records go to stdout as JSON Lines (phases and the summary "
              "stay on stderr).")
@click.option("--address", default=None,
              help=f"The cluster: {ADDRESS_FORMS}; 'local' for a new embedded Ray. Default: "
              "FSM_ACTORS_ADDRESS, RAY_ADDRESS, RAY_API_SERVER_ADDRESS, the head of "
              "`fsm-actors up`, the latest `ray start` here, else an embedded local Ray.")
@click.option("--actors", type=int, default=None, help="Number of FSM actors (default: CPUs).")
@click.option("--local", is_flag=True, help="Run an FSM config in this process, without Ray.")
@click.option("--chunk-size", type=int, default=5000, show_default=True,
              help="Records per actor call (FSM configs).")
@click.option("--functions", "function_modules", multiple=True,
              help="Module whose functions the config may name (repeatable).")
@click.option("--checkpoint-id", default=None,
              help="Save progress under this id; a re-run with the same id resumes an "
              "interrupted run.")
@click.option("--trace", "trace", type=int, default=0, help="FSM configs: keep where the first "
              "N records and every failed one went in <output>.trace.jsonl (fsm-actors trace).")
@click.option("--no-progress", is_flag=True, help="Do not draw a progress bar.")
@click.option("--strict", is_flag=True, help="Exit 1 when any record was rejected (without "
              "it a run that finished within its error_threshold exits 0; the rejected "
              "records are in its error file).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON on stdout (for scripts) instead of a summary.")
def run(config: Path, input_path: Path | None, output_path: Path | None, address: str | None,
        actors: int | None, local: bool, chunk_size: int, function_modules: tuple[str, ...],
        checkpoint_id: str | None, no_progress: bool, as_json: bool, trace: int = 0,
        strict: bool = False) -> None:
    """Run CONFIG: an FSM config over --input into --output (stdout without it), or a
    pipeline file.

    A pipeline file (``kind: file_processing``) names its own input and output.
    """
    spec = read_document(config)
    kind = document_kind(config, spec)
    display = RunDisplay(bar=not no_progress)
    catch_sigterm()
    to_stdout = kind == "fsm_config" and output_path is None
    if to_stdout and as_json:
        raise UserError(f"{config}: --json prints the result on stdout, where the records go "
                        "without --output: give -o FILE for the records")
    with stdout_for_data() as data_out:  # Ray's forwarded lines go to stderr meanwhile
        try:
            address = resolve_address(address) if not local else address
            if kind == "fsm_config":
                with StdoutSink(config, enabled=to_stdout,
                                checkpoint_id=checkpoint_id) as sink:
                    result = _run_fsm(config, spec, display, input_path,
                                      sink.path or output_path, address, actors, local,
                                      chunk_size, load_functions(function_modules), checkpoint_id,
                                      trace)
                    result = sink.deliver(result, data_out)
            else:
                if input_path or output_path:
                    raise UserError(
                        f"{config}: -i/--input and -o/--output apply to FSM configs; a "
                        f"{kind} pipeline file names its input_path and output_path itself "
                        "(edit them there)"
                    )
                result = _run_pipeline(config, display, address, checkpoint_id)
        except user_errors() as exc:
            display.stop_bar()
            raise UserError(_message(config, exc)) from None
        if as_json:
            display.stop_bar()
            click.echo(json.dumps(result, default=str, indent=2), file=data_out)
        else:
            display.summary(result, output=output_path)
            for line in state_table(result):  # issue 25: per-state counts (cli/state_table.py)
                display.console.print(line, markup=False, highlight=False, soft_wrap=True)
        failed = ("endpoints" in result and result.get("errors")) or (strict and rejected_any(result))
        data_out.flush()  # (leave flushes sys.stdout, which is stderr here)
        leaving.leave(1 if failed else 0)  # attached: no Ray disconnect to wait for
        if failed:
            sys.exit(1)  # endpoints that failed; with --strict, rejected records too


def _run_fsm(config: Path, spec: dict[str, Any], display: RunDisplay, input_path: Path | None,
             output_path: Path | None, address: str | None, actors: int | None, local: bool,
             chunk_size: int, functions: dict[str, Any],
             checkpoint_id: str | None, trace: int = 0) -> dict[str, Any]:
    from fsm_actors.simple import SimpleFSM

    if input_path is None:
        raise UserError(f"{config}: an FSM config needs --input FILE (and usually --output FILE)")
    why = unwritable(output_path) if output_path is not None else None
    if why:
        raise UserError(f"--output {output_path}: cannot write it: {why}")
    display.count_rows([input_path])
    targets = [output_path] if output_path is not None else []
    _before_work(display, targets)
    if not local and cold_start.prepare(display, "fsm_config", address, [str(input_path)]):
        local = True  # a small run that names no cluster: in this process
    if not local:
        _connect(display, address)
    fsm = SimpleFSM(spec, custom_functions=functions, local=local, actors=actors,
                    address=address)
    display.phase(f"FSM {fsm.name!r}: " + ("running in this process" if local else
                  "running on job workers (fsm/<run id>/worker/<i>; `fsm-actors status` "
                  f"shows them as fsm run <run id>, pipeline {fsm.name!r})"))
    try:
        with fsm:
            return fsm.process_stream(str(input_path), output_path, chunk_size=chunk_size,
                                      on_progress=display.on_progress,
                                      checkpoint_id=checkpoint_id, trace=trace)
    except KeyboardInterrupt as stop:
        _interrupted(display, _resume_hint(checkpoint_id), targets, stop)
        raise  # not reached: _interrupted exits


def _resume_hint(checkpoint_id: str | None) -> str:
    if checkpoint_id:
        return (f"progress is saved under checkpoint {checkpoint_id!r}: run the same command "
                "again to resume (a Ray Job: submit it again with the same arguments)")
    return ("the output was left untouched; run again with --checkpoint-id NAME to be able to "
            "resume a stopped run")


#: per kind of pipeline file: the key naming the files it reads
INPUT_KEYS = {"file_processing": "input_path", "fsm": "input"}


def _job_mapping(spec: dict[str, Any]) -> tuple[str, dict[str, Any], list[Any]]:
    """``(kind, the job's mapping, its key path)`` of a pipeline file's mapping."""
    if isinstance(spec.get("file_processing"), dict):
        return "file_processing", spec["file_processing"], ["file_processing"]
    return str(spec.get("kind")), spec, []


def _inputs(config: Path, spec: dict[str, Any]) -> list[str]:
    """The input files a file-reading pipeline file names (globs and folders expanded,
    relative to the file's folder)."""
    kind, job, _ = _job_mapping(spec)
    value = job.get(INPUT_KEYS.get(kind, ""))
    source = job.get("source")
    if kind == "etl" and isinstance(source, dict) and source.get("type") == "file":
        value = source.get("path")  # an ETL file source: its rows are the bar's total
    if value is None:
        return []
    found: list[str] = []
    for entry in value if isinstance(value, list) else [value]:
        entry = os.path.expanduser(os.fspath(entry))
        if not os.path.isabs(entry):
            entry = os.path.join(config.parent, entry)
        if any(ch in entry for ch in "*?["):
            found += sorted(glob.glob(entry, recursive=True))
        elif os.path.isdir(entry):
            found += sorted(str(p) for p in Path(entry).rglob("*") if p.is_file())
        elif os.path.exists(entry):
            found.append(entry)
    return [p for p in found if os.path.isfile(p)]


def _run_pipeline(config: Path, display: RunDisplay, address: str | None,
                  checkpoint_id: str | None) -> dict[str, Any]:
    files = pipeline_files()
    job = files.load(config)
    problems = static_problems(config, job)
    if problems:
        raise UserError("\n".join(problems))
    spec = read_document(config)
    display.count_rows(_inputs(config, spec), has_header=getattr(job, "csv_has_header", True))
    targets = [path for _, path in output_paths(spec, config.parent)]
    _before_work(display, targets)
    kind = getattr(job, "kind", "file_processing")
    if cold_start.prepare(display, kind, address, _inputs(config, spec)):
        display.phase("running in this process, without Ray")
    else:
        _connect(display, address)
        display.phase("starting the jobs' workers (<kind>/<run id>/worker/<i>), step by step"
                      if kind == "steps" else
                      f"starting the job's workers ({kind}/<run id>/worker/<i>)")
    try:
        return files.run(config, on_progress=display.on_progress, address=address,
                                 checkpoint_id=checkpoint_id)
    except KeyboardInterrupt as stop:
        _interrupted(display, _resume_hint(checkpoint_id), targets, stop)
        raise  # not reached


def static_problems(config: Path, job: Any) -> list[str]:
    """What a loaded pipeline file's job would fail on at run time that can be seen now."""
    spec = read_document(config)
    kind, mapping, at_key = _job_mapping(spec)
    problems = []
    key = INPUT_KEYS.get(kind)
    if key and key in mapping and "${steps." not in str(mapping[key]) \
            and not _inputs(config, spec):
        problems.append(at(config, [*at_key, key], f"no input files match {mapping[key]!r}"))
    problems += [at(config, key, what) for key, what in pipeline_files().problems(job)]
    for key, path in output_paths(spec, config.parent):
        why = unwritable(path)
        if why:
            problems.append(at(config, key, f"cannot write {path}: {why}"))
    return problems


def unloaded_problems(config: Path, spec: dict[str, Any]) -> list[str]:
    """What can be seen in a pipeline file before it is loaded: ``${...}`` references, a
    missing ``input``, and a ``kind: fsm`` job's FSM config (its file, and every problem in
    it)."""
    problems = reference_problems(config, spec)
    kind, mapping, at_key = _job_mapping(spec)
    jobs = [(kind, mapping, at_key)]
    if kind == "steps":
        jobs = [(str(step.get("kind")), step, ["steps", i])
                for i, step in enumerate(spec.get("steps") or []) if isinstance(step, dict)]
    for kind, mapping, at_key in jobs:
        if kind != "fsm":
            continue
        for key in ("config", "input", "output"):
            if mapping.get(key) is None:
                problems.append(at(config, [*at_key, key], f"missing: kind fsm needs {key!r}"))
        fsm = mapping.get("config")
        if isinstance(fsm, str):
            path = Path(os.path.expanduser(fsm))
            path = path if path.is_absolute() else config.parent / path
            if not path.is_file():
                problems.append(at(config, [*at_key, "config"], f"no FSM config file {path}"))
            else:
                try:
                    problems += fsm_config_problems(path, read_document(path), {})[1]
                except UserError as exc:
                    problems.append(exc.format_message())
    return problems


def load_pipeline_file(config: Path, spec: dict[str, Any]) -> tuple[Any, list[str]]:
    """``(loaded job, the problems seen before loading)`` of a pipeline file whose document
    is ``spec``; ``UserError`` with every problem when it does not load."""
    problems = unloaded_problems(config, spec)
    try:
        return pipeline_files().load(config), problems
    except user_errors() as exc:
        problems += [p for p in _pipeline_errors(config, exc) if not _told(p, problems)]
        raise UserError("\n".join(problems)) from None


def fsm_config_problems(config: Path, spec: dict[str, Any], functions: dict[str, Any]
                        ) -> tuple[Any, list[str]]:
    """``(compiled machine or None, every problem found)`` of an FSM config."""
    from fsm_actors.engine import compile_machine

    problems = fsm_problems(config, spec)
    try:
        machine = compile_machine(spec, functions)
    except user_errors() as exc:
        key = getattr(exc, "key_path", None)
        if not key or not any(f": {key}:" in p or f": {key}." in p for p in problems):
            problems.append(_message(config, exc))
        return None, problems
    return machine, problems


def _pipeline_errors(config: Path, exc: BaseException) -> list[str]:
    """Each problem of a pipeline file that failed to load, at its key's line."""
    from pydantic import ValidationError

    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        spec = read_document(config)
        prefix: list[Any] = ["file_processing"] if isinstance(spec.get("file_processing"),
                                                              dict) else []
        out = []
        for error in cause.errors(include_url=False):
            loc = [*prefix, *error["loc"]]
            what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            out.append(at(config, loc, what))
        return out
    return [_message(config, exc)]


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--functions", "function_modules", multiple=True,
              help="Module whose functions the config may name (repeatable).")
def validate(config: Path, function_modules: tuple[str, ...]) -> None:
    """Check CONFIG (an FSM config or a pipeline file); every problem with its line, exit 1."""
    spec = read_document(config)
    kind = document_kind(config, spec)
    if kind != "fsm_config":
        job, problems = load_pipeline_file(config, spec)
        problems += static_problems(config, job)
        if problems:
            raise UserError("\n".join(problems))
        click.echo(f"{config}: valid {kind} pipeline file")
        return
    machine, problems = fsm_config_problems(config, spec, load_functions(function_modules))
    if problems:
        raise UserError("\n".join(problems))
    click.echo(
        f"{config}: valid FSM {machine.name!r} with {len(machine.state_names)} states "
        f"(start: {machine.start_state})"
    )


def _told(problem: str, told: list[str]) -> bool:
    """``problem`` (from loading) says what one of ``told`` says already."""
    for pattern in (r"environment variable (\w+) is not set", r"kind fsm needs '(\w+)'"):
        found = re.search(pattern, problem)
        if found and any(found.group(0) in other for other in told):
            return True
    return False


SCHEMA_KINDS = ["fsm", "pipeline", "file_processing", "fsm-job", "etl", "api", "steps"]


@click.command()
@click.option("--kind", type=click.Choice(SCHEMA_KINDS), default="fsm", show_default=True,
              help="fsm: FSM configs; pipeline: any pipeline file; file_processing, fsm-job "
                   "(kind: fsm), etl, api, steps: a pipeline file of that kind.")
def schema(kind: str) -> None:
    """Print a JSON schema (FSM configs, or pipeline files) for editors and validators."""
    if kind == "fsm":
        from fsm_actors.config import config_json_schema

        click.echo(json.dumps(config_json_schema(), indent=2))
        return
    out = pipeline_files().schema(
        None if kind == "pipeline" else "fsm" if kind == "fsm-job" else kind)
    click.echo(json.dumps(out, indent=2))
