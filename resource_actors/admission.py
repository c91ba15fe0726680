"""``Admission``: the one driver of the broker core, for threads.

It only waits and leases: every decision is the ``LeaseBook``'s. Blocked acquirers sleep on
one condition; any change to the book wakes them, and each looks at its own ticket. Used by
``ResourcePool`` (its cap), ``ProviderHost`` in-process and inside a ``ProviderActor`` (whose
calls run on threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from resource_actors.errors import ResourceError
from resource_actors.lease_book import Lease, LeaseBook, Ticket

T = TypeVar("T")


class Admission:
    """Thread-safe access to a ``LeaseBook`` with blocking ``admit``."""

    def __init__(self, book: LeaseBook) -> None:
        self.book = book
        self.cond = threading.Condition()

    def admit(self, owner_id: str, owner_key: str | None, timeout: float) -> tuple[Lease, bool]:
        """``(lease, existing)``: the owner's active lease, or a slot reserved for a new one
        (the caller leases the resource, then calls ``complete`` or ``fail``). Waits up to
        ``timeout`` seconds, first come first served; raises the book's timeout error."""
        clock = self.book.clock
        started = clock()
        deadline = started + max(0.0, timeout)
        with self.cond:
            while True:
                decision = self.book.begin(owner_id, owner_key, deadline)
                if decision.kind != "wait":
                    return decision.lease, decision.kind == "existing"  # type: ignore[return-value]
                ticket: Ticket = decision.ticket  # type: ignore[assignment]
                while ticket.state == "waiting":
                    remaining = deadline - clock()
                    if remaining <= 0:
                        break
                    self.cond.wait(remaining)
                if ticket.state == "retry":
                    continue
                if ticket.state == "closed":
                    raise ResourceError(f"resource {self.book.name!r} was closed while "
                                        f"{owner_id!r} waited for it", self.book.name, "acquire",
                                        owner_id=owner_id)
                error = self.book.give_up(ticket, clock() - started)
                if error is None:
                    return ticket.lease, False  # type: ignore[return-value]
                raise error

    def _apply(self, changed: list[Ticket]) -> None:
        if changed:
            self.cond.notify_all()

    def complete(self, lease: Lease, grant: Any) -> None:
        with self.cond:
            self._apply(self.book.complete(lease, grant))

    def fail(self, lease: Lease) -> None:
        with self.cond:
            self._apply(self.book.fail(lease))

    def lease_with(self, lease: Lease, make: Callable[[], T]) -> T:
        """``make()``'s resource for the slot ``lease`` reserved (``admit`` gave it as new);
        when ``make`` raises, the slot is given up (``fail``) and the error goes on."""
        try:
            return make()
        except BaseException:
            self.fail(lease)
            raise

    def end_lease(self, owner_id: str) -> Lease | None:
        with self.cond:
            return self.book.end_lease(owner_id)

    def take(self, lease: Lease) -> bool:
        with self.cond:
            return self.book.take(lease)

    def settle(self, lease: Lease) -> None:
        with self.cond:
            self._apply(self.book.settle(lease))

    def close(self) -> list[Lease]:
        with self.cond:
            leases, tickets = self.book.close()
            self.cond.notify_all()
            return leases

    def read(self, fn: Any) -> Any:
        """``fn(book)`` under the lock (queries)."""
        with self.cond:
            return fn(self.book)
