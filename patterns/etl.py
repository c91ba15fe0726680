"""Database ETL on Ray actors: four real modes, partitioned parallel extract, exactly-once loads.

Public API (the names of dataknobs-fsm's ``patterns.etl``)::

    from patterns.etl import create_etl_pipeline, ETLMode
    etl = create_etl_pipeline(
        source={"type": "database", "provider": "postgresql",
                "connection": "postgresql://user:pw@host/db", "table": "orders"},
        target={"type": "database", "provider": "postgresql",
                "connection": "postgresql://user:pw@host/dw", "table": "orders"},
        mode=ETLMode.UPSERT)
    result = await etl.run(checkpoint_id="orders-2024")     # or etl.run_sync(...)

Modes: APPEND inserts; UPSERT inserts or updates by key (``key_columns``, else the target's
primary key); FULL_REFRESH loads a staging table and swaps it for the target in one
transaction; INCREMENTAL reads the rows past the watermark of the last run and upserts them.
The source is split into key ranges spread over ETL worker actors
(``etl/<run id>/worker/<i>``, the job layer's workers); each batch commits together with its
checkpoint row in the target database, so a run resumed with the same ``checkpoint_id``
after any crash loads every source row exactly once.

Values keep their declared types: a PostgreSQL source's JSON columns are read as their JSON
text (JSON ``null`` apart from SQL NULL, ``json``'s text exactly as stored), so a
transformation sees that text (``json.loads`` it to work on it); a JSON target column takes
text as is and any other value (a dict, ``True``) as JSON; PostgreSQL array columns take
lists. A file target gets the source's declared decimals (``numeric(12,2)``) and JSON as text.

A run without a ``checkpoint_id`` whose driver was killed leaves its staging table and
checkpoint rows; the next run of the same target (from this host) removes them and logs what.

Results carry the job layer's keys (``records_processed``, ``errors``, ``skipped``,
``duration``, ``throughput``, ``error_file``, ``run_id`` ...) and the ETL keys
(``extracted``, ``transformed``, ``loaded``, ``rejected``). Rejected records (key, stage,
reason, record) are in the target's ``fsm_etl_rejects`` table and the run's error file;
``run(redrive=run_id)`` re-runs exactly those once the transformation is fixed
(``patterns._etl.redrive``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from fsm_actors.platform.event_loop import run_sync
from patterns._etl.config import ETLConfig, ETLMode, coerce_config
from patterns._etl.runner import plan_run
from patterns._records import make_validator
from patterns.errors import ErrorThresholdExceeded, PatternError

__all__ = [
    "DatabaseETL",
    "ETLConfig",
    "ETLMode",
    "ErrorThresholdExceeded",
    "PatternError",
    "create_data_migration",
    "create_data_warehouse_load",
    "create_database_sync",
    "create_etl_pipeline",
]


class DatabaseETL:
    """Runs one ``ETLConfig`` (a config, a dict of its fields, or its fields as keywords).

    ``address`` picks the Ray cluster (``runtime.ensure_ray``'s rules). Database access goes
    through the cluster's resource manager (pool caps hold cluster-wide); ``local=True`` runs
    the same plan and step in this process, without Ray. ``run`` is the one
    async implementation; ``run_sync`` its synchronous form. Raises ``PatternError`` for bad
    config or unreachable databases (credentials hidden), ``ErrorThresholdExceeded`` past
    ``error_threshold``.
    """

    def __init__(self, config: ETLConfig | dict[str, Any] | None = None, *,
                 address: str | None = None, local: bool = False,
                 sync_interval: float | None = None, step_wrapper: Any = None,
                 **kwargs: Any) -> None:
        self.config = coerce_config(config, kwargs)
        # a malformed validation_schema fails here (FSMConfigError at its key), not in workers
        make_validator(self.config.validation_schema)
        self.address = address
        self.local = local
        #: seconds between the runs of ``run_periodically``
        self.sync_interval = sync_interval
        #: ``step_wrapper(step recipe) -> recipe`` run on the workers instead (a pipeline
        #: file's ``error_handling``: ``patterns._pipeline.kind_etl``)
        self.step_wrapper = step_wrapper

    async def run_periodically(self, checkpoint_id: str | None = None, *,
                               runs: int | None = None,
                               on_result: Callable[[dict[str, Any]], Any] | None = None
                               ) -> list[dict[str, Any]]:
        """``run`` every ``sync_interval`` seconds (counted from each run's start), ``runs``
        times (None: until cancelled); ``on_result`` hears each result. Returns the results.
        A run that fails ends the loop with its error (the next start resumes it)."""
        import asyncio
        import time

        if not self.sync_interval or self.sync_interval <= 0:
            raise PatternError("run_periodically needs sync_interval > 0 (seconds between "
                               "runs): create_database_sync(..., sync_interval=300)",
                               pattern="etl")
        results: list[dict[str, Any]] = []
        while runs is None or len(results) < runs:
            started = time.monotonic()
            result = await self.run(checkpoint_id)
            results.append(result)
            if on_result is not None:
                on_result(result)
            if runs is not None and len(results) >= runs:
                break
            await asyncio.sleep(max(0.0, self.sync_interval - (time.monotonic() - started)))
        return results

    async def run(self, checkpoint_id: str | None = None,
                  on_progress: Callable[[Any], Any] | None = None, *,
                  redrive: str | os.PathLike[str] | bool | None = None) -> dict[str, Any]:
        """Extract, transform and load; with ``checkpoint_id`` a re-run resumes (and a
        finished APPEND/UPSERT run is a no-op returning its result).

        ``redrive``: re-run only the rows a finished run rejected, with this config's
        current record work (``True``: the run of ``checkpoint_id``; else its run id or
        its error file); rows that now pass are loaded once, those that still fail are
        the run's new rejects; returns ``{redriven, succeeded, still_failing,
        not_redrivable, loaded, run_id, error_file, ...}`` (``patterns._etl.redrive``)."""
        import asyncio

        from fsm_actors.platform import runtime
        from fsm_actors.platform.jobs.driver import run_job
        from resource_actors.manager import ResourceManager

        cfg = self.config
        if redrive is not None and redrive is not False:
            from patterns._etl.endpoints import FileEndpoint
            from patterns._etl.redrive import plan_redrive, redrive_file_target, run_of

            run_id = run_of(redrive, checkpoint_id, cfg)
            if isinstance(cfg.target_endpoint(cfg.source_endpoint()), FileEndpoint):
                def run_etl(again: ETLConfig, rid: str) -> Any:
                    return DatabaseETL(again, address=self.address, local=self.local).run(rid)

                return await redrive_file_target(cfg, run_id, run_etl)
        if self.local:
            workers = 1
            manager = ResourceManager(local=True)
        else:
            # connect on this thread: Ray ties the processes of a local start to the thread
            # that started them, and asyncio.run's executor threads end with the loop
            runtime.ensure_ray(self.address)
            workers = cfg.parallel_workers or max(1, runtime.cluster_cpus())
            manager = await asyncio.to_thread(ResourceManager, address=self.address)
        try:
            if redrive is not None and redrive is not False:
                job = await asyncio.to_thread(plan_redrive, cfg, run_id, manager, workers)
            else:
                job = await asyncio.to_thread(plan_run, cfg, checkpoint_id, manager, workers)
            if isinstance(job, dict):
                return job
            job.step_wrapper = self.step_wrapper
            try:
                threshold = None if redrive else cfg.error_threshold
                return await run_job(job, resumable=True, error_threshold=threshold,
                                     on_progress=on_progress, address=self.address,
                                     workers=job.workers(workers), local=self.local)
            except PatternError as exc:
                cause = getattr(exc, "cause", None)  # a worker's error, wrapped by Ray
                if isinstance(cause, PatternError):
                    raise cause from None
                raise
        finally:
            await asyncio.to_thread(manager.close)

    def run_sync(self, checkpoint_id: str | None = None, *,
                 redrive: str | os.PathLike[str] | bool | None = None) -> dict[str, Any]:
        """``run`` from synchronous code."""
        if not self.local:
            from fsm_actors.platform import runtime

            # connect on the caller's thread: Ray installs its signal handlers only there
            runtime.ensure_ray(self.address)
        return run_sync(self.run(checkpoint_id, redrive=redrive))

    def __repr__(self) -> str:
        """Mode, source and target (passwords hidden); never raises: what a run would
        refuse is shown as ``<...>``."""
        try:
            src = self.config.source_endpoint()
            source = src.describe()
        except PatternError:
            src, source = None, "<no table or query>"
        try:
            target = self.config.target_endpoint(src).describe()
        except PatternError:
            target = "<no table>"
        return f"DatabaseETL(mode={self.config.mode.name}, source={source!r}, target={target!r})"


def create_etl_pipeline(source: str | dict[str, Any], target: str | dict[str, Any],
                        mode: ETLMode | str = ETLMode.FULL_REFRESH,
                        transformations: Sequence[Any] | None = None,
                        **kwargs: Any) -> DatabaseETL:
    """A ``DatabaseETL`` from a source and a target (dicts or URLs) and ``ETLConfig`` fields."""
    return DatabaseETL(source=source, target=target, mode=mode,
                       transformations=list(transformations) if transformations else None,
                       **kwargs)


def create_database_sync(source: str | dict[str, Any], target: str | dict[str, Any],
                         sync_interval: float | None = None, **kwargs: Any) -> DatabaseETL:
    """An INCREMENTAL pipeline: each ``run()`` moves the rows past the last watermark;
    ``run_periodically()`` does that every ``sync_interval`` seconds."""
    kwargs.setdefault("mode", ETLMode.INCREMENTAL)
    return DatabaseETL(source=source, target=target, sync_interval=sync_interval, **kwargs)


def create_data_migration(source: str | dict[str, Any], target: str | dict[str, Any],
                          field_mappings: dict[str, str] | None = None,
                          transformations: Sequence[Any] | None = None,
                          **kwargs: Any) -> DatabaseETL:
    """A FULL_REFRESH copy with ``field_mappings`` (``{source field: target column}``) and
    ``transformations``."""
    kwargs.setdefault("mode", ETLMode.FULL_REFRESH)
    return DatabaseETL(source=source, target=target, field_mappings=field_mappings,
                       transformations=list(transformations) if transformations else None,
                       **kwargs)


def create_data_warehouse_load(sources: Sequence[str | dict[str, Any]],
                               warehouse: str | dict[str, Any],
                               aggregations: Sequence[Any] | None = None,
                               **kwargs: Any) -> list[DatabaseETL]:
    """One APPEND pipeline per source into ``warehouse``; ``aggregations`` are per-record or
    ``Vectorized`` transformations applied on the way."""
    kwargs.setdefault("mode", ETLMode.APPEND)
    return [DatabaseETL(source=s, target=warehouse,
                        transformations=list(aggregations) if aggregations else None, **kwargs)
            for s in sources]
