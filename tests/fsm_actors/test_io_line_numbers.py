"""Line numbers of CSV records come from ``consecutive`` (Arrow kernels, not a Python range)."""

from __future__ import annotations

import pyarrow as pa

from fsm_actors.platform.io.chunks import consecutive


def test_consecutive_equals_a_range_across_its_growth() -> None:
    # sizes below, at and past each doubling of the shared sequence, and a start past 2**32
    for first, n in [(1, 0), (7, 1), (2, 3), (1, 65536), (5, 65537), (2**33, 200_001), (3, 5)]:
        got = consecutive(first, n)
        assert got.type == pa.int64()
        assert got.equals(pa.array(range(first, first + n), pa.int64())), (first, n)
