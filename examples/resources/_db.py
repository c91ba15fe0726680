"""The database the resource examples stand in for the seed's PostgreSQL.

``example_database(name)``: PostgreSQL when it can be had (``FSM_ACTORS_EXAMPLE_POSTGRES``, or
a throwaway server of this machine's binaries, see ``examples._support.example_db_url``),
else a SQLite file, as the keywords ``DatabaseResourceAdapter`` takes. ``users_database``
adds the ``users`` table (ada, bob) the seed's queries read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from examples._support import example_db_url, run_sql


@dataclass(frozen=True)
class ExampleDatabase:
    """One example's database as the keywords of ``DatabaseResourceAdapter`` take it.

    ``backend`` is ``"postgresql"`` or ``"sqlite"``; ``database`` is the database name, or the
    SQLite file's path; ``host``, ``port``, ``user`` and ``password`` are None for SQLite.
    ``params``: the connection keywords that are set.
    """

    url: str = field(repr=False)  # it carries the password
    backend: str
    database: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def adapter(self, name: str = "db") -> Any:
        """A ``DatabaseResourceAdapter`` for this database."""
        from resource_actors.database import DatabaseResourceAdapter

        return DatabaseResourceAdapter(name, backend=self.backend, **self.params)

    @property
    def params(self) -> dict[str, Any]:
        values = {"host": self.host, "port": self.port, "database": self.database,
                  "user": self.user, "password": self.password}
        return {key: value for key, value in values.items() if value is not None}


def example_database(name: str) -> ExampleDatabase:
    """An empty database ``name`` (PostgreSQL preferred, see the module docstring)."""
    from sqlalchemy import make_url

    url = example_db_url(name, prefer="postgresql")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return ExampleDatabase(url, "sqlite", str(parsed.database))
    return ExampleDatabase(url, "postgresql", str(parsed.database), parsed.host, parsed.port,
                           parsed.username, parsed.password)


def users_database(name: str) -> ExampleDatabase:
    """``example_database(name)`` holding ``users(id, name)``: (1, 'ada'), (2, 'bob')."""
    db = example_database(name)
    run_sql(db.url, "CREATE TABLE users (id int primary key, name text)",
            "INSERT INTO users (id, name) VALUES (:id, :name)",
            rows=[{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}])
    return db
