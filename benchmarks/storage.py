"""CSV -> Parquet file job from and to a local S3 server against the same job on local
files, in one run (issue 22).

Starts moto's S3 server on 127.0.0.1 (the venv's ``moto_server``), points the standard
AWS_* variables at it, uploads one CSV of ``--rows`` rows and runs
``FileProcessor(input -> out.parquet)`` on a local Ray (2 CPUs) twice: local paths, then
s3:// paths. Prints one JSON line per path: ``{"bench", "path", "seconds", "rows",
"rows_per_s", "ratio_vs_local"}``. Usage: ``python benchmarks/storage.py [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._measure import emit  # noqa: E402
from fsm_actors.platform.io import storage  # noqa: E402
from tests.s3_server import start_s3  # noqa: E402


def make_csv(path: Path, rows: int) -> None:
    table = pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "group": pa.array([i % 97 for i in range(rows)], pa.int64()),
        "value": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
        "name": pa.array([f"name-{i:09d}" for i in range(rows)]),
    })
    pacsv.write_csv(table, path)


def run(input_path: str, output_path: str) -> tuple[float, int]:
    from patterns.file_processing import FileProcessingConfig, FileProcessor

    started = time.perf_counter()
    result = FileProcessor(
        FileProcessingConfig(input_path=input_path, output_path=output_path)
    ).run()
    return time.perf_counter() - started, result["records_written"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    server = start_s3()  # before Ray starts: its workers inherit the AWS_* variables
    try:
        from fsm_actors.platform import runtime

        runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in.csv"
            make_csv(src, args.rows)
            bucket = server.make_bucket("bench")
            storage.put_file(src, f"{bucket}/in.csv")
            run(str(src), str(Path(tmp) / "warm.parquet"))  # start the workers' imports
            local_s, rows = run(str(src), str(Path(tmp) / "out.parquet"))
            s3_s, s3_rows = run(f"{bucket}/in.csv", f"{bucket}/out.parquet")
        assert rows == s3_rows == args.rows
        emit(bench="storage_csv_to_parquet", path="local files", seconds=round(local_s, 3),
             rows=rows, rows_per_s=round(rows / local_s), ratio_vs_local=1.0)
        emit(bench="storage_csv_to_parquet", path="s3 (moto on 127.0.0.1)",
             seconds=round(s3_s, 3), rows=rows, rows_per_s=round(rows / s3_s),
             ratio_vs_local=round(local_s / s3_s, 3))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
