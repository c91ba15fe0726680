"""The format layer of the whole project (plain core, no Ray).

Read any supported file as Arrow chunks or lists of dicts, write Arrow or dicts to any
supported format. Formats: CSV, TSV, JSON (array), JSON Lines, XML, Parquet, text and log (one
record per line); gzip and zstd compression on any of them but Parquet (which compresses its
pages). Malformed records never stop a read: they are reported as ``RowError``s.

One of each: ``join_parts`` joins part files into one output (atomic, fsynced; Parquet by
``stitch_parquet``, row groups copied as bytes), ``compress_bytes`` is the compression helper,
``unify_schemas``/``conform`` the schema policy, ``output_compression`` the rule for
compression against an output's name. ``plan_byte_ranges``/``read_csv_range`` let workers
parse one large CSV together (one type per column via ``csv_file_types`` or
``scan_csv_range`` + ``merge_scans``). ``records_to_table(records, exact=True)`` converts
only records that Arrow gives back unchanged.
"""

from fsm_actors.platform.io.arrow_schema import (
    cast_column,
    conform,
    require_numeric,
    unify_schemas,
    unify_types,
)
from fsm_actors.platform.io.chunks import Chunk
from fsm_actors.platform.io.convert import records_to_table, table_to_records
from fsm_actors.platform.io.csv_ranges import (
    ByteRange,
    RangeScan,
    csv_file_types,
    merge_scans,
    plan_byte_ranges,
    read_csv_range,
    scan_csv_range,
)
from fsm_actors.platform.io.errors import (
    CorruptStreamError,
    FormatError,
    MalformedRecordError,
    RowError,
)
from fsm_actors.platform.io.join import concat_parts, join_parts
from fsm_actors.platform.io.parquet_stitch import stitch_parquet, stitchable, write_parquet_part
from fsm_actors.platform.io.readers import (
    COMPRESSION_EXTENSION,
    FORMAT_EXTENSION,
    FORMATS,
    ReadOptions,
    detect_compression,
    detect_format,
    iter_chunks,
    normalize_compression,
    normalize_format,
    open_input,
    read_arrow_batches,
    read_record_batches,
    split_extensions,
)
from fsm_actors.platform.io.writers import (
    ArrowWriter,
    RecordWriter,
    atomic_write,
    compress_bytes,
    document_frame,
    fsync_path,
    open_output,
    output_compression,
)

__all__ = [
    "ByteRange",
    "CorruptStreamError",
    "RangeScan",
    "csv_file_types",
    "merge_scans",
    "plan_byte_ranges",
    "read_csv_range",
    "scan_csv_range",
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
    "atomic_write",
    "cast_column",
    "compress_bytes",
    "concat_parts",
    "conform",
    "detect_compression",
    "detect_format",
    "document_frame",
    "fsync_path",
    "iter_chunks",
    "join_parts",
    "normalize_compression",
    "normalize_format",
    "open_input",
    "open_output",
    "output_compression",
    "read_arrow_batches",
    "read_record_batches",
    "records_to_table",
    "require_numeric",
    "split_extensions",
    "stitch_parquet",
    "stitchable",
    "table_to_records",
    "unify_schemas",
    "unify_types",
    "write_parquet_part",
]
