"""Hand-written infrastructure against the plain library path, in one run (issue 21 item 6).

Three pieces of ``fsm_actors.platform.io`` keep their place only while this shows a win:

* ``parquet_stitch``: joining N Parquet parts by copying row-group bytes, against pyarrow's
  ``read_table`` + ``ParquetWriter`` (decode and re-encode every page).
* ``writers.encode_rows``: Arrow to JSON Lines column-wise, against ``to_pylist`` +
  ``json.dumps`` per row (and pandas' ``to_json(lines=True)`` when pandas is installed).
* ``csv_ranges``: cutting one CSV into byte ranges that two processes parse at once (plan +
  whole-file type scan included), against pyarrow's one-process streaming reader
  (``open_csv``, what one worker does without ranges) and its multi-threaded ``read_csv``;
  then the same with what a file job does with each record (a Python function per row,
  ``transform``): there the plain path is one process however fast its parser, and the ranges
  let two processes share one file (``csv_job`` lines).

Prints one JSON line per path: ``{"bench", "path", "seconds", "rows", "ratio_vs_plain"}``.
Usage: ``python benchmarks/infra.py [--rows 1000000] [--parts 8]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._measure import emit  # noqa: E402
from fsm_actors.platform.io import ReadOptions  # noqa: E402
from fsm_actors.platform.io.csv_ranges import (  # noqa: E402
    csv_file_types,
    plan_byte_ranges,
    read_csv_range,
)
from fsm_actors.platform.io.parquet_stitch import stitch_parquet  # noqa: E402
from fsm_actors.platform.io.writers import encode_rows  # noqa: E402


def make_table(rows: int) -> pa.Table:
    """``rows`` rows of 8 typical columns (ints, floats, strings, bools, timestamps)."""
    import pyarrow.compute as pc

    ids = pa.array(range(rows), pa.int64())
    return pa.table({
        "id": ids,
        "customer": pc.cast(pc.add(pc.multiply(ids, 7), 3), pa.string()),
        "qty": pc.remainder(ids, 17),
        "price": pc.divide(pc.cast(pc.remainder(ids, 1000), pa.float64()), 7.0),
        "active": pc.equal(pc.remainder(ids, 3), 0),
        "city": pc.cast(pc.remainder(ids, 101), pa.string()),
        "note": pa.array(["n\"q" if i % 50 == 0 else "plain text" for i in range(rows)]),
        "ts": pc.cast(pc.multiply(ids, 1_000_000), pa.timestamp("us")),
    })


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_stitch(table: pa.Table, parts: int, tmp: Path) -> None:
    step = -(-table.num_rows // parts)
    paths = []
    for i in range(parts):
        path = tmp / f"part-{i}.parquet"
        pq.write_table(table.slice(i * step, step), path)
        paths.append(path)

    def plain() -> None:
        with pq.ParquetWriter(tmp / "plain.parquet", table.schema) as writer:
            for path in paths:
                writer.write_table(pq.read_table(path))

    base = timed(plain)
    ours = timed(lambda: stitch_parquet(tmp / "stitched.parquet", paths))
    assert pq.read_table(tmp / "stitched.parquet").equals(pq.read_table(tmp / "plain.parquet"))
    emit(bench="parquet_join", path="pyarrow read_table + ParquetWriter", seconds=round(base, 3),
         rows=table.num_rows, ratio_vs_plain=1.0)
    emit(bench="parquet_join", path="parquet_stitch", seconds=round(ours, 3),
         rows=table.num_rows, ratio_vs_plain=round(base / ours, 2))


def bench_json(table: pa.Table) -> None:
    def plain() -> bytes:
        dumps = json.dumps
        return "".join(dumps(r, default=str) + "\n" for r in table.to_pylist()).encode()

    base = timed(plain)
    emit(bench="json_lines", path="to_pylist + json.dumps", seconds=round(base, 3),
         rows=table.num_rows, ratio_vs_plain=1.0)
    try:
        import pandas  # noqa: F401

        frame = table.to_pandas()
        t = timed(lambda: frame.to_json(orient="records", lines=True))
        emit(bench="json_lines", path="pandas to_json(lines=True)", seconds=round(t, 3),
             rows=table.num_rows, ratio_vs_plain=round(base / t, 2))
    except ImportError:
        pass
    ours = timed(lambda: encode_rows(table, "\n"))
    emit(bench="json_lines", path="writers.encode_rows", seconds=round(ours, 3),
         rows=table.num_rows, ratio_vs_plain=round(base / ours, 2))


def _read_range(args: tuple[str, int, int, int, dict, bool]) -> int:
    path, start, end, line, types, multiline = args
    rows = 0
    for chunk in read_csv_range(path, start, end, first_line=line,
                                types={k: pa.type_for_alias(v) for k, v in types.items()},
                                multiline=multiline):
        rows += chunk.batch.num_rows
    return rows


def bench_csv(table: pa.Table, tmp: Path) -> None:
    path = tmp / "in.csv"
    pacsv.write_csv(table, path)

    def streaming() -> int:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(use_threads=False))
        return sum(batch.num_rows for batch in reader)

    base = timed(streaming)
    emit(bench="csv_read", path="pyarrow open_csv, one thread (one worker)",
         seconds=round(base, 3), rows=table.num_rows, ratio_vs_plain=1.0)
    t = timed(lambda: pacsv.read_csv(path))
    emit(bench="csv_read", path="pyarrow read_csv, all threads", seconds=round(t, 3),
         rows=table.num_rows, ratio_vs_plain=round(base / t, 2))

    def ranged(infer: str = "file") -> int:
        ranges = plan_byte_ranges(path, 2)
        _, types, multiline = csv_file_types(path, ReadOptions(csv_infer=infer))
        aliases = {k: str(v) for k, v in types.items()}
        jobs = [(str(path), r.start, r.end, r.first_line, aliases, multiline) for r in ranges]
        with mp.get_context("fork").Pool(2) as pool:
            return sum(pool.map(_read_range, jobs))

    ours = timed(ranged)
    emit(bench="csv_read", path="csv_ranges: plan + whole-file type scan + 2 processes",
         seconds=round(ours, 3), rows=table.num_rows, ratio_vs_plain=round(base / ours, 2))
    ours = timed(lambda: ranged("sample"))
    emit(bench="csv_read", path="csv_ranges, csv_infer=sample: first block of 8 ranges typed",
         seconds=round(ours, 3), rows=table.num_rows, ratio_vs_plain=round(base / ours, 2))


def transform(row: dict) -> dict:
    """A typical per-record step (a few us): rename, derive, filter a field."""
    return {"id": row["id"], "customer": str(row["customer"]).strip(),
            "total": row["qty"] * row["price"], "flag": bool(row["active"]),
            "city": f"c{row['city']}"}


def _apply(batches) -> int:
    kept = 0
    for batch in batches:
        for row in batch.to_pylist():
            if transform(row)["total"] >= 0:
                kept += 1
    return kept


def _job_range(args: tuple[str, int, int, int, dict, bool]) -> int:
    path, start, end, line, types, multiline = args
    return _apply(chunk.batch for chunk in read_csv_range(
        path, start, end, first_line=line,
        types={k: pa.type_for_alias(v) for k, v in types.items()}, multiline=multiline))


def bench_csv_job(table: pa.Table, tmp: Path) -> None:
    """One CSV, a Python function per record: one process (the plain path) vs two ranges."""
    path = tmp / "job.csv"
    pacsv.write_csv(table, path)

    def streaming() -> int:
        return _apply(pacsv.open_csv(path, read_options=pacsv.ReadOptions(use_threads=False)))

    def threaded() -> int:
        return _apply(pacsv.read_csv(path).to_batches(65536))

    def ranged() -> int:
        ranges = plan_byte_ranges(path, 2)
        _, types, multiline = csv_file_types(path, ReadOptions(csv_infer="file"))
        aliases = {k: str(v) for k, v in types.items()}
        jobs = [(str(path), r.start, r.end, r.first_line, aliases, multiline) for r in ranges]
        with mp.get_context("fork").Pool(2) as pool:
            return sum(pool.map(_job_range, jobs))

    counts = {}
    base = timed(lambda: counts.setdefault("streaming", streaming()))
    emit(bench="csv_job", path="pyarrow open_csv + transform per row, one process",
         seconds=round(base, 3), rows=table.num_rows, ratio_vs_plain=1.0)
    t = timed(lambda: counts.setdefault("threaded", threaded()))
    emit(bench="csv_job", path="pyarrow read_csv (all threads) + transform per row",
         seconds=round(t, 3), rows=table.num_rows, ratio_vs_plain=round(base / t, 2))
    ours = timed(lambda: counts.setdefault("ranged", ranged()))
    emit(bench="csv_job", path="csv_ranges: plan + type scan + 2 processes, transform per row",
         seconds=round(ours, 3), rows=table.num_rows, ratio_vs_plain=round(base / ours, 2))
    if len(set(counts.values())) != 1:
        raise SystemExit(f"the paths disagree on the rows kept: {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=8)
    args = parser.parse_args()
    table = make_table(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        bench_stitch(table, args.parts, Path(tmp))
        bench_json(table)
        bench_csv(table, Path(tmp))
        bench_csv_job(table, Path(tmp))


if __name__ == "__main__":
    main()
