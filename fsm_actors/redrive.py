"""Redrive: re-run exactly the records a finished run rejected, from its error file.

``redrive`` reads the run's error file (one JSON object per line, see ``RowError``), turns
each line back into the record it was (``raw``: the record as JSON, or for a CSV input the
CSV text of its line, parsed with the input's delimiter and header), runs those records
through ``run`` (the caller's job, with the current config and functions) into a staged
output and error file, then:

1. replaces the run's output atomically by its old content plus the records that now
   succeed (``join_parts``: temp file, fsync, rename), and
2. replaces the error file by the lines that still fail (the records' original file and
   line/record kept) plus the lines that could not be turned back into a record.

Every step is recorded in ``<error file>.redrive.json`` before it is taken, so a redrive
killed at any point and run again finishes exactly once: the job resumes from its
checkpoint, and the output is joined only if it still is the file it was before the join
(size, mtime, inode). An error file with no lines is a no-op. The summary counts
``redriven`` (records re-run), ``succeeded`` (now written or excluded), ``still_failing``
and ``not_redrivable`` (lines kept as they were: a ``raw`` cut short, or a CSV line that
does not split into the header's fields).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fsm_actors.platform.errors import FSMError
from fsm_actors.platform.io import atomic_write, join_parts
from fsm_actors.platform.io.errors import RAW_LIMIT
from fsm_actors.platform.io.readers import split_extensions

#: ``run(input_jsonl, staged_output, staged_errors, checkpoint_id)``: run the records of
#: ``input_jsonl`` (JSON Lines, one record a line) into the staged paths, resumable by
#: ``checkpoint_id``; returns the job's result dict.
RunRecords = Callable[[Path, Path, Path, str], Awaitable[dict[str, Any]]]

JOINABLE = ("jsonl", "csv", "tsv", "parquet")


class RedriveError(FSMError):
    """A redrive that cannot be done (no error file, an output format it cannot extend)."""


def error_records(
    error_file: Path,
    *,
    input_format: str | None = None,
    csv_delimiter: str = ",",
    header: list[str] | None = None,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[str]]:
    """``([(record, error line)], lines kept as they are)`` of ``error_file``."""
    records: list[tuple[dict[str, Any], dict[str, Any]]] = []
    kept: list[str] = []
    with open(error_file, encoding="utf-8") as src:
        for text in src:
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                kept.append(text.rstrip("\n"))
                continue
            record = _record_of(line, input_format, csv_delimiter, header)
            if record is None:
                kept.append(text.rstrip("\n"))
            else:
                records.append((record, line))
    return records, kept


def _record_of(
    line: dict[str, Any], input_format: str | None, delimiter: str, header: list[str] | None
) -> dict[str, Any] | None:
    raw = line.get("raw")
    if not isinstance(raw, str) or (len(raw) > RAW_LIMIT and raw.endswith("...")):
        return None
    value = json_record(raw)
    if value is not None:
        return value
    if input_format in ("csv", "tsv") and header:
        rows = list(csv.reader(io.StringIO(raw), delimiter="\t" if input_format == "tsv"
                               else delimiter))
        if len(rows) == 1 and len(rows[0]) == len(header):
            return dict(zip(header, rows[0], strict=True))
    return None


def json_record(raw: Any) -> dict[str, Any] | None:
    """The record an error line's ``raw`` (or an ETL reject's ``record``) holds as JSON
    text, or None when it is not a whole JSON object (a raw line, a record cut short)."""
    if not isinstance(raw, str) or not raw.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def csv_header(path: str | Path, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The header row of a CSV file (``[]`` if it is empty or gone)."""
    try:
        with open(path, encoding=encoding, newline="") as src:
            return next(csv.reader(src, delimiter=delimiter), [])
    except OSError:
        return []


def _fingerprint(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _save(state_file: Path, state: dict[str, Any]) -> None:
    atomic_write(state_file, lambda tmp: tmp.write_text(json.dumps(state)))


async def redrive(
    output: str | Path,
    error_file: str | Path,
    run: RunRecords,
    *,
    output_format: str,
    input_format: str | None = None,
    csv_delimiter: str = ",",
    header: list[str] | None = None,
    compression: str | None = None,
) -> dict[str, Any]:
    """Redrive the records of ``error_file`` into ``output``; see the module docstring."""
    output, error_file = Path(output).absolute(), Path(error_file).absolute()
    fmt = {"json_lines": "jsonl", "ndjson": "jsonl"}.get(output_format, output_format)
    if fmt not in JOINABLE:
        raise RedriveError(
            f"{output}: a redrive adds records to JSON Lines, CSV, TSV or Parquet outputs, not "
            f"{output_format}; write the run's output in one of those to redrive it"
        )
    if fmt != "parquet" and split_extensions(output)[1] is not None:
        raise RedriveError(
            f"{output}: a redrive adds records to uncompressed JSON Lines/CSV outputs only; "
            "write the run's output uncompressed (or as Parquet) to redrive it"
        )
    state_file = error_file.with_name(error_file.name + ".redrive.json")
    state: dict[str, Any] = {}
    if state_file.exists():
        state = json.loads(state_file.read_text())
    elif not error_file.exists():
        raise RedriveError(
            f"{error_file}: no error file; give the error file the run wrote (its summary "
            "names it), or the run id of a run that had failures"
        )
    summary = {"redriven": 0, "succeeded": 0, "still_failing": 0, "not_redrivable": 0,
               "output_path": str(output), "error_file": str(error_file)}
    if not state:
        records, kept = error_records(
            error_file, input_format=input_format, csv_delimiter=csv_delimiter, header=header
        )
        if not records:
            summary["not_redrivable"] = len(kept)
            summary["still_failing"] = len(kept)
            return summary
        digest = hashlib.sha1(error_file.read_bytes()).hexdigest()[:12]
        staging = output.parent / ".fsm_actors" / f"redrive-{digest}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        source = staging / "input.jsonl"
        atomic_write(source, lambda tmp: tmp.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r, _ in records)))
        atomic_write(staging / "origin.jsonl", lambda tmp: tmp.write_text(
            "".join(json.dumps(line, ensure_ascii=False) + "\n" for _, line in records)))
        atomic_write(staging / "kept.jsonl", lambda tmp: tmp.write_text(
            "".join(k + "\n" for k in kept)))
        state = {"id": f"redrive-{digest}", "staging": str(staging), "phase": "run",
                 "redriven": len(records), "not_redrivable": len(kept)}
        _save(state_file, state)
    staging = Path(state["staging"])
    staged_out = staging / f"output.{fmt}"
    staged_errors = staging / "errors.jsonl"
    if state["phase"] == "run":
        await run(staging / "input.jsonl", staged_out, staged_errors, state["id"])
        state.update(phase="join", before=_fingerprint(output))
        _save(state_file, state)
    if state["phase"] == "join":
        if _fingerprint(output) == state["before"]:  # not joined yet
            _join(output, staged_out, fmt, compression, csv_delimiter)
        state["phase"] = "errors"
        _save(state_file, state)
    failing = _write_errors(error_file, staging)
    state_file.unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    summary.update(
        redriven=state["redriven"],
        still_failing=failing + state["not_redrivable"],
        succeeded=state["redriven"] - failing,
        not_redrivable=state["not_redrivable"],
    )
    return summary


def _join(output: Path, staged: Path, fmt: str, compression: str | None, delimiter: str) -> None:
    """``output`` := its old records + ``staged``'s, atomically."""
    if not staged.exists():
        return
    if not output.exists():
        atomic_write(output, lambda tmp: shutil.copyfile(staged, tmp))
        return
    if fmt == "parquet":
        join_parts(output, [output, staged], "parquet", compression=compression or "snappy")
        return
    if fmt == "jsonl":
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                for part in (output, staged):
                    data = part.read_bytes()
                    if data and not data.endswith(b"\n") and compression is None:
                        data += b"\n"
                    out.write(data)

        atomic_write(output, write)
        return
    delim = "\t" if fmt == "tsv" else delimiter
    headers = [csv_header(p, delim) for p in (output, staged)]
    if headers[1] == headers[0]:
        def append(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                out.write(output.read_bytes())
                with open(staged, "rb") as src:
                    src.readline()  # the header, already written
                    shutil.copyfileobj(src, out)

        atomic_write(output, append)
        return
    union = list(dict.fromkeys([*headers[0], *headers[1]]))

    def rewrite(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, union, delimiter=delim)
            writer.writeheader()
            for part in (output, staged):
                with open(part, encoding="utf-8", newline="") as src:
                    writer.writerows(csv.DictReader(src, delimiter=delim))

    atomic_write(output, rewrite)


def _write_errors(error_file: Path, staging: Path) -> int:
    """The new error file: the redriven records that still fail (with the file and
    line/record they came from) and the kept lines; returns how many records still fail."""
    origin = [json.loads(t) for t in (staging / "origin.jsonl").read_text().splitlines()]
    kept = (staging / "kept.jsonl").read_text().splitlines()
    lines: list[str] = []
    staged = staging / "errors.jsonl"
    failing = 0
    if staged.exists():
        for text in staged.read_text(encoding="utf-8").splitlines():
            if not text.strip():
                continue
            line = json.loads(text)
            number = line.get("record") or line.get("line")
            if isinstance(number, int) and 0 < number <= len(origin):
                first = origin[number - 1]
                line.update(file=first.get("file"), line=first.get("line"),
                            record=first.get("record"))
            lines.append(json.dumps(line, ensure_ascii=False))
            failing += 1
    text = "".join(x + "\n" for x in [*lines, *kept])
    atomic_write(error_file, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return failing


def remove_checkpoint(checkpoint_dir: Path, run_id: str) -> None:
    """Drop a finished redrive job's checkpoint (it is never resumed again)."""
    for path in checkpoint_dir.glob(f"{run_id}.ckpt*"):
        path.unlink(missing_ok=True)


async def redrive_stream(
    fsm: Any,
    source: Any,
    sink: str | Path | None,
    error_file: str | Path | bool,
    *,
    chunk_size: int = 1000,
    output_format: str | None = None,
    input_format: str | None = None,
    csv_delimiter: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """``AsyncSimpleFSM.process_stream(..., redrive=...)``: redrive a stream's error file
    (``True``: ``<sink>.errors.jsonl``) into ``sink`` through ``fsm``'s current machine."""
    from fsm_actors.platform.io.readers import normalize_format
    from fsm_actors.stream import stream_job

    if sink is None:
        raise RedriveError("redrive= needs the sink the stream wrote: its records are added there")
    errors = Path(f"{sink}.errors.jsonl") if error_file is True else Path(error_file)  # type: ignore[arg-type]
    fmt = output_format or _format_of(sink)
    src_fmt = input_format
    if src_fmt is None and isinstance(source, str | os.PathLike):
        src_fmt = _format_of(source)
    delimiter = csv_delimiter or ("\t" if src_fmt == "tsv" else ",")
    header = (
        csv_header(source, delimiter)
        if src_fmt in ("csv", "tsv") and isinstance(source, str | os.PathLike) else None
    )

    async def run(records: Path, out: Path, staged_errors: Path, run_id: str) -> dict[str, Any]:
        from fsm_actors.stream import FSMStage

        stage = FSMStage(fsm.config, fsm._functions, fsm._data_mode,
                         resource_spec=fsm._resource_spec,
                         binder=fsm._binder if fsm._local else None)
        result = await stream_job(
            stage, fsm.name, str(records), out, chunk_size=chunk_size, input_format="jsonl",
            output_format=fmt, text_field_name="text", csv_delimiter=None,
            csv_has_header=True, skip_empty_lines=True, checkpoint_id=run_id,
            error_threshold=None, on_progress=None, address=fsm._address, workers=workers,
            local=fsm._local,
        )
        written = Path(f"{out}.errors.jsonl")
        if written.exists():
            os.replace(written, staged_errors)
        return result

    return await redrive(sink, errors, run, output_format=normalize_format(fmt),
                         input_format=src_fmt, csv_delimiter=delimiter, header=header)


def _format_of(path: Any) -> str:
    from fsm_actors.platform.io.readers import detect_format

    return str(detect_format(str(path)))


__all__ = ["RedriveError", "csv_header", "error_records", "json_record", "redrive",
           "redrive_stream"]
