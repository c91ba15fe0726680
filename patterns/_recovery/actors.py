"""Policy actors: one named actor per policy name, ``recovery/<name>`` (a ``PolicyHost``).

A host holds the shells of every policy of its name (a workflow's breaker, limiter and
bulkhead; an API run's limiter and every endpoint's breaker), made on first use from the
config each call carries. Each shell hosts one plain core (``TokenBucket``, ``BreakerCore``,
``PermitBook`` with its ``PermitWaiters``), journals it to Ray's internal KV after every
change, and exports its figures through ``ray.util.metrics`` tagged with the policy. Calls
that wait (``take``, ``acquire``) run in the ``acquire`` concurrency group (``wait``);
releases, reports and reads in ``control`` (``do``), so they are served while many callers
wait.
The cores' clocks are wall time, so a restarted actor can compare journaled times.

A shell restores its journal when Ray restarted it, or when a user created it again after
it died (``restore=True``: the user reconnects after ``ray.kill``); a first creation clears
what an earlier run left. ``configure(config)`` is sent by every new user: a user whose
config differs (another run with other limits under the same name) replaces it, from then
on for every user of the name (one policy per name), and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import ActorDiedError
from ray.util.metrics import Counter, Gauge

from fsm_actors.platform.journal import Journal
from patterns._recovery.breaker_core import BreakerCore, CircuitBreakerState
from patterns._recovery.bulkhead import PermitWaiters
from patterns._recovery.bulkhead_core import PermitBook
from patterns._recovery.limiter_core import TokenBucket
from patterns._recovery.policy_config import BulkheadConfig, CircuitBreakerConfig, RateLimiterConfig

log = logging.getLogger(__name__)

# Each group of a threaded actor is a pool of real threads, made when the actor starts:
# 10,000 of them per policy actor exhausted the machine. Waiters beyond 256 queue in Ray.
GROUPS = {"acquire": 256, "control": 16}
SWEEP_INTERVAL = 0.5
_STATE_CODE = {CircuitBreakerState.CLOSED: 0, CircuitBreakerState.HALF_OPEN: 1,
               CircuitBreakerState.OPEN: 2}
_TAGS = ("policy",)


def _journal(actor_name: str, restore: bool) -> tuple[Journal, dict[str, Any] | None]:
    """The policy's journal and the snapshot to restore (after a restart or a re-creation by
    a reconnecting user); the snapshot's ``config`` is the one that was in effect, and wins
    over the config of the call that made the shell again."""
    journal = Journal(actor_name)
    with warnings.catch_warnings():  # Ray's own property uses a deprecated accessor inside
        warnings.simplefilter("ignore", DeprecationWarning)
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
    if not (restarted or restore):
        journal.clear()
        return journal, None
    snapshot = journal.load()
    if snapshot is None or "config" not in snapshot:
        return journal, None
    return journal, snapshot


def _breaker_fingerprint(config: CircuitBreakerConfig) -> str:
    return config.model_dump_json(exclude={"record_exceptions", "ignore_exceptions"})


class _Gauges:
    """Gauges of one policy, tagged with it: ``{key: (metric name, description)}``;
    ``set(figures)`` sets each from ``figures[key]``."""

    def __init__(self, policy: str, gauges: dict[str, tuple[str, str]]) -> None:
        self._tag = {"policy": policy}
        self._gauges = {key: Gauge(name, text, tag_keys=_TAGS)
                        for key, (name, text) in gauges.items()}

    def set(self, figures: dict[str, Any]) -> None:
        for key, gauge in self._gauges.items():
            gauge.set(figures[key], self._tag)


class _Shell:
    """What every shell starts with: its name, journal and tag, and the config in effect
    (the restored snapshot's, if any: ``_snapshot``)."""

    def __init__(self, actor_name: str, config: Any, restore: bool) -> None:
        self._name = actor_name
        self._journal, self._snapshot = _journal(actor_name, restore)
        self._config = config if self._snapshot is None else self._snapshot["config"]
        self._tag = {"policy": actor_name}

    def _counter(self, name: str, description: str) -> Counter:
        return Counter(name, description, tag_keys=_TAGS)


class LimiterShell(_Shell):
    """A cluster-wide token bucket; workers ``take`` small blocks of tokens."""

    def __init__(self, actor_name: str, config: RateLimiterConfig, restore: bool = False) -> None:
        super().__init__(actor_name, config, restore)
        config = self._config
        self._bucket = TokenBucket(config.per_second, config.capacity, time.time)
        self._lock = threading.Lock()
        self._fingerprint = config.model_dump_json()
        if self._snapshot is not None:
            self._bucket.restore(self._snapshot["bucket"])
        self._waiting = 0
        self._timed_out = 0
        self._m_tokens = Gauge("fsm_actors_recovery_limiter_available_tokens",
                               "Tokens a rate limiter can grant now", tag_keys=_TAGS)
        self._m_waiting = Gauge("fsm_actors_recovery_limiter_waiting",
                                "Block requests waiting for tokens", tag_keys=_TAGS)
        self._m_granted = self._counter("fsm_actors_recovery_limiter_granted", "Tokens granted")

    def _save(self) -> None:
        self._journal.save({"config": self._config, "bucket": self._bucket.snapshot()})

    async def take(self, want: int, need: int, timeout: float | None) -> int:
        """Up to ``want`` tokens (at least ``need``) once they are due; 0 when ``need`` would
        take longer than ``timeout``."""
        with self._lock:
            wait = self._bucket.reserve(want, timeout)
            granted = want
            if wait is None and need < want:
                wait, granted = self._bucket.reserve(need, timeout), need
            if wait is None:
                self._timed_out += 1
                return 0
            self._save()
            self._waiting += 1
            self._m_granted.inc(granted, self._tag)
        try:
            if wait > 0:
                self._m_waiting.set(self._waiting, self._tag)
                await asyncio.sleep(wait)
        finally:
            with self._lock:
                self._waiting -= 1
                self._m_tokens.set(self._bucket.available(), self._tag)
        return granted

    async def configure(self, config: RateLimiterConfig) -> None:
        """Use ``config`` from now on if it differs (see the module docstring)."""
        with self._lock:
            fingerprint = config.model_dump_json()
            if fingerprint == self._fingerprint:
                return
            log.warning("rate limiter %s: a new user brings other limits (%g/s, burst %d); "
                        "they replace %g/s, burst %d for every user of the name", self._name,
                        config.per_second, config.capacity, self._bucket.rate,
                        self._bucket.capacity)
            granted = self._bucket.granted
            self._bucket = TokenBucket(config.per_second, config.capacity, time.time)
            self._bucket.granted = granted
            self._fingerprint, self._config = fingerprint, config
            self._save()

    async def pause(self, seconds: float) -> None:
        with self._lock:
            self._bucket.pause(seconds)
            self._save()

    async def metrics(self) -> dict[str, Any]:
        with self._lock:
            return {"available_tokens": self._bucket.available(), "waiting": self._waiting,
                    "granted": self._bucket.granted, "timed_out": self._timed_out,
                    "rate": self._bucket.rate, "burst": self._bucket.capacity}

    def __repr__(self) -> str:
        return f"LimiterShell({self._name})"


class BreakerShell(_Shell):
    """A cluster-wide circuit breaker: workers report outcomes in batches and get the state
    back; HALF_OPEN probes are granted here, so the probe quota holds cluster-wide."""

    def __init__(self, actor_name: str, config: CircuitBreakerConfig, restore: bool = False) -> None:
        super().__init__(actor_name, config, restore)
        self._core = BreakerCore(self._config, actor_name, time.time)
        self._lock = threading.Lock()
        self._fingerprint = _breaker_fingerprint(self._config)
        if self._snapshot is not None:
            self._core.restore(self._snapshot["breaker"])
        self._gauges = _Gauges(actor_name, {
            "state": ("fsm_actors_recovery_breaker_state",
                      "Breaker state: 0 closed, 1 half open, 2 open"),
            "failure_rate": ("fsm_actors_recovery_breaker_failure_rate",
                             "Failure rate in percent (-1 before minimum calls)"),
            "slow_call_rate": ("fsm_actors_recovery_breaker_slow_call_rate",
                               "Slow-call rate in percent (-1 before minimum calls)"),
            "not_permitted_calls": ("fsm_actors_recovery_breaker_not_permitted",
                                    "Calls refused by the breaker")})

    def _view(self) -> tuple[str, float]:
        state = self._core.state
        self._gauges.set({**self._core.metrics(), "state": _STATE_CODE[state]})
        return state.value, self._core.retry_after()

    def _changed(self) -> tuple[str, float]:
        self._save()
        return self._view()

    def _save(self) -> None:
        self._journal.save({"config": self._config, "breaker": self._core.snapshot()})

    async def configure(self, config: CircuitBreakerConfig) -> tuple[str, float]:
        """Use ``config`` from now on if it differs (a fresh CLOSED breaker); the state."""
        with self._lock:
            fingerprint = _breaker_fingerprint(config)
            if fingerprint != self._fingerprint:
                log.warning("circuit breaker %s: a new user brings another config; it "
                            "replaces the old one (state reset) for every user", self._name)
                self._core = BreakerCore(config, self._name, time.time)
                self._fingerprint, self._config = fingerprint, config
                self._save()
            return self._view()

    async def report(self, codes: list[int], refused: int, source: str = "") -> tuple[str, float]:
        """Closed-state outcomes and locally refused calls of one user (``source``); the
        state now."""
        with self._lock:
            if codes:
                self._core.record_batch(codes, source)
            self._core.not_permitted += refused
            if codes or refused:
                self._save()
            return self._view()

    async def probe(self) -> tuple[str | None, str, float]:
        """A permit for a call while the breaker is not CLOSED (a HALF_OPEN probe, or a
        CLOSED permit if it closed meanwhile), or ``None``; and the state."""
        with self._lock:
            permit = self._core.try_acquire()
            return (permit, *self._changed())

    async def record_probe(self, permit: str, code: int) -> tuple[str, float]:
        with self._lock:
            self._core.record(permit, code)
            return self._changed()

    async def force(self, state: str) -> tuple[str, float]:
        with self._lock:
            self._core.force(CircuitBreakerState(state))
            return self._changed()

    async def metrics(self) -> dict[str, Any]:
        with self._lock:
            self._view()
            return self._core.metrics()

    def __repr__(self) -> str:
        return f"BreakerShell({self._name})"


class BulkheadShell(_Shell):
    """Cluster-wide bulkhead permits as leases of the calling processes.

    A caller sends its process's actor handle (its own actor, or its ``OwnerAnchor``) once;
    every ``SWEEP_INTERVAL`` seconds the permits of holders whose actor died are freed.
    """

    def __init__(self, actor_name: str, config: BulkheadConfig, restore: bool = False,
                 kick: Callable[[], Any] | None = None) -> None:
        super().__init__(actor_name, config, restore)
        self._kick = kick  # starts the sweeper on the control group's loop
        self._book = PermitBook(self._config.max_concurrent, self._config.max_queue_size)
        self._owners: dict[str, Any] = {}
        if self._snapshot is not None:
            self._book.restore(self._snapshot["book"], prefix=f"{uuid.uuid4().hex[:6]}-")
            self._owners = dict(self._snapshot.get("owners", {}))
        self._waiters = PermitWaiters(self._book, actor_name, on_change=self._changed)
        self._checks: dict[str, Any] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_asked = False
        self._gauges = _Gauges(actor_name, {
            "available": ("fsm_actors_recovery_bulkhead_available", "Bulkhead permits free"),
            "queued": ("fsm_actors_recovery_bulkhead_queued",
                       "Calls waiting for a bulkhead permit"),
            "rejected": ("fsm_actors_recovery_bulkhead_rejected",
                         "Calls refused by the bulkhead")})
        self._m_reclaimed = self._counter("fsm_actors_recovery_bulkhead_reclaimed",
                                          "Permits freed because their holder died")

    def _changed(self) -> None:
        # called with the waiters' lock released; the journal write is the price of
        # restarting without granting more than max_concurrent
        with self._waiters.lock:
            snapshot = {"config": self._config, "book": self._book.snapshot(),
                        "owners": dict(self._owners)}
            m = self._book.metrics()
        self._journal.save(snapshot)
        self._gauges.set(m)

    async def start_sweeper(self) -> None:
        """Sweep on the control group's loop (so the checks and their futures live there)."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def acquire(self, holder: str, handle: Any, timeout: float | None) -> str:
        """A lease id for ``holder``; raises ``BulkheadFullError``."""
        if handle is not None:
            with self._waiters.lock:
                self._owners[holder] = handle
            if not self._sweep_asked and self._kick is not None:
                self._sweep_asked = True
                self._kick()
        return await self._waiters.acquire(holder, timeout)

    async def release(self, lease: str) -> None:
        self._waiters.release(lease)

    async def sweep(self) -> int:
        """Free the permits of dead holders now; how many."""
        freed = 0
        with self._waiters.lock:
            holders = self._book.holders()
        for key in list(self._checks):
            if key not in holders:
                self._checks.pop(key, None)
        for key in holders:
            if await self._dead(key):
                count = self._waiters.release_holder(key)
                with self._waiters.lock:
                    self._owners.pop(key, None)
                freed += count
                if count:
                    self._m_reclaimed.inc(count, self._tag)
                    log.warning("bulkhead %s: freed %d permit(s) of dead holder %s",
                                self._name, count, key[:12])
        return freed

    async def _dead(self, key: str) -> bool:
        handle = self._owners.get(key)
        if handle is None:
            return False
        check = self._checks.get(key)
        if check is None:  # one check in flight per holder: a busy holder answers late
            self._checks[key] = asyncio.ensure_future(handle.__ray_ready__.remote())
            return False
        if not check.done():
            return False
        del self._checks[key]
        return isinstance(check.exception(), ActorDiedError)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.sweep()
            except Exception:
                log.exception("bulkhead %s: sweep failed", self._name)

    async def metrics(self) -> dict[str, Any]:
        await self.start_sweeper()
        return self._waiters.metrics()

    def __repr__(self) -> str:
        return f"BulkheadShell({self._name})"


SHELLS: dict[str, Any] = {"rate_limiter": LimiterShell, "circuit_breaker": BreakerShell,
                          "bulkhead": BulkheadShell}


class PolicyHost:
    """The policies of one name (see the module docstring). ``restore``: the host was made
    again by a user after it died, so its shells take over their journals."""

    def __init__(self, actor_name: str, restore: bool = False) -> None:
        self._name = actor_name
        self._restore = restore
        self._shells: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _shell(self, kind: str, key: str, config: Any) -> Any:
        with self._lock:
            shell = self._shells.get((kind, key))
            if shell is None:
                if config is None:
                    raise KeyError(f"{self._name}: no {kind} {key!r} here yet")
                full = f"{self._name}/{kind}" + (f"/{key}" if key else "")
                extra: dict[str, Any] = {}
                if kind == "bulkhead":
                    me = ray.get_runtime_context().current_actor
                    extra["kick"] = lambda: me.do.remote(kind, key, None, "start_sweeper")
                shell = SHELLS[kind](full, config, self._restore, **extra)
                self._shells[(kind, key)] = shell
            return shell

    @ray.method(concurrency_group="acquire")
    async def wait(self, kind: str, key: str, config: Any, method: str, *args: Any) -> Any:
        """``method(*args)`` of the policy ``(kind, key)`` (made from ``config`` if new), for
        calls that may wait."""
        return await getattr(self._shell(kind, key, config), method)(*args)

    @ray.method(concurrency_group="control")
    async def do(self, kind: str, key: str, config: Any, method: str, *args: Any) -> Any:
        """``wait`` for calls that never wait (reports, releases, reads)."""
        return await getattr(self._shell(kind, key, config), method)(*args)

    def __repr__(self) -> str:
        return f"PolicyHost({self._name})"


# An asyncio actor (its methods are async): a concurrency group is then one event loop, its
# size a bound on calls in flight, not a thread pool.
REMOTE = ray.remote(concurrency_groups=GROUPS)(PolicyHost)
