"""Planning an ETL run on the driver: check the config against the databases, resume or start
a generation, split the source into partitions, prepare the target (plain core).

The run row (``@run`` in the target's checkpoint table) is the run's memory: its settings,
generation, partitions, INCREMENTAL's watermark window and FULL_REFRESH's staging table. A
run whose row says ``running`` resumes with the same plan; one that says ``done`` is a no-op
for APPEND and UPSERT, and starts the next generation for INCREMENTAL (rows past the saved
watermark) and FULL_REFRESH (a fresh reload).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import storage
from patterns._etl import dialect as sql
from patterns._etl.catalog import (
    ColumnType,
    bounds,
    column_types,
    columns_of,
    key_ranges,
    primary_key,
    sqlite_ddl,
    stable_order,
    table_exists,
    unique_keys,
)
from patterns._etl.config import ETLConfig, ETLMode
from patterns._etl.endpoints import DatabaseEndpoint, Endpoint, FileEndpoint
from patterns._etl.file_target import (
    ETLFileJob,
    finished_result,
    output_of,
    source_files,
    work_dir,
)
from patterns._etl.kind import RUN_PART, ETLJob
from patterns._etl.leftovers import clean_leftovers, this_owner
from patterns._etl.load import load_state, plain_values, unplain_values
from patterns._etl.step import ETLStepSpec
from patterns.errors import PatternError
from resource_actors.errors import ResourceError

log = logging.getLogger(__name__)


def _fail(message: str, run_id: str | None = None) -> PatternError:
    return PatternError(message, pattern="etl", run_id=run_id)


class Databases:
    """The run's database resources in one ``ResourceManager`` (cluster-wide or local)."""

    def __init__(self, manager: Any, source: Endpoint, target: DatabaseEndpoint | None,
                 pool_size: int) -> None:
        self.manager = manager
        self.owner = f"etl/driver/{uuid.uuid4().hex[:8]}"
        registered = set(manager.resource_names())
        wanted = {ep.resource_name: ep for ep in (source, target)
                  if isinstance(ep, DatabaseEndpoint) and ep.resource_name not in registered}

        def register(ep: DatabaseEndpoint) -> None:
            try:
                manager.register_from_dict(ep.resource_name, ep.provider_config(),
                                           {"max_size": pool_size, "acquire_timeout": 120})
            except (ValueError, ResourceError) as exc:
                # registered meanwhile by another run (shared), or not buildable: then the
                # first acquire says why
                log.debug("registering %s: %s", ep.resource_name, exc)

        # each provider actor starts in its own process: start them side by side, and the
        # actor that stands for this process in its leases too
        with ThreadPoolExecutor(len(wanted) + 1, thread_name_prefix="etl-register") as pool:
            warm = pool.submit(manager.warm_up)
            list(pool.map(register, wanted.values()))
            warm.result()

    @contextmanager
    def connect(self, ep: DatabaseEndpoint, role: str) -> Iterator[Any]:
        """A leased connection to ``ep``; a failure to connect is a ``PatternError`` saying
        which database (password hidden) and what to check."""
        owner = f"{self.owner}/{role}"
        try:
            conn = self.manager.acquire(ep.resource_name, owner)
        except ResourceError as exc:
            raise _fail(f"cannot connect to the {role} database {ep.safe_url}: "
                        f"{_scrub(str(exc), ep)}") from None
        try:
            yield conn
        finally:
            self.manager.release(ep.resource_name, owner)


def _scrub(text: str, ep: DatabaseEndpoint) -> str:
    from sqlalchemy import make_url

    if ep.backend == "memory":
        return text
    password = make_url(ep.url).password
    return text.replace(password, "***") if password and len(password) >= 3 else text


def settings_of(cfg: ETLConfig, source: Endpoint, target: Endpoint) -> dict[str, Any]:
    """What a checkpoint depends on (no credentials: URLs with the password hidden)."""
    def where(ep: Endpoint) -> dict[str, Any]:
        if isinstance(ep, DatabaseEndpoint):
            return {"url": ep.safe_url, "table": ep.table, "query": ep.query}
        return {"path": storage.absolute(ep.path)}

    return {"mode": cfg.mode.value, "source": where(source), "target": where(target),
            "key_columns": cfg.key_columns, "watermark_column": cfg.watermark_column,
            "field_mappings": cfg.field_mappings,
            "transformations": [code_of(fn) for fn in cfg.transformations or []],
            "filters": [code_of(fn) for fn in cfg.filters or []],
            "validation_schema": cfg.validation_schema}


def code_of(fn: Any) -> str:
    """A transformation or filter as ``name#digest`` of its source code (of its class when
    it is an object), so a resume can tell that the record work changed."""
    import inspect

    target = getattr(fn, "__func__", fn)
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    for candidate in (target, type(target)):
        try:
            text = inspect.getsource(candidate)
        except (OSError, TypeError):
            continue
        return f"{name}#{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    code = getattr(target, "__code__", None)
    return f"{name}#{hashlib.sha256(code.co_code).hexdigest()[:12]}" if code else name


def run_id_for(cfg: ETLConfig, checkpoint_id: str | None, settings: dict[str, Any]) -> tuple[str, bool]:
    """``(run id, keep checkpoint)``: the checkpoint id; for INCREMENTAL without one, an id
    derived from source and target, so each run goes on from the last watermark."""
    if checkpoint_id:
        return str(checkpoint_id), True
    if cfg.mode is ETLMode.INCREMENTAL:
        digest = hashlib.sha256(json.dumps([settings["source"], settings["target"]],
                                           sort_keys=True).encode()).hexdigest()[:16]
        return f"etl-sync-{digest}", True
    return f"etl-{uuid.uuid4().hex[:12]}", False


def plan_run(cfg: ETLConfig, checkpoint_id: str | None, manager: Any,
             workers: int) -> ETLJob | dict[str, Any]:
    """An ``ETLJob`` ready for the job layer, or the stored result of a run that finished."""
    source = cfg.source_endpoint()
    target = cfg.target_endpoint(source)
    if isinstance(target, FileEndpoint):
        return plan_file_run(cfg, checkpoint_id, manager, workers, source, target)
    settings = settings_of(cfg, source, target)
    run_id, keep = run_id_for(cfg, checkpoint_id, settings)
    dbs = Databases(manager, source, target, pool_size=workers + 3)
    with dbs.connect(target, "target") as tconn:
        tcols = columns_of(tconn, target, "target")
        tpk = primary_key(tconn, target)
        tkinds = {c: t.kind for c, t in column_types(tconn, target).items()
                  if t.kind in ("json", "array")}
        for ddl in (sql.checkpoint_ddl(target.backend), sql.reject_ddl(target.backend)):
            tconn.execute(ddl)
        row = load_state(tconn, target.backend, run_id, RUN_PART)
        assert target.table is not None
        clean_leftovers(tconn, target.backend, target.table, run_id)
    if row is not None and _changed(row, settings):
        raise _fail(f"checkpoint {run_id!r} was made with other settings ({_diff(row['settings'], settings)}); "
                    "resuming would lose or duplicate rows: run with the same settings or use "
                    "another checkpoint_id", run_id)
    if row is not None and row["status"] == "done" and cfg.mode in (ETLMode.APPEND, ETLMode.UPSERT):
        return {**row.get("result", {}), "run_id": run_id, "already_done": True}
    resume = row is not None and row["status"] == "running"
    gen = row["gen"] if resume else (row["gen"] + 1 if row else 1)

    scols, read_key, order, stypes = _source_shape(dbs, source)
    write_key = list(cfg.key_columns or tpk)
    _check_columns(cfg, source, target, scols, tcols, write_key)
    upsert = cfg.mode in (ETLMode.UPSERT, ETLMode.INCREMENTAL)
    if upsert and not write_key:
        raise _fail(f"{cfg.mode.name} matches rows by key, but target table {target.table!r} has "
                    "no primary key: give key_columns=[...] (columns with a unique index)")
    wm = (_watermark_column(cfg, source, scols, read_key or _declared_key(cfg, scols))
          if cfg.mode is ETLMode.INCREMENTAL else None)

    if resume:
        state = row
    else:
        state = {"gen": gen, "status": "running", "settings": settings,
                 "token": hashlib.sha256(f"{run_id}/{gen}".encode()).hexdigest()[:8],
                 "watermark": (row or {}).get("watermark"), "keep": keep,
                 "owner": this_owner()}
        _plan_window(state, cfg, dbs, source, wm)
        state["partitions"] = _plan_partitions(cfg, dbs, source, read_key, order, gen, state,
                                               workers)
        state["staging"] = (sql.staging_name(target.table, state["token"])
                            if cfg.mode is ETLMode.FULL_REFRESH else None)
    with dbs.connect(target, "target") as tconn:
        if state.get("staging"):
            _prepare_staging(tconn, target, state["staging"], fresh=not resume)
        if not resume:
            if row is not None and cfg.mode is ETLMode.FULL_REFRESH:
                # a reload replaces the table: the rejects of the load before are void (a
                # redrive of them would load their rows twice)
                tconn.execute(f"DELETE FROM {sql.quote(target.backend, sql.REJECT_TABLE)} "
                              "WHERE run_id = :run_id", {"run_id": run_id})
            tconn.execute(sql.checkpoint_put(target.backend),
                          {"run_id": run_id, "part": RUN_PART, "state": json.dumps(state)})
    spec = ETLStepSpec(
        run_id=run_id, source=source, target=target,
        write_table=state.get("staging") or target.table, target_columns=tcols,
        source_columns=scols, read_key=read_key, upsert_key=write_key if upsert else None,
        batch_size=cfg.batch_size,
        pipeline=_pipeline_of(cfg, read_key, write_key),
        where=state.get("where"), where_params=_unplain_params(state.get("where_params") or {}),
        manager=manager if getattr(manager, "local", False) else None,
        source_text=_json_columns(source, stypes), target_kinds=tkinds)
    work = Path(cfg.work_dir or os.path.join(".fsm_actors", "etl"))
    return ETLJob(run_id=run_id, mode=cfg.mode, spec=spec, partitions=state["partitions"],
                  run_state=state, target=target,
                  connect=lambda: dbs.connect(target, "target"), workers=cfg.parallel_workers,
                  error_file=work / f"{run_id}.errors.jsonl", keep_checkpoint=keep,
                  label=f"etl {cfg.name or target.table}")


def plan_file_run(cfg: ETLConfig, checkpoint_id: str | None, manager: Any, workers: int,
                  source: Endpoint, target: FileEndpoint) -> ETLFileJob | dict[str, Any]:
    """An ``ETLFileJob``: the source's partitions written as parts, joined into ``target``
    at the end (see ``patterns._etl.file_target``); the driver's checkpoint resumes it. An
    APPEND that finished under ``checkpoint_id`` returns its stored result."""
    settings = settings_of(cfg, source, target)
    run_id, keep = run_id_for(cfg, checkpoint_id, settings)
    # staged parts beside the target: one filesystem, so the final rename is atomic
    work = work_dir(target, cfg.work_dir)
    done = finished_result(work, run_id, settings) if keep else None
    if done is not None and cfg.mode is ETLMode.APPEND:
        return {**done, "run_id": run_id, "already_done": True}
    output = output_of(target, cfg.mode)
    dbs = Databases(manager, source, None, pool_size=workers + 3)
    scols, read_key, order, stypes = _source_shape(dbs, source)
    _check_mapped_fields(cfg, scols)
    state = {"where": None, "where_params": {}}
    partitions = _plan_partitions(cfg, dbs, source, read_key, order, 1, state, workers)
    for i, p in enumerate(partitions):
        p["payload"]["index"] = i
    spec = ETLStepSpec(
        run_id=run_id, source=source, target=target, write_table="", target_columns=[],
        source_columns=scols, read_key=read_key, upsert_key=None, batch_size=cfg.batch_size,
        pipeline=_pipeline_of(cfg, read_key, list(cfg.key_columns or [])), output=output,
        manager=manager if getattr(manager, "local", False) else None,
        source_text=_json_columns(source, stypes),
        declared={_mapped(cfg, c): t for c, t in stypes.items()})
    return ETLFileJob(run_id=run_id, spec=spec, partitions=partitions, settings=settings,
                      target=target, output=output, work=work, workers=cfg.parallel_workers,
                      keep_checkpoint=keep, label=f"etl {cfg.name or os.path.basename(target.path)}")


def _pipeline_of(cfg: ETLConfig, read_key: list[str], write_key: list[str]) -> dict[str, Any]:
    """The ``RecordPipeline`` arguments of a run."""
    return {"key": read_key or list(write_key), "validation_schema": cfg.validation_schema,
            "filters": cfg.filters or [], "field_mappings": cfg.field_mappings,
            "transformations": cfg.transformations or []}


#: Settings of the record work: a finished run's next generation may change them, a resume
#: may not (its target would end with rows of the old and the new work)
RECORD_WORK = ("transformations", "filters", "validation_schema")


def _changed(row: dict[str, Any], settings: dict[str, Any]) -> bool:
    old = row.get("settings") or {}
    keys = {k for k in set(old) | set(settings) if old.get(k) != settings.get(k)}
    if row.get("status") != "running":
        keys -= set(RECORD_WORK)
    return bool(keys)


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "unknown"


def _json_columns(source: Endpoint, types: dict[str, ColumnType]) -> list[str]:
    """The source's JSON columns, which a PostgreSQL source reads as their text."""
    if not isinstance(source, DatabaseEndpoint) or source.backend != "postgresql":
        return []
    return [c for c, t in types.items() if t.kind == "json"]


def _mapped(cfg: ETLConfig, column: str) -> str:
    return (cfg.field_mappings or {}).get(column, column)


def _source_shape(dbs: Databases, source: Endpoint
                  ) -> tuple[list[str], list[str], str | None, dict[str, ColumnType]]:
    """The source's columns, the key it is paged by, and else the ORDER BY of its one ordered
    pass (files: neither), and the declared types of its columns (``catalog.column_types``).

    The key is one the catalog proves unique and NOT NULL (``unique_keys``), never merely
    ``key_columns``: keyset pages on a repeated or NULL value skip rows. ``key_columns``
    still match rows when writing."""
    if isinstance(source, FileEndpoint):
        if not _file_paths(source):
            raise _fail(f"the source file {storage.redact(source.path)!r} does not exist: "
                        "check the path")
        return [], [], None, {}
    with dbs.connect(source, "source") as sconn:
        scols = columns_of(sconn, source, "source")
        types = column_types(sconn, source)
        keys = unique_keys(sconn, source)
        if keys:
            return scols, keys[0], None, types
        return scols, [], stable_order(sconn, source, scols), types


def _declared_key(cfg: ETLConfig, scols: list[str]) -> list[str]:
    """``key_columns`` in source names, when the source has them all."""
    inverse = {v: k for k, v in (cfg.field_mappings or {}).items()}
    keys = [inverse.get(k, k) for k in (cfg.key_columns or [])]
    return keys if keys and all(k in scols for k in keys) else []


def _check_mapped_fields(cfg: ETLConfig, scols: list[str]) -> dict[str, str]:
    """The field mappings, each of a field the source has (when its columns are known)."""
    mappings = cfg.field_mappings or {}
    for field in mappings:
        if scols and field not in scols:
            raise _fail(f"field_mappings maps {field!r}, which the source has no column for "
                        f"(source columns: {', '.join(scols)})")
    return mappings


def _check_columns(cfg: ETLConfig, source: Endpoint, target: DatabaseEndpoint,
                   scols: list[str], tcols: list[str], write_key: list[str]) -> None:
    mappings = _check_mapped_fields(cfg, scols)
    for field, column in mappings.items():
        if column not in tcols:
            raise _fail(f"field_mappings maps {field!r} to column {column!r}, which target table "
                        f"{target.table!r} does not have (its columns: {', '.join(tcols)}); "
                        "add the column or fix the mapping")
    missing = [k for k in write_key if k not in tcols]
    if missing:
        raise _fail(f"key column(s) {', '.join(missing)} are not columns of target table "
                    f"{target.table!r} (its columns: {', '.join(tcols)})")
    if scols and not cfg.transformations:
        mapped = [mappings.get(c, c) for c in scols]
        unknown = [c for c in mapped if c not in tcols]
        if unknown:
            raise _fail(f"source column(s) {', '.join(unknown)} have no column in target table "
                        f"{target.table!r} (its columns: {', '.join(tcols)}); add them, map them "
                        "with field_mappings, or select fewer columns with a source query")


def _watermark_column(cfg: ETLConfig, source: Endpoint, scols: list[str],
                      read_key: list[str]) -> str:
    if not isinstance(source, DatabaseEndpoint):
        raise _fail("INCREMENTAL needs a database source (a watermark column to read past)")
    column = cfg.watermark_column or (read_key[0] if len(read_key) == 1 else None)
    if column is None:
        raise _fail("INCREMENTAL needs a watermark column: give watermark_column=... (for "
                    "example an updated_at column), or read a table with a one-column primary key")
    if column not in scols:
        raise _fail(f"watermark column {column!r} is not a column of the source "
                    f"(columns: {', '.join(scols)})")
    return column


def _plan_window(state: dict[str, Any], cfg: ETLConfig, dbs: Databases, source: Endpoint,
                 wm: str | None) -> None:
    """INCREMENTAL: rows from the saved watermark (inclusive: rows sharing the boundary value
    are upserted by key again, not lost) up to the newest value now."""
    state["where"], state["where_params"], state["wm_hi"] = None, {}, None
    if wm is None or not isinstance(source, DatabaseEndpoint):
        return
    column = sql.quote(source.backend, wm)
    where, params = None, {}
    if state.get("watermark") is not None:
        where, params = f"{column} >= :wm_lo", {"wm_lo": unplain_values([state["watermark"]])[0]}
    with dbs.connect(source, "source") as sconn:
        _, hi, n = bounds(sconn, source, wm, where, params)
    if n == 0 or hi is None:
        state["where"], state["where_params"] = f"{column} IS NULL AND 1 = 0", {}
        return
    where = f"{where} AND {column} <= :wm_hi" if where else f"{column} <= :wm_hi"
    params["wm_hi"] = hi
    state["where"], state["where_params"] = where, _plain_params(params)
    state["wm_hi"] = plain_values([hi])[0]


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(params, plain_values(list(params.values())), strict=True))


def _unplain_params(params: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(params, unplain_values(list(params.values())), strict=True))


def _file_paths(source: FileEndpoint) -> list[str]:
    return source_files(source.path)


def _plan_partitions(cfg: ETLConfig, dbs: Databases, source: Endpoint, read_key: list[str],
                     order: str | None, gen: int, state: dict[str, Any],
                     workers: int) -> list[dict[str, Any]]:
    """Key ranges of an integer key (enough for every worker, each at most
    ``checkpoint_interval`` rows), else one keyset partition, or with no key one read in
    ``order`` (kept in the plan, so a resume reads the same order), or one per file."""
    prefix = f"g{gen}"
    if isinstance(source, FileEndpoint):
        return [{"id": f"{prefix}/file:{i}:{os.path.basename(p)}"[:190],
                 "payload": {"kind": "file", "path": p}}
                for i, p in enumerate(_file_paths(source))]
    if not read_key:
        return [{"id": f"{prefix}/rows", "payload": {"kind": "ordered", "order": order}}]
    where, params = state.get("where"), _unplain_params(state.get("where_params") or {})
    with dbs.connect(source, "source") as sconn:
        lo, hi, n = bounds(sconn, source, read_key[0], where, params)
    if n == 0:
        return []
    if not (isinstance(lo, int) and isinstance(hi, int)) or isinstance(lo, bool):
        return [{"id": f"{prefix}/all", "payload": {"kind": "keyset"}}]
    parts = max(math.ceil(n / cfg.checkpoint_interval),
                min(workers, math.ceil(n / cfg.batch_size)), 1)
    return [{"id": f"{prefix}/{read_key[0]}:{a}-{b}"[:190],
             "payload": {"kind": "range", "lo": a, "hi": b}}
            for a, b in key_ranges(lo, hi, parts)]


def _prepare_staging(conn: Any, target: DatabaseEndpoint, staging: str, fresh: bool) -> None:
    """An empty staging table shaped like the target (kept as it is when resuming)."""
    backend, table = target.backend, target.table
    assert table is not None
    exists = table_exists(conn, backend, staging)
    if exists and not fresh:
        return
    if exists:
        conn.execute(f"DROP TABLE {sql.quote(backend, staging)}")
    if sql.is_sqlite(backend):
        create, _ = sqlite_ddl(conn, table)
        conn.execute(sql.sqlite_rename_create(create, staging))
    else:
        for statement in sql.staging_create(backend, table, staging):
            conn.execute(statement)
