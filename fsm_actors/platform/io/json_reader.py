"""JSON Lines and JSON array (or single object) to Arrow, skipping malformed records.

JSON Lines is parsed a block of whole lines at a time by pyarrow; a block that pyarrow
rejects is re-parsed line by line so only the bad lines are reported. A JSON array is walked
element by element with the standard decoder over a bounded text buffer, so memory stays flat
in file size; after a malformed element the reader resumes at the next ``}, {``.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.json as pajson

from fsm_actors.platform.io.blocks import BLOCK_BYTES, line_blocks
from fsm_actors.platform.io.chunks import Piece
from fsm_actors.platform.io.convert import compatible_runs, records_to_table
from fsm_actors.platform.io.errors import RowError, raw_text

MAX_ELEMENT_CHARS = 64 << 20
_RESYNC = re.compile(r"\}\s*,\s*(?=\{)")
_SURROGATE = re.compile("[\udc80-\udcff]")


def read_jsonl_pieces(
    stream: BinaryIO, name: str | None, encoding: str = "utf-8"
) -> Iterator[Piece]:
    """Pieces of a JSON Lines stream (one object per line; blank lines are ignored)."""
    utf8 = codecs.lookup(encoding).name == "utf-8"
    schema: pa.Schema | None = None
    for block, line in line_blocks(stream):
        if block.strip():
            table = _fast_block(block if utf8 else _transcode(block, encoding), schema)
            if table is not None:
                schema = table.schema
                yield Piece(table)
            else:
                yield from _slow_block(block, name, encoding, line)


def _transcode(block: bytes, encoding: str) -> bytes | None:
    try:
        return block.decode(encoding).encode("utf-8")
    except UnicodeDecodeError:
        return None


def _fast_block(block: bytes | None, schema: pa.Schema | None) -> pa.Table | None:
    if block is None:
        return None
    read_opts = pajson.ReadOptions(use_threads=False, block_size=len(block) + 1)
    attempts = [None, schema] if schema is None else [schema, None]
    for explicit in attempts:
        try:
            table = _read_block(block, read_opts, explicit)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        # pyarrow passes bytes that are not UTF-8 through into strings: such a block goes
        # line by line, where the bad lines are rejected.
        try:
            table.validate(full=True)
        except pa.ArrowInvalid:
            return None
        # JSON has no timestamp type: text that pyarrow took for a timestamp stays text.
        stamped = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if not stamped:
            return table
        fields = [pa.field(f.name, pa.string()) if f.name in stamped else f for f in table.schema]
        try:
            return _read_block(block, read_opts, pa.schema(fields))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _read_block(block: bytes, read_opts, explicit: pa.Schema | None) -> pa.Table:
    parse_opts = pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    return pajson.read_json(io.BytesIO(block), read_opts, parse_opts)


def _slow_block(block: bytes, name: str | None, encoding: str, first_line: int) -> list[Piece]:
    records: list[dict] = []
    errors: list[RowError] = []
    for offset, raw in enumerate(block.split(b"\n")):
        if not raw.strip():
            continue
        line = first_line + offset
        try:
            value = json.loads(raw.decode(encoding))
        except UnicodeDecodeError as exc:
            errors.append(RowError(name, f"undecodable bytes: {exc.reason}", raw_text(raw), line))
            continue
        except ValueError as exc:
            errors.append(RowError(name, f"bad JSON: {exc}", raw_text(raw, encoding), line))
            continue
        if not isinstance(value, dict):
            errors.append(
                RowError(
                    name,
                    f"not a JSON object: {type(value).__name__}",
                    raw_text(raw, encoding),
                    line,
                )
            )
            continue
        records.append(value)
    return _pieces(records, errors)


def _pieces(records: list[dict], errors: list[RowError]) -> list[Piece]:
    runs = compatible_runs(records) or [[]]
    return [
        Piece(records_to_table(run) if run else None, errors if i == 0 else [])
        for i, run in enumerate(runs)
    ]


def read_json_pieces(
    stream: BinaryIO, name: str | None, encoding: str = "utf-8", batch_rows: int = 8192
) -> Iterator[Piece]:
    """Pieces of a JSON document: the elements of a top-level array, or one top-level object."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    buf, pos, line, eof = "", 0, 1, False
    records: list[dict] = []
    errors: list[RowError] = []

    def fill() -> None:
        nonlocal buf, pos, line, eof
        data = stream.read(BLOCK_BYTES)
        eof = not data
        line += buf.count("\n", 0, pos)
        buf = buf[pos:] + text_decoder.decode(data, final=eof)
        pos = 0

    def skip_space() -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n\ufeff,":
                pos += 1
            if pos < len(buf) or eof:
                return
            fill()

    with stream:
        skip_space()
        if pos >= len(buf):
            return
        in_array = buf[pos] == "["
        if in_array:
            pos += 1
        while True:
            skip_space()
            if pos >= len(buf) or (in_array and buf[pos] == "]"):
                break
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof and (exc.pos >= len(buf) - 1 or exc.msg.startswith("Unterminated")):
                    if len(buf) - pos > MAX_ELEMENT_CHARS:
                        errors.append(
                            RowError(
                                name,
                                "JSON element too large or unterminated",
                                None,
                                _line(buf, pos, line),
                            )
                        )
                        break
                    fill()
                    continue
                resync = _RESYNC.search(buf, exc.pos if exc.pos > pos else pos + 1)
                stop = resync.start() + 1 if resync else len(buf)
                errors.append(
                    RowError(
                        name, f"bad JSON: {exc.msg}", raw_text(buf[pos:stop]), _line(buf, pos, line)
                    )
                )
                if resync is None:
                    break
                pos = stop
                continue
            element = buf[pos:end]
            if _SURROGATE.search(element):
                errors.append(
                    RowError(name, "undecodable bytes", raw_text(element), _line(buf, pos, line))
                )
            elif not isinstance(value, dict):
                errors.append(
                    RowError(
                        name,
                        f"not a JSON object: {type(value).__name__}",
                        raw_text(element),
                        _line(buf, pos, line),
                    )
                )
            else:
                records.append(value)
            pos = end
            if not in_array:
                break
            if len(records) >= batch_rows:
                yield from _pieces(records, errors)
                records, errors = [], []
    if records or errors:
        yield from _pieces(records, errors)


def _line(buf: str, pos: int, base: int) -> int:
    return base + buf.count("\n", 0, pos)
