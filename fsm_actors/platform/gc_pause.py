"""``gc_paused()``: hold CPython's cyclic garbage collector off while records move in bulk.

Batches allocate hundreds of thousands of small dicts and lists. Each allocation burst lets
the collector traverse everything the process holds, and with 100k records alive a full
collection costs tens of milliseconds, repeatedly: on the driver of a 100k-record batch this
was a third of the call. Records hold no reference cycles, so nothing is lost by holding the
collector until the batch is done. Nested and concurrent holders (threads, coroutines) share
one count: the collector comes back when the last one leaves, and only if it was on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_restore = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC for the ``with`` block (see the module docstring)."""
    global _holders, _restore
    with _lock:
        if _holders == 0:
            _restore = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _restore:
                gc.enable()
