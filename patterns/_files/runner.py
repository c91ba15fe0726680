"""The driver of a file-processing run: plan, workers, checkpoint, commit.

The driver reads chunks (or hands whole small files to workers), puts each batch in the
object store once and sends its ObjectRef through the project's ``ActorPool``: one actor call
per chunk, a bounded number in flight per actor (the reader never runs further ahead), dead
actors replaced and their chunks re-sent. Workers write parts; the driver only sees small
stats. With a ``checkpoint_id`` the batches done are saved (after their parts exist), so a
re-run skips them; the output files are joined from the parts at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pyarrow as pa
import ray

from fsm_actors import runtime
from fsm_actors.checkpoint import Checkpoint, CheckpointStore
from fsm_actors.pool import ActorPool, pool_actor_name
from patterns._files.aggregate import merge, parse_aggregations
from patterns._files.commit import Joiner, commit, concat_errors
from patterns._files.config import FileProcessingConfig, ProcessingMode
from patterns._files.parts import Staging
from patterns._files.planner import Plan, make_plan
from patterns._files.prefetch import Prefetch
from patterns._files.progress import FileProgress
from patterns._files.worker import (
    BatchStats,
    ChunkTask,
    FileResult,
    FileTask,
    RemoteFileWorker,
    WorkerSpec,
    safe_chunks,
)
from patterns.errors import ErrorThresholdExceeded, PatternError

log = logging.getLogger(__name__)
SAVE_EVERY = 1.0
COUNT_KEYS = ("rows_read", "processed", "written", "skipped", "errors")


class FileJob:
    """One run of a ``FileProcessingConfig``. Use once."""

    def __init__(
        self,
        config: FileProcessingConfig,
        *,
        checkpoint_id: str | None = None,
        on_progress: Callable[[FileProgress], Any] | None = None,
        address: str | None = None,
    ) -> None:
        self.config = config
        self.checkpoint_id = checkpoint_id or config.checkpoint_id
        self.run_id = self.checkpoint_id or uuid.uuid4().hex[:12]
        self.on_progress = on_progress
        self.address = address
        self.agg_specs, callables = parse_aggregations(config.aggregations)
        if callables and config.mode is not ProcessingMode.WHOLE:
            raise PatternError(
                f"aggregations {sorted(callables)} are callables: they need every record at "
                "once, so use mode=WHOLE, or a mergeable spec such as 'count', 'sum:amount', "
                "('mean', 'amount')",
                pattern="file_processing",
            )
        self.whole_aggregations = callables
        self.plan: Plan = make_plan(config, self.run_id)
        self.staging = Staging(self.plan.staging)
        self._totals: dict[int, int] = {}

    async def run(self) -> dict[str, Any]:
        """Process every input and commit the output; returns the result dict."""
        started = time.time()
        store = CheckpointStore(self.plan.checkpoint_dir) if self.checkpoint_id else None
        cp = self._checkpoint(store)
        if cp.state == "committed":  # crashed after the commit, before cleaning up
            self._clean(store)
            return dict(cp.meta["result"])
        runtime.ensure_ray(self.address)
        pool = self._pool()
        items = Prefetch(self._item_iter(cp), pool.size * self.plan.max_in_flight)
        progress = FileProgress(len(self.plan.inputs), start_time=started)
        joiner = self._joiner()
        # The joiner reads and writes whole parts: its own thread keeps the loop responsive.
        join_thread = ThreadPoolExecutor(1, thread_name_prefix="file-join")
        is_done, total = self._progress_of(cp)
        last_save = time.time()
        try:
            async for _, result in pool.map(self._call, items, ordered=False):
                self._record(cp, result)
                self._apply_totals(cp)
                if joiner:
                    join_thread.submit(joiner.advance, is_done, total)
                self._report(cp, progress)
                self._check_threshold(cp, store)
                if store and time.time() - last_save >= SAVE_EVERY:
                    store.save_checkpoint(cp)
                    last_save = time.time()
        except BaseException:
            items.close()
            pool.shutdown()
            join_thread.shutdown(wait=True)
            if joiner:
                joiner.abort()
            if store is None:  # nothing can resume this run: drop its parts
                self.staging.remove()
                _remove_if_empty(self.plan.staging.parent)
            raise
        items.close()
        pool.shutdown()
        join_thread.shutdown(wait=True)
        self._apply_totals(cp)
        if store:
            store.save_checkpoint(cp)
        if joiner:
            joiner.finish(is_done, total)
        result = self._commit(cp, started)
        if store:
            cp.state, cp.meta["result"] = "committed", result
            store.save_checkpoint(cp)
        self._clean(store)
        return result

    def _joiner(self) -> Joiner | None:
        """Single-file output is joined while the run goes."""
        plan = self.plan
        if plan.output_kind != "single":
            return None
        files = [item.index for item in plan.inputs]
        return Joiner(
            plan.output_path, plan.outputs[0], self.staging, files, self.config.xml_root_element
        )

    def _progress_of(self, cp: Checkpoint):
        """``is_done(file_index, batch)`` and ``total_batches(file_index)`` over ``cp``."""
        paths = [item.path for item in self.plan.inputs]

        def is_done(index: int, batch: int) -> bool:
            return cp.partitions[paths[index]].is_done(batch)

        def total(index: int) -> int | None:
            return cp.partitions[paths[index]].total_batches

        return is_done, total

    def _clean(self, store: CheckpointStore | None) -> None:
        self.staging.remove()
        if store:
            store.delete(self.run_id)
        _remove_if_empty(self.plan.staging.parent)

    def _checkpoint(self, store: CheckpointStore | None) -> Checkpoint:
        paths = [i.path for i in self.plan.inputs]
        cp = store.load_checkpoint(self.run_id) if store else None
        if cp is None:
            cp = Checkpoint(self.run_id, meta={"inputs": paths})
        elif cp.meta.get("inputs") != paths:
            raise PatternError(
                f"checkpoint {self.run_id!r} was made for other inputs "
                f"({len(cp.meta.get('inputs', []))} files); use another checkpoint_id or "
                f"delete {store.path(self.run_id)}",
                pattern="file_processing",
                run_id=self.run_id,
            )
        for item in self.plan.inputs:
            part = cp.partition(item.path)
            if part.fingerprint and part.fingerprint != item.fingerprint:
                log.warning(
                    "%s changed since checkpoint %s: processing it again", item.path, self.run_id
                )
                cp.partitions[item.path] = part = type(part)()
                self.staging.drop_file(item.index)
            part.fingerprint = item.fingerprint
        return cp

    def _pool(self) -> ActorPool:
        plan, config = self.plan, self.config
        spec = WorkerSpec(
            staging=str(plan.staging),
            read=plan.read,
            outputs=plan.outputs,
            text_field_name=config.text_field_name,
            xml_record=config.xml_record_element or "record",
            partition_by=tuple(config.partition_by or ()),
            filters=tuple(config.filters or ()),
            transformations=tuple(config.transformations or ()),
            validation_schema=config.validation_schema,
            agg_specs=tuple(self.agg_specs),
            group_by=tuple(config.group_by or ()),
            whole_aggregations=dict(self.whole_aggregations),
        )
        spec_ref = ray.put(spec)
        base = f"file_processing/{self.run_id}/worker"

        def make_actor(index: int, generation: int):
            name = pool_actor_name(base, index, generation)
            options = runtime.actor_options("worker", name=name)
            return RemoteFileWorker.options(**options).remote(spec_ref, name)

        size = plan.workers(runtime.cluster_cpus(), config.worker_count)
        return ActorPool(make_actor, size, max_in_flight=plan.max_in_flight, name=base)

    @staticmethod
    def _call(actor, item):
        if isinstance(item, FileTask):
            return actor.process_file.remote(item)
        task, ref = item
        return actor.process_chunk.remote(task, ref)

    def _item_iter(self, cp: Checkpoint) -> Iterator[Any]:
        plan = self.plan
        for item in plan.inputs:
            part = cp.partitions[item.path]
            if part.complete:
                continue
            if item.index in plan.worker_read:
                skip = frozenset(range(part.next_batch)) | frozenset(part.done)
                yield FileTask(item.index, item.path, item.format, plan.chunk_size, skip)
                continue
            total = 0
            options = replace(plan.read, format=item.format)
            for chunk in safe_chunks(item.path, options, plan.chunk_size):
                total = chunk.index + 1
                if part.is_done(chunk.index):
                    continue
                task = ChunkTask(
                    item.index, item.path, chunk.index, chunk.first_record, chunk.errors
                )
                ref = ray.put(chunk.batch)
                del chunk
                pa.default_memory_pool().release_unused()
                yield task, ref
            self._totals[item.index] = total

    def _record(self, cp: Checkpoint, result: BatchStats | FileResult) -> None:
        path = self.plan.inputs[result.file_index].path
        part = cp.partitions[path]
        batches = result.batches if isinstance(result, FileResult) else [result]
        for stats in batches:
            part.mark_done(stats.batch, stats.counts())
            if stats.whole_aggregations is not None:
                # Plain JSON types, so the checkpoint can hold them for a resumed run.
                values = json.loads(json.dumps(stats.whole_aggregations, default=str))
                cp.meta.setdefault("whole_aggregations", {})[path] = values
        if isinstance(result, FileResult):
            part.total_batches = result.total_batches

    def _apply_totals(self, cp: Checkpoint) -> None:
        for index, total in list(self._totals.items()):
            cp.partitions[self.plan.inputs[index].path].total_batches = total

    def _counts(self, cp: Checkpoint) -> dict[str, int]:
        totals = dict.fromkeys(COUNT_KEYS, 0)
        for part in cp.partitions.values():
            for key in COUNT_KEYS:
                totals[key] += part.counts.get(key, 0)
        return totals

    def _report(self, cp: Checkpoint, progress: FileProgress) -> None:
        if self.on_progress is None:
            return
        counts = self._counts(cp)
        progress.files_done = sum(1 for p in cp.partitions.values() if p.complete)
        progress.batches_done += 1
        progress.lines_read = counts["rows_read"]
        progress.records_processed = counts["processed"]
        progress.records_written = counts["written"]
        progress.skipped = counts["skipped"]
        progress.errors = counts["errors"]
        self.on_progress(progress)

    def _check_threshold(self, cp: Checkpoint, store: CheckpointStore | None) -> None:
        limit = self.config.error_threshold
        if limit is None:
            return
        counts = self._counts(cp)
        errors, seen = counts["errors"], max(counts["rows_read"], 1)
        if errors <= (limit if limit >= 1 else limit * seen):
            return
        if store:
            store.save_checkpoint(cp)
        error_file = self._write_errors()
        allowed = f"{int(limit)} errors" if limit >= 1 else f"{limit:.1%} of records"
        raise ErrorThresholdExceeded(
            f"file processing stopped: {errors} rejected records out of {seen} read exceed "
            f"error_threshold ({allowed}). The rejected records, with file, line and reason, "
            f"are in {error_file}",
            pattern="file_processing",
            run_id=self.run_id,
            error_file=str(error_file),
        )

    def _write_errors(self):
        parts = self.staging.error_parts()
        if not parts:
            return None
        concat_errors(self.plan.error_file, parts)
        return self.plan.error_file

    def _commit(self, cp: Checkpoint, started: float) -> dict[str, Any]:
        """Join the outputs that were not joined during the run; the result dict."""
        plan = self.plan
        unfinished = [p for p, s in cp.partitions.items() if not s.complete]
        if unfinished:
            raise PatternError(
                f"internal: inputs {unfinished} were not finished; re-run with the same "
                "checkpoint_id to resume",
                pattern="file_processing",
                run_id=self.run_id,
            )

        def join(target, parts, output) -> None:
            commit(
                target,
                parts,
                output.format,
                compression=output.compression,
                csv_delimiter=output.csv_delimiter,
                xml_root=self.config.xml_root_element,
            )

        if plan.output_kind == "per_file":
            for item in plan.inputs:
                output = plan.outputs[item.index]
                join(
                    plan.output_for(item),
                    self.staging.data_parts(output.ext, file_index=item.index),
                    output,
                )
        elif plan.output_kind == "partitioned":
            output = plan.outputs[0]
            for partition in self.staging.partitions():
                join(
                    plan.output_path / partition / f"data{output.ext}",
                    self.staging.data_parts(output.ext, partition=partition),
                    output,
                )
        error_file = self._write_errors()
        counts = self._counts(cp)
        duration = time.time() - started
        result: dict[str, Any] = {
            "lines_read": counts["rows_read"],
            "records_processed": counts["processed"],
            "records_written": counts["written"],
            "errors": counts["errors"],
            "skipped": counts["skipped"],
            "files": len(plan.inputs),
            "duration": duration,
            "throughput": counts["rows_read"] / duration if duration > 0 else 0.0,
            "error_file": str(error_file) if error_file else None,
            "output_path": str(plan.output_path) if plan.output_path else None,
            "run_id": self.run_id,
        }
        aggregations = self._aggregations(cp)
        if aggregations is not None:
            result["aggregations"] = aggregations
        return result

    def _aggregations(self, cp: Checkpoint) -> Any:
        if not self.agg_specs and not self.whole_aggregations:
            return None
        out: dict[str, Any] = {}
        if self.agg_specs:
            merged = merge(self.staging.partials(), self.agg_specs, self.config.group_by or ())
            if self.config.group_by:
                out["groups"] = merged
            else:
                out.update(merged)
        for name in self.whole_aggregations:
            whole = cp.meta.get("whole_aggregations", {})
            values = {path: aggs[name] for path, aggs in whole.items()}
            out[name] = next(iter(values.values())) if len(self.plan.inputs) == 1 else values
        return out


def _remove_if_empty(state_dir) -> None:
    """Remove the ``.fsm_actors`` directory (and its checkpoints folder) when empty."""
    for path in (state_dir / "checkpoints", state_dir):
        with contextlib.suppress(OSError):
            path.rmdir()
