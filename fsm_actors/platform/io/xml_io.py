"""XML: a stream of record elements in, the same shape out.

Reading scans the text for record elements (``record_element``, or the child of the root
that repeats most in the first block, so a header child like ``<meta>`` is not taken for the
records) and parses each one alone, so one malformed element is a reported error and the next
one still reads; memory stays flat in file size. The scan skips comments, CDATA sections and
processing instructions, follows nested elements of the record's own name, and matches a
record name without prefix to prefixed tags (``item`` finds ``<r:item>``); namespace
declarations of the enclosing elements apply to each record. An element becomes a dict of its
attributes and child elements (a leaf child is its text, unstripped; a child with children or
attributes a nested dict; a repeated child a list; ``xsi:nil="true"`` is ``None``). Values
are typed per batch with the CSV column type rule (``fsm_actors.platform.io.csv_reader``): a
field whose values all read back unchanged as integers becomes int64, then float64, then bool
(``00501`` stays text).

Writing gives ``None`` as ``<key xsi:nil="true"/>`` and ``""`` as ``<key></key>``, and keeps
whitespace, so a written file reads back as the records it was written from.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa
import pyarrow.compute as pc

from fsm_actors.platform.io.blocks import BLOCK_BYTES
from fsm_actors.platform.io.chunks import Piece
from fsm_actors.platform.io.convert import records_to_table
from fsm_actors.platform.io.csv_reader import fits, kind_type
from fsm_actors.platform.io.errors import RowError, raw_text

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NIL = f"{{{XSI}}}nil"
_TOKEN = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE(?:[^>\[]|\[.*?\])*>"
    r"|<(/?)([A-Za-z_][\w.:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>",
    re.S,
)
_XMLNS = re.compile(r"""\b(xmlns(?::[\w.-]+)?)\s*=\s*("[^"]*"|'[^']*')""")
_SURROGATE = re.compile("[\udc80-\udcff]")
_NAME_BAD = re.compile(r"[^\w.-]")
MAX_ELEMENT_CHARS = 64 << 20


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
    records: list[dict] = []
    errors: list[RowError] = []
    namespaces: dict[str, str] = {}
    is_record = None
    mark = [0, 1]  # an offset in ``buf`` and its line: lines are counted once, forwards

    def line_at(offset: int) -> int:
        if offset < mark[0]:
            return mark[1] - buf.count("\n", offset, mark[0])
        mark[1] += buf.count("\n", mark[0], offset)
        mark[0] = offset
        return mark[1]

    with stream:
        while True:
            if not eof:
                data = stream.read(BLOCK_BYTES)
                eof = not data
                line = line_at(pos)
                buf, pos = buf[pos:] + decoder.decode(data, final=eof), 0
                mark[:] = [0, line]
            if is_record is None:
                record_element = record_element or _record_tag(buf, eof)
                if record_element is None:
                    if eof:
                        break
                    continue
                is_record = _matcher(record_element)
            while True:
                start, end = _next_record(buf, pos, is_record, namespaces, eof)
                if end is None:  # more text needed from ``start`` on
                    if eof or len(buf) - start > MAX_ELEMENT_CHARS:
                        if start < len(buf):
                            errors.append(
                                RowError(
                                    name,
                                    "XML element unterminated or too large",
                                    raw_text(buf[start : start + 200]),
                                    line_at(start),
                                )
                            )
                        start = len(buf)
                    pos = start
                    break
                text = buf[start:end]
                at = line_at(start)
                try:
                    if _SURROGATE.search(text):
                        raise ValueError("undecodable bytes")
                    records.append(element_to_dict(_parse(text, namespaces)))
                except (ET.ParseError, ValueError) as exc:
                    errors.append(RowError(name, f"bad XML element: {exc}", raw_text(text), at))
                pos = end
                if len(records) >= batch_rows:
                    yield Piece(infer_types(records_to_table(records) if records else None), errors)
                    records, errors = [], []
            if eof:
                break
    if records or errors:
        yield Piece(infer_types(records_to_table(records) if records else None), errors)


def _matcher(record: str):
    if ":" in record:
        return lambda tag: tag == record
    return lambda tag: tag == record or tag.rpartition(":")[2] == record


def _next_record(
    buf: str, pos: int, is_record, namespaces: dict[str, str], eof: bool
) -> tuple[int, int | None]:
    """``(start, end)`` of the next record element at or after ``pos``, or ``(resume, None)``
    when ``buf`` ends first (scan again from ``resume`` with more text; at the end of the
    input, ``resume < len(buf)`` is an unterminated record). Start tags passed on the way
    lend their namespace declarations to ``namespaces``."""
    while True:
        lt = buf.find("<", pos)
        if lt < 0:
            return len(buf), None
        token = _TOKEN.match(buf, lt)
        if token is None:
            if _incomplete(buf, lt):
                return (
                    (lt, None)
                    if not eof or _record_start(buf, lt, is_record)
                    else (
                        len(buf),
                        None,
                    )
                )
            pos = lt + 1  # a stray "<": not markup
            continue
        pos = token.end()
        tag = token.group(2)
        if tag is None or token.group(1):
            continue
        if not is_record(tag):
            namespaces.update(_XMLNS.findall(token.group(3)))
            continue
        if token.group(4):
            return lt, pos
        end = _element_end(buf, pos, tag)
        if end is None:
            return lt, None
        return lt, end


_CLOSERS = (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"))


def _incomplete(buf: str, lt: int) -> bool:
    """Whether the markup starting at ``lt`` is cut off by the end of ``buf``."""
    for opener, closer in _CLOSERS:
        if buf.startswith(opener, lt):
            return buf.find(closer, lt + len(opener)) < 0
    return buf.find(">", lt) < 0


def _record_start(buf: str, lt: int, is_record) -> bool:
    match = re.match(r"<([A-Za-z_][\w.:-]*)", buf[lt : lt + 256])
    return match is not None and is_record(match.group(1))


def _element_end(buf: str, pos: int, tag: str) -> int | None:
    """The end of the element named ``tag`` whose start tag ends at ``pos`` (``None`` when
    ``buf`` ends first)."""
    depth = 1
    while depth:
        lt = buf.find("<", pos)
        if lt < 0:
            return None
        token = _TOKEN.match(buf, lt)
        if token is None:
            if _incomplete(buf, lt):
                return None
            pos = lt + 1
            continue
        pos = token.end()
        if token.group(2) == tag and not token.group(4):
            depth += -1 if token.group(1) else 1
    return pos


def _parse(text: str, namespaces: dict[str, str]) -> ET.Element:
    if not namespaces:
        return ET.fromstring(text)
    decls = " ".join(f"{k}={v}" for k, v in namespaces.items())
    return ET.fromstring(f"<_records {decls}>{text}</_records>")[0]


def _record_tag(buf: str, eof: bool) -> str | None:
    """The child of the root that repeats most in ``buf`` (the first child on a tie)."""
    depth, children = 0, Counter()
    for token in _TOKEN.finditer(buf):
        tag = token.group(2)
        if tag is None:
            continue
        if token.group(1):
            depth -= 1
            continue
        if depth == 1:
            children[tag] += 1
        if not token.group(4):
            depth += 1
    if not children:
        return None
    if not eof and sum(children.values()) < 2:
        return None
    return children.most_common(1)[0][0]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def element_to_dict(element: ET.Element) -> dict[str, Any]:
    """Attributes and children of ``element`` as a dict (see the module docstring)."""
    record: dict[str, Any] = {_local(k): v for k, v in element.attrib.items() if k != _NIL}
    for child in element:
        key = _local(child.tag)
        if child.get(_NIL) == "true" and not len(child):
            value: Any = None
        elif len(child) or child.attrib:
            value = element_to_dict(child)
        else:
            value = child.text or ""
        if key in record:
            existing = record[key]
            record[key] = existing + [value] if isinstance(existing, list) else [existing, value]
        else:
            record[key] = value
    text = element.text or ""
    if text.strip() and not len(element):
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
    values = column.combine_chunks().drop_null()
    for kind in ("int", "float"):
        if fits(values, kind):
            return column.cast(kind_type(kind))
    if fits(values, "bool"):
        return pc.equal(pc.utf8_lower(column), "true")
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
                parts.append(f'<{name} xsi:nil="true"/>')
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
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{xml_name(root)} xmlns:xsi={quoteattr(XSI)}>\n'
    )


def xml_epilogue(root: str) -> str:
    """Closing root tag."""
    return f"</{xml_name(root)}>\n"
