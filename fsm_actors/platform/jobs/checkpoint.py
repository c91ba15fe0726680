"""A job's checkpoint: the durable document of a run and the run's state over it (plain core).

``CheckpointStore`` keeps one small msgpack document per run id under a directory (or a
store URI). ``save`` writes a temp file, fsyncs it, renames it over the old one and fsyncs the
directory, so a crash leaves either the old or the new document, never a torn one.
``Checkpoint`` is the document a job keeps: one ``PartitionState`` per partition (an input
file, a table) with the batches done, an offset, a cursor or last key, and counts. Output must
be committed before the checkpoint that covers it is saved; then a resumed run skips exactly
the work that is durable. Not safe for two processes saving the same run id at once (the last
rename wins).

``JobState`` is one run's view of its ``Checkpoint``: the settings fingerprint the run depends
on (a resume with other settings is refused, or started over when asked), per-partition source
fingerprints (a changed source is done again), the batches done, the counts over them and the
error threshold's verdict (``threshold_verdict``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from fsm_actors.platform.io import storage
from fsm_actors.platform.jobs.model import COUNT_KEYS, JobKind, TaskResult

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
FORMAT_VERSION = 1


class CheckpointStore:
    """Checkpoint documents (``dict``s of msgpack-able values) under ``root_dir``."""

    def __init__(self, root_dir: str | os.PathLike) -> None:
        #: a URI when the checkpoints live on an object store (beside a remote output)
        self.uri = os.fspath(root_dir) if storage.is_remote(os.fspath(root_dir)) else None
        self.root = Path(root_dir) if self.uri is None else Path(".")
        if self.uri is None:
            self.root.mkdir(parents=True, exist_ok=True)

    def _name(self, run_id: str) -> str:
        safe = _SAFE.sub("_", run_id)
        if safe != run_id:
            safe += "-" + hashlib.sha1(run_id.encode()).hexdigest()[:8]
        return f"{safe}.ckpt"

    def path(self, run_id: str) -> Path:
        """The file that holds ``run_id``'s document (local stores)."""
        return self.root / self._name(run_id)

    def save(self, run_id: str, doc: dict[str, Any]) -> None:
        """Replace ``run_id``'s document atomically and durably."""
        data = msgpack.packb(doc, use_bin_type=True)
        if self.uri is not None:  # one whole object: readers see the old or the new one
            storage.put_bytes(storage.join(self.uri, self._name(run_id)), data)
            return
        target = self.path(run_id)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def load(self, run_id: str) -> dict[str, Any] | None:
        """``run_id``'s document, or ``None`` if there is none."""
        try:
            data = (
                storage.read_bytes(storage.join(self.uri, self._name(run_id)))
                if self.uri is not None
                else self.path(run_id).read_bytes()
            )
        except FileNotFoundError:
            return None
        return msgpack.unpackb(data, raw=False, strict_map_key=False)

    def delete(self, run_id: str) -> None:
        """Remove ``run_id``'s document (no error if there is none)."""
        if self.uri is not None:
            storage.delete(storage.join(self.uri, self._name(run_id)))
            return
        self.path(run_id).unlink(missing_ok=True)
        _fsync_dir(self.root)

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """``save`` for a ``Checkpoint``; stamps its ``updated`` time."""
        checkpoint.updated = time.time()
        self.save(checkpoint.run_id, checkpoint.to_doc())

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """``load`` as a ``Checkpoint``."""
        doc = self.load(run_id)
        return None if doc is None else Checkpoint.from_doc(doc)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory fds: rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class PartitionState:
    """Progress of one partition.

    ``next_batch`` is the first batch number not yet done (every batch below it is done);
    ``done`` holds the batches done beyond it (they finish out of order on an actor pool).
    ``offset``, ``cursor`` and ``last_key`` are for sources that can seek (a row offset, a
    database cursor, the last key read). ``counts`` are totals over the done batches only, so
    a resumed run's counts stay exact. ``fingerprint`` identifies the input version (size,
    mtime) so a changed input is not resumed. ``total_batches`` is known once it was read to
    the end; ``complete`` when every batch is done.
    """

    next_batch: int = 0
    done: set[int] = field(default_factory=set)
    offset: int = 0
    cursor: Any = None
    last_key: Any = None
    counts: dict[str, int] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    total_batches: int | None = None

    @property
    def complete(self) -> bool:
        """Every batch of the partition is done."""
        return self.total_batches is not None and self.next_batch >= self.total_batches

    def is_done(self, batch: int) -> bool:
        """Whether ``batch`` is durable already."""
        return batch < self.next_batch or batch in self.done

    def mark_done(self, batch: int, counts: dict[str, int] | None = None) -> None:
        """Record ``batch`` as done and add its ``counts`` (idempotent per batch)."""
        if self.is_done(batch):
            return
        self.done.add(batch)
        while self.next_batch in self.done:
            self.done.discard(self.next_batch)
            self.next_batch += 1
        for key, value in (counts or {}).items():
            self.counts[key] = self.counts.get(key, 0) + value

    def to_doc(self) -> dict[str, Any]:
        """The msgpack-able form."""
        return {
            "next_batch": self.next_batch,
            "done": sorted(self.done),
            "offset": self.offset,
            "cursor": self.cursor,
            "last_key": self.last_key,
            "counts": self.counts,
            "fingerprint": self.fingerprint,
            "total_batches": self.total_batches,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PartitionState:
        """Inverse of ``to_doc``."""
        return cls(**{**doc, "done": set(doc.get("done", ()))})


@dataclass
class Checkpoint:
    """A run's progress: ``partitions`` by name, free-form ``meta``, and ``state``
    (``running``, or ``committed`` once the output is final)."""

    run_id: str
    partitions: dict[str, PartitionState] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    state: str = "running"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def partition(self, name: str) -> PartitionState:
        """The state of partition ``name``, created empty on first use."""
        return self.partitions.setdefault(name, PartitionState())

    def to_doc(self) -> dict[str, Any]:
        """The msgpack-able form."""
        return {
            "version": FORMAT_VERSION,
            "run_id": self.run_id,
            "state": self.state,
            "created": self.created,
            "updated": self.updated,
            "meta": self.meta,
            "partitions": {k: v.to_doc() for k, v in self.partitions.items()},
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Checkpoint:
        """Inverse of ``to_doc``; raises ``ValueError`` for a document of another version."""
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"checkpoint {doc.get('run_id')!r} has format version {doc.get('version')}, "
                f"expected {FORMAT_VERSION}; delete it to start the run over"
            )
        return cls(
            run_id=doc["run_id"],
            partitions={k: PartitionState.from_doc(v) for k, v in doc["partitions"].items()},
            meta=doc.get("meta", {}),
            state=doc.get("state", "running"),
            created=doc.get("created", time.time()),
            updated=doc.get("updated", time.time()),
        )


log = logging.getLogger(__name__)

#: A share threshold is judged only once this many records were read (or at the end), so
#: the errors of the first block do not stop a run whose error rate is low.
MIN_SAMPLE = 10_000


class JobState:
    """The checkpoint of one run (``store`` is ``None`` for a run that cannot resume)."""

    def __init__(
        self,
        kind: JobKind,
        store: CheckpointStore | None,
        *,
        restart: bool = False,
        error: Callable[..., Exception],
    ) -> None:
        self.kind = kind
        self.store = store
        self.run_id = kind.run_id
        fingerprint = _plain(kind.fingerprint())
        cp = store.load_checkpoint(self.run_id) if store else None
        if cp is not None and cp.state != "committed" and cp.meta.get("settings") != fingerprint:
            if not restart:
                raise error(
                    f"checkpoint {self.run_id!r} was made with other settings "
                    f"({_diff(cp.meta.get('settings') or {}, fingerprint)}); resuming would "
                    "lose or duplicate records. Run with the same settings, use another "
                    f"checkpoint_id, or start over (restart=True / delete "
                    f"{store.path(self.run_id)})",
                    run_id=self.run_id,
                    file=str(store.path(self.run_id)),
                )
            log.warning("checkpoint %s: settings changed, starting over", self.run_id)
            cp = None
            kind.abort()
        if cp is None:
            cp = Checkpoint(self.run_id, meta={"settings": fingerprint})
        # what ``fsm-actors runs`` lists: the job's kind and pipeline name
        cp.meta.setdefault("kind", kind.pattern)
        cp.meta.setdefault("pipeline", _pipeline_of(kind))
        self.cp = cp
        for name, source in kind.partitions().items():
            part = cp.partition(name)
            source = _plain(source)
            if part.fingerprint and part.fingerprint != source:
                log.warning("%s changed since checkpoint %s: doing it again", name, self.run_id)
                cp.partitions[name] = part = PartitionState()
                kind.partition_changed(name)
            part.fingerprint = source
        #: records an earlier run of this checkpoint read (0 for a fresh run)
        self.resumed = self.counts().get("read", 0)

    # -- DoneSet ---------------------------------------------------------------------------
    def is_done(self, partition: str, seq: int) -> bool:
        return self.cp.partition(partition).is_done(seq)

    def complete(self, partition: str) -> bool:
        return self.cp.partition(partition).complete

    def done_batches(self, partition: str) -> frozenset[int]:
        part = self.cp.partition(partition)
        return frozenset(range(part.next_batch)) | frozenset(part.done)

    # -- progress --------------------------------------------------------------------------
    @property
    def committed(self) -> bool:
        return self.cp.state == "committed"

    def record(self, result: TaskResult) -> None:
        part = self.cp.partition(result.partition)
        for seq, counts in sorted(result.batches.items()):
            part.mark_done(seq, counts)
        if result.total_batches is not None:
            part.total_batches = result.total_batches

    def set_total(self, partition: str, total: int) -> None:
        self.cp.partition(partition).total_batches = total

    def counts(self) -> dict[str, int]:
        totals = dict.fromkeys(COUNT_KEYS, 0)
        for part in self.cp.partitions.values():
            for key, value in part.counts.items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def unfinished(self) -> list[str]:
        return [name for name, part in self.cp.partitions.items() if not part.complete]

    def save(self) -> None:
        if self.store is not None:
            self.store.save_checkpoint(self.cp)

    def mark_committed(self, result: dict[str, Any]) -> None:
        if self.store is not None:
            self.cp.state = "committed"
            self.cp.meta["result"] = _plain(result)
            self.store.save_checkpoint(self.cp)

    def delete(self) -> None:
        if self.store is not None:
            self.store.delete(self.run_id)


def threshold_verdict(
    limit: float | None, counts: dict[str, int], *, final: bool
) -> str | None:
    """A message when ``counts`` exceed ``limit`` (a count >= 1 or a share < 1), else None.

    A share is judged against the records read so far, once ``MIN_SAMPLE`` records were
    read or at the end of the run."""
    if limit is None:
        return None
    errors, read = counts.get("errors", 0), counts.get("read", 0)
    if limit >= 1:
        if errors <= limit:
            return None
        allowed = f"{int(limit)} errors"
    else:
        if (read < MIN_SAMPLE and not final) or errors <= limit * max(read, 1):
            return None
        allowed = f"{limit:.2%} of records read"
    return (
        f"{errors} rejected records out of {read} read exceed error_threshold ({allowed})"
    )


def _pipeline_of(kind: JobKind) -> str:
    """The pipeline name of a job: its label without the pattern word (``fsm orders`` ->
    ``orders``), else the pattern."""
    label = str(getattr(kind, "label", "") or kind.pattern)
    return label.removeprefix(f"{kind.pattern} ") or kind.pattern


def _plain(value: Any) -> Any:
    """msgpack-able form of a fingerprint (tuples as lists, keys as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:4]) or "unknown"
