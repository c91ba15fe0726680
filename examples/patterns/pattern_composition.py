"""Seed 000 (integration patterns), "Pattern Composition": ``complex_workflow``.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``) and the target's
connection URL (``postgresql://db`` -> the database ``composition_db`` that
``example_db_url`` makes: a PostgreSQL server of this machine, ``$FSM_ACTORS_EXAMPLE_POSTGRES``,
or SQLite). The block runs in a fresh directory ``examples/out/pattern_composition/`` holding
``raw_data.csv`` (300 rows: id, name, score), so its relative paths are used as written; the
target table ``processed`` (the block names none: an ETL target defaults to the source file's
stem) is created first with ``id`` as its primary key, which UPSERT matches rows by.

    .venv/bin/python examples/patterns/pattern_composition.py
"""

# ruff: noqa: I001 - the seed's import lines are kept as written
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from examples._support import example_db_url, run_sql, workdir  # noqa: E402

ROWS = 300


def seed_block(DB_URL: str) -> dict[str, Any]:  # noqa: N803
    # -- the seed's block ---------------------------------------------------------------------
    import asyncio
    from patterns.file_processing import create_csv_processor
    from patterns.etl import create_etl_pipeline, ETLMode
    from patterns.error_recovery import create_retry_workflow

    async def complex_workflow():
        """Compose multiple patterns in a workflow."""

        # Step 1: Process CSV file with retry logic
        csv_processor = create_csv_processor(
            input_file="raw_data.csv",
            output_file="processed.json",
            transformations=[lambda row: {**row, "validated": True}]
        )

        retry_wrapper = create_retry_workflow(
            max_attempts=3,
            backoff_strategy="exponential"
        )

        # Execute with retry
        file_result = await retry_wrapper.execute(
            csv_processor.process
        )

        # Step 2: Load to database
        etl = create_etl_pipeline(
            source={"type": "file", "path": "processed.json"},
            target={"type": "database", "connection": DB_URL},
            mode=ETLMode.UPSERT
        )

        etl_result = await etl.run()

        return {
            "file_processing": file_result,
            "etl": etl_result
        }

    # Run the composed workflow
    result = asyncio.run(complex_workflow())
    # -----------------------------------------------------------------------------------------
    return result


def main() -> dict[str, Any]:
    """Run the composed workflow; returns its result, the database URL and the directory."""
    DB_URL = example_db_url("composition_db", prefer="postgresql")  # noqa: N806
    run_sql(DB_URL, "CREATE TABLE processed (id INTEGER PRIMARY KEY, name TEXT, "
                    "score DOUBLE PRECISION, validated BOOLEAN)")
    work = workdir("pattern_composition")
    (work / "raw_data.csv").write_text(
        "id,name,score\n" + "".join(f"{i},name {i},{i * 1.5}\n" for i in range(1, ROWS + 1)))
    with contextlib.chdir(work):
        result = seed_block(DB_URL)
    print(f"file processing: wrote {result['file_processing']['records_written']} records; "
          f"ETL: loaded {result['etl']['loaded']} rows, errors {result['etl']['errors']}")
    return {"result": result, "db_url": DB_URL, "workdir": work}


if __name__ == "__main__":
    main()
