"""Seed 000 (integration patterns), "Quick Start", 1. Direct Usage with Factory Functions.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``) and the two
connection URLs (``postgresql://source_db`` / ``postgresql://target_db`` -> the databases
``source_db`` / ``target_db`` that ``example_db_url`` makes: a PostgreSQL server of this
machine, or ``$FSM_ACTORS_EXAMPLE_POSTGRES``). The seed uses ``datetime`` without importing
it: this file imports it.

The block names no table, so as written it stops with a ``PatternError`` saying to add
``"table"``; this file prints that message, then runs the same pipeline with ``"table":
"events"`` added to both dicts (the only difference), twice: the second, incremental run
reads only the rows past the first run's watermark.

    .venv/bin/python examples/patterns/quick_start_etl.py
"""

# ruff: noqa: I001 - the seed's import lines are kept as written
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from examples._support import example_db_url, run_sql  # noqa: E402
from patterns.errors import PatternError  # noqa: E402

EVENTS = 500


def make_tables(source_db: str, target_db: str) -> None:
    """``events`` with ``EVENTS`` rows in the source; an empty ``events`` in the target."""
    run_sql(source_db, "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT)",
            "INSERT INTO events VALUES (:id, :kind)",
            rows=[{"id": i, "kind": f"k{i}"} for i in range(1, EVENTS + 1)])
    run_sql(target_db, "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, "
                       "processed_at TIMESTAMP)")


def seed_block(SOURCE_DB: str, TARGET_DB: str) -> dict[str, Any]:  # noqa: N803
    # -- the seed's block ---------------------------------------------------------------------
    from patterns.etl import create_etl_pipeline, ETLMode

    # Create ETL pipeline using factory function
    etl = create_etl_pipeline(
        source={
            "type": "database",
            "provider": "postgresql",
            "connection": SOURCE_DB
        },
        target={
            "type": "database",
            "provider": "postgresql",
            "connection": TARGET_DB
        },
        mode=ETLMode.INCREMENTAL,
        transformations=[
            lambda row: {**row, "processed_at": datetime.now()}
        ]
    )

    # Execute asynchronously
    import asyncio
    result = asyncio.run(etl.run())
    # -----------------------------------------------------------------------------------------
    return result


def with_table(SOURCE_DB: str, TARGET_DB: str) -> dict[str, Any]:  # noqa: N803
    """The seed's block with ``"table": "events"`` added to source and target."""
    from patterns.etl import create_etl_pipeline, ETLMode

    etl = create_etl_pipeline(
        source={
            "type": "database",
            "provider": "postgresql",
            "connection": SOURCE_DB,
            "table": "events",
        },
        target={
            "type": "database",
            "provider": "postgresql",
            "connection": TARGET_DB,
            "table": "events",
        },
        mode=ETLMode.INCREMENTAL,
        transformations=[
            lambda row: {**row, "processed_at": datetime.now()}
        ]
    )

    import asyncio
    return asyncio.run(etl.run())


def main() -> dict[str, Any]:
    """Run the block as written (expecting its config error), then with the table named, once
    and again after one new source row. Returns the error and both results."""
    SOURCE_DB = example_db_url("source_db", prefer="postgresql")  # noqa: N806
    TARGET_DB = example_db_url("target_db", prefer="postgresql")  # noqa: N806
    make_tables(SOURCE_DB, TARGET_DB)
    try:
        seed_block(SOURCE_DB, TARGET_DB)
        error = None
    except PatternError as exc:
        error = str(exc)
        print(f"the block as written: {error}")
    first = with_table(SOURCE_DB, TARGET_DB)
    print(f"with \"table\": \"events\": loaded {first['loaded']} rows, errors {first['errors']}")
    run_sql(SOURCE_DB, f"INSERT INTO events VALUES ({EVENTS + 1}, 'new')")
    again = with_table(SOURCE_DB, TARGET_DB)
    print(f"incremental re-run: extracted {again['extracted']}, loaded {again['loaded']}")
    return {"error": error, "first": first, "again": again,
            "source_db": SOURCE_DB, "target_db": TARGET_DB}


if __name__ == "__main__":
    main()
