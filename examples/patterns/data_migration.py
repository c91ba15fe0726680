"""Seed 000 (integration patterns), "Example: Complete ETL Pipeline": ``create_data_migration``.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``) and the connection
URLs (``postgresql://source/db`` / ``postgresql://target/db`` -> the databases
``migration_source`` / ``migration_target`` that ``example_db_url`` makes: a PostgreSQL server
of this machine, or ``$FSM_ACTORS_EXAMPLE_POSTGRES``). The seed uses ``datetime`` without
importing it: this file imports it. The block's closing ``if __name__ == "__main__":
asyncio.run(run_migration())`` is this file's ``main()``, which first makes ``users`` (400
rows: user_id, user_name, user_email) in the source and an empty ``users_v2`` (id, name,
email, migrated_at, version) in the target.

    .venv/bin/python examples/patterns/data_migration.py
"""

# ruff: noqa: I001 - the seed's import lines are kept as written
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from examples._support import example_db_url, run_sql  # noqa: E402

USERS = 400


def make_tables(source_db: str, target_db: str) -> None:
    run_sql(source_db, "CREATE TABLE users (user_id INTEGER PRIMARY KEY, user_name TEXT, "
                       "user_email TEXT)",
            "INSERT INTO users VALUES (:id, :name, :email)",
            rows=[{"id": i, "name": f"user {i}", "email": f"u{i}@example.org"}
                  for i in range(1, USERS + 1)])
    run_sql(target_db, "CREATE TABLE users_v2 (id INTEGER PRIMARY KEY, name TEXT, email TEXT, "
                       "migrated_at TIMESTAMP, version TEXT)")


def seed_block(SOURCE_DB: str, TARGET_DB: str) -> dict[str, Any]:  # noqa: N803
    # -- the seed's block ---------------------------------------------------------------------
    import asyncio
    from patterns.etl import create_data_migration

    async def run_migration():
        """Example of a complete data migration."""

        # Create migration with field mappings and transformations
        migration = create_data_migration(
            source={
                "provider": "postgresql",
                "connection": SOURCE_DB,
                "table": "users"
            },
            target={
                "provider": "postgresql",
                "connection": TARGET_DB,
                "table": "users_v2"
            },
            field_mappings={
                "user_id": "id",
                "user_name": "name",
                "user_email": "email"
            },
            transformations=[
                lambda record: {
                    **record,
                    "migrated_at": datetime.now(),
                    "version": "2.0"
                }
            ]
        )

        # Run with checkpoint for resumability
        result = await migration.run(checkpoint_id="migration_2024")

        print(f"Migrated {result['records_processed']} records")
        print(f"Errors: {result['errors']}")

        return result

    # Execute migration
    return asyncio.run(run_migration())
    # -----------------------------------------------------------------------------------------


def main() -> dict[str, Any]:
    """Make the tables and run the migration; returns its result and both database URLs."""
    SOURCE_DB = example_db_url("migration_source", prefer="postgresql")  # noqa: N806
    TARGET_DB = example_db_url("migration_target", prefer="postgresql")  # noqa: N806
    make_tables(SOURCE_DB, TARGET_DB)
    result = seed_block(SOURCE_DB, TARGET_DB)
    return {"result": result, "source_db": SOURCE_DB, "target_db": TARGET_DB}


if __name__ == "__main__":
    main()
