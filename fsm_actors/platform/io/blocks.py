"""Reading a binary stream in large blocks cut at line ends, for the line-based formats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

BLOCK_BYTES = 4 << 20


def line_blocks(stream: BinaryIO, size: int = BLOCK_BYTES) -> Iterator[tuple[bytes, int]]:
    """``(block, first_line)`` pairs: blocks of whole lines (the last may lack its newline)
    and the 1-based number of each block's first line. Closes ``stream`` at the end."""
    line, rest = 1, b""
    with stream:
        while True:
            data = stream.read(size)
            block = rest + data
            if data:
                cut = block.rfind(b"\n") + 1
                block, rest = block[:cut], block[cut:]
            else:
                rest = b""
            if block:
                yield block, line
                line += block.count(b"\n")
            if not data:
                return
