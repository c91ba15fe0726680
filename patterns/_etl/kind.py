"""``ETLJob``: an ETL run as a job kind of the one job layer (driver side, plain core).

Tasks are the planned partitions (key ranges, a keyset, files), one actor call each; the
step (``patterns._etl.step``) loads a partition in batches and commits each batch with its
checkpoint row in the target database, so the job layer keeps no checkpoint of its own for
ETL: a re-sent or resumed partition asks the target where it stopped. ``commit`` makes the
run final: FULL_REFRESH puts the staging table's rows in the target (the table itself, with
all it carries, is kept), INCREMENTAL saves the new watermark, and the run row is marked done
in the same transaction.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fsm_actors.platform.jobs.model import DoneSet, JobKind, Task
from patterns._etl import dialect as sql
from patterns._etl.catalog import primary_key, table_exists
from patterns._etl.config import ETLMode
from patterns._etl.endpoints import DatabaseEndpoint
from patterns._etl.records import reject_line
from patterns._etl.step import ETLStepSpec
from patterns.errors import ErrorThresholdExceeded, PatternError

log = logging.getLogger(__name__)

RUN_PART = "@run"


class PartitionedETL(JobKind):
    """What every ETL kind shares: one task per planned partition (``_partitions``: dicts
    with ``id`` and ``payload``), the step recipe ``spec``, ``_workers`` wanted, ``label``."""

    pattern = "etl"
    _partitions: list[dict[str, Any]]
    _workers: int | None
    spec: Any
    label: str

    def partitions(self) -> dict[str, dict[str, Any]]:
        return {p["id"]: {} for p in self._partitions}

    def tasks(self, done: DoneSet) -> Iterator[Task]:
        for p in self._partitions:
            if not done.complete(p["id"]):
                yield Task(p["id"], None, payload=p["payload"])

    #: wraps the step recipe shipped to the workers (a pipeline file's ``error_handling``)
    step_wrapper: Any = None

    def step_spec(self) -> Any:
        return self.spec if self.step_wrapper is None else self.step_wrapper(self.spec)

    def workers(self, cluster_cpus: int) -> int:
        wanted = self._workers or max(1, cluster_cpus)
        return max(1, min(wanted, len(self._partitions) or 1))

    def task_name(self, task: Task) -> str:
        return f"{self.label} {task.partition}"[:200]


class ETLJob(PartitionedETL):
    """One planned ETL run into a database (built by ``patterns._etl.runner.plan_run``)."""

    def __init__(self, *, run_id: str, mode: ETLMode, spec: ETLStepSpec,
                 partitions: list[dict[str, Any]], run_state: dict[str, Any],
                 target: DatabaseEndpoint, connect: Any, workers: int | None,
                 error_file: Path | None, keep_checkpoint: bool, label: str) -> None:
        self.run_id = run_id
        self.mode = mode
        self.spec = spec
        self._partitions = partitions
        self.run_state = run_state
        self.target = target
        self._connect = connect
        self._workers = workers
        self.error_file = error_file
        self.keep_checkpoint = keep_checkpoint
        self.label = label
        self.checkpoint_dir = None
        self.staging = None

    # -- planning ----------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        return dict(self.run_state.get("settings") or {})

    def error(self, message: str, *, threshold: bool = False, **context: Any) -> Exception:
        known = {k: context[k] for k in ("file", "line", "record", "error_file") if k in context}
        if not threshold:
            return PatternError(message, pattern="etl", run_id=self.run_id, **known)
        where = None
        try:
            with self._connect() as conn:
                where = self._export_rejects(conn)
        except Exception as exc:  # the run stops anyway; say where the rejects still are
            log.warning("could not write the error file of ETL run %s: %s", self.run_id, exc)
        verdict = message.split(". The rejected", 1)[0]
        known["error_file"] = str(where) if where else None
        return ErrorThresholdExceeded(
            f"{verdict}. The rejected records, with key and reason, are in table "
            f"{sql.REJECT_TABLE} of the target (run_id {self.run_id!r})"
            + (f" and in {where}" if where else ""), pattern="etl", run_id=self.run_id, **known)

    # -- finishing ---------------------------------------------------------------------------
    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        """Make the load final (see the module docstring); returns the ETL result keys."""
        keys = etl_counts(counts)
        state = dict(self.run_state, status="done", result=keys)
        if self.mode is ETLMode.INCREMENTAL and self.run_state.get("wm_hi") is not None:
            state["watermark"] = self.run_state["wm_hi"]
        backend, table = self.target.backend, self.target.table
        assert table is not None
        with self._connect() as conn:
            put = sql.checkpoint_put(backend)
            row = {"run_id": self.run_id, "part": RUN_PART, "state": json.dumps(state)}
            staging = self.run_state.get("staging")
            swap = (self._swap(conn, table, staging)
                    if self.mode is ETLMode.FULL_REFRESH and staging else [])
            # MySQL commits DDL implicitly: its staging table is dropped after the commit
            drop = [f"DROP TABLE {sql.quote(backend, staging)}"] if swap else []
            conn.begin()
            try:
                # the run row first: in SQLite a DML statement opens the transaction the
                # rest joins, so the swap is all-or-nothing
                conn.execute(put, row)
                for statement in swap + (drop if backend != "mysql" else []):
                    conn.execute(statement)
                conn.commit()
            except BaseException as exc:
                conn.rollback()
                self.abort()
                if swap and isinstance(exc, Exception):
                    raise self._swap_failed(exc) from None
                raise
            if backend == "mysql" and drop:
                try:
                    conn.execute(drop[0])
                except Exception as exc:  # the data is in place; a later run drops it
                    log.warning("could not drop staging table %s: %s", staging, exc)
            error_file = self._export_rejects(conn)
            self._forget(conn)
        return {**keys, "error_file": str(error_file) if error_file else None}

    def _swap(self, conn: Any, table: str, staging: str) -> list[str]:
        """The statements that put the staging table's rows in the target (none when they
        are in already)."""
        if not table_exists(conn, self.target.backend, staging):
            return []
        key = primary_key(conn, self.target)
        return sql.refresh_statements(self.target.backend, table, staging,
                                      self.spec.target_columns, key)

    def _swap_failed(self, exc: Exception) -> PatternError:
        from patterns._etl.load import database_reason

        return PatternError(
            f"FULL_REFRESH could not put the new rows in table {self.target.table!r}; the "
            f"table keeps its old rows. The database said: {database_reason(exc)}. (A row "
            "that another table's foreign key refers to cannot go: keep it in the source, or "
            "change the foreign key)", pattern="etl", run_id=self.run_id)

    def _export_rejects(self, conn: Any) -> Path | None:
        """Write this run's rejects to the error file (JSON Lines); None when there are none."""
        if self.error_file is None:
            return None
        rows = conn.query(sql.reject_select(self.target.backend), {"run_id": self.run_id})
        if not rows:
            self.error_file.unlink(missing_ok=True)
            return None
        os.makedirs(self.error_file.parent, exist_ok=True)
        tmp = self.error_file.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(reject_line(r["part"], r["seq"], r),
                                    ensure_ascii=False) + "\n")
        os.replace(tmp, self.error_file)
        return self.error_file

    def _forget(self, conn: Any) -> None:
        """Drop partition rows no resume needs any more (the run row stays when kept)."""
        backend = self.target.backend
        if self.keep_checkpoint:
            done = {p["id"] for p in self._partitions}
            stale = [part for part in _parts(conn, backend, self.run_id)
                     if part != RUN_PART and part not in done]
            for part in stale:
                conn.execute(f"DELETE FROM {sql.quote(backend, sql.CHECKPOINT_TABLE)} "
                             "WHERE run_id = :run_id AND part = :part",
                             {"run_id": self.run_id, "part": part})
            return
        conn.execute(sql.checkpoint_delete(backend), {"run_id": self.run_id})

    def abort(self) -> None:
        """A failed run: the target is untouched; without a checkpoint id, drop the staging
        table and checkpoint rows (nothing can resume them)."""
        if self.keep_checkpoint:
            return
        try:
            with self._connect() as conn:
                staging = self.run_state.get("staging")
                if staging and table_exists(conn, self.target.backend, staging):
                    conn.execute(f"DROP TABLE {sql.quote(self.target.backend, staging)}")
                conn.execute(sql.checkpoint_delete(self.target.backend), {"run_id": self.run_id})
        except Exception as exc:  # best effort: the run failed already, say why it stays
            log.warning("could not clean up ETL run %s: %s", self.run_id, exc)


def _parts(conn: Any, backend: str, run_id: str) -> list[str]:
    rows = conn.query(f"SELECT part FROM {sql.quote(backend, sql.CHECKPOINT_TABLE)} "
                      "WHERE run_id = :run_id", {"run_id": run_id})
    return [r["part"] for r in rows]


def etl_counts(counts: dict[str, int]) -> dict[str, int]:
    """The ETL result keys from the job layer's counters."""
    return {"extracted": counts.get("read", 0), "transformed": counts.get("processed", 0),
            "loaded": counts.get("written", 0), "rejected": counts.get("errors", 0),
            "skipped": counts.get("skipped", 0)}
