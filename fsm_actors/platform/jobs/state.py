"""A job's durable progress: the checkpoint, its settings check, counts and the threshold.

Plain core. ``JobState`` wraps one ``Checkpoint``: the settings fingerprint the run depends on
(a resume with other settings is refused, or started over when asked), per-partition source
fingerprints (a changed source is done again), the batches done, and the counts over them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fsm_actors.platform.checkpoint import Checkpoint, CheckpointStore, PartitionState
from fsm_actors.platform.jobs.model import COUNT_KEYS, JobKind, TaskResult

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
