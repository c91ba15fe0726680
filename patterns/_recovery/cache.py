"""Results by argument key with a TTL (plain core, injectable clock).

Keys are built from the function's qualified name and its arguments: hashable arguments as
they are, others by ``repr``. Least recently used entries go first past ``max_entries``.
Not thread-safe: the workflow calls it from one event loop at a time under its lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_MISS = object()


def call_key(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    """The cache key of ``fn(*args, **kwargs)``."""
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    owner = getattr(fn, "__self__", None)
    key: tuple[Any, ...] = (name, id(owner) if owner is not None else None, args,
                            tuple(sorted(kwargs.items())))
    try:
        hash(key)
    except TypeError:
        return (name, key[1], repr(args), repr(sorted(kwargs.items())))
    return key


class TTLCache:
    """At most ``max_entries`` results, each kept ``ttl`` seconds."""

    def __init__(self, ttl: float, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: Any = _MISS) -> Any:
        """The live value at ``key``, else ``default`` (``MISS`` unless given)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return default
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def metrics(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self._entries),
                "ttl": self.ttl}


MISS = _MISS
