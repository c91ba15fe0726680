"""The ETL step: extract, transform and load one partition, batch by batch (plain core).

A worker actor builds one ``ETLStep`` from an ``ETLStepSpec`` and runs one task per call: a
task is a partition (a key range of the source, the whole keyset, or a file). The step reads
the partition's checkpoint row from the target database and goes on after the last batch it
records, so a task sent again after its actor died neither repeats nor loses a batch. Each
batch, its rejects and the new checkpoint row commit in one transaction (``Loader``).

Connections are leased from the resource layer (``ResourceManager.acquire_here``): in a
worker on the cluster each lease takes a slot of the ``resource/<name>`` provider's cap (so
pool caps hold cluster-wide) and, for PostgreSQL, MySQL and SQLite files on the worker's
node, the connection itself is opened in the worker, so batches go straight between the
worker and the database (else handles to the provider actor); in-process (``spec.manager``
set) they are live connections.

A partition with no usable key (``"kind": "ordered"``: a query, or a table with no unique
NOT NULL key) is read in ONE pass in a deterministic order (``catalog.stable_order``), never
by offsets of an unordered query: PostgreSQL restarts an unordered scan wherever a
synchronized scan is, so such pages repeat some rows and never give others.

- PostgreSQL: one cursor (``DECLARE ... FETCH``) in one transaction: one snapshot, one
  sort. Measured roughly (busy 2-CPU host) on 600k rows of 8 columns, one pass takes
  1.1-1.4 s unordered, 1.1-2.1 s by ``ctid`` and 1.8-2.7 s by row text; paging by OFFSET
  over an ORDER BY would sort once per page.
- MySQL/MariaDB: pages by position over the ordered query, all in one transaction (one
  snapshot under REPEATABLE READ). MySQL has no SQL cursor, and the resource layer's one
  streaming call (``read_batches``) goes through Arrow, which alters or refuses some MySQL
  values (zero dates, unsigned BIGINTs), so each page sorts again: 200k rows in 10k pages
  read in 4.3 s (2.0 s unordered), 600k in 39 s (10 s). A unique NOT NULL key makes such a
  source a keyset read, in parallel ranges.
- SQLite: pages by position, each its own transaction (a read transaction held across pages
  would block the writers of the file); a table by rowid, which costs no sort.

The checkpoint cursor holds ``rows`` (how many rows of that order are committed) and
``digest`` (an order-free hash of them). A resumed partition reads the same order again and
skips ``rows`` rows, checking that they hash to ``digest``: when the source changed meanwhile
or its order ties rows that differ (a case-insensitive collation, MySQL's
``max_sort_length``), the resume stops with ``PatternError`` instead of loading a row twice
or never.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from fsm_actors.platform.jobs import progress
from fsm_actors.platform.jobs.model import StepContext, Task, TaskResult
from fsm_actors.platform.jobs.parts import OutputSpec
from patterns._etl import dialect as sql
from patterns._etl.endpoints import DatabaseEndpoint, Endpoint, FileEndpoint
from patterns._etl.file_sink import FileSink
from patterns._etl.load import Loader, plain_values, unplain_values
from patterns._etl.records import RecordPipeline, Reject
from patterns._etl.rejects import reject_pages, source_reader
from patterns.errors import PatternError

log = logging.getLogger(__name__)


@dataclass
class Page:
    """One batch as read: column names and row tuples, the rows the reader could not parse,
    and where it ended."""

    names: list[str]
    rows: list[tuple]
    bad: list[Reject]
    cursor: dict[str, Any]
    last: bool
    #: a file source's page: its file, its first record's 0-based ordinal, each row's line
    file: str | None = None
    first: int = 0
    lines: list[int | None] | None = None
    #: the page's records as they are (a redrive's: each record's own fields)
    dicts: list[dict[str, Any]] | None = None

    def locate(self, reject: Reject) -> Reject:
        """``reject`` (of row ``reject.index`` of this page) with its file, line and record
        number, for a file source."""
        if self.file is None or reject.index < 0:
            return reject
        line = self.lines[reject.index] if self.lines and reject.index < len(self.lines) \
            else None
        return replace(reject, file=self.file, line=line,
                       record_no=self.first + reject.index + 1)

    def records(self) -> list[dict[str, Any]]:
        if self.dicts is not None:
            return [dict(d) for d in self.dicts]
        names = self.names
        return [dict(zip(names, row)) for row in self.rows]  # noqa: B905 - rows come whole


@dataclass
class ETLStepSpec:
    """Picklable recipe of the step (``build`` runs in the worker actor).

    ``source_columns``/``read_key`` describe what to select and page by; ``write_table`` is
    the target table (or FULL_REFRESH's staging table); ``upsert_key`` is set for UPSERT and
    INCREMENTAL; ``where``/``where_params`` restrict the source (INCREMENTAL's watermark
    window). ``manager``: an in-process ``ResourceManager`` (not shipped to actors).
    """

    run_id: str
    source: Endpoint
    target: Endpoint
    write_table: str
    target_columns: list[str]
    source_columns: list[str]
    read_key: list[str]
    upsert_key: list[str] | None
    batch_size: int
    pipeline: dict[str, Any]
    where: str | None = None
    where_params: dict[str, Any] = field(default_factory=dict)
    manager: Any = field(default=None, repr=False)
    #: a file target: how to write it, and the run's staging directory (set by the job)
    output: OutputSpec | None = None
    staging: str | None = None
    #: source columns read as text (PostgreSQL JSON: kept exactly), target columns' kinds
    #: (``json``/``array``: how values are bound), the source's declared types (a file
    #: target's column types: declared decimals, JSON as text)
    source_text: list[str] = field(default_factory=list)
    target_kinds: dict[str, str] = field(default_factory=dict)
    declared: dict[str, Any] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["manager"] = None
        return state

    def build(self, context: StepContext) -> ETLStep:
        return ETLStep(self, context)


class ETLStep:
    """Runs partitions (see the module docstring). Not thread-safe: one call at a time."""

    def __init__(self, spec: ETLStepSpec, context: StepContext) -> None:
        self.spec = spec
        self.context = context
        self.owner = f"etl/{spec.run_id}/worker/{context.worker_index}/{uuid.uuid4().hex[:8]}"
        if spec.manager is not None:
            self._manager = spec.manager
            self._own_manager = False
        else:
            from resource_actors.manager import ResourceManager

            self._manager = ResourceManager()
            self._own_manager = True
        self.pipeline = RecordPipeline(**spec.pipeline)
        self._target: Any = None
        self._source: Any = None
        self._rejects: Any = None
        # reading the next page and committing the last one overlap the record work of this
        # one (the calls wait on the provider actors, not on this process's CPU)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="etl-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="etl-write")

    # -- connections -------------------------------------------------------------------------
    def _target_conn(self) -> Any:
        if self._target is None:
            self._target = self._manager.acquire_here(self.spec.target.resource_name, self.owner)
        return self._target

    def _source_conn(self) -> Any:
        if self._source is None:
            src = self.spec.source
            assert isinstance(src, DatabaseEndpoint)
            if src.resource_name == getattr(self.spec.target, "resource_name", None):
                # a second lease of the same database: its own connection, so reads never
                # join the load transaction
                self._source = self._manager.acquire_here(src.resource_name, self.owner + "/read")
            else:
                self._source = self._manager.acquire_here(src.resource_name, self.owner)
        return self._source

    # -- one task ----------------------------------------------------------------------------
    def run(self, task: Task) -> TaskResult:
        """Load partition ``task.partition`` from where its checkpoint row says it stopped
        (a file target's partition starts over)."""
        part = task.partition
        loader = self._sink(task)
        state = loader.state(part) or {"seq": 0, "cursor": {}, "done": False, "batches": {}}
        batches = {int(k): v for k, v in state["batches"].items()}
        if state["done"]:
            return TaskResult(part, batches, total_batches=len(batches))
        writing: Future[None] | None = None
        pages = _read_ahead(self._reader, self._pages(task.payload, state["cursor"]))
        try:
            for page in pages:
                seq = state["seq"]
                if self.pipeline.identity:
                    processed, skipped, rejects = len(page.rows), 0, page.bad
                    columns, rows = loader.tuples_for(page.names, page.rows)
                else:
                    outcome = self.pipeline.apply(page.records())
                    processed, skipped = len(outcome.records), outcome.skipped
                    rejects = page.bad + [page.locate(r) for r in outcome.rejects]
                    columns, rows = loader.rows_for(outcome.records)
                batches[seq] = {"read": len(page.rows) + len(page.bad), "processed": processed,
                                "written": len(rows), "skipped": skipped, "errors": len(rejects)}
                state = {"seq": seq + 1, "cursor": page.cursor, "done": page.last,
                         "batches": {str(k): v for k, v in batches.items()}}
                if writing is not None:  # batches commit in order, one at a time
                    writing.result()
                writing = self._writer.submit(_commit, loader, batches[seq], part, seq, columns,
                                              rows, _renumber(rejects), state)
        finally:
            pages.close()  # now, not when the traceback goes: a read's transaction ends
            if writing is not None:
                writing.result()
        if not state["done"]:
            state["done"] = True
            loader.put_state(part, state)
        return TaskResult(part, batches, total_batches=len(batches))

    def _sink(self, task: Task) -> Loader | FileSink:
        """Where this partition's batches go: the target table (with its checkpoint rows), or
        staged parts of a file target."""
        spec = self.spec
        if spec.output is not None:
            assert spec.staging is not None
            return FileSink(spec.staging, spec.output, int(task.payload["index"]),
                            declared=spec.declared)
        assert isinstance(spec.target, DatabaseEndpoint)
        return Loader(self._target_conn(), spec.target.backend, spec.write_table,
                      spec.target_columns, spec.upsert_key, spec.run_id,
                      range_key=spec.read_key, shown_table=spec.target.table,
                      kinds=spec.target_kinds)

    # -- reading -----------------------------------------------------------------------------
    def _pages(self, payload: dict[str, Any], cursor: dict[str, Any]
               ) -> Generator[Page, None, None]:
        kind = payload["kind"]
        if kind == "file":
            yield from self._file_pages(payload["path"], cursor)
        elif kind == "ordered":
            yield from self._ordered_pages(payload["order"], cursor)
        elif kind == "rejects":
            yield from self._reject_pages(payload["of"], cursor)
        elif kind == "offset":
            raise PatternError(
                "this run was planned by an earlier version that paged a keyless source by "
                "offsets without a stable order, so what it loaded cannot be told apart: "
                "resuming it would lose or duplicate rows. Start a new run (another "
                "checkpoint_id) into a target without its rows", pattern="etl",
                run_id=self.spec.run_id)
        else:
            yield from self._keyset_pages(payload, cursor)

    def _keyset_pages(self, payload: dict[str, Any], cursor: dict[str, Any]) -> Iterator[Page]:
        spec, src = self.spec, self.spec.source
        assert isinstance(src, DatabaseEndpoint)
        conn = self._source_conn()
        key, n = spec.read_key, spec.batch_size
        has_lo, has_hi = payload.get("lo") is not None, payload.get("hi") is not None
        after = unplain_values(cursor["after"]) if cursor.get("after") is not None else None
        first_sql = sql.page_sql(src.backend, src.table, src.query, spec.source_columns, key,
                                 after=after is not None, lo=has_lo, hi=has_hi, extra=spec.where,
                                 as_text=spec.source_text)
        next_sql = sql.page_sql(src.backend, src.table, src.query, spec.source_columns, key,
                                after=True, lo=has_lo, hi=has_hi, extra=spec.where,
                                as_text=spec.source_text)
        base = dict(spec.where_params, n=n)
        if has_lo:
            base["lo"] = payload["lo"]
        if has_hi:
            base["hi"] = payload["hi"]
        statement = first_sql
        while True:
            params = dict(base)
            if after is not None:
                params.update({f"after_{i}": v for i, v in enumerate(after)})
            names, rows = conn.query_rows(statement, params)
            statement = next_sql
            if not rows:
                return
            last_row = rows[-1]
            after = [last_row[names.index(k)] for k in key]
            yield Page(names, rows, [], {"after": plain_values(after)}, len(rows) < n)
            if len(rows) < n:
                return

    def _ordered_pages(self, order: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """The partition's rows in one pass ordered by ``order``, past the ``cursor["rows"]``
        committed ones (see the module docstring)."""
        spec, src = self.spec, self.spec.source
        assert isinstance(src, DatabaseEndpoint)
        select = sql.ordered_sql(src.backend, src.table, src.query, spec.source_columns, order,
                                 spec.where, as_text=spec.source_text)
        batches = _ordered_batches(self._source_conn(), src.backend, select,
                                   dict(spec.where_params), spec.batch_size)
        try:
            yield from _past_committed(batches, int(cursor.get("rows", 0)),
                                       int(cursor.get("digest", 0)), spec.batch_size,
                                       spec.run_id)
        finally:
            batches.close()

    def _reject_pages(self, of: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """A redrive's partition: the rejects of run ``of`` as records
        (``patterns._etl.rejects``); rows that cannot be re-run come as ``bad``."""
        spec, src, target = self.spec, self.spec.source, self.spec.target
        assert isinstance(target, DatabaseEndpoint)
        # its own lease: pages are read on the reader thread while the writer commits
        if self._rejects is None:
            self._rejects = self._manager.acquire_here(target.resource_name,
                                                       self.owner + "/rejects")
        conn = self._rejects
        reader = None
        if isinstance(src, DatabaseEndpoint) and spec.read_key:
            reader = source_reader(self._source_conn(), src, spec.source_columns,
                                   spec.read_key, spec.source_text)
        for page in reject_pages(conn, target.backend, of, cursor, spec.batch_size, reader,
                                 spec.read_key):
            names = list(dict.fromkeys(k for r in page.records for k in r))
            rows = [tuple(r.get(k) for k in names) for r in page.records]
            yield Page(names, rows, page.kept, page.cursor, page.last, dicts=page.records)

    def _file_pages(self, path: str, cursor: dict[str, Any]) -> Iterator[Page]:
        from fsm_actors.platform.io import ReadOptions, iter_chunks

        src = self.spec.source
        assert isinstance(src, FileEndpoint)
        done = int(cursor.get("chunk", -1))
        options = ReadOptions(format=src.format, **src.options)
        for chunk in iter_chunks(path, options, self.spec.batch_size):
            if chunk.index <= done:
                continue
            bad = [Reject(-1, "", "parse", err.reason, (err.raw or "")[:4096],
                          file=err.file or path, line=err.line, record_no=err.record)
                   for err in chunk.errors]
            batch = chunk.batch
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            rows = list(zip(*columns, strict=True)) if columns else []
            lines = chunk.lines.to_pylist() if chunk.lines is not None else None
            yield Page(list(batch.schema.names), rows, bad, {"chunk": chunk.index}, False,
                       file=path, first=chunk.first_record, lines=lines)

    def close(self) -> None:
        """Release this step's leases."""
        try:
            self._manager.release_all(self.owner)
            self._manager.release_all(self.owner + "/read")
            self._manager.release_all(self.owner + "/rejects")
        finally:
            self._reader.shutdown(wait=False, cancel_futures=True)
            self._writer.shutdown(wait=True)
            self._target = self._source = self._rejects = None
            if self._own_manager:
                self._manager.close()


def _read_ahead(pool: ThreadPoolExecutor, pages: Generator[Page, None, None]
                ) -> Generator[Page, None, None]:
    """``pages`` with the next one read on ``pool`` while the caller works on this one;
    ``pages`` is closed when the caller stops (so a read ends its transaction)."""
    done = object()
    ahead = pool.submit(next, pages, done)
    try:
        while True:
            page = ahead.result()
            if page is done:
                return
            ahead = pool.submit(next, pages, done)
            yield page
    finally:
        if not ahead.done():
            ahead.cancel()
            try:
                ahead.result()
            except BaseException:  # noqa: BLE001 - the caller's own error wins
                pass
        pages.close()


def _renumber(rejects: list[Reject]) -> list[Reject]:
    """Give every reject a distinct index within its batch (parse errors have none)."""
    out = []
    for i, r in enumerate(rejects):
        out.append(replace(r, index=i))
    return out


Batches = Generator[tuple[list[str], list[tuple]], None, None]


def _ordered_batches(conn: Any, backend: str, select: str, params: dict[str, Any],
                     size: int) -> Batches:
    """``(names, rows)`` of the ordered query ``select`` in batches of ``size``, in one pass:
    a cursor (PostgreSQL) or pages by position (elsewhere); PostgreSQL and MySQL in one
    transaction, rolled back when the batches end or are closed."""
    snapshot = not sql.is_sqlite(backend)
    if snapshot:
        conn.begin()
    try:
        if backend == "postgresql":
            conn.execute(sql.declare_sql(select), params)
            fetch = sql.fetch_sql(size)

            def read(offset: int) -> tuple[list[str], list[tuple]]:
                return conn.query_rows(fetch)
        else:
            paged = sql.positional_sql(select)

            def read(offset: int) -> tuple[list[str], list[tuple]]:
                return conn.query_rows(paged, {**params, "n": size, "offset": offset})
        offset = 0
        while True:
            names, rows = read(offset)
            if rows:
                yield names, rows
            if len(rows) < size:
                return
            offset += len(rows)
    finally:
        if snapshot:
            conn.rollback()


def _past_committed(batches: Iterable[tuple[list[str], list[tuple]]], done: int, digest: int,
                    size: int, run_id: str) -> Iterator[Page]:
    """Pages of ``batches`` after the first ``done`` rows, which must hash to ``digest``
    (``PatternError`` when they do not, or when fewer are left); each page's cursor names
    the rows up to its end."""
    seen, total = 0, 0
    for names, batch in batches:
        rows = batch
        if seen < done:
            skip = min(len(rows), done - seen)
            total, seen, rows = rows_digest(rows[:skip], total), seen + skip, rows[skip:]
            if seen == done and total != digest:
                raise _not_exact(run_id, done, "are not the rows loaded before")
            if not rows:
                continue
        total, seen = rows_digest(rows, total), seen + len(rows)
        yield Page(names, rows, [], {"rows": seen, "digest": total}, len(batch) < size)
    if seen < done:
        raise _not_exact(run_id, done, f"are {seen} rows now")


def _not_exact(run_id: str, done: int, what: str) -> PatternError:
    return PatternError(
        f"cannot resume exactly: {done} rows of this keyless source were loaded before the "
        f"interruption, and the first {done} rows it gives now {what} (the source changed, or "
        "its order ties rows that differ). Resuming would load some rows twice and others "
        "never: start a new run (another checkpoint_id) into a target without this run's "
        "rows, or give the source a unique NOT NULL key", pattern="etl", run_id=run_id)


_MASK = (1 << 64) - 1


def rows_digest(rows: Iterable[tuple], start: int = 0) -> int:
    """``start`` plus the CRC-32 of each row's ``repr``, mod 2**64: the same for the same rows
    in any order and in any process (unlike Python's salted ``hash``); a check against
    accidents (a changed source, ties), not against forgery."""
    return (start + sum(map(zlib.crc32, map(str.encode, map(repr, rows))))) & _MASK


def _commit(loader: Loader | FileSink, counts: dict[str, int], *args: Any) -> None:
    """Commit one batch, then count it in the worker's live figures (``fsm-actors status``,
    the run's bar)."""
    loader.commit_batch(*args)
    progress.batch_done(counts)
