"""Measuring helpers for benchmarks: peak RSS of a process tree, JSON result lines."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import psutil


class PeakRSS:
    """Samples the summed RSS of this process and all its descendants (Ray's local
    processes are descendants of the driver that started them) every ``interval`` s."""

    def __init__(self, interval: float = 0.05, pid: int | None = None) -> None:
        self.interval = interval
        self.root = psutil.Process(pid or os.getpid())
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        """Summed RSS now; 0 once the root process is gone."""
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def emit(**fields: Any) -> dict[str, Any]:
    """Print one JSON line and return it."""
    print(json.dumps(fields), flush=True)
    return fields
