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

from fsm_actors.platform.io.detect import open_input
from fsm_actors.platform.io.errors import RAW_LIMIT as _RAW_LIMIT
from fsm_actors.platform.io.errors import FormatError, RowError


def iter_json_records(path: str, read: Any) -> Iterator[dict[str, Any] | RowError]:
    """Records of a JSON Lines or JSON array file (``read.format``: ``jsonl`` / ``json``)."""
    encoding = getattr(read, "encoding", "utf-8") or "utf-8"
    if getattr(read, "format", None) == "json":
        yield from _array(path, encoding)
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


def _array(path: str, encoding: str) -> Iterator[dict[str, Any] | RowError]:
    with open_input(path) as stream:
        data = stream.read()
    try:
        value = json.loads(data.decode(encoding))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not a valid JSON document ({exc})", path) from exc
    items = value if isinstance(value, list) else [value]
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield item
        else:
            yield RowError(path, f"a JSON record must be an object, got {type(item).__name__}",
                           json.dumps(item)[:_RAW_LIMIT], record=number)
