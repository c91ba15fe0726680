"""A lossless reader/writer of Thrift compact-protocol structs (what a Parquet footer is).

A struct decodes to a list of ``[field_id, type, value]`` entries kept in file order, so a
footer can be edited (a few offsets shifted, a list extended) and written back without a
schema of every Parquet struct: fields this module does not know travel through unchanged.
"""

from __future__ import annotations

import struct
from typing import Any

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)

Struct = list[list[Any]]  # [[field_id, type, value], ...]


class ThriftError(ValueError):
    """The bytes are not a well-formed compact-protocol struct."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError("truncated Thrift data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind in (TRUE, FALSE):  # only inside containers: one byte per element
            return self.byte()
        if kind == BYTE:
            return self.byte()
        if kind in (I16, I32, I64):
            return self.zigzag()
        if kind == DOUBLE:
            raw = bytes(self.data[self.pos : self.pos + 8])
            self.pos += 8
            return struct.unpack("<d", raw)[0]
        if kind == BINARY:
            n = self.varint()
            raw = bytes(self.data[self.pos : self.pos + n])
            self.pos += n
            return raw
        if kind in (LIST, SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return [elem, [self.value(elem) for _ in range(size)]]
        if kind == MAP:
            size = self.varint()
            if size == 0:
                return [0, 0, []]
            types = self.byte()
            key, val = types >> 4, types & 0x0F
            return [key, val, [(self.value(key), self.value(val)) for _ in range(size)]]
        if kind == STRUCT:
            return self.struct()
        raise ThriftError(f"unknown Thrift type {kind}")

    def struct(self) -> Struct:
        fields: Struct = []
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == STOP:
                return fields
            delta = head >> 4
            fid = last + delta if delta else self.zigzag()
            if kind in (TRUE, FALSE):
                value: Any = kind == TRUE
            else:
                value = self.value(kind)
            fields.append([fid, kind, value])
            last = fid


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while True:
            if n < 0x80:
                self.out.append(n)
                return
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, kind: int, value: Any) -> None:
        if kind in (TRUE, FALSE, BYTE):
            self.out.append(value)
        elif kind in (I16, I32, I64):
            self.zigzag(value)
        elif kind == DOUBLE:
            self.out += struct.pack("<d", value)
        elif kind == BINARY:
            self.varint(len(value))
            self.out += value
        elif kind in (LIST, SET):
            elem, items = value
            if len(items) < 15:
                self.out.append(len(items) << 4 | elem)
            else:
                self.out.append(0xF0 | elem)
                self.varint(len(items))
            for item in items:
                self.value(elem, item)
        elif kind == MAP:
            key, val, items = value
            self.varint(len(items))
            if items:
                self.out.append(key << 4 | val)
                for k, v in items:
                    self.value(key, k)
                    self.value(val, v)
        elif kind == STRUCT:
            self.struct(value)
        else:
            raise ThriftError(f"unknown Thrift type {kind}")

    def struct(self, fields: Struct) -> None:
        last = 0
        for fid, kind, value in fields:
            if kind in (TRUE, FALSE):
                kind = TRUE if value else FALSE
            delta = fid - last
            if 0 < delta <= 15:
                self.out.append(delta << 4 | kind)
            else:
                self.out.append(kind)
                self.zigzag(fid)
            if kind not in (TRUE, FALSE):
                self.value(kind, value)
            last = fid
        self.out.append(STOP)


def decode_struct(data: bytes) -> Struct:
    """The struct encoded in ``data`` (trailing bytes are ignored)."""
    return _Reader(data).struct()


def encode_struct(fields: Struct) -> bytes:
    """``fields`` in the compact protocol."""
    writer = _Writer()
    writer.struct(fields)
    return bytes(writer.out)


def get(fields: Struct, fid: int, default: Any = None) -> Any:
    """The value of field ``fid``, or ``default`` when it is absent."""
    for entry in fields:
        if entry[0] == fid:
            return entry[2]
    return default


def put(fields: Struct, fid: int, kind: int, value: Any) -> None:
    """Set field ``fid`` (added in id order when absent)."""
    for entry in fields:
        if entry[0] == fid:
            entry[1], entry[2] = kind, value
            return
    fields.append([fid, kind, value])
    fields.sort(key=lambda e: e[0])
