"""``FileProcessor.redrive``: re-run the records a finished file run rejected.

The run's error file is turned back into records (``fsm_actors.redrive``), those records go
through the same config (its current filters, transformations and validation) as a job of
their own, and the ones that now pass are added to the run's single output file, atomically
and exactly once; the ones that still fail make the new error file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsm_actors.redrive import RedriveError, csv_header, redrive
from patterns._files.config import FileFormat, FileProcessingConfig
from patterns._files.job import FileJob
from patterns.errors import PatternError


async def redrive_run(
    config: FileProcessingConfig,
    *,
    error_file: str | Path | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Redrive the run of ``config`` (its error file, or ``error_file``); returns
    ``{redriven, succeeded, still_failing, not_redrivable, output_path, error_file}``."""
    plan = FileJob(config, address=address).plan
    if plan.output_kind != "single" or plan.output_path is None:
        raise PatternError(
            "redrive adds records to one output file; this run writes "
            f"{'no output' if plan.output_path is None else 'a folder of outputs'}",
            pattern="file_processing",
        )
    source = plan.inputs[0]
    delimiter = config.csv_delimiter or ("\t" if source.format == "tsv" else ",")
    header = (
        csv_header(source.path, delimiter, config.encoding or "utf-8")
        if source.format in ("csv", "tsv") and config.csv_has_header else None
    )
    fmt = plan.output_format or "jsonl"

    async def run(records: Path, out: Path, errors: Path, run_id: str) -> dict[str, Any]:
        again = config.model_copy(update={
            "input_path": str(records), "output_path": str(out), "format": FileFormat.JSONL,
            "output_format": FileFormat(fmt), "error_file": str(errors),
            "checkpoint_id": run_id, "checkpoint_dir": None, "compression": None,
            "partition_by": None, "error_threshold": None,
        })
        return await FileJob(again, checkpoint_id=run_id, address=address).run()

    try:
        return await redrive(
            plan.output_path, error_file or plan.error_file, run, output_format=fmt,
            input_format=source.format, csv_delimiter=delimiter, header=header,
            compression=config.compression,
        )
    except RedriveError as exc:
        raise PatternError(exc.message, pattern="file_processing") from None
