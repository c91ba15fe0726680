"""Checkpoints: small msgpack documents, one per run, written atomically (plain core, no Ray).

A ``CheckpointStore`` keeps one file per run id under a directory. ``save`` writes a temp file,
fsyncs it, renames it over the old one and fsyncs the directory, so a crash leaves either the
old or the new document, never a torn one. ``Checkpoint`` is the document most runs keep: one
``PartitionState`` per partition (an input file, a table) with the batches done, an offset,
a cursor or last key, and counts. Output must be committed before the checkpoint that covers
it is saved; then a resumed run skips exactly the work that is durable.

Not safe for two processes saving the same run id at once (the last rename wins).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from fsm_actors.platform.io import storage

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
