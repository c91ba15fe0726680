"""Where a record went: traces of sampled and failed records, as JSON Lines.

With ``trace=N``, the first ``N`` records and every record that fails keep the state path
with a copy of the data after each state. One line per record::

    {"record": 12, "file": "in.csv", "success": false, "final_state": "check",
     "error": "...", "input": {...},
     "steps": [{"state": "start", "data": {...}}, {"state": "check", "data": {...},
                "error": "..."}]}

A stream run writes each chunk's traced records as a part (``<sink>.trace.d/<chunk>.jsonl``,
replaced whole if a chunk is run again, so a record appears once) where the chunk ran; at the
end the parts are joined, in input order, into ``<sink>.trace.jsonl``. A ``process_batch``
call returns its lines (``file`` null, ``record`` the 1-based position in its list) as its
results' ``traces``, and writes them to its ``trace_file`` when given.

``find`` reads one record's line back and ``render`` prints its journey state by state,
with what changed in the data after each state and the error where it stopped.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import atomic_write
from fsm_actors.platform.io.convert import json_default


def trace_file(sink: str | Path) -> Path:
    """The trace file of a run that wrote ``sink``."""
    return Path(f"{sink}.trace.jsonl")


def parts_dir(sink: str | Path) -> Path:
    return Path(f"{sink}.trace.d")


def line(result: dict[str, Any], number: int, file: str | None, given: Any,
         steps: Any = None) -> dict[str, Any]:
    """The trace line of one traced run result (record ``number`` of ``file``; ``None``
    for a ``process_batch`` list); ``steps`` defaults to the result's ``trace``."""
    out = []
    for state, data, failure in (result.get("trace") if steps is None else steps) or ():
        step: dict[str, Any] = {"state": state, "data": data}
        if failure is not None:
            step["error"] = failure
        out.append(step)
    return {
        "record": number,
        "file": file,
        "success": bool(result.get("success")),
        "final_state": result.get("final_state"),
        "error": result.get("error"),
        "input": given,
        "steps": out,
    }


def write(path: str | Path, lines: list[dict[str, Any]]) -> Path:
    """Write trace lines as JSON Lines to ``path`` (replaced atomically); returns it."""
    target = Path(path)
    text = "".join(json.dumps(x, default=json_default, ensure_ascii=False) + "\n" for x in lines)
    atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return target


def write_part(sink: str | Path, file: str, first_record: int, lines: list[dict[str, Any]]) -> None:
    """Write one chunk's trace lines (none: nothing) as its part, atomically."""
    if not lines:
        return
    part = parts_dir(sink) / f"{zlib.crc32(file.encode()):08x}-{first_record:012d}.jsonl"
    text = "".join(json.dumps(x, default=json_default, ensure_ascii=False) + "\n" for x in lines)
    atomic_write(part, lambda tmp: tmp.write_text(text, encoding="utf-8"), fsync=False)


def join(sink: str | Path) -> Path:
    """Join the parts into ``<sink>.trace.jsonl`` (by file, then record) and remove them;
    returns the trace file."""
    folder = parts_dir(sink)
    parts = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    target = trace_file(sink)
    entries = [json.loads(x) for p in parts for x in p.read_text(encoding="utf-8").splitlines()
               if x]
    entries.sort(key=lambda e: (str(e.get("file")), e.get("record") or 0))
    lines = [json.dumps(e, ensure_ascii=False) for e in entries]
    atomic_write(target, lambda tmp: tmp.write_text(
        "".join(x + "\n" for x in lines), encoding="utf-8"))
    shutil.rmtree(folder, ignore_errors=True)
    return target


def clear(sink: str | Path) -> None:
    """Drop the parts a previous (not resumed) run left."""
    shutil.rmtree(parts_dir(sink), ignore_errors=True)


def read(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as src:
        for text in src:
            if text.strip():
                yield json.loads(text)


def find(path: str | Path, record: int, file: str | None = None) -> list[dict[str, Any]]:
    """The trace lines of record ``record`` (of ``file``, if given: a path or its name)."""
    found = []
    for entry in read(path):
        if entry.get("record") != record:
            continue
        if file is not None and file not in (entry.get("file"), Path(entry.get("file") or "").name):
            continue
        found.append(entry)
    return found


def diff(before: Any, after: Any, prefix: str = "") -> list[str]:
    """What changed from ``before`` to ``after``: ``+ key: value``, ``- key``,
    ``~ key: old -> new`` (nested dicts by dotted key)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else [f"~ {prefix or 'data'}: {_short(before)} -> {_short(after)}"]
    out = []
    for key, value in after.items():
        name = f"{prefix}{key}"
        if key not in before:
            out.append(f"+ {name}: {_short(value)}")
        elif isinstance(value, dict) and isinstance(before[key], dict):
            out += diff(before[key], value, f"{name}.")
        elif before[key] != value:
            out.append(f"~ {name}: {_short(before[key])} -> {_short(value)}")
    out += [f"- {prefix}{key}" for key in before if key not in after]
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=json_default, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(entry: dict[str, Any]) -> str:
    """One record's journey, readable: header, input, then each state with its changes."""
    status = "succeeded" if entry.get("success") else "FAILED"
    lines = [
        f"record {entry.get('record')}"
        + (f" of {entry['file']}" if entry.get("file") else "")
        + f": {status}, "
        f"final state {entry.get('final_state')!r}",
        f"  input: {_short(entry.get('input'), 200)}",
    ]
    before = entry.get("input")
    for n, step in enumerate(entry.get("steps") or [], start=1):
        lines.append(f"  {n}. {step['state']}")
        changes = diff(before, step.get("data"))
        lines += [f"       {c}" for c in changes] or ["       (data unchanged)"]
        if step.get("error"):
            lines.append(f"       ERROR: {step['error']}")
        before = step.get("data")
    if not entry.get("success") and entry.get("error"):
        lines.append(f"  stopped: {entry['error']}")
    return "\n".join(lines)
