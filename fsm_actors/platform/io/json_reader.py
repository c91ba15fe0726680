"""JSON Lines and JSON array (or single object) to Arrow, skipping malformed records.

JSON Lines is parsed a block of whole lines at a time by pyarrow; a block that pyarrow
rejects is re-parsed line by line so only the bad lines are reported. A JSON document (an
array, one object, or objects one after another: JSON Lines given as ``json`` too) is walked
element by element with the standard decoder over a bounded text buffer, so memory stays flat
in file size; every element is a record or a ``RowError`` naming its line.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.json as pajson

from fsm_actors.platform.io.blocks import line_blocks
from fsm_actors.platform.io.chunks import Piece
from fsm_actors.platform.io.convert import compatible_runs, records_to_table
from fsm_actors.platform.io.errors import RowError, raw_text

MAX_ELEMENT_CHARS = 64 << 20
_RESYNC = re.compile(r"\}\s*,\s*(?=\{)")
_NEXT_VALUE_LINE = re.compile(r"\n(?=[ \t\r]*[{[])")
_CUT = 32  # a decode error this close to the end of the buffer may be a value cut there
# Text read at a time: small, as a decode error costs a count of the lines before it in the
# buffer (json's error position).
_TEXT_BLOCK = 64 << 10
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
    """Pieces of a JSON document (see ``iter_json_items`` for the shapes read)."""
    records: list[dict] = []
    errors: list[RowError] = []
    for item in iter_json_items(stream, name, encoding):
        if isinstance(item, RowError):
            errors.append(item)
            continue
        records.append(item)
        if len(records) >= batch_rows:
            yield from _pieces(records, errors)
            records, errors = [], []
    if records or errors:
        yield from _pieces(records, errors)


def iter_json_items(
    stream: BinaryIO, name: str | None, encoding: str = "utf-8"
) -> Iterator[dict[str, Any] | RowError]:
    """Every record of a JSON document, in order, as the dict the standard decoder gives.

    The document is a top-level array of objects, one object, or objects (and arrays of
    them) one after another: JSON Lines, blank lines allowed, or pretty-printed objects.
    Nothing is dropped without a ``RowError`` naming its line: a value that does not parse
    or is not an object, and anything after the last record. After a bad array element
    reading goes on at the next ``}, {``; after a bad top-level value, at the next line that
    starts with ``{`` or ``[``. Memory is bounded by the largest element
    (``MAX_ELEMENT_CHARS``), not the file.
    """
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    buf, pos, eof = "", 0, False
    mark, mark_line = 0, 1  # buf[mark] is on file line mark_line

    def line_at(at: int) -> int:
        """The file line of ``buf[at]`` (asked in increasing order within a buffer, so
        every newline is counted once)."""
        nonlocal mark, mark_line
        mark_line += buf.count("\n", mark, at)
        mark = at
        return mark_line

    def fill() -> None:
        nonlocal buf, pos, eof, mark
        # A value longer than the buffer doubles it, so a large value is decoded a few times,
        # not once per block.
        data = stream.read(max(_TEXT_BLOCK, len(buf) - pos))
        eof = not data
        line_at(pos)
        buf = buf[pos:] + text_decoder.decode(data, final=eof)
        pos = mark = 0

    def skip_space() -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n\ufeff,":
                pos += 1
            if pos < len(buf) or eof:
                return
            fill()

    in_array = False
    with stream:
        while True:
            skip_space()
            if pos >= len(buf):
                break
            if buf[pos] == "[" and not in_array:
                in_array, pos = True, pos + 1
                continue
            if buf[pos] == "]" and in_array:
                in_array, pos = False, pos + 1
                continue
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                # A value cut by the end of the buffer: read on and decode it again.
                if not eof and (exc.pos >= len(buf) - _CUT or exc.msg.startswith("Unterminated")):
                    if len(buf) - pos > MAX_ELEMENT_CHARS:
                        yield RowError(
                            name,
                            "JSON element too large or unterminated",
                            None,
                            line_at(pos),
                        )
                        return
                    fill()
                    continue
                # Go on at the next element: "}, {" in an array, else the next line that
                # starts an object or array; read on to find it.
                pattern = _RESYNC if in_array else _NEXT_VALUE_LINE
                start = exc.pos if in_array and exc.pos > pos else pos + 1
                found = pattern.search(buf, start)
                while found is None and not eof and len(buf) - pos <= MAX_ELEMENT_CHARS:
                    start = max(start, len(buf) - _CUT) - pos  # fill() drops buf[:pos]
                    fill()
                    found = pattern.search(buf, start)
                stop = (found.start() + 1) if found is not None else len(buf)
                yield RowError(
                    name,
                    f"bad JSON: {exc.msg}",
                    raw_text(buf[pos:stop].rstrip()),
                    line_at(pos),
                )
                if found is None and not eof:
                    yield RowError(
                        name,
                        "JSON element too large or unterminated; the rest of the file is not read",
                        None,
                        line_at(stop),
                    )
                    return
                pos = stop
                continue
            element = buf[pos:end]
            if _SURROGATE.search(element):
                yield RowError(name, "undecodable bytes", raw_text(element), line_at(pos))
            elif not isinstance(value, dict):
                yield RowError(
                    name,
                    f"not a JSON object: {type(value).__name__}",
                    raw_text(element),
                    line_at(pos),
                )
            else:
                yield value
            pos = end
