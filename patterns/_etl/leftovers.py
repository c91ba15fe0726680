"""What a killed ETL run leaves in its target, and cleaning it (plain core).

A run without a ``checkpoint_id`` cannot be resumed, so when it fails it drops its staging
table and checkpoint rows itself (``ETLJob.abort``). When its driver is killed (SIGKILL,
a lost node) nothing does: the run row (``@run``) says ``running`` forever. Each run row
records who runs it (``owner``: host, pid and the process's start time); the next run of the
same target removes what such a run left once that process is gone, naming it in a log line.
A run whose driver is on another host is left alone (its liveness cannot be told from here).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

from patterns._etl import dialect as sql
from patterns._etl.catalog import table_exists

log = logging.getLogger(__name__)

RUN_PART = "@run"


def _started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def this_owner() -> dict[str, Any]:
    """Who runs a run: this host, this process and its start time (a reused pid differs)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _started(pid)}


def owner_gone(owner: dict[str, Any] | None) -> bool:
    """True when ``owner``'s process is known to have ended (on this host only)."""
    if not owner or owner.get("host") != socket.gethostname():
        return False
    started = _started(int(owner["pid"]))
    return started is None or started != owner.get("started")


def clean_leftovers(conn: Any, backend: str, table: str, run_id: str) -> list[str]:
    """Remove what earlier runs of ``table`` without a checkpoint id left when their driver
    died: their staging table and checkpoint rows. Returns what was removed (also logged)."""
    rows = conn.query(f"SELECT run_id, state FROM {sql.quote(backend, sql.CHECKPOINT_TABLE)} "
                      "WHERE part = :part", {"part": RUN_PART})
    removed: list[str] = []
    for row in rows:
        if row["run_id"] == run_id:
            continue
        try:
            state = json.loads(row["state"])
        except (TypeError, ValueError):
            continue
        target = ((state.get("settings") or {}).get("target") or {}).get("table")
        if (state.get("keep") is not False or state.get("status") != "running"
                or target != table or not owner_gone(state.get("owner"))):
            continue
        what = []
        staging = state.get("staging")
        if staging and table_exists(conn, backend, staging):
            conn.execute(f"DROP TABLE {sql.quote(backend, staging)}")
            what.append(f"staging table {staging!r}")
        conn.execute(sql.checkpoint_delete(backend), {"run_id": row["run_id"]})
        what.append("its checkpoint rows")
        owner = state["owner"]
        log.warning("removed what ETL run %s left in %r (its driver, pid %s on %s, ended "
                    "before the run did): %s", row["run_id"], table, owner.get("pid"),
                    owner.get("host"), ", ".join(what))
        removed.append(row["run_id"])
    return removed
