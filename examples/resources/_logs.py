"""``collect_logs(logger)``: the messages a logger logs inside a ``with`` block."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class Collect(logging.Handler):
    """Keeps the messages logged (``messages``)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def collect_logs(logger: logging.Logger) -> Iterator[list[str]]:
    """The list ``logger``'s messages go to while the block runs; they are also printed (a
    script run has no logging set up, so it is, in the usual ``LEVEL name: message`` form)."""
    collected = Collect()
    logger.addHandler(collected)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    try:
        yield collected.messages
    finally:
        logger.removeHandler(collected)
