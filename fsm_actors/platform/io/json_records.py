"""JSON input as Python dicts, exactly as written (plain core).

The Arrow JSON readers unify records into one schema (a missing key becomes ``null``, mixed
types are cast); a consumer that must see each record as it was given (an FSM routing on
``'a' in data``) reads through here instead. Bad lines come back as ``RowError``s in line
order: invalid UTF-8, invalid JSON, or a value that is not an object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fsm_actors.platform.io.errors import RAW_LIMIT as _RAW_LIMIT
from fsm_actors.platform.io.errors import RowError
from fsm_actors.platform.io.json_reader import iter_json_items
from fsm_actors.platform.io.readers import open_input


def iter_json_records(path: str, read: Any) -> Iterator[dict[str, Any] | RowError]:
    """Records of a JSON Lines file (``read.format`` ``jsonl``: one object per line) or a
    JSON document (``json``: an array, one object, or objects one after another, as
    ``iter_json_items`` reads it). Every record is yielded or a ``RowError`` names it."""
    encoding = getattr(read, "encoding", "utf-8") or "utf-8"
    if getattr(read, "format", None) == "json":
        yield from _document(path, encoding)
        return
    skip_empty = getattr(read, "skip_empty_lines", True)
    with open_input(path) as stream:
        for line_no, raw in enumerate(stream, start=1):
            text = raw.rstrip(b"\r\n")
            if not text.strip():
                if not skip_empty:
                    yield RowError(path, "empty line", "", line=line_no)
                continue
            try:
                decoded = text.decode(encoding)
            except UnicodeDecodeError as exc:
                shown = text[:_RAW_LIMIT].decode(encoding, "backslashreplace")
                yield RowError(path, f"invalid {encoding}: {exc.reason} at byte {exc.start}",
                               shown, line=line_no)
                continue
            try:
                value = json.loads(decoded)
            except json.JSONDecodeError as exc:
                yield RowError(path, f"invalid JSON: {exc.msg} at column {exc.colno}",
                               decoded[:_RAW_LIMIT], line=line_no)
                continue
            if not isinstance(value, dict):
                yield RowError(path, f"a JSON Lines record must be an object, got "
                               f"{type(value).__name__}", decoded[:_RAW_LIMIT], line=line_no)
                continue
            yield value


def _document(path: str, encoding: str) -> Iterator[dict[str, Any] | RowError]:
    """A JSON array, one object, or objects one after another (JSON Lines too), streamed."""
    yield from iter_json_items(open_input(path), path, encoding)
