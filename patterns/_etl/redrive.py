"""ETL ``run(redrive=RUN)``: re-run exactly the rows a finished ETL run rejected.

Into a database target the rejects are in the target's ``fsm_etl_rejects`` table (run
``RUN``). A redrive is an ETL job of its own, run id ``RUN~redrive``, on the same job layer,
step and ``Loader`` as a load: one partition that reads RUN's rejects in (part, seq, idx)
order and turns each back into its record (``patterns._etl.rejects``: the source row again by
its key, else the stored record), runs the current config's validation, filters, mappings and
transformations, and commits each batch with its new rejects and its checkpoint row in ONE
transaction. A redrive killed at any point resumes from that row (never loading a row twice);
resuming it with other record work is refused, as for a load. The commit replaces RUN's
rejects by the redrive's in one transaction (and rewrites RUN's error file), so the rows that
still fail are RUN's rejects for the next redrive; a redrive with nothing left is a no-op.

Into a file target the rejects are in the error file beside it (``<target>.errors.jsonl``):
the shared file redrive (``fsm_actors.redrive.redrive``) runs the records through an ETL run
of its own and adds those that now pass to the file atomically, exactly once.

The summary: ``redriven`` (rows re-run), ``succeeded`` (now loaded or filtered out),
``still_failing`` (the new rejects, with ``not_redrivable``: rows that could not be turned
back into a record, kept as they were), ``loaded``, ``run_id`` (RUN), ``error_file``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import storage
from patterns._etl import dialect as sql
from patterns._etl.catalog import column_types, columns_of, primary_key
from patterns._etl.config import ETLConfig, ETLMode
from patterns._etl.endpoints import DatabaseEndpoint, FileEndpoint
from patterns._etl.kind import RUN_PART, ETLJob, etl_counts
from patterns._etl.leftovers import this_owner
from patterns._etl.load import load_state
from patterns._etl.rejects import redrivable
from patterns._etl.runner import (
    Databases,
    _changed,
    _check_columns,
    _diff,
    _fail,
    _json_columns,
    _pipeline_of,
    _source_shape,
    run_id_for,
    settings_of,
)
from patterns._etl.step import ETLStepSpec

SUFFIX = "~redrive"
ERRORS = ".errors.jsonl"


def run_of(redrive: str | os.PathLike[str] | bool, checkpoint_id: str | None,
           cfg: ETLConfig) -> str:
    """The run a ``redrive=`` names: ``True`` -> ``checkpoint_id`` (INCREMENTAL without one:
    the id its runs share); an error file (``.fsm_actors/etl/<run id>.errors.jsonl``) -> its
    run id; else the run id itself."""
    if redrive is True:
        if not checkpoint_id and cfg.mode is ETLMode.INCREMENTAL:
            source = cfg.source_endpoint()
            settings = settings_of(cfg, source, cfg.target_endpoint(source))
            return run_id_for(cfg, None, settings)[0]
        if not checkpoint_id:
            raise _fail("redrive=True redrives the run of checkpoint_id: give checkpoint_id=..., "
                        "or redrive='<run id>' (the run_id its result and error file name)")
        return str(checkpoint_id)
    text = os.fspath(redrive)  # type: ignore[arg-type]
    name = os.path.basename(text)
    if name.endswith(ERRORS) and not name.endswith(".redrive.json"):
        return name[: -len(ERRORS)]
    return text


def redrive_id(run_id: str) -> str:
    """The run id of ``run_id``'s redrive (its checkpoint rows, its rejects until it ends)."""
    return run_id[: 200 - len(SUFFIX)] + SUFFIX


def empty_summary(run_id: str, error_file: Any = None) -> dict[str, Any]:
    return {"redriven": 0, "succeeded": 0, "still_failing": 0, "not_redrivable": 0,
            "loaded": 0, "run_id": run_id, "error_file": error_file}


def plan_redrive(cfg: ETLConfig, run_id: str, manager: Any,
                 workers: int) -> RedriveJob | dict[str, Any]:
    """A ``RedriveJob`` of run ``run_id`` into a database target, or the no-op summary when
    it has no rejects left (``PatternError`` when the target knows no such run)."""
    source = cfg.source_endpoint()
    target = cfg.target_endpoint(source)
    assert isinstance(target, DatabaseEndpoint) and target.table is not None
    settings = settings_of(cfg, source, target)
    rid = redrive_id(run_id)
    dbs = Databases(manager, source, target, pool_size=workers + 4)
    work = Path(cfg.work_dir or os.path.join(".fsm_actors", "etl"))
    error_file = work / f"{run_id}{ERRORS}"
    with dbs.connect(target, "target") as tconn:
        for ddl in (sql.checkpoint_ddl(target.backend), sql.reject_ddl(target.backend)):
            tconn.execute(ddl)
        tcols = columns_of(tconn, target, "target")
        tpk = primary_key(tconn, target)
        tkinds = {c: t.kind for c, t in column_types(tconn, target).items()
                  if t.kind in ("json", "array")}
        original = load_state(tconn, target.backend, run_id, RUN_PART)
        row = load_state(tconn, target.backend, rid, RUN_PART)
        scols, read_key, _, stypes = _source_shape(dbs, source)
        resume = row is not None and row.get("status") == "running"
        if not resume:
            rejects = tconn.query(
                f"SELECT record_key, record FROM {sql.quote(target.backend, sql.REJECT_TABLE)} "
                "WHERE run_id = :run_id", {"run_id": run_id})
    if original is not None and original.get("status") == "running":
        raise _fail(f"run {run_id!r} has not finished: resume it first (run again with "
                    f"checkpoint_id={run_id!r}), then redrive what it rejected", run_id)
    if original is not None and _changed(original, settings):
        raise _fail(f"run {run_id!r} was made with other settings "
                    f"({_diff(original['settings'], settings)}); a redrive loads its rejects "
                    "into the same target with the same mode: run it with those settings "
                    "(transformations, filters and validation may change)", run_id)
    if resume:
        assert row is not None
        if _changed(row, settings):
            raise _fail(f"the redrive of {run_id!r} was interrupted and was started with other "
                        f"settings ({_diff(row['settings'], settings)}); finishing it with "
                        "these would load its rows with two versions of the record work: "
                        "run it again with the settings it started with, then redrive again",
                        run_id)
        state = row
    else:
        if not rejects:
            if original is None and row is None:
                raise _fail(
                    f"no rejects of run {run_id!r} in table {sql.REJECT_TABLE} of the target "
                    f"{target.describe()}: give the run_id the run printed (its result's "
                    "run_id, its checkpoint_id, or its error file "
                    f".fsm_actors/etl/<run id>{ERRORS}) and the same target", run_id)
            return empty_summary(run_id)
        gen = (row or {}).get("gen", 0) + 1
        state = {"gen": gen, "status": "running", "of": run_id, "settings": settings,
                 "keep": True, "owner": this_owner(), "total": len(rejects),
                 "not_redrivable": sum(not redrivable(r, read_key) for r in rejects),
                 "partitions": [{"id": f"g{gen}/rejects",
                                 "payload": {"kind": "rejects", "of": run_id}}],
                 "history": (row or {}).get("history", [])}
        with dbs.connect(target, "target") as tconn:
            tconn.execute(sql.checkpoint_put(target.backend),
                          {"run_id": rid, "part": RUN_PART, "state": json.dumps(state)})
    write_key = list(cfg.key_columns or tpk)
    _check_columns(cfg, source, target, scols, tcols, write_key)
    upsert = cfg.mode in (ETLMode.UPSERT, ETLMode.INCREMENTAL) and bool(write_key)
    spec = ETLStepSpec(
        run_id=rid, source=source, target=target, write_table=target.table,
        target_columns=tcols, source_columns=scols, read_key=read_key,
        upsert_key=write_key if upsert else None, batch_size=cfg.batch_size,
        pipeline=_pipeline_of(cfg, read_key, write_key),
        manager=manager if getattr(manager, "local", False) else None,
        source_text=_json_columns(source, stypes), target_kinds=tkinds)
    return RedriveJob(of=run_id, run_id=rid, mode=cfg.mode, spec=spec,
                      partitions=state["partitions"], run_state=state, target=target,
                      connect=lambda: dbs.connect(target, "target"),
                      workers=cfg.parallel_workers, error_file=error_file,
                      keep_checkpoint=True, label=f"etl redrive {cfg.name or target.table}")


class RedriveJob(ETLJob):
    """A redrive of run ``of`` (see the module docstring); ``run_id`` is its own."""

    def __init__(self, *, of: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.of = of

    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        """RUN's rejects := the redrive's, its run row done, in one transaction."""
        backend, of, rid = self.target.backend, self.of, self.run_id
        rejects = sql.quote(backend, sql.REJECT_TABLE)
        checkpoints = sql.quote(backend, sql.CHECKPOINT_TABLE)
        keys = etl_counts(counts)
        with self._connect() as conn:
            failing = int(conn.query(sql.reject_count(backend), {"run_id": rid})[0]["n"])
            total = int(self.run_state["total"])
            kept = int(self.run_state["not_redrivable"])
            summary = {"redriven": total - kept, "succeeded": total - failing,
                       "still_failing": failing, "not_redrivable": kept,
                       "loaded": keys["loaded"], "run_id": of, "redrive_id": rid,
                       "target": self.target.describe()}
            history = [*self.run_state.get("history", []), summary]
            state = dict(self.run_state, status="done", result=summary, partitions=[],
                         history=history[-20:])
            original = load_state(conn, backend, of, RUN_PART)
            put = sql.checkpoint_put(backend)
            conn.begin()
            try:
                conn.execute(f"DELETE FROM {rejects} WHERE run_id = :of", {"of": of})
                conn.execute(f"UPDATE {rejects} SET run_id = :of WHERE run_id = :rid",
                             {"of": of, "rid": rid})
                conn.execute(f"DELETE FROM {checkpoints} WHERE run_id = :rid AND part <> :run",
                             {"rid": rid, "run": RUN_PART})
                conn.execute(put, {"run_id": rid, "part": RUN_PART, "state": json.dumps(state)})
                if original is not None and isinstance(original.get("result"), dict):
                    result = dict(original["result"])
                    result["loaded"] = int(result.get("loaded", 0)) + keys["loaded"]
                    result["rejected"] = failing
                    conn.execute(put, {"run_id": of, "part": RUN_PART,
                                       "state": json.dumps(dict(original, result=result))})
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            error_file = self._export_of(conn)
        return {**summary, "error_file": str(error_file) if error_file else None}

    def _export_of(self, conn: Any) -> Path | None:
        """RUN's error file rewritten from its rejects (removed when there are none)."""
        mine = self.run_id
        try:
            self.run_id = self.of
            return self._export_rejects(conn)
        finally:
            self.run_id = mine


async def redrive_file_target(
        cfg: ETLConfig, run_id: str | None,
        run_etl: Callable[[ETLConfig, str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Redrive an ETL run into a file: the records of ``<target>.errors.jsonl`` through an ETL
    run of their own (a JSON Lines source; ``run_etl(config, checkpoint_id)`` runs it), those
    that now pass added to the target once."""
    from fsm_actors.redrive import RedriveError, redrive
    from patterns.errors import PatternError

    source = cfg.source_endpoint()
    target = cfg.target_endpoint(source)
    assert isinstance(target, FileEndpoint)
    if storage.is_remote(target.path):
        raise _fail(f"a redrive adds rows to a local file target; {storage.redact(target.path)} "
                    "is in an object store")
    fmt = target.format or _format_of(target.path)

    async def run(records: Path, out: Path, errors: Path, rid: str) -> dict[str, Any]:
        again = cfg.model_copy(update={
            "source": {"type": "file", "path": str(records), "format": "jsonl"},
            "target": {"type": "file", "path": str(out), "format": fmt,
                       **({"options": target.options} if target.options else {})},
            "source_db": None, "target_db": None, "source_query": None, "target_table": None,
            "mode": ETLMode.APPEND, "error_threshold": None, "work_dir": str(out.parent),
            "field_mappings": cfg.field_mappings, "watermark_column": None})
        result = await run_etl(again, rid)
        written = Path(f"{out}{ERRORS}")
        if written.exists():
            os.replace(written, errors)
        return result

    try:
        summary = await redrive(target.path, f"{target.path}{ERRORS}", run, output_format=fmt,
                                compression=target.options.get("compression"))
    except RedriveError as exc:
        raise PatternError(exc.message, pattern="etl") from None
    summary.setdefault("run_id", run_id)
    return summary


def _format_of(path: str) -> str:
    from fsm_actors.platform.io.readers import normalize_format, split_extensions

    return normalize_format(split_extensions(path)[0] or "jsonl")
