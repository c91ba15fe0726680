"""Text and log files: one record per line, optionally split by regex named groups.

A line that is not valid in the file's encoding becomes a reported error; the others stay.
Log patterns are tried in order; the named groups of the first one that matches a line become
string fields of its record (a line no pattern matches keeps only its text). Patterns run as
vectorized RE2 when RE2 accepts them, else with Python's ``re``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io.blocks import line_blocks
from fsm_actors.platform.io.chunks import Piece
from fsm_actors.platform.io.errors import RowError, raw_text


def read_text_pieces(
    stream: BinaryIO,
    name: str | None,
    *,
    encoding: str = "utf-8",
    skip_empty_lines: bool = True,
    text_field_name: str = "text",
    patterns: Sequence[str] = (),
) -> Iterator[Piece]:
    """Pieces with a ``text_field_name`` column (plus the patterns' named groups)."""
    for block, line in line_blocks(stream):
        lines, errors = _decode_lines(block, name, encoding, line, skip_empty_lines)
        if lines:
            column = pa.array(lines, pa.string())
            yield Piece(split_log_lines(column, patterns, text_field_name), errors)
        elif errors:
            yield Piece(None, errors)


def _decode_lines(
    block: bytes, name: str | None, encoding: str, first_line: int, skip_empty: bool
) -> tuple[list[str], list[RowError]]:
    try:
        text = block.decode(encoding)
    except UnicodeDecodeError:
        text = None
    if text is not None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
        return ([ln for ln in lines if ln.strip()] if skip_empty else lines), []
    kept: list[str] = []
    errors: list[RowError] = []
    raw_lines = block.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for offset, raw in enumerate(raw_lines):
        try:
            value = raw.decode(encoding).removesuffix("\r")
        except UnicodeDecodeError as exc:
            errors.append(
                RowError(
                    name, f"undecodable bytes: {exc.reason}", raw_text(raw), first_line + offset
                )
            )
            continue
        if value.strip() or not skip_empty:
            kept.append(value)
    return kept, errors


def split_log_lines(lines: pa.Array, patterns: Sequence[str], text_field_name: str) -> pa.Table:
    """A table of ``lines`` plus one string column per named group of ``patterns``."""
    fields: dict[str, pa.Array] = {}
    unmatched = None
    for pattern in patterns:
        groups = _extract(lines, pattern)
        matched = groups.is_valid()
        for name in groups.type.names if isinstance(groups.type, pa.StructType) else ():
            values = pc.if_else(matched, pc.struct_field(groups, name), None)
            if unmatched is not None:
                values = pc.if_else(unmatched, values, None)
            fields[name] = values if name not in fields else pc.coalesce(fields[name], values)
        unmatched = (
            pc.invert(matched) if unmatched is None else pc.and_(unmatched, pc.invert(matched))
        )
    return pa.table({text_field_name: lines, **fields})


def _extract(lines: pa.Array, pattern: str) -> pa.Array:
    try:
        return pc.extract_regex(lines, pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        compiled = re.compile(pattern)
        names = list(compiled.groupindex)
        rows = []
        for text in lines.to_pylist():
            match = compiled.search(text) if text is not None else None
            rows.append(match.groupdict() if match else None)
        struct = pa.struct([(n, pa.string()) for n in names])
        return pa.array(rows, struct)
