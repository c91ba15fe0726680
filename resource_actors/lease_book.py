"""The lease book: the acquire protocol of one resource, and its registrations. No I/O.

``LeaseBook`` decides who holds a resource; drivers carry its decisions out. There is one
driver, ``resource_actors.admission.Admission`` (a condition variable), used by an in-process
``ProviderHost`` and by the threads of a ``ProviderActor`` alike. The protocol:

1. ``begin(owner, deadline)`` answers *existing* (the owner already holds the resource),
   *admitted* (a slot is reserved for a new lease) or *wait* (a ``Ticket`` in the FIFO queue).
2. A waiting driver sleeps until its ticket changes: *admitted* (a freed slot was handed to
   it, oldest ticket first), *retry* (the same owner's other acquisition finished: begin
   again), or its deadline passes: ``give_up`` then answers the timeout error, unless the
   ticket was admitted first. A ticket past its deadline is never admitted.
3. An admitted driver leases a live resource and reports ``complete`` or ``fail``.
4. A lease ends in two steps, so the cap holds while the resource goes back: ``end_lease``
   (by owner) or ``take`` (reclaim) detach it from its owner; the driver returns the
   resource, then ``settle`` frees the slot and admits the next ticket.

Every method returns the tickets it changed; the driver wakes their waiters. The cap is
``PoolConfig.max_size`` (None: unbounded), the one cap of the resource. Not thread-safe:
drivers serialize calls.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from resource_actors.base import ResourceMetrics
from resource_actors.errors import RegistrationConflict, ResourceError

if TYPE_CHECKING:
    from resource_actors.pool import PoolConfig


@dataclass
class Lease:
    """One owner's hold on one resource. ``grant`` is what the driver hands to the owner."""

    lease_id: str
    resource_name: str
    owner_id: str
    reserved_at: float
    owner_key: str | None = None
    acquired_at: float | None = None
    expires_at: float | None = None
    grant: Any = None

    @property
    def active(self) -> bool:
        """False while the provider is still leasing the resource."""
        return self.acquired_at is not None


@dataclass(eq=False)
class Ticket:
    """A waiting acquisition, in arrival order."""

    owner_id: str
    owner_key: str | None
    deadline: float
    state: Literal["waiting", "admitted", "retry", "expired", "closed"] = "waiting"
    lease: Lease | None = None


@dataclass(frozen=True)
class Decision:
    """Answer of ``LeaseBook.begin``."""

    kind: Literal["existing", "admitted", "wait"]
    lease: Lease | None = None
    ticket: Ticket | None = None


class LeaseBook:
    """Leases of one resource, its cap and its FIFO queue (see the module docstring)."""

    def __init__(self, name: str, cap: int | None = None, lease_ttl: float | None = None,
                 *, clock: Callable[[], float] = time.monotonic, id_prefix: str = "") -> None:
        self.name = name
        self.cap = cap
        self.lease_ttl = lease_ttl
        self.metrics = ResourceMetrics()
        self.closed = False
        self.clock = clock
        self.id_prefix = id_prefix
        self._leases: dict[str, Lease] = {}  # by owner: reserved or active
        self._ending: dict[str, Lease] = {}  # by lease id: detached, resource on its way back
        self._queue: deque[Ticket] = deque()
        self._same_owner: dict[str, list[Ticket]] = {}
        self._anonymous = itertools.count()

    def anonymous_owner(self) -> str:
        """An owner id for a caller that gave none (each call its own owner)."""
        return f"?{next(self._anonymous)}"

    # -- acquire -----------------------------------------------------------------------------
    def begin(self, owner_id: str, owner_key: str | None, deadline: float) -> Decision:
        """Existing lease, a reserved slot, or a ticket to wait on."""
        self._check_open(owner_id)
        lease = self._leases.get(owner_id)
        if lease is not None:
            if lease.active:
                return Decision("existing", lease)
            ticket = Ticket(owner_id, owner_key, deadline)  # its other acquisition is under way
            self._same_owner.setdefault(owner_id, []).append(ticket)
            return Decision("wait", ticket=ticket)
        if not self._queue and self._has_room():
            return Decision("admitted", self._reserve(owner_id, owner_key))
        ticket = Ticket(owner_id, owner_key, deadline)
        self._queue.append(ticket)
        return Decision("wait", ticket=ticket)

    def complete(self, lease: Lease, grant: Any) -> list[Ticket]:
        """The provider leased the resource: the lease becomes active."""
        if self._leases.get(lease.owner_id) is not lease:
            raise ResourceError(f"resource {self.name!r} was closed while being acquired",
                                self.name, "acquire", owner_id=lease.owner_id)
        now = self.clock()
        lease.acquired_at = now
        lease.grant = grant
        lease.expires_at = now + self.lease_ttl if self.lease_ttl else None
        self.metrics.record_acquisition(now - lease.reserved_at)
        return self._retry_same_owner(lease.owner_id)

    def fail(self, lease: Lease) -> list[Ticket]:
        """The provider could not lease the resource: free the slot, count a failure."""
        if self._leases.get(lease.owner_id) is lease:
            del self._leases[lease.owner_id]
            self.metrics.record_failure()
        return self._retry_same_owner(lease.owner_id) + self._admit_waiters()

    def give_up(self, ticket: Ticket, waited: float) -> ResourceError | None:
        """A waiter's deadline passed: None when it was admitted just before (it proceeds),
        else the timeout error (its ticket leaves the queue, never to be admitted)."""
        if ticket.state == "admitted":
            return None
        if ticket in self._queue:
            self._queue.remove(ticket)
        waiting = self._same_owner.get(ticket.owner_id, [])
        if ticket in waiting:
            waiting.remove(ticket)
        ticket.state = "expired"
        return self.timeout_error(ticket.owner_id, waited)

    def timeout_error(self, owner_id: str, waited: float) -> ResourceError:
        """Count a timed-out acquisition and build the error that names the cap and holders."""
        self.metrics.record_timeout()
        self.metrics.record_failure()
        holders = sorted(self._leases)
        shown = ", ".join(repr(h) for h in holders[:5]) + (
            f" and {len(holders) - 5} more" if len(holders) > 5 else "")
        return ResourceError(
            f"pool of resource {self.name!r} is exhausted: {len(holders) + len(self._ending)} "
            f"of max_size={self.cap} leases in use (held by {shown or 'nobody'}); "
            f"{owner_id!r} waited {waited:.1f}s. Release leases sooner (use resource_context), "
            "raise PoolConfig.max_size, or raise the acquire timeout.",
            self.name, "acquire", owner_id=owner_id)

    # -- end ---------------------------------------------------------------------------------
    def end_lease(self, owner_id: str) -> Lease | None:
        """Detach ``owner_id``'s active lease (None when it holds none); ``settle`` it once the
        resource is back."""
        lease = self._leases.get(owner_id)
        if lease is None or not lease.active:
            return None
        del self._leases[owner_id]
        self._ending[lease.lease_id] = lease
        self.metrics.record_release(self.clock() - (lease.acquired_at or lease.reserved_at))
        return lease

    def take(self, lease: Lease) -> bool:
        """Detach a lease its owner cannot release (dead owner, expired TTL); False if it
        already ended. ``settle`` it once the resource is discarded."""
        if self._leases.get(lease.owner_id) is not lease or not lease.active:
            return False
        del self._leases[lease.owner_id]
        self._ending[lease.lease_id] = lease
        self.metrics.record_release(self.clock() - (lease.acquired_at or lease.reserved_at),
                                    reclaimed=True)
        return True

    def settle(self, lease: Lease) -> list[Ticket]:
        """The resource of a detached lease is back: free its slot for the oldest waiter."""
        self._ending.pop(lease.lease_id, None)
        return self._admit_waiters()

    def expired(self) -> list[Lease]:
        """Active leases past their TTL."""
        now = self.clock()
        return [lease for lease in self._leases.values()
                if lease.active and lease.expires_at is not None and lease.expires_at <= now]

    def close(self) -> tuple[list[Lease], list[Ticket]]:
        """Refuse further work: every lease (to discard) and every woken ticket."""
        self.closed = True
        leases = [*self._leases.values(), *self._ending.values()]
        self._leases.clear()
        self._ending.clear()
        tickets = [*self._queue, *(t for ts in self._same_owner.values() for t in ts)]
        self._queue.clear()
        self._same_owner.clear()
        for ticket in tickets:
            ticket.state = "closed"
        return leases, tickets

    # -- queries -----------------------------------------------------------------------------
    def lease(self, owner_id: str) -> Lease | None:
        """``owner_id``'s active lease."""
        lease = self._leases.get(owner_id)
        return lease if lease is not None and lease.active else None

    def active(self) -> list[Lease]:
        """Every active lease."""
        return [lease for lease in self._leases.values() if lease.active]

    def owners(self) -> set[str]:
        """Owner ids holding the resource."""
        return {lease.owner_id for lease in self.active()}

    def waiting(self) -> int:
        """Acquisitions waiting for a slot."""
        return len(self._queue) + sum(len(ts) for ts in self._same_owner.values())

    def in_use(self) -> int:
        """Slots taken: leases reserved, active or ending."""
        return len(self._leases) + len(self._ending)

    def snapshot(self) -> ResourceMetrics:
        """A copy of the lease metrics."""
        return replace(self.metrics)

    def status(self) -> dict[str, Any]:
        """``active_count``, ``owners``, ``max_size`` and lease totals."""
        owners = sorted(self.owners())
        m = self.metrics
        return {"active_count": len(owners), "owners": owners, "max_size": self.cap,
                "waiting": self.waiting(), "total_acquires": m.total_acquisitions,
                "total_releases": m.total_releases, "total_reclaims": m.total_reclaims}

    # -- internals ---------------------------------------------------------------------------
    def _check_open(self, owner_id: str) -> None:
        if self.closed:
            raise ResourceError(f"resource {self.name!r} is closed (unregistered or shut down)",
                                self.name, "acquire", owner_id=owner_id)

    def _has_room(self) -> bool:
        return self.cap is None or self.in_use() < self.cap

    def _reserve(self, owner_id: str, owner_key: str | None) -> Lease:
        lease = Lease(f"{self.id_prefix}{uuid.uuid4().hex}", self.name, owner_id, self.clock(),
                      owner_key)
        self._leases[owner_id] = lease
        return lease

    def _admit_waiters(self) -> list[Ticket]:
        changed: list[Ticket] = []
        now = self.clock()
        while self._queue and self._has_room():
            ticket = self._queue.popleft()
            if ticket.deadline <= now:
                ticket.state = "expired"  # its driver answers the timeout; never admitted
                changed.append(ticket)
                continue
            if ticket.owner_id in self._leases:  # the owner got one meanwhile: begin again
                ticket.state = "retry"
            else:
                ticket.lease = self._reserve(ticket.owner_id, ticket.owner_key)
                ticket.state = "admitted"
            changed.append(ticket)
        return changed

    def _retry_same_owner(self, owner_id: str) -> list[Ticket]:
        tickets = self._same_owner.pop(owner_id, [])
        for ticket in tickets:
            ticket.state = "retry"
        return tickets


@dataclass
class Registration:
    """Who registered a resource, and with what: ``ids`` of live registrations.

    An identical registration (same fingerprint and pool config) joins; anything else under
    the same name is a ``RegistrationConflict``. The provider goes when the last id leaves.
    """

    name: str
    fingerprint: str | None
    pool_config: PoolConfig | None
    ids: set[str] = field(default_factory=set)

    def join(self, reg_id: str, fingerprint: str | None, pool_config: PoolConfig | None) -> bool:
        """Add ``reg_id``; True when it is the first. Joining twice with one id is a no-op."""
        if reg_id in self.ids:
            return False
        same = fingerprint == self.fingerprint and pool_config == self.pool_config
        if not same or (self.ids and fingerprint is None):
            raise RegistrationConflict(
                f"resource {self.name!r} is already registered with another provider or pool "
                "config; choose another name, register the identical provider, or unregister "
                "it first", self.name, "register")
        first = not self.ids
        self.ids.add(reg_id)
        return first

    def leave(self, reg_id: str | None) -> bool:
        """Drop ``reg_id`` (None: every one); True when none is left."""
        if reg_id is None:
            self.ids.clear()
        else:
            self.ids.discard(reg_id)
        return not self.ids


def new_registration_id() -> str:
    return uuid.uuid4().hex
