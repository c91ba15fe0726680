"""Database backend names (no SQLAlchemy needed to know them)."""

from __future__ import annotations

from resource_actors.errors import ResourceError

BACKENDS = {
    "postgresql": "postgresql", "postgres": "postgresql", "psql": "postgresql",
    "mysql": "mysql", "mariadb": "mysql",
    "sqlite": "sqlite", "sqlite3": "sqlite", "file": "sqlite",
    "memory": "memory",
}


def normalize_backend(backend: str) -> str:
    """Canonical backend name; ``ResourceError`` for unknown ones."""
    key = backend.lower().split("+", 1)[0]
    if key not in BACKENDS:
        raise ResourceError(
            f"unknown database backend {backend!r}; use one of: postgresql, mysql, mariadb, "
            "sqlite, memory", None, "configure")
    return BACKENDS[key]
