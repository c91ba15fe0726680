"""``process_stream`` as a job: a file (or an iterator) through an FSM, exactly once.

``FSMStage`` is the record stage of a file job that runs each chunk through a compiled FSM
(in the job's worker actors, or in this process for ``local=True``); records ending in an
emitting end state are written, failures go to the run's error file with their state and
reason. Records reach the FSM as they were given: JSON inputs are read as dicts (not
through Arrow) and JSON Lines output is written from the dicts, so no key is added, no
value re-typed. The file job gives the stream what every job has: exactly-once output
committed atomically (the old output stays until the new one is complete), resume by
``checkpoint_id``, ``error_threshold`` and one result record.

``process_stream(settings=StreamSettings(...))`` carries what a pipeline file's
``options:`` and ``error_handling:`` give a stream: the memory bound, whole-file tasks, the
CSV read block, the retry policy of each chunk and the compensation of a failed run.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import threading
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fsm_actors.engine.counts import StateCounts, error_type
from fsm_actors.engine.resources import ResourceSpec
from fsm_actors.platform import metrics
from fsm_actors.platform.errors import FSMError
from fsm_actors.platform.io import ReadOptions, RowError
from fsm_actors.platform.io.convert import json_default
from fsm_actors.platform.io.errors import raw_text
from fsm_actors.platform.io.storage import is_remote, storage_options_for
from fsm_actors.platform.jobs import FileJobKind, FileJobSpec, JobProgress, StageOutput, run_job

#: the error types of a record whose function raised or whose resources were not had: with a
#: retry policy these fail their chunk's attempt; the others (validation, no arc, a function
#: that returned a failure...) are data, and go to the error file as they would without one
DATA_ERRORS = frozenset({"ValidationFailed", "SchemaInvalid", "NoTransition", "MaxTransitions",
                         "NotADict", "Rejected"})


@dataclass(frozen=True)
class StreamSettings:
    """What a pipeline file's ``options:``/``error_handling:`` set on a stream job.

    ``memory_limit``: bytes of chunks in flight at most (reading waits) and the workers' Ray
    ``memory`` request. ``whole``: each input is one task read by a worker (``stream:
    false``). ``csv_block_size``: the CSV read block. ``retry``: the policy of each chunk (an
    object with ``call(attempt, again)``, ``attempts`` and ``on_failure`` -- ``fail``,
    ``skip``, ``compensate``; see ``patterns._task_policy.TaskRetry``).
    ``compensate(kind, error) -> what was done``: run when the job fails.
    """

    memory_limit: int | None = None
    whole: bool = False
    csv_block_size: int | None = None
    retry: Any = None
    compensate: Callable[[Any, str], str] | None = None


@dataclass
class FSMStage:
    """Runs chunks through one FSM; built in each worker (``open``). With ``retry`` (see
    ``StreamSettings``) a chunk whose records failed by a raised error runs those records
    again; one that still fails is skipped whole to the error file or fails the job (such
    chunks record no ``trace``)."""

    config: Any
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    data_mode: Any = None
    resource_spec: ResourceSpec | None = None
    binder: Any = None
    #: ``trace=N``: trace the first N records of each input and every failed one into
    #: ``trace_sink``'s trace parts (``fsm_actors.trace``)
    trace: int = 0
    trace_sink: str | None = None
    retry: Any = None
    wants_records = True

    def open(self) -> None:
        from fsm_actors.worker import FSMWorker

        resources = self.binder
        if resources is None and self.resource_spec is not None:
            resources = self.resource_spec.bind()
        self._worker = FSMWorker(
            self.config, self.functions, resources=resources, owns_inputs=True
        )

    def apply(self, batch: Any, file: str, first_record: int) -> StageOutput:
        if not hasattr(self, "_worker"):
            self.open()
        records = batch if isinstance(batch, list) else batch.to_pylist()
        # the records as given, for the error lines of failures (redrive re-runs those):
        # the FSM may change a list's dicts in place; an Arrow batch is read again
        given = _given(batch) if records is batch else batch
        traced = range(max(0, self.trace - first_record)) if self.trace_sink else None
        counts: Any = None
        if self.retry is None:
            results = self._worker.process_batch(records, self.data_mode, trace=traced)
            counts = self._worker.last_counts
        else:
            finished, reason = self._retried(records, given)
            if reason is not None:
                return self._failed(records, given, file, first_record, reason)
            results = finished
            if self._worker.count_states:
                counts = StateCounts().add_results(results).dump()
            traced = None
        inputs: list[Any] | None = None
        if traced is not None:
            inputs = _trace(self.trace_sink, file, first_record, results, given)
        emits = self._worker.machine.emits
        emitted: list[dict[str, Any]] = []
        errors: list[RowError] = []
        excluded: dict[str, int] = {}
        for number, r in enumerate(results, start=first_record + 1):
            state = r.get("final_state")
            if not r["success"]:
                if inputs is None:
                    inputs = _inputs(given, results)
                errors.append(
                    RowError(
                        file,
                        str(r.get("error")),
                        _raw(inputs[number - first_record - 1]),
                        record=number,
                        stage="fsm",
                        state=state,
                        function=(r.get("metadata") or {}).get("function"),
                        path=tuple(r.get("path") or ()),
                    )
                )
            elif emits(state):
                emitted.append(r["data"])
            else:
                excluded[state] = excluded.get(state, 0) + 1
        out = StageOutput(None, len(records), sum(excluded.values()), errors, records=emitted)
        out.excluded = excluded  # type: ignore[attr-defined]
        out.counts = counts  # type: ignore[attr-defined]
        if out.counts is not None:
            metrics.record_states(self._worker.machine.name, out.counts)
        return out

    def _retried(self, records: list[Any], given: Any) -> tuple[list[dict[str, Any]], str | None]:
        """``records`` run under ``self.retry``: each retry runs again (from the records as
        given) those whose function raised. The results in input order, and ``None``; or, when
        the attempts ran out, why."""
        n = len(records)
        final: list[Any] = [None] * n
        pending = list(range(n))
        lock = threading.Lock()
        turn = [0, True]  # the attempt whose results count; whether the last one returned

        def attempt() -> list[str]:
            with lock:
                turn[0] += 1
                mine, todo, stale = turn[0], list(pending), not turn[1]
                turn[1] = False
            if stale:  # a timed-out attempt may still run on the old worker: take a new one
                self.open()
            batch = records if mine == 1 else _pick(_inputs(given, []) if given is not None
                                                     else records, todo)
            results = self._worker.process_batch(batch, self.data_mode)
            with lock:
                if turn[0] != mine:  # abandoned after its timeout: its results are dropped
                    return []
                turn[1] = True
                failed, errors = [], []
                for i, r in zip(todo, results, strict=True):
                    final[i] = r
                    if not r["success"] and error_type(r.get("error")) not in DATA_ERRORS:
                        failed.append(i)
                        errors.append(str(r.get("error")))
                pending[:] = failed
                return errors

        try:
            errors = self.retry.call(attempt, bool)
            reason = errors[0] if errors else None
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            with lock:
                turn[0] = -1
        return final, reason

    def _failed(self, records: list[Any], given: Any, file: str, first_record: int,
                reason: str) -> StageOutput:
        """A chunk whose attempts ran out: skipped whole to the error file (``on_failure:
        skip``), else an ``FSMError`` that stops the job."""
        attempts = self.retry.attempts
        last = first_record + len(records)
        if self.retry.on_failure != "skip":
            raise FSMError(f"the chunk of {file} records {first_record + 1}..{last} failed "
                           f"{attempts} attempts (error_handling.on_failure: "
                           f"{self.retry.on_failure}): {reason}")
        inputs = _inputs(given, []) if given is not None else records
        why = f"chunk skipped after {attempts} attempts: {reason}"
        errors = [RowError(file, why, _raw(data), record=first_record + i + 1, stage="fsm")
                  for i, data in enumerate(inputs)]
        return StageOutput(None, len(records), 0, errors, records=[])

    def side(self, out: StageOutput) -> tuple[None, Any]:
        side = {}
        excluded = getattr(out, "excluded", None)
        if excluded:
            side["excluded"] = excluded
        counts = getattr(out, "counts", None)
        if counts:
            side["counts"] = counts
        return None, (side or None)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_worker", "binder")}


def _trace(sink: Any, file: str, first: int, results: list[dict[str, Any]], given: Any) -> list:
    from fsm_actors import trace

    inputs = _inputs(given, results)
    trace.write_part(sink, file, first, [
        trace.line(r, first + i + 1, file, inputs[i])
        for i, r in enumerate(results) if r.get("trace") is not None])
    return inputs


def _pick(records: list[Any], indexes: list[int]) -> list[Any]:
    return [records[i] for i in indexes]


def _given(records: list[Any]) -> bytes | None:
    try:
        return pickle.dumps(records, pickle.HIGHEST_PROTOCOL)
    except Exception:  # records that do not pickle: their errors carry the data at failure
        return None


def _inputs(given: Any, results: list[dict[str, Any]]) -> list[Any]:
    if given is None:
        return [r.get("data") for r in results]
    return pickle.loads(given) if isinstance(given, bytes) else given.to_pylist()


def _raw(data: Any) -> str | None:
    return raw_text(json.dumps(data, default=json_default, ensure_ascii=False))


def _finish(staging: Any, meta: dict[str, Any]) -> dict[str, Any]:
    excluded: dict[str, int] = {}
    counts = StateCounts()
    for batches in meta.get("whole", {}).values():
        for side in batches.values():
            for state, n in (side or {}).get("excluded", {}).items():
                excluded[state] = excluded.get(state, 0) + n
            counts.merge((side or {}).get("counts") or {})
    return {"excluded_by_state": excluded, "state_counts": counts.dump()}


async def stream_job(
    stage: FSMStage,
    name: str,
    source: str | Path | Iterable[Any] | AsyncIterable[Any],
    sink: str | Path | None,
    *,
    chunk_size: int,
    input_format: str | None,
    output_format: str | None,
    text_field_name: str,
    csv_delimiter: str | None,
    csv_has_header: bool,
    skip_empty_lines: bool,
    checkpoint_id: str | None,
    error_threshold: float | None,
    on_progress: Callable[[JobProgress], Any] | None,
    address: str | None,
    workers: int | None,
    local: bool,
    trace: int = 0,
    storage_options: Any = None,
    settings: StreamSettings | None = None,
) -> dict[str, Any]:
    """Run ``source`` through ``stage`` into ``sink``; see ``AsyncSimpleFSM.process_stream``."""
    if trace and sink is not None:
        from fsm_actors import trace as traces

        stage.trace, stage.trace_sink = trace, os.fspath(sink)
        if checkpoint_id is None:
            traces.clear(sink)
    spill: Path | None = None
    records: Any = None
    if not isinstance(source, str | os.PathLike):
        if hasattr(source, "__aiter__"):
            spill = await _spill(source, sink)
            records = _unspill(spill)
        else:
            records = source
        source = "<records>"
    run_id = checkpoint_id or uuid.uuid4().hex[:12]
    settings = settings or StreamSettings()
    stage.retry = settings.retry
    spec = FileJobSpec(
        input_path=os.fspath(source),
        output_path=os.fspath(sink) if sink is not None else None,
        read=ReadOptions(
            format=input_format,
            csv_delimiter=csv_delimiter,
            csv_has_header=csv_has_header,
            skip_empty_lines=skip_empty_lines,
            text_field_name=text_field_name,
            storage_options=storage_options_for(
                storage_options, [os.fspath(p) for p in (source, sink) if p is not None]),
        ),
        output_format=output_format,
        chunk_size=chunk_size,
        workers=workers,
        whole=settings.whole,
        in_flight=1 if settings.whole else 2,
        pattern="fsm",
        records=records,
    )
    kind: FileJobKind | None = None
    try:
        kind = FileJobKind(
            spec,
            stage,
            run_id,
            label=f"fsm {name}",
            finish=_finish,
            identity={"fsm": name, "functions": sorted(stage.functions)},
        )
        if settings.csv_block_size is not None:
            _block_size(kind, settings.csv_block_size)
        if sink is None:
            kind.error_file = None
        result = await run_job(
            kind,
            resumable=checkpoint_id is not None,
            error_threshold=error_threshold,
            on_progress=on_progress,
            address=address,
            workers=workers,
            local=local,
            memory_limit=settings.memory_limit,
        )
    except Exception as exc:
        if settings.compensate is None or kind is None:
            raise
        message = getattr(exc, "message", None) or str(exc)
        done = settings.compensate(kind, message)
        raise FSMError(f"{message}; compensated: {done}") from None
    finally:
        if spill is not None:
            spill.unlink(missing_ok=True)
    result["emitted"] = result["records_written"]
    if stage.trace_sink is not None:
        result["trace_file"] = str(traces.join(sink))
    return result


def _block_size(kind: FileJobKind, size: int) -> None:
    """Read CSV inputs in blocks of ``size`` bytes; another format is an ``FSMError``."""
    other = [i.path for i in kind.plan.inputs if i.format not in ("csv", "tsv")]
    if other:
        raise FSMError(f"options.buffer_size sets the block size of CSV reads; {other[0]} is "
                       "not CSV (its reader has no block size): remove buffer_size")
    kind.plan.read = replace(kind.plan.read, csv_block_size=size)


async def _spill(source: AsyncIterable[Any], sink: Any) -> Path:
    """An async iterator's items in a temp file (pickled as they are), read back lazily on
    the job's reader thread."""
    directory = (
        Path(sink).parent
        if sink is not None and not is_remote(os.fspath(sink))
        else Path(tempfile.gettempdir())
    )
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".fsm-stream-", suffix=".pickle", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            async for item in source:
                pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _unspill(path: Path) -> Iterator[Any]:
    with open(path, "rb") as src:
        while True:
            try:
                yield pickle.load(src)
            except EOFError:
                return
