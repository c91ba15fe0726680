"""Parquet parts keep pyarrow's per-row dictionary budget: a column of unique values is not
dictionary-encoded whole in every part, a column of few values still is."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from fsm_actors.platform.io import write_parquet_part

ROWS = 65_536


def dictionary_page_bytes(path, column: int) -> int | None:
    meta = pq.ParquetFile(path).metadata.row_group(0).column(column)
    if not meta.has_dictionary_page:
        return None
    return meta.data_page_offset - meta.dictionary_page_offset


def test_unique_text_falls_back_to_plain_pages_and_few_values_keep_a_dictionary(tmp_path):
    table = pa.table({
        # ~0.85 MB of unique text that compresses little (a whole-column dictionary page)
        "name": [f"{(i * 2654435761) % 2**32:08x}{(i * 40503) % 65521:05d}" for i in range(ROWS)],
        "city": [("paris", "lima", "oslo")[i % 3] for i in range(ROWS)],
    })
    path = tmp_path / "part.parquet"
    write_parquet_part(table, path, "snappy")
    assert pq.read_table(path).equals(table)
    unique = dictionary_page_bytes(path, 0)
    assert unique is None or unique < 200_000, unique  # pyarrow's default: ~840 kB
    few = dictionary_page_bytes(path, 1)
    assert few is not None and few < 1_000, few
