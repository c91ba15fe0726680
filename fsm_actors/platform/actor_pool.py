"""One actor pool for every parallel path of the project.

``ActorPool`` maps items (batches) onto N actors with a bounded number of calls in flight per
actor, pulls its input lazily (so readers never run ahead of the actors by more than that
bound), replaces actors that die and re-submits the items they held. The FSM batch path, the
file-processing STREAM/BATCH/PARALLEL modes and the other patterns are configurations of this
one pool.

Contract for callers: the call made for an item must be idempotent, because an item whose
actor died is submitted again to another actor. Several ``map``s may run at once on the
event loop that drives the pool (concurrent ``process`` calls of one async facade): they
share the actors' capacity, and a map that finds every actor full waits for room. A map that
is cancelled (a timeout) or closed early gives its calls' capacity back at once and pulls no
more input; the calls it had already sent (at most ``max_in_flight`` per actor) finish on
their actors and their results are dropped.
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

from fsm_actors.platform.errors import PoolError
from fsm_actors.platform.event_loop import aiter_any, iterate_sync

log = logging.getLogger(__name__)

MakeActor = Callable[[int, int], ActorHandle]
Call = Callable[[ActorHandle, Any], "ray.ObjectRef"]

__all__ = ["ActorPool", "PoolError", "PoolStats", "pool_actor_name"]


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


@dataclass
class _Pending:
    slot: _Slot
    generation: int
    index: int
    item: Any
    attempts: int
    seq: int = 0
    settled: bool = False


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
            raise PoolError(f"ActorPool {name!r}: size must be >= 1, got {size}", pool=name)
        if max_in_flight < 1:
            raise PoolError(f"ActorPool {name!r}: max_in_flight must be >= 1", pool=name)
        self.name = name
        self.size = size
        self.max_in_flight = max_in_flight
        self.max_item_retries = max_item_retries
        self.ready_timeout = ready_timeout
        self.stats = PoolStats()
        self._make_actor = make_actor
        self._on_replace = on_replace
        self._slots = [_Slot(i, *self._made(i, 0)) for i in range(size)]
        self._ready = False
        self._closed = False
        self._ready_task: asyncio.Task | None = None
        # maps waiting for capacity that other maps hold: woken when a call settles
        self._room: list[asyncio.Future] = []

    @property
    def actors(self) -> list[ActorHandle]:
        """The live actor handles, by slot index."""
        return [slot.actor for slot in self._slots]

    @property
    def busy(self) -> int:
        """Calls in flight on the pool's actors right now (all maps together)."""
        return sum(slot.in_flight for slot in self._slots)

    async def wait_ready(self, *, placement_only: bool = False) -> None:
        """Wait until every actor is placed and constructed; raise ``PoolError`` if not.

        ``placement_only``: only a placement timeout is an error; an actor that died is left
        to the replacement logic of ``map``.
        """
        if self._ready:
            return
        futures = [asyncio.wrap_future(s.actor.__ray_ready__.remote().future()) for s in self._slots]
        try:
            done, waiting = await asyncio.wait(futures, timeout=self.ready_timeout)
        finally:
            for fut in futures:  # nothing is left unretrieved, even when we are cancelled
                fut.add_done_callback(_retrieve)
                fut.cancel()
        if waiting:
            avail = ray.available_resources().get("CPU", 0.0)
            total = ray.cluster_resources().get("CPU", 0.0)
            raise PoolError(
                f"ActorPool {self.name!r}: {self.size} actors were not placed within "
                f"{self.ready_timeout:.0f}s (cluster CPUs: {avail:g} free of {total:g}). "
                "Use fewer actors, or lower their CPU request (FSM_ACTORS_WORKER_CPUS).",
                pool=self.name,
            )
        failed = [f.exception() for f in done if not f.cancelled() and f.exception()]
        if failed and not placement_only:
            raise PoolError(
                f"ActorPool {self.name!r}: an actor failed to start: {failed[0]}", pool=self.name
            ) from failed[0]
        self._ready = True

    def start(self) -> None:
        """Start watching the actors' placement now, on the running loop (so a first map
        finds them constructed). Needs a running event loop; idempotent."""
        if self._ready or self._ready_task is not None or self._closed:
            return
        self._ready_task = asyncio.ensure_future(self.wait_ready(placement_only=True))
        self._ready_task.add_done_callback(_retrieve)

    def _made(self, index: int, generation: int) -> tuple[ActorHandle, int]:
        """A new actor for slot ``index`` and its generation: a name still held by an actor
        that is ending (a pool of the same name just shut down, a replaced actor not yet
        gone) moves on to the next generation's name instead of failing the pool."""
        for attempt in range(generation, generation + 50):
            try:
                return self._make_actor(index, attempt), attempt
            except ValueError as exc:  # Ray's ActorAlreadyExistsError is a ValueError
                if "already taken" not in str(exc):
                    raise
        raise PoolError(f"ActorPool {self.name!r}: every name for actor {index} is taken",
                        pool=self.name)

    def _replace(self, slot: _Slot, generation: int) -> None:
        """Replace the actor of ``slot`` if it is still the one that died."""
        if slot.generation != generation:
            return
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # already gone; nothing to free
            pass
        slot.actor, slot.generation = self._made(slot.index, slot.generation + 1)
        slot.in_flight = 0
        self.stats.actors_replaced += 1
        if self._on_replace is not None:
            self._on_replace(slot.index, slot.actor)
        self._wake()
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

    def _settle(self, p: _Pending) -> None:
        """Give back the capacity a call held (once), and wake maps waiting for room."""
        if p.settled:
            return
        p.settled = True
        if p.slot.generation == p.generation and p.slot.in_flight > 0:
            p.slot.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        room, self._room = self._room, []
        for fut in room:
            if not fut.done():
                fut.set_result(None)

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
            raise PoolError(f"ActorPool {self.name!r} is shut down", pool=self.name)
        # Work goes out at once (Ray queues it on actors still starting), so reading overlaps
        # actor start-up; readiness is watched alongside and fails the map if it fails.
        self.start()
        pending: dict[asyncio.Future, _Pending] = {}
        try:
            async for pair in self._map(call, items, ordered, actors, on_complete, pending):
                yield pair
        finally:
            # cancelled or closed early: this map's calls give their capacity back now. They
            # are not ray.cancel'led: cancelling a call still queued on the driver leaves a
            # gap in the actor's call sequence, and the actor then stalls for 30 s.
            for fut, p in pending.items():
                self._settle(p)
                fut.add_done_callback(_retrieve)
                fut.cancel()

    async def _map(
        self,
        call: Call,
        items: Iterable[Any] | AsyncIterable[Any],
        ordered: bool,
        actors: int | None,
        on_complete: Callable[[int, Any], None] | None,
        pending: dict[asyncio.Future, _Pending],
    ) -> AsyncIterator[tuple[int, Any]]:
        limit = min(actors or self.size, self.size)
        window = limit * self.max_in_flight * 4
        source = aiter_any(items)
        exhausted = False
        next_index = next_yield = seq = 0
        retries: deque[tuple[int, Any, int]] = deque()
        done_results: dict[int, Any] = {}
        # (slot, generation) of a dead actor -> seq of the call it was running when it died
        suspects: dict[tuple[int, int], int] = {}

        while True:
            starved = False
            while True:
                if retries or not exhausted and (not ordered or next_index - next_yield < window):
                    slot = self._free_slot(limit)
                    if slot is None:
                        starved = True
                        break
                else:
                    break
                if retries:
                    index, item, attempts = retries.popleft()
                else:
                    try:
                        item = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        continue
                    index, attempts = next_index, 0
                    next_index += 1
                    slot = self._free_slot(limit)  # another map may have filled it meanwhile
                    if slot is None:
                        retries.appendleft((index, item, attempts))
                        starved = True
                        break
                ref = call(slot.actor, item)
                slot.in_flight += 1
                seq += 1
                fut = asyncio.wrap_future(ref.future())
                pending[fut] = _Pending(slot, slot.generation, index, item, attempts, seq)
                self.stats.submitted += 1
            if not pending and not starved:
                break  # input exhausted and every result yielded
            waiting: set[asyncio.Future] = set(pending)
            room = None
            if starved:  # other maps (or cancelled calls still settling) hold the capacity
                room = asyncio.get_running_loop().create_future()
                self._room.append(room)
                waiting.add(room)
            ready = self._ready_task
            if ready is not None:
                waiting.add(ready)
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if room is not None and not room.done():
                room.cancel()
            if ready is not None and ready.done():
                self._ready_task = None
                if not ready.cancelled():  # cancelled: the pool is shutting down
                    ready.result()  # raises PoolError when the actors cannot be placed
            for fut in done:
                p = pending.pop(fut, None)
                if p is None:
                    continue
                if self._settle_result(p, fut, pending, suspects, retries):
                    result = fut.result()
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

    def _settle_result(
        self,
        p: _Pending,
        fut: asyncio.Future,
        pending: dict[asyncio.Future, _Pending],
        suspects: dict[tuple[int, int], int],
        retries: deque[tuple[int, Any, int]],
    ) -> bool:
        """Settle a finished call: True when it has a result (or its own error) to report;
        False when its actor died and it was queued again. An item that killed too many
        actors fails the map."""
        self._settle(p)
        exc = None if fut.cancelled() else fut.exception()
        if not isinstance(exc, RayActorError):
            return True
        key = (p.slot.index, p.generation)
        if key not in suspects:
            # a sync actor runs calls in submission order: the oldest call still in flight
            # was running when it died; the rest only queued behind it
            suspects[key] = min(
                [p.seq]
                + [q.seq for q in pending.values() if (q.slot.index, q.generation) == key]
            )
        self._replace(p.slot, p.generation)
        attempts = p.attempts
        if p.seq == suspects[key]:
            if attempts >= self.max_item_retries:
                raise PoolError(
                    f"ActorPool {self.name!r}: item {p.index} was sent to {attempts + 1} "
                    "actors and each died. If the actors fail to start, the reason is below; "
                    "otherwise the item itself probably crashes the worker process (memory, a "
                    f"native crash or os._exit). Last death: {str(exc)[:2000]}",
                    pool=self.name,
                ) from exc
            attempts += 1
        self.stats.resubmitted += 1
        retries.append((p.index, p.item, attempts))
        return False

    async def call(self, call: Call, item: Any) -> Any:
        """One call on the least busy actor (with the same waiting, replacement and
        cancellation as ``map``); returns its result."""
        stream = self.map(call, [item])
        try:
            async for _, result in stream:
                return result
        finally:
            await stream.aclose()
        raise PoolError(f"ActorPool {self.name!r}: a call returned no result", pool=self.name)

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

    def shutdown(self) -> None:
        """End the pool's actors: idle ones exit as a normal end (``__ray_terminate__``:
        the dashboard shows an intended exit, not ``ray.kill``), busy ones are killed now.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        task, self._ready_task = self._ready_task, None
        if task is not None and not task.done():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop is closed: the task is gone with it
                pass
        for slot in self._slots:
            try:
                if slot.in_flight == 0:  # idle: a normal end (the dashboard shows an exit)
                    _ending(slot.actor.__ray_terminate__.remote())
                else:  # busy (a failed or stopped run): now, not after its calls
                    ray.kill(slot.actor, no_restart=True)
            except Exception:  # an actor that is already gone needs no kill
                pass

    def __repr__(self) -> str:
        return (
            f"ActorPool({self.name!r}, size={self.size}, in_flight={self.busy}, "
            f"completed={self.stats.completed}, replaced={self.stats.actors_replaced})"
        )


#: the ends asked of idle actors by ``shutdown`` (each resolves when its actor is gone)
_ENDING: list[ray.ObjectRef] = []


def _ending(ref: ray.ObjectRef) -> None:
    """Keep ``ref`` for ``wait_ended``; ends already done are dropped (a long-lived process
    ends many pools)."""
    if len(_ENDING) >= 64:
        _, _ENDING[:] = ray.wait(_ENDING, num_returns=len(_ENDING), timeout=0)
    _ENDING.append(ref)


def wait_ended(timeout: float) -> None:
    """Wait at most ``timeout`` s for the actors that ``shutdown`` asked to end to be gone.

    For a process about to leave without Ray's disconnect (``os._exit``): an actor whose
    end is still queued when its owner vanishes dies of "owner crashed" instead of its
    normal end."""
    ending, _ENDING[:] = list(_ENDING), []
    if ending and ray.is_initialized():
        try:
            ray.wait(ending, num_returns=len(ending), timeout=timeout)
        except Exception:  # noqa: BLE001 - leaving anyway: an actor not ended in time dies with us
            pass


def _retrieve(fut: asyncio.Future) -> None:
    """Mark a future's exception as seen (a dropped call's failure is not news)."""
    if not fut.cancelled():
        fut.exception()
