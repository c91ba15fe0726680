"""One Parquet file from many, by copying their row groups' bytes (no decode, no re-encode).

A Parquet file is ``PAR1``, the column chunks of its row groups, a Thrift footer that points
at them by absolute offset, the footer's length and ``PAR1``. ``stitch_parquet`` copies each
part's bytes between the magic and its footer (column chunks, page indexes, bloom filters)
one after another, and writes one footer: the first part's schema and key/value metadata, every
part's row groups with their offsets moved by where the part's bytes landed. That is about
the cost of copying the files, against decoding and re-encoding every page.

Parts can be stitched only when their Parquet schemas are identical and none is encrypted;
``stitchable`` says whether they are. Otherwise ``join_parts`` rewrites them (see
``fsm_actors.platform.io.join``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from fsm_actors.platform.io import _thrift as th
from fsm_actors.platform.io.errors import FormatError

MAGIC = b"PAR1"

# Field ids in parquet.thrift.
_FM_SCHEMA, _FM_NUM_ROWS, _FM_ROW_GROUPS, _FM_KV, _FM_ENCRYPTION = 2, 3, 4, 5, 8
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_OFFSET, _CC_META, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX, _CC_CRYPTO = 2, 3, 4, 6, 8
_CM_CODEC = 4
_CM_OFFSETS = (9, 10, 11, 14)  # data, index, dictionary page; bloom filter
CODECS = {0: "none", 1: "snappy", 2: "gzip", 3: "lzo", 4: "brotli", 5: "lz4", 6: "zstd", 7: "lz4"}


#: pyarrow's default dictionary page budget (bytes) and the row group it is meant for
_DICTIONARY_BYTES, _DICTIONARY_ROWS = 1 << 20, 1 << 20
_MIN_DICTIONARY_BYTES = 64 << 10


def write_parquet_part(table: pa.Table, path: str | os.PathLike, compression: str) -> None:
    """Write ``table`` as one Parquet part (one row group) to be stitched into an output.

    Its dictionary page budget is pyarrow's per-row budget (1 MiB for a row group of 1 Mi
    rows) scaled to the part's rows, at least 64 KiB: a column of a few thousand distinct
    values stays dictionary-encoded, a column of unique values (names, ids as text) falls
    back to plain pages after as many rows as it would in one pyarrow-written file, instead
    of being dictionary-encoded whole in every part (measured on 16 parts of 65,536 rows:
    half the encoding CPU and a smaller file)."""
    budget = max(_MIN_DICTIONARY_BYTES, _DICTIONARY_BYTES * table.num_rows // _DICTIONARY_ROWS)
    pq.write_table(table, path, compression=compression, dictionary_pagesize_limit=budget)


class _Part:
    """One part file's footer and the span of bytes that hold its data."""

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4)
            if size < 12 or head != MAGIC:
                raise FormatError(f"{path}: not a Parquet file", os.fspath(path))
            fh.seek(size - 8)
            length, tail = struct.unpack("<I4s", fh.read(8))
            if tail != MAGIC or length > size - 12:
                raise FormatError(
                    f"{path}: the Parquet footer is missing (encrypted or truncated file)",
                    os.fspath(path),
                )
            fh.seek(size - 8 - length)
            try:
                self.footer = th.decode_struct(fh.read(length))
            except th.ThriftError as exc:
                raise FormatError(f"{path}: unreadable Parquet footer: {exc}") from exc
        self.body_start, self.body_end = 4, size - 8 - length

    @property
    def schema(self) -> bytes:
        return th.encode_struct([[_FM_SCHEMA, th.LIST, th.get(self.footer, _FM_SCHEMA)]])

    @property
    def row_groups(self) -> list[th.Struct]:
        return th.get(self.footer, _FM_ROW_GROUPS, [th.STRUCT, []])[1]

    def codecs(self) -> set[str]:
        """The page codecs of the part's column chunks."""
        return {
            CODECS.get(th.get(th.get(cc, _CC_META, []), _CM_CODEC, 0), "other")
            for rg in self.row_groups
            for cc in th.get(rg, _RG_COLUMNS, [th.STRUCT, []])[1]
        }

    def encrypted(self) -> bool:
        if th.get(self.footer, _FM_ENCRYPTION) is not None:
            return True
        return any(
            th.get(cc, _CC_CRYPTO) is not None
            for rg in self.row_groups
            for cc in th.get(rg, _RG_COLUMNS, [th.STRUCT, []])[1]
        )


def stitchable(parts: Sequence[str | os.PathLike], codec: str | None = None) -> bool:
    """Whether ``stitch_parquet`` can join ``parts``: same schema, not encrypted, and (when
    ``codec`` is given: ``snappy``, ``zstd``, ``none``...) every page compressed with it."""
    try:
        loaded = [_Part(Path(p)) for p in parts]
    except FormatError:
        return False
    return bool(loaded) and _why_not(loaded, codec) is None


def _why_not(parts: list[_Part], codec: str | None) -> str | None:
    first = parts[0].schema
    for part in parts:
        if part.encrypted():
            return f"{part.path} is encrypted"
        if part.schema != first:
            return f"{part.path} has another schema than {parts[0].path}"
        if codec is not None and part.codecs() - {codec.lower()}:
            return f"{part.path} pages are {sorted(part.codecs())}, not {codec}"
    return None


def stitch_parquet(
    target: str | os.PathLike | BinaryIO,
    parts: Sequence[str | os.PathLike],
    codec: str | None = None,
) -> int:
    """Write one Parquet file holding every row group of ``parts`` in order; returns its rows.

    ``target`` is a path (written directly: wrap in ``atomic_write`` for a temp-and-rename) or
    a writable binary stream. Raises ``FormatError`` naming the part that cannot be stitched
    (another schema, encrypted, pages not in ``codec``, not Parquet) before writing anything.
    """
    if not parts:
        raise FormatError("stitch_parquet needs at least one part")
    loaded = [_Part(Path(p)) for p in parts]
    reason = _why_not(loaded, codec)
    if reason is not None:
        raise FormatError(f"cannot stitch Parquet parts: {reason}; join them with join_parts")
    if isinstance(target, str | os.PathLike):
        with open(target, "wb") as out:
            return _stitch(out, loaded)
    return _stitch(target, loaded)


def _stitch(out: BinaryIO, parts: list[_Part]) -> int:
    out.write(MAGIC)
    position = 4
    groups: list[th.Struct] = []
    rows = 0
    for part in parts:
        shift = position - part.body_start
        for group in part.row_groups:
            groups.append(_shifted(group, shift, len(groups)))
        rows += th.get(part.footer, _FM_NUM_ROWS, 0)
        with open(part.path, "rb") as src:
            src.seek(part.body_start)
            _copy(src, out, part.body_end - part.body_start)
        position += part.body_end - part.body_start
    footer = [list(entry) for entry in parts[0].footer]
    th.put(footer, _FM_NUM_ROWS, th.I64, rows)
    th.put(footer, _FM_ROW_GROUPS, th.LIST, [th.STRUCT, groups])
    blob = th.encode_struct(footer)
    out.write(blob)
    out.write(struct.pack("<I", len(blob)) + MAGIC)
    return rows


def _copy(src: BinaryIO, out: BinaryIO, n: int) -> None:
    if hasattr(out, "fileno") and hasattr(os, "copy_file_range"):
        try:
            out.flush()
            src_fd, out_fd = src.fileno(), out.fileno()
            start = src.tell()
            done = 0
            while done < n:
                sent = os.copy_file_range(src_fd, out_fd, n - done, start + done)
                if sent == 0:
                    break
                done += sent
            if done == n:
                return
            src.seek(start + done)
            n -= done
        except OSError:
            pass
    while n > 0:
        data = src.read(min(n, 1 << 20))
        if not data:
            raise FormatError(f"{src.name}: file shrank while being stitched")
        out.write(data)
        n -= len(data)


def _shifted(group: th.Struct, shift: int, ordinal: int) -> th.Struct:
    group = [list(e) for e in group]
    offset = th.get(group, _RG_FILE_OFFSET)
    if offset is not None:
        th.put(group, _RG_FILE_OFFSET, th.I64, offset + shift)
    if th.get(group, _RG_ORDINAL) is not None:
        th.put(group, _RG_ORDINAL, th.I16, ordinal)
    elem, columns = th.get(group, _RG_COLUMNS)
    moved = []
    for column in columns:
        column = [list(e) for e in column]
        for fid in (_CC_FILE_OFFSET, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX):
            value = th.get(column, fid)
            if value is not None and (fid != _CC_FILE_OFFSET or value > 0):
                th.put(column, fid, th.I64, value + shift)
        meta = th.get(column, _CC_META)
        if meta is not None:
            meta = [list(e) for e in meta]
            for fid in _CM_OFFSETS:
                value = th.get(meta, fid)
                if value is not None:
                    th.put(meta, fid, th.I64, value + shift)
            th.put(column, _CC_META, th.STRUCT, meta)
        moved.append(column)
    th.put(group, _RG_COLUMNS, th.LIST, [elem, moved])
    return group
