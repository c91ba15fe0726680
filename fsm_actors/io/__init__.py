"""The format layer of the whole project (plain core, no Ray).

Read any supported file as Arrow chunks or lists of dicts, write Arrow or dicts to any
supported format. Formats: CSV, TSV, JSON (array), JSON Lines, XML, Parquet, text and log (one
record per line); gzip and zstd compression on any of them but Parquet (which compresses its
pages). Malformed records never stop a read: they are reported as ``RowError``s.
"""

from fsm_actors.io.chunks import Chunk
from fsm_actors.io.convert import records_to_table, table_to_records
from fsm_actors.io.detect import (
    COMPRESSION_EXTENSION,
    FORMAT_EXTENSION,
    FORMATS,
    detect_compression,
    detect_format,
    normalize_compression,
    normalize_format,
    open_input,
    open_output,
    split_extensions,
)
from fsm_actors.io.errors import FormatError, MalformedRecordError, RowError
from fsm_actors.io.readers import ReadOptions, iter_chunks, read_arrow_batches, read_record_batches
from fsm_actors.io.writers import ArrowWriter, RecordWriter, document_frame

__all__ = [
    "COMPRESSION_EXTENSION",
    "FORMATS",
    "FORMAT_EXTENSION",
    "ArrowWriter",
    "Chunk",
    "FormatError",
    "MalformedRecordError",
    "ReadOptions",
    "RecordWriter",
    "RowError",
    "detect_compression",
    "detect_format",
    "document_frame",
    "iter_chunks",
    "normalize_compression",
    "normalize_format",
    "open_input",
    "open_output",
    "read_arrow_batches",
    "read_record_batches",
    "records_to_table",
    "split_extensions",
    "table_to_records",
]
