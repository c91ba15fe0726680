"""XML: a stream of record elements in, the same shape out.

Reading cuts the text into record elements (``record_element``, or the first child of the
root when not given) and parses each one alone, so one malformed element is a reported error
and the next one still reads; memory stays flat in file size. An element becomes a dict of its
attributes and child elements (a leaf child is its text, a child with children or attributes a
nested dict, a repeated child a list). Values are typed per batch like CSV: a field whose
values all look like integers becomes int64, then float64, then bool.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.io.blocks import BLOCK_BYTES
from fsm_actors.io.chunks import Piece
from fsm_actors.io.convert import records_to_table
from fsm_actors.io.errors import RowError, raw_text

_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)")
_PROLOG = re.compile(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", re.S)
_SURROGATE = re.compile("[\udc80-\udcff]")
_NAME_BAD = re.compile(r"[^\w.-]")


def read_xml_pieces(
    stream: BinaryIO,
    name: str | None,
    *,
    encoding: str = "utf-8",
    record_element: str | None = None,
    batch_rows: int = 8192,
) -> Iterator[Piece]:
    """Pieces of the record elements of an XML stream."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    buf, pos, line, eof = "", 0, 1, False
    element_re: re.Pattern | None = None
    records: list[dict] = []
    errors: list[RowError] = []
    with stream:
        while True:
            if not eof:
                data = stream.read(BLOCK_BYTES)
                eof = not data
                line += buf.count("\n", 0, pos)
                buf, pos = buf[pos:] + decoder.decode(data, final=eof), 0
            if element_re is None:
                record_element = record_element or _first_child_tag(buf, eof)
                if record_element is None:
                    if eof:
                        break
                    continue
                tag = re.escape(record_element)
                element_re = re.compile(rf"<{tag}(?:\s[^>]*)?(?:/>|>.*?</{tag}\s*>)", re.S)
            while True:
                match = element_re.search(buf, pos)
                if match is None or (match.end() == len(buf) and not eof):
                    break
                text = match.group(0)
                at = line + buf.count("\n", 0, match.start())
                try:
                    if _SURROGATE.search(text):
                        raise ValueError("undecodable bytes")
                    records.append(element_to_dict(ET.fromstring(text)))
                except (ET.ParseError, ValueError) as exc:
                    errors.append(RowError(name, f"bad XML element: {exc}", raw_text(text), at))
                pos = match.end()
                if len(records) >= batch_rows:
                    yield Piece(infer_types(records_to_table(records) if records else None), errors)
                    records, errors = [], []
            if eof:
                break
            start = buf.find(f"<{record_element}", pos)
            pos = start if start >= 0 else max(pos, len(buf) - len(record_element) - 1)
    if records or errors:
        yield Piece(infer_types(records_to_table(records) if records else None), errors)


def _first_child_tag(buf: str, eof: bool) -> str | None:
    body = _PROLOG.sub(lambda m: " " * len(m.group(0)), buf)
    tags = _TAG.findall(body, 0)
    if len(tags) >= 2:
        return tags[1]
    return None if not eof else (tags[0] if tags else None)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def element_to_dict(element: ET.Element) -> dict[str, Any]:
    """Attributes and children of ``element`` as a dict (see the module docstring)."""
    record: dict[str, Any] = {_local(k): v for k, v in element.attrib.items()}
    for child in element:
        key = _local(child.tag)
        value = element_to_dict(child) if len(child) or child.attrib else (child.text or "").strip()
        if key in record:
            existing = record[key]
            record[key] = existing + [value] if isinstance(existing, list) else [existing, value]
        else:
            record[key] = value
    text = (element.text or "").strip()
    if text and not len(element):
        record["text"] = text
    return record


def infer_types(table: pa.Table | None) -> pa.Table | None:
    """String columns whose values all parse as int, float or bool, cast to that type."""
    if table is None:
        return None
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) and column.null_count < len(column):
            column = _narrow(column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _narrow(column: pa.ChunkedArray) -> pa.ChunkedArray:
    for target, pattern in (
        (pa.int64(), r"^-?\d{1,18}$"),
        (pa.float64(), r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"),
    ):
        if pc.all(pc.match_substring_regex(column, pattern)).as_py():
            return column.cast(target)
    if pc.all(pc.is_in(column.drop_null(), pa.array(["true", "false"]))).as_py():
        return pc.equal(column, "true")
    return column


def xml_name(key: str) -> str:
    """``key`` made a valid XML element name."""
    cleaned = _NAME_BAD.sub("_", str(key)) or "_"
    return cleaned if (cleaned[0].isalpha() or cleaned[0] == "_") else f"_{cleaned}"


def record_to_xml(record: dict[str, Any], tag: str) -> str:
    """One record as an element named ``tag`` (nested dicts nest, lists repeat the child)."""
    parts = [f"<{tag}>"]
    for key, value in record.items():
        name = xml_name(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                parts.append(record_to_xml(item, name))
            elif item is None:
                parts.append(f"<{name}/>")
            else:
                parts.append(f"<{name}>{escape(_text(item))}</{name}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def xml_prologue(root: str) -> str:
    """Declaration and opening root tag of an XML document of records."""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{xml_name(root)}>\n'


def xml_epilogue(root: str) -> str:
    """Closing root tag."""
    return f"</{xml_name(root)}>\n"
