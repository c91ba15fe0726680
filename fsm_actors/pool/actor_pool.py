"""One actor pool for every parallel path of the project.

``ActorPool`` maps items (batches) onto N actors with a bounded number of calls in flight per
actor, pulls its input lazily (so readers never run ahead of the actors by more than that
bound), replaces actors that die and re-submits the items they held. The FSM batch path, the
file-processing STREAM/BATCH/PARALLEL modes and the other patterns are configurations of this
one pool.

Contract for callers: the call made for an item must be idempotent, because an item whose
actor died is submitted again to another actor. Not thread-safe: drive one ``map`` at a time
from one event loop (the sync methods use the project's sync bridge).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError

from fsm_actors._sync import aiter_any, iterate_sync, run_sync

log = logging.getLogger(__name__)

MakeActor = Callable[[int, int], ActorHandle]
Call = Callable[[ActorHandle, Any], "ray.ObjectRef"]


class PoolError(RuntimeError):
    """The pool could not run its work: actors could not be placed, or an item kept
    killing the actors it was sent to."""


def pool_actor_name(base: str, index: int, generation: int) -> str:
    """``base/index`` for the first actor of a slot, ``base/index.gen`` for its replacements
    (the dead actor's name may still be registered for a moment)."""
    return f"{base}/{index}" if generation == 0 else f"{base}/{index}.{generation}"


@dataclass
class _Slot:
    index: int
    actor: ActorHandle
    generation: int = 0
    in_flight: int = 0
    calls_done: int = 0


@dataclass
class _Pending:
    slot: _Slot
    generation: int
    index: int
    item: Any
    attempts: int
    seq: int = 0


@dataclass
class PoolStats:
    """Counters of one pool, for progress reporting and tests."""

    submitted: int = 0
    completed: int = 0
    resubmitted: int = 0
    actors_replaced: int = 0


class ActorPool:
    """Maps items onto ``size`` actors made by ``make_actor(index, generation)``.

    ``max_in_flight`` bounds the calls queued on each actor; ``max_item_retries`` bounds how
    many times one item may be re-submitted after the actor holding it died before the run
    fails with ``PoolError`` (a poison item must not kill the whole cluster's actors).
    ``ready_timeout`` bounds the wait for actors to be placed: a cluster without room for
    them fails with a message instead of hanging. ``on_replace(index, new_actor)`` runs after
    a dead actor was replaced, before work is sent to the new one (e.g. to restore a snapshot).
    """

    def __init__(
        self,
        make_actor: MakeActor,
        size: int,
        *,
        max_in_flight: int = 2,
        max_item_retries: int = 3,
        name: str = "pool",
        ready_timeout: float = 120.0,
        on_replace: Callable[[int, ActorHandle], None] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"ActorPool {name!r}: size must be >= 1, got {size}")
        if max_in_flight < 1:
            raise ValueError(f"ActorPool {name!r}: max_in_flight must be >= 1")
        self.name = name
        self.size = size
        self.max_in_flight = max_in_flight
        self.max_item_retries = max_item_retries
        self.ready_timeout = ready_timeout
        self.stats = PoolStats()
        self._make_actor = make_actor
        self._on_replace = on_replace
        self._slots = [_Slot(i, make_actor(i, 0)) for i in range(size)]
        self._ready = False
        self._closed = False

    @property
    def actors(self) -> list[ActorHandle]:
        """The live actor handles, by slot index."""
        return [slot.actor for slot in self._slots]

    async def wait_ready(self, *, placement_only: bool = False) -> None:
        """Wait until every actor is placed and constructed; raise ``PoolError`` if not.

        ``placement_only``: only a placement timeout is an error; an actor that died is left
        to the replacement logic of ``map``.
        """
        if self._ready:
            return
        refs = [slot.actor.__ray_ready__.remote() for slot in self._slots]
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    *(asyncio.wrap_future(r.future()) for r in refs),
                    return_exceptions=placement_only,
                ),
                self.ready_timeout,
            )
        except TimeoutError:
            avail = ray.available_resources().get("CPU", 0.0)
            total = ray.cluster_resources().get("CPU", 0.0)
            raise PoolError(
                f"ActorPool {self.name!r}: {self.size} actors were not placed within "
                f"{self.ready_timeout:.0f}s (cluster CPUs: {avail:g} free of {total:g}). "
                "Use fewer actors, or lower their CPU request (FSM_ACTORS_WORKER_CPUS)."
            ) from None
        except RayActorError as exc:
            raise PoolError(
                f"ActorPool {self.name!r}: an actor failed to start: {exc}"
            ) from exc
        self._ready = True

    def _replace(self, slot: _Slot, generation: int) -> None:
        """Replace the actor of ``slot`` if it is still the one that died."""
        if slot.generation != generation:
            return
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # already gone; nothing to free
            pass
        slot.generation += 1
        slot.actor = self._make_actor(slot.index, slot.generation)
        slot.in_flight = 0
        self.stats.actors_replaced += 1
        if self._on_replace is not None:
            self._on_replace(slot.index, slot.actor)
        log.warning(
            "ActorPool %s: actor %d died; replaced it (generation %d)",
            self.name,
            slot.index,
            slot.generation,
        )

    def _free_slot(self, limit: int) -> _Slot | None:
        best: _Slot | None = None
        for slot in self._slots[:limit]:
            if slot.in_flight < self.max_in_flight and (
                best is None or slot.in_flight < best.in_flight
            ):
                best = slot
        return best

    async def map(
        self,
        call: Call,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        ordered: bool = True,
        actors: int | None = None,
        on_complete: Callable[[int, Any], None] | None = None,
    ) -> AsyncIterator[tuple[int, Any]]:
        """Yield ``(index, result)`` for each item, in input order when ``ordered``.

        ``call(actor, item)`` must return an ObjectRef. Items are pulled from ``items`` only
        when an actor has room; when ``ordered``, at most a few rounds of results wait for a
        slow earlier item, so memory stays bounded. ``actors`` limits the slots used.
        ``on_complete(slot_index, result)`` runs for each result as it arrives.
        """
        if self._closed:
            raise PoolError(f"ActorPool {self.name!r} is shut down")
        # Work goes out at once (Ray queues it on actors still starting), so reading overlaps
        # actor start-up; readiness is watched alongside and fails the map if it fails.
        ready: asyncio.Future | None = (
            None
            if self._ready
            else asyncio.ensure_future(self.wait_ready(placement_only=True))
        )
        try:
            async for pair in self._map(call, items, ordered, actors, on_complete, ready):
                yield pair
        finally:
            if ready is not None and not ready.done():
                ready.cancel()

    async def _map(
        self,
        call: Call,
        items: Iterable[Any] | AsyncIterable[Any],
        ordered: bool,
        actors: int | None,
        on_complete: Callable[[int, Any], None] | None,
        ready: asyncio.Future | None,
    ) -> AsyncIterator[tuple[int, Any]]:
        limit = min(actors or self.size, self.size)
        window = limit * self.max_in_flight * 4
        source = aiter_any(items)
        exhausted = False
        next_index = 0
        next_yield = 0
        retries: deque[tuple[int, Any, int]] = deque()
        pending: dict[asyncio.Future, _Pending] = {}
        done_results: dict[int, Any] = {}
        seq = 0
        # (slot, generation) of a dead actor -> seq of the call it was running when it died
        suspects: dict[tuple[int, int], int] = {}

        while True:
            while True:
                slot = self._free_slot(limit)
                if slot is None:
                    break
                if retries:
                    index, item, attempts = retries.popleft()
                elif not exhausted and (not ordered or next_index - next_yield < window):
                    try:
                        item = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        continue
                    index, attempts = next_index, 0
                    next_index += 1
                else:
                    break
                ref = call(slot.actor, item)
                fut = asyncio.wrap_future(ref.future())
                slot.in_flight += 1
                seq += 1
                pending[fut] = _Pending(slot, slot.generation, index, item, attempts, seq)
                self.stats.submitted += 1
            if not pending:
                if exhausted and not retries:
                    break
                break
            waiting: set[asyncio.Future] = set(pending)
            if ready is not None:
                waiting.add(ready)
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if ready is not None and ready in done:
                done.discard(ready)
                ready.result()  # raises PoolError when the actors cannot be placed
                ready = None
            for fut in done:
                p = pending.pop(fut)
                if p.slot.generation == p.generation:
                    p.slot.in_flight -= 1
                try:
                    result = fut.result()
                except RayActorError as exc:
                    key = (p.slot.index, p.generation)
                    if key not in suspects:
                        # a sync actor runs calls in submission order: the oldest call still
                        # in flight was running when it died; the rest only queued behind it
                        suspects[key] = min(
                            [p.seq]
                            + [q.seq for q in pending.values()
                               if (q.slot.index, q.generation) == key]
                        )
                    self._replace(p.slot, p.generation)
                    if p.seq != suspects[key]:
                        self.stats.resubmitted += 1
                        retries.append((p.index, p.item, p.attempts))
                        continue
                    if p.attempts >= self.max_item_retries:
                        raise PoolError(
                            f"ActorPool {self.name!r}: item {p.index} was sent to "
                            f"{p.attempts + 1} actors and each died. If the actors fail to "
                            "start, the reason is below; otherwise the item itself probably "
                            "crashes the worker process (memory, a native crash or os._exit). "
                            f"Last death: {str(exc)[:2000]}"
                        ) from exc
                    self.stats.resubmitted += 1
                    retries.append((p.index, p.item, p.attempts + 1))
                    continue
                p.slot.calls_done += 1
                self.stats.completed += 1
                if on_complete is not None:
                    on_complete(p.slot.index, result)
                if ordered:
                    done_results[p.index] = result
                else:
                    yield p.index, result
            if ordered:
                while next_yield in done_results:
                    yield next_yield, done_results.pop(next_yield)
                    next_yield += 1

    def map_sync(
        self,
        call: Call,
        items: Iterable[Any],
        *,
        ordered: bool = True,
        actors: int | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Synchronous ``map`` through the sync bridge."""
        return iterate_sync(self.map(call, items, ordered=ordered, actors=actors))

    async def broadcast(
        self, call: Callable[[ActorHandle], ray.ObjectRef], timeout: float | None = None) -> list[Any]:
        """Call every actor once (e.g. to collect stats); results by slot index."""
        await self.wait_ready()
        refs = [call(slot.actor) for slot in self._slots]
        futs = [asyncio.wrap_future(r.future()) for r in refs]
        return list(await asyncio.wait_for(asyncio.gather(*futs), timeout))

    def broadcast_sync(
        self, call: Callable[[ActorHandle], ray.ObjectRef], timeout: float | None = None) -> list[Any]:
        """Synchronous ``broadcast``."""
        return run_sync(self.broadcast(call, timeout))

    def shutdown(self) -> None:
        """Kill the pool's actors. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # an actor that is already gone needs no kill
                pass

    def __repr__(self) -> str:
        busy = sum(s.in_flight for s in self._slots)
        return (
            f"ActorPool({self.name!r}, size={self.size}, in_flight={busy}, "
            f"completed={self.stats.completed}, replaced={self.stats.actors_replaced})"
        )
