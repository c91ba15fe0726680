"""Shared helpers of the ETL tests (no tests here): an in-process run of the ETL job kind and
the database servers' fixtures and the helpers that make and read tables (the ``db`` fixture
is in tests/patterns/conftest.py).

``run_inline`` plays the job layer's driver in this process: plan, run every task through
one step, commit. It exercises the same plan, step and commit as a run on actors.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import text

from fsm_actors.platform.jobs.model import StepContext
from patterns._etl.config import coerce_config
from patterns._etl.runner import plan_run
from resource_actors.manager import ResourceManager
from tests.resource_actors.conftest import mariadb_server, postgres_server  # noqa: F401


def name_tag() -> str:
    """A short unique suffix for table names."""
    return uuid.uuid4().hex[:6]


def table_names(*prefixes: str) -> list[str]:
    """One table name per prefix, all with the same unique suffix."""
    tag = name_tag()
    return [f"{p}_{tag}" for p in prefixes]


def make_table(engine: Any, table: str, columns: str, rows: Iterable[Sequence[Any]] = (),
               cols: Sequence[str] | None = None) -> None:
    """``CREATE TABLE table (columns)`` and insert ``rows`` (values of ``cols``)."""
    rows = list(rows)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} ({columns})"))
        if rows:
            assert cols is not None, "rows need their column names"
            marks = ", ".join(f":{c}" for c in cols)
            conn.execute(text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"),
                         [dict(zip(cols, r, strict=True)) for r in rows])


def execute(engine: Any, *statements: str,
            rows: tuple[str, list[dict[str, Any]]] | None = None) -> None:
    """Run ``statements`` in one transaction, then ``rows``: (an INSERT, its parameters)."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
        if rows:
            conn.execute(text(rows[0]), rows[1])


def fetch_rows(engine: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """The rows of a query, as tuples."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params or {})]


class Crash(BaseException):
    """Stands for the process dying mid-run (not a per-record failure)."""


def crash_once(when: Callable[[dict[str, Any], int], bool]
               ) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], Callable[[], None]]:
    """A transformation that raises ``Crash`` at the first record for which ``when(record,
    n)`` holds (``n``: the records it has seen, this one included), and ``disarm``, after
    which it passes every record: the resumed run goes on with the same transformation (a
    changed one is refused)."""
    seen = [0]
    armed = [True]

    def dies(record: dict[str, Any]) -> dict[str, Any]:
        seen[0] += 1
        if armed and when(record, seen[0]):
            raise Crash()
        return record

    return dies, armed.clear


class NothingDone:
    def is_done(self, partition: str, seq: int) -> bool:
        return False

    def complete(self, partition: str) -> bool:
        return False


def run_inline(config: dict[str, Any], checkpoint_id: str | None = None,
               workers: int = 2) -> dict[str, Any]:
    """Run an ETL config in this process; returns the ETL keys (or a finished run's result)."""
    manager = ResourceManager(local=True)
    try:
        job = plan_run(coerce_config(config, {}), checkpoint_id, manager, workers)
        if isinstance(job, dict):
            return job
        counts: dict[str, int] = {}
        try:
            steps = [job.step_spec().build(StepContext(job.run_id, i, None))
                     for i in range(workers)]
            try:
                for n, task in enumerate(job.tasks(NothingDone())):
                    result = steps[n % workers].run(task)
                    for batch in result.batches.values():
                        for key, value in batch.items():
                            counts[key] = counts.get(key, 0) + value
            finally:
                for step in steps:
                    step.close()
        except BaseException:
            job.abort()
            raise
        return {**job.commit(counts, {}), "run_id": job.run_id}
    finally:
        manager.close()


def sqlite_db(path: str, ddl: str, rows: list[tuple] | None = None,
              insert: str | None = None) -> str:
    """Create an SQLite file with ``ddl`` (and rows); returns its SQLAlchemy URL."""
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    if rows:
        conn.executemany(insert, rows)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def sqlite_rows(path: str, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def tmp_db(tmp_path: Any, name: str) -> str:
    return os.fspath(tmp_path / name)


def kill_actor_when(name: str, ready: Any, timeout: float = 120) -> tuple[Any, list[str]]:
    """A started thread that ``ray.kill``s the actor ``name`` once ``ready()`` holds; the
    list gets its name when it was killed."""
    import threading
    import time

    import ray

    from fsm_actors.platform import runtime

    killed: list[str] = []

    def killer() -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not killed:
            if ready():
                try:
                    actor = ray.get_actor(name, namespace=runtime.namespace())
                except ValueError:
                    time.sleep(0.05)
                    continue
                ray.kill(actor, no_restart=True)
                killed.append(name)
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread, killed


def run_and_sigkill(script: str, cwd: str, ready: Any, timeout: float = 180) -> None:
    """Run ``script`` in a new Python process; SIGKILL it once ``ready()`` holds (it must
    still be running then)."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, "the driver finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def slow(record: dict[str, Any]) -> dict[str, Any]:
    """The chaos runs' transformation (a resume passes it again: same record work)."""
    import time

    time.sleep(0.0003)
    return record


_DRIVER = """
import sys
sys.path.insert(0, {root!r})
from fsm_actors.platform import runtime
runtime.ensure_ray(address={address!r})
from patterns.etl import DatabaseETL
from tests.patterns.test_etl_support import slow

DatabaseETL(source={source!r}, target={target!r}, mode={mode!r}, transformations=[slow],
            batch_size=250, checkpoint_interval=3000, parallel_workers=2,
            work_dir={work!r}).run_sync({checkpoint!r})
"""


def etl_driver(root: str, source: dict[str, Any], target: dict[str, Any], mode: str,
               work: str, checkpoint: str) -> str:
    """A driver script that runs a slowed-down ETL on this session's Ray (to be killed)."""
    from fsm_actors.platform import runtime

    return _DRIVER.format(root=root, address=runtime.ensure_ray().address, source=source,
                          target=target, mode=mode, work=work, checkpoint=checkpoint)
