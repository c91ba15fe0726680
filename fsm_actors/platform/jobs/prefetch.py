"""Running a blocking iterator on a thread, a bounded number of items ahead (plain core).

The driver's reader starts while the worker actors are still starting, and keeps reading
while the event loop handles results; ``depth`` bounds how far ahead it gets, so memory stays
flat in input size.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch:
    """Pulls ``items`` on a daemon thread into a queue of at most ``depth`` items.

    Iterate it once with ``async for``; an exception of the iterator is re-raised there.
    ``close`` stops the thread (it finishes the item it is producing, then exits).
    """

    def __init__(self, items: Iterator[Any], depth: int) -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="file-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failed(exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            item = await asyncio.to_thread(self._queue.get)
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop reading and drop what was read ahead."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
