"""Sources and targets of an ETL run, parsed from the user's dicts or URLs (plain core).

A database endpoint is ``{"type": "database", "provider": ..., "connection": URL, "table":
..., "query": ...}`` (the seed's form), the peer's ``{"type": "postgres", ...}`` form, or a
bare connection URL (provider from its scheme). A file endpoint is ``{"type": "file",
"path": ...}`` (any format of ``fsm_actors.platform.io``). Credentials stay inside ``url`` and never
reach a repr, a log line, an error or a result: use ``safe_url``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from fsm_actors.platform.io.storage import storage_options_for
from patterns.errors import PatternError
from resource_actors.database import BACKENDS

_FILE_TYPES = {"file", "files", "csv", "json", "jsonl", "parquet", "tsv", "xml", "text"}
_DB_TYPES = {"database", "db", "sql", "async_database"}
_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql",
            "mariadb": "mysql", "sqlite": "sqlite", "memory": "memory"}


def config_error(message: str) -> PatternError:
    return PatternError(message, pattern="etl")


@dataclass(frozen=True)
class DatabaseEndpoint:
    """One table (or query) of one database. ``url`` holds the credentials: never print it."""

    backend: str
    url: str = field(repr=False)
    table: str | None = None
    query: str | None = None
    params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def safe_url(self) -> str:
        if self.backend == "memory":
            return "memory://"
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def resource_name(self) -> str:
        """A cluster-wide resource name: the same database gets the same name (and pool)."""
        digest = hashlib.sha256(f"{self.backend}|{self.url}".encode()).hexdigest()[:12]
        return f"etl-db-{self.backend}-{digest}"

    def provider_config(self) -> dict[str, Any]:
        """The ``resource_actors.factory`` dict for this database."""
        cfg: dict[str, Any] = {"type": "database", "backend": self.backend, **self.params}
        if self.backend != "memory":
            cfg["connection_string"] = self.url
        return cfg

    def describe(self) -> str:
        what = f"table {self.table!r}" if self.table else "query"
        return f"{what} of {self.safe_url}"


@dataclass(frozen=True)
class FileEndpoint:
    """A file (or glob / directory) read or written through ``fsm_actors.platform.io``."""

    path: str
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def safe_url(self) -> str:
        return self.path

    def describe(self) -> str:
        return f"file {self.path!r}"


Endpoint = DatabaseEndpoint | FileEndpoint


def _backend_of_url(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise config_error(
            f"cannot tell the database from the URL scheme {scheme!r}; use postgresql://, "
            "mysql:// (or mariadb://), sqlite:///path or memory://, or a dict with 'provider'")
    return _SCHEMES[scheme]


def _normal_url(url: str, backend: str) -> str:
    if backend == "memory":
        return "memory://"
    if url.startswith("mariadb"):
        url = "mysql" + url[len("mariadb"):]
    try:
        make_url(url)
    except ArgumentError:
        raise config_error(
            f"the {backend} connection is not a valid URL; write it as "
            f"{backend}://user:password@host:port/database") from None
    return url


def parse_endpoint(spec: Any, role: str) -> Endpoint:
    """A ``DatabaseEndpoint`` or ``FileEndpoint`` from a dict or URL; ``PatternError`` when
    it says too little (naming what to add)."""
    if isinstance(spec, DatabaseEndpoint | FileEndpoint):
        return spec
    if isinstance(spec, str | os.PathLike):
        text = os.fspath(spec)
        if "://" not in text and not text.startswith("sqlite:"):
            return FileEndpoint(text)
        backend = _backend_of_url(text)
        return DatabaseEndpoint(backend, _normal_url(text, backend))
    if not isinstance(spec, Mapping):
        raise config_error(f"the {role} must be a dict or a connection URL, got "
                           f"{type(spec).__name__}")
    spec = dict(spec)
    kind = str(spec.pop("type", "") or "").lower()
    if kind in _FILE_TYPES or (not kind and "path" in spec and "connection" not in spec):
        path = spec.pop("path", None) or spec.pop("file", None)
        if not path:
            raise config_error(f"the file {role} needs a 'path'")
        fmt = spec.pop("format", None) or (kind if kind not in ("file", "files") else None)
        if spec.get("storage_options") is not None:  # for the path's store; never shown
            spec["storage_options"] = storage_options_for(spec["storage_options"], path)
        return FileEndpoint(os.fspath(path), fmt, spec)
    provider = spec.pop("provider", None) or spec.pop("backend", None)
    if kind and kind not in _DB_TYPES:
        provider = provider or kind
    url = (spec.pop("connection", None) or spec.pop("connection_string", None)
           or spec.pop("url", None))
    if provider is None and url is None and "database" in spec:
        provider = "sqlite"
    if provider is None:
        if not url:
            raise config_error(
                f"the {role} names no database: add 'connection' (a URL such as "
                "postgresql://user:password@host/db) or 'provider'")
        provider = _backend_of_url(str(url))
    backend = str(provider).lower().split("+", 1)[0]
    if backend not in BACKENDS:
        raise config_error(f"unknown {role} provider {provider!r}; use postgresql, mysql, "
                           "mariadb, sqlite or memory")
    backend = BACKENDS[backend]
    if url is not None and "://" in str(url):
        scheme = str(url).split(":", 1)[0].split("+", 1)[0].lower()
        if _SCHEMES.get(scheme, backend) != backend:
            # the URL says which database it is (a "provider" left from another setup, e.g. a
            # PostgreSQL config pointed at an SQLite file): connect to what the URL names
            backend = _SCHEMES[scheme]
    table = spec.pop("table", None) or spec.pop("table_name", None)
    query = spec.pop("query", None) or spec.pop("source_query", None)
    if url is None:
        url = _url_from_parts(backend, spec)
    return DatabaseEndpoint(backend, _normal_url(str(url), backend), table, query, spec)


def _url_from_parts(backend: str, spec: dict[str, Any]) -> str:
    from sqlalchemy import URL

    if backend == "memory":
        return "memory://"
    database = spec.pop("database", None) or spec.pop("path", None) or spec.pop("dbname", None)
    if backend == "sqlite":
        return URL.create("sqlite", database=database or ":memory:").render_as_string(False)
    port = spec.pop("port", None)
    return URL.create(backend, username=spec.pop("user", None) or spec.pop("username", None),
                      password=spec.pop("password", None), host=spec.pop("host", None),
                      port=int(port) if port else None,
                      database=database).render_as_string(hide_password=False)
