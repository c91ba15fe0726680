"""File jobs as a job kind: inputs read in chunks, a record stage, parts joined at the end.

Plain core (the driver runs it). ``FileJobKind`` reads chunks on the driver (or has workers
read whole small files), ships them to ``FileStep``s, joins single-file output while the run
goes (``Joiner``) and commits per-file and partitioned outputs at the end, always through a
temp file and a rename. The file-processing pattern and the FSM stream are both this kind
with another stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fsm_actors.platform.io import storage
from fsm_actors.platform.jobs.file_step import FileStepSpec, safe_chunks
from fsm_actors.platform.jobs.files import (
    DEFAULT_CHUNK,
    RECORDS_INPUT,
    FileJobSpec,
    Plan,
    make_plan,
)
from fsm_actors.platform.jobs.model import DoneSet, JobKind, PartitionTotal, Task, TaskResult
from fsm_actors.platform.jobs.parts import Joiner, Staging, commit

#: ``finish(staging, meta) -> extra result keys``: e.g. merging partial aggregates
Finish = Callable[[Staging, dict[str, Any]], dict[str, Any]]


class FileJobKind(JobKind):
    """One file job. Use once."""

    def __init__(
        self,
        spec: FileJobSpec,
        stage: Any,
        run_id: str,
        *,
        label: str = "",
        finish: Finish | None = None,
        identity: Any = None,
        error: Callable[..., Exception] | None = None,
    ) -> None:
        self.spec = spec
        self.stage = stage
        self.pattern = spec.pattern
        self.run_id = run_id
        self.label = label or spec.pattern
        self.plan: Plan = make_plan(spec, run_id)
        self.staging = self.plan.staging
        self.checkpoint_dir = self.plan.checkpoint_dir
        self.error_file = self.plan.error_file
        self.max_in_flight = self.plan.max_in_flight
        if not getattr(stage, "runs_user_code", True):  # Arrow kernels only
            cpus = len(os.sched_getaffinity(0))
            self.local_lanes = min(cpus, self.workers(cpus))
        self._finish = finish
        self._identity = identity
        self._error = error
        self._stage_dir = Staging(self.plan.staging)
        self._done: Any = None
        self._joiner: Joiner | None = None
        self._join_thread: ThreadPoolExecutor | None = None
        self._by_key = {item.key: item for item in self.plan.inputs}
        self._types: dict[str, Any] = {}

    # -- planning --------------------------------------------------------------------------
    def local_paths(self) -> list[str]:
        if self.spec.shared_fs:  # declared seen alike by every node
            return []
        plan = self.plan
        paths = [i.path for i in plan.inputs if i.path != RECORDS_INPUT]
        if plan.output_uri is None and plan.output_path is not None:
            paths.append(str(plan.output_path))
        paths.append(str(plan.staging))
        return [p for p in dict.fromkeys(paths) if not storage.is_remote(p)]

    def fingerprint(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "inputs": [item.key for item in plan.inputs],
            "chunk_size": plan.chunk_size,
            "worker_read": sorted(plan.worker_read),
            "output": plan.output_uri or (str(plan.output_path) if plan.output_path else None),
            "layout": plan.output_kind,
            "outputs": {str(k): asdict(v) for k, v in plan.outputs.items()},
            "partition_by": list(self.spec.partition_by),
            "read": {k: v for k, v in asdict(plan.read).items() if k != "format"},
            "steps": self._identity,
        }

    def partitions(self) -> dict[str, dict[str, Any]]:
        return {item.key: item.fingerprint for item in self.plan.inputs}

    def workers(self, cluster_cpus: int) -> int:
        return self.plan.workers(cluster_cpus, self.spec.workers)

    def step_spec(self) -> FileStepSpec:
        return FileStepSpec(
            read=self.plan.read,
            outputs=self.plan.outputs,
            stage=self.stage,
            partition_by=tuple(self.spec.partition_by),
        )

    def error(self, message: str, *, threshold: bool = False, **context: Any) -> Exception:
        if self._error is not None:
            return self._error(message, threshold=threshold, **context)
        return super().error(message, threshold=threshold, **context)

    # -- running ---------------------------------------------------------------------------
    def tasks(self, done: DoneSet) -> Iterator[Any]:
        self._start(done)
        plan = self.plan
        as_records = bool(getattr(self.stage, "wants_records", False))
        for item in plan.inputs:
            key = item.key
            if done.complete(key):
                continue
            if item.path == RECORDS_INPUT:
                yield from self._record_tasks(done, plan.chunk_size or DEFAULT_CHUNK)
                continue
            meta = {"file_index": item.index, "path": item.path}
            if item.byte_range is not None or item.index in plan.worker_read:
                meta.update(
                    format=item.format,
                    chunk_size=plan.chunk_size,
                    skip=done.done_batches(key),  # type: ignore[attr-defined]
                )
                if item.byte_range is not None:
                    meta.update(range=item.byte_range, types=self._file_types(item))
                yield Task(key, None, meta=meta)
                continue
            total = 0
            options = replace(plan.read, format=item.format)
            records = as_records and item.format in ("json", "jsonl")
            for chunk in safe_chunks(item.path, options, plan.chunk_size or 1 << 62, records):
                total = chunk.index + 1
                if done.is_done(key, chunk.index):
                    continue
                yield Task(
                    key,
                    chunk.index,
                    chunk.batch,
                    chunk.first_record,
                    meta={**meta, "errors": chunk.errors, "lines": chunk.lines},
                )
            yield PartitionTotal(key, total)

    def _file_types(self, item: Any) -> Any:
        """One type per column for the whole file, scanned once, shared by its ranges."""
        if item.path not in self._types:
            from fsm_actors.platform.io import csv_file_types
            from fsm_actors.platform.jobs.heartbeat import notice

            options = replace(self.plan.read, format=item.format)
            where = str(item.path)
            size = None if storage.is_remote(where) else os.path.getsize(where)
            notice(f"reading all of {storage.redact(str(item.path))}"
                   + (f" ({size / 1e6:,.0f} MB)" if size else "")
                   + " once for one type per column (csv_infer: sample reads its first "
                   "block only)")
            started = time.monotonic()
            with _every(10.0, lambda: notice(
                    f"still reading {storage.redact(str(item.path))} for column types "
                    f"({time.monotonic() - started:.0f} s)")):
                _, types, multiline = csv_file_types(item.path, options)
            notice(f"column types of {storage.redact(str(item.path))} known after "
                   f"{time.monotonic() - started:.1f} s")
            self._types[item.path] = (types, multiline)
        return self._types[item.path]

    def _record_tasks(self, done: DoneSet, size: int) -> Iterator[Any]:
        """Chunks of the iterable given as input, each a list of its items as they are."""
        chunk: list[Any] = []
        index = first = 0
        for record in self.spec.records:  # type: ignore[attr-defined]
            chunk.append(record)
            if len(chunk) >= size:
                if not done.is_done(RECORDS_INPUT, index):
                    yield Task(RECORDS_INPUT, index, chunk, first, meta={"file_index": 0})
                index, first, chunk = index + 1, first + len(chunk), []
        if chunk or index == 0:
            if not done.is_done(RECORDS_INPUT, index):
                yield Task(RECORDS_INPUT, index, chunk, first, meta={"file_index": 0})
            index += 1
        yield PartitionTotal(RECORDS_INPUT, index)

    def _start(self, done: Any) -> None:
        self._done = done
        plan = self.plan
        if plan.output_kind == "single":
            files = [item.index for item in plan.inputs]
            self._joiner = Joiner(
                plan.output_path, plan.outputs[0], self._stage_dir, files,
                self.spec.xml_root_element,
            )
            # The joiner reads and writes whole parts: its own thread keeps the loop free.
            self._join_thread = ThreadPoolExecutor(1, thread_name_prefix="file-join")

    def on_result(self, result: TaskResult) -> None:
        if result.side:
            sides = result.side if isinstance(result.side, dict) else {}
            whole = self._done.cp.meta.setdefault("whole", {})  # type: ignore[union-attr]
            for batch, value in sides.items():
                # plain JSON types, so the checkpoint can hold them for a resumed run
                whole.setdefault(result.partition, {})[str(batch)] = json.loads(
                    json.dumps(value, default=str)
                )
        if self._joiner is not None and self._join_thread is not None:
            self._join_thread.submit(self._joiner.advance, *self._progress_of())

    def partition_changed(self, partition: str) -> None:
        self._stage_dir.drop_file(self._by_key[partition].index)

    def _progress_of(self):
        paths = [item.key for item in self.plan.inputs]
        parts = self._done.cp.partitions  # type: ignore[union-attr]

        def is_done(index: int, batch: int) -> bool:
            return parts[paths[index]].is_done(batch)

        def total(index: int) -> int | None:
            return parts[paths[index]].total_batches

        return is_done, total

    # -- finishing -------------------------------------------------------------------------
    def commit(self, counts: dict[str, int], meta: dict[str, Any]) -> dict[str, Any]:
        plan = self.plan
        self._stop_joining()
        if self._joiner is not None:
            self._joiner.finish(*self._progress_of())
        elif plan.output_kind == "per_file":
            by_path: dict[str, list[Any]] = {}
            for item in plan.inputs:
                by_path.setdefault(item.path, []).append(item)
            for items in by_path.values():
                output = plan.outputs[items[0].index]
                parts = [
                    p
                    for item in items
                    for p in self._stage_dir.data_parts(output.ext, file_index=item.index)
                ]
                self._join(plan.output_for(items[0]), parts, output)
        elif plan.output_kind == "partitioned":
            self._commit_partitions()
        if plan.output_uri is not None:
            self._upload()
        extra: dict[str, Any] = {
            "files": len(plan.inputs),
            "output_path": storage.redact(plan.output_uri)
            if plan.output_uri
            else (str(plan.output_path) if plan.output_path else None),
        }
        if self._finish is not None:
            extra.update(self._finish(self._stage_dir, meta))
        return extra

    def _commit_partitions(self) -> None:
        plan = self.plan
        output = plan.outputs[0]
        produced = self._stage_dir.partitions()
        assert plan.output_path is not None
        for partition in produced:
            self._join(
                plan.output_path / partition / f"data{output.ext}",
                self._stage_dir.data_parts(output.ext, partition=partition),
                output,
            )
        # The output of a run is what that run produced: partitions of an earlier run that
        # this one did not produce go.
        keep = {p.split("/")[0] for p in produced}
        if plan.output_uri is not None:
            return  # the upload drops the old remote partitions
        for old in plan.output_path.glob("*=*"):
            if old.is_dir() and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)

    def _upload(self) -> None:
        """Put the outputs joined in the local temp directory onto the store, each object
        whole; a partitioned output's partitions this run did not produce go."""
        plan = self.plan
        assert plan.output_uri is not None and plan.output_path is not None
        if plan.output_kind == "single":
            storage.put_file(plan.output_path, plan.output_uri)
            return
        written = set(storage.upload_tree(plan.output_path, plan.output_uri))
        if plan.output_kind == "partitioned":
            base = plan.output_uri.rstrip("/") + "/"
            for uri in storage.list_files(plan.output_uri):
                first = uri[len(base):].split("/")[0]
                if "=" in first and uri not in written:
                    storage.delete(uri)

    def _drop_mirror(self) -> None:
        if self.plan.output_uri is not None and self.plan.output_path is not None:
            shutil.rmtree(self.plan.output_path.parent, ignore_errors=True)

    def _join(self, target: Path, parts: list[Path], output: Any) -> None:
        commit(
            target,
            parts,
            output.format,
            compression=output.compression,
            csv_delimiter=output.csv_delimiter,
            xml_root=self.spec.xml_root_element,
        )

    def _stop_joining(self) -> None:
        if self._join_thread is not None:
            self._join_thread.shutdown(wait=True)
            self._join_thread = None

    def abort(self) -> None:
        self._stop_joining()
        if self._joiner is not None:
            self._joiner.abort()
        self._drop_mirror()

    def cleanup(self) -> None:
        self._drop_mirror()
        if not isinstance(self.plan.staging, Path):
            return  # a prefix on a store: nothing left once its objects are gone
        state_dir = self.plan.staging.parent
        for path in (state_dir / "checkpoints", state_dir):
            with contextlib.suppress(OSError):
                path.rmdir()


@contextlib.contextmanager
def _every(seconds: float, say: Callable[[], None]) -> Iterator[None]:
    """Call ``say`` every ``seconds`` in a daemon thread while the block runs."""
    import threading

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            say()

    thread = threading.Thread(target=loop, name="fsm-actors-every", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
