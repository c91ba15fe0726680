"""``fsm-actors trace FILE --record N``: where one record went, state by state."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("trace")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--record", "record", type=int, required=True,
              help="The record number (as in the error file's 'record', 1-based).")
@click.option("--input", "input_file", default=None,
              help="Which input the record came from (path or name), when a run had several.")
def trace(file: Path, record: int, input_file: str | None) -> None:
    """Print one record's journey from a run's trace: each state it went through, what
    changed in the data after it, and the error where it stopped.

    FILE is the trace file (``<output>.trace.jsonl``, written by ``run --trace N``) or the
    run's output. Traced are the first N records and every failed record.
    """
    from fsm_actors import trace as traces

    path = file if file.name.endswith(".trace.jsonl") else traces.trace_file(file)
    if not path.is_file():
        raise click.ClickException(
            f"{path}: no trace file; run the pipeline with --trace N (N sampled records and "
            "every failed record are traced) and give its output or trace file"
        )
    found = traces.find(path, record, input_file)
    if not found:
        raise click.ClickException(
            f"record {record} is not in {path}: only the first N records and the failed ones "
            "are traced (see the run's error file for the failed records' numbers)"
        )
    for entry in found:
        click.echo(traces.render(entry))
