"""``ETLMode`` and ``ETLConfig``: what to move, how, and with what guarantees (plain core).

``ETLConfig`` takes the seed's fields (``source``/``target`` dicts or URLs) and dataknobs-fsm
0.5.0's (``source_db``, ``target_db``, ``source_query``, ``target_table``, ``key_columns``,
``field_mappings``, ``transformations``, ``validation_schema``, ``batch_size``,
``parallel_workers``, ``error_threshold``, ``checkpoint_interval``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from patterns._etl.endpoints import DatabaseEndpoint, Endpoint, FileEndpoint, parse_endpoint
from patterns.errors import PatternError


class ETLMode(StrEnum):
    """How the target is written.

    FULL_REFRESH: load a staging table, then swap its rows into the target in one transaction.
    INCREMENTAL: only source rows past the watermark of the last run, upserted by key.
    UPSERT: insert, or update the row with the same key. APPEND: insert.
    """

    FULL_REFRESH = "full"
    INCREMENTAL = "incremental"
    UPSERT = "upsert"
    APPEND = "append"


_MODE_ALIASES = {"full_refresh": "full", "refresh": "full", "insert": "append",
                 "merge": "upsert", "sync": "incremental"}


class ETLConfig(BaseModel):
    """One ETL run's settings.

    ``source``/``target`` (or ``source_db``/``target_db``): a database dict, a connection
    URL, or ``{"type": "file", "path": ...}``; ``source_query`` / ``target_table`` fill in the
    table or query. ``key_columns``: the key rows are matched, partitioned and de-duplicated
    on (default: the target's primary key for writes, the source's for reads).
    ``watermark_column``: INCREMENTAL's progress column (default: the source's primary key).
    ``field_mappings``: ``{source field: target column}``; other fields keep their names.
    ``transformations``: per-record callables (dict -> dict, or None to keep the mutated
    dict) or ``Vectorized`` table callables; ``filters``: record predicates (False -> the
    record is skipped); ``validation_schema``: a JSON schema each record must meet (failures
    are rejected with key and reason). All three see a PostgreSQL source's JSON columns as
    their JSON text (as stored). ``batch_size``: rows per read and per load
    transaction; ``checkpoint_interval``: rows per partition (one worker task);
    ``parallel_workers``: worker actors (default: the cluster's CPUs); ``error_threshold``:
    the share (< 1) or number (>= 1) of rejected records that stops the run (None: never).
    ``work_dir``: where the run's error file and job checkpoint go (default ``.fsm_actors/etl``;
    for a file target, ``.fsm_actors/etl`` beside the target file, where its parts are staged).
    Dumps (``model_dump``, ``model_dump_json``) hide the endpoints' passwords.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    source: Any = None
    target: Any = None
    source_db: Any = None
    target_db: Any = None
    mode: ETLMode = ETLMode.FULL_REFRESH
    source_query: str | None = None
    target_table: str | None = None
    key_columns: list[str] | None = None
    watermark_column: str | None = None
    field_mappings: dict[str, str] | None = None
    transformations: list[Any] | None = None
    filters: list[Callable[[dict[str, Any]], Any]] | None = None
    validation_schema: dict[str, Any] | None = None
    batch_size: int = Field(10_000, gt=0)
    parallel_workers: int | None = Field(None, gt=0)
    error_threshold: float | None = Field(0.05, ge=0)
    checkpoint_interval: int = Field(100_000, gt=0)
    name: str | None = None
    work_dir: str | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, ETLMode):
            key = value.lower()
            return _MODE_ALIASES.get(key, key)
        return value

    @field_validator("key_columns", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("transformations", "filters", mode="before")
    @classmethod
    def _callables(cls, value: Any) -> Any:
        if value is None:
            return None
        items = [value] if callable(value) else list(value)
        for item in items:
            if not callable(item):
                raise ValueError(f"{item!r} is not callable")
        return items

    @model_validator(mode="after")
    def _endpoints(self) -> ETLConfig:
        if self.source is None and self.source_db is None:
            raise ValueError("no source: give 'source' (a dict or URL) or 'source_db'")
        if self.target is None and self.target_db is None:
            raise ValueError("no target: give 'target' (a dict or URL) or 'target_db'")
        return self

    @field_serializer("source", "target", "source_db", "target_db")
    def _hide_credentials(self, value: Any) -> Any:
        """Dumps (``model_dump``, ``model_dump_json``) show endpoints with the password
        hidden; the config itself keeps it, so its connections still work."""
        return redact_endpoint(value)

    def __repr_args__(self):  # credentials never in a repr: endpoints as safe descriptions
        for name, value in super().__repr_args__():
            if name in ("source", "target", "source_db", "target_db") and value is not None:
                try:
                    value = parse_endpoint(value, name).describe()
                except PatternError:
                    value = "<unparsable>"
            yield name, value

    # -- resolved views ----------------------------------------------------------------------
    def source_endpoint(self) -> Endpoint:
        """The source, with ``source_query`` applied; ``PatternError`` saying what to add."""
        ep = parse_endpoint(self.source if self.source is not None else self.source_db, "source")
        if isinstance(ep, DatabaseEndpoint):
            if self.source_query:
                ep = DatabaseEndpoint(ep.backend, ep.url, ep.table, self.source_query, ep.params)
            if not ep.table and not ep.query:
                raise PatternError(
                    f"the source database ({ep.safe_url}) names no data: add \"table\": "
                    "\"<name>\" or \"query\": \"SELECT ...\" to the source (or source_query=...)",
                    pattern="etl")
        return ep

    def target_endpoint(self, source: Endpoint | None = None) -> Endpoint:
        """The target, with ``target_table`` applied. A database target without a table takes
        the source table's name (or the source file's stem)."""
        ep = parse_endpoint(self.target if self.target is not None else self.target_db, "target")
        if isinstance(ep, DatabaseEndpoint):
            table = self.target_table or ep.table or _default_table(source)
            if not table:
                raise PatternError(
                    f"the target database ({ep.safe_url}) names no table: add \"table\": "
                    "\"<name>\" to the target (or target_table=...)", pattern="etl")
            ep = DatabaseEndpoint(ep.backend, ep.url, table, None, ep.params)
        elif self.mode in (ETLMode.UPSERT, ETLMode.INCREMENTAL):
            raise PatternError(
                f"{self.mode.name} needs a database target (rows are matched by key); for a "
                "file target use APPEND or FULL_REFRESH", pattern="etl")
        return ep


_SECRET_KEYS = frozenset({"password", "passwd", "secret", "token", "api_key"})
_URL_KEYS = ("connection", "connection_string", "url", "dsn", "uri")


def redact_endpoint(value: Any) -> Any:
    """An endpoint (URL or dict) with its password replaced by ``***``."""
    if isinstance(value, str):
        return _redact_url(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if str(key).lower() in _SECRET_KEYS and item is not None:
                out[key] = "***"
            elif key in _URL_KEYS and isinstance(item, str):
                out[key] = _redact_url(item)
            elif isinstance(item, dict):
                out[key] = redact_endpoint(item)
            else:
                out[key] = item
        return out
    return value


def _redact_url(text: str) -> str:
    if "://" not in text:
        return text
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        return text
    return url.render_as_string(hide_password=True) if url.password else text


def _default_table(source: Endpoint | None) -> str | None:
    import os

    if isinstance(source, DatabaseEndpoint):
        return source.table
    if isinstance(source, FileEndpoint) and not any(c in source.path for c in "*?["):
        stem = os.path.basename(source.path.rstrip("/"))
        return stem.split(".", 1)[0] or None
    return None


def coerce_config(config: ETLConfig | dict[str, Any] | None, kwargs: dict[str, Any]) -> ETLConfig:
    """An ``ETLConfig`` from a config, a dict of its fields, or keywords; invalid settings
    raise ``PatternError`` naming them."""
    from pydantic import ValidationError

    if isinstance(config, ETLConfig):
        return config.model_copy(update=kwargs) if kwargs else config
    try:
        return ETLConfig(**{**dict(config or {}), **kwargs})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise PatternError(f"invalid ETL config: {problems}", pattern="etl") from None
