"""STREAM memory stays flat in file size: the peak RSS of the driver and the workers (sampled
while the run goes) is the same bound for a file and for one 10 times larger."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

from patterns.file_processing import FileProcessingConfig, FileProcessor, ProcessingMode

pytestmark = pytest.mark.ray

BOUND = 600 << 20  # driver growth + all worker processes, bytes


def write_csv(path, rows: int) -> None:
    line = "{0},name-{0},{1},{2},true,some longer text to make the row wider {0}\n"
    with open(path, "w") as fh:
        fh.write("id,name,amount,qty,flag,note\n")
        for start in range(0, rows, 50_000):
            fh.write(
                "".join(
                    line.format(i, i * 0.25, i % 13)
                    for i in range(start, min(rows, start + 50_000))
                )
            )


def _raylet_pid() -> int:
    """The pid of the raylet of the Ray this test process started (the session's)."""
    import ray

    return ray._private.worker._global_node.all_processes["raylet"][0].process.pid


class PeakSampler:
    """Peak of (driver RSS growth + RSS of every job worker actor process)."""

    def __init__(self) -> None:
        self.driver = psutil.Process(os.getpid())
        self.base = self.driver.memory_info().rss
        self.raylet = psutil.Process(_raylet_pid())
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _workers(self) -> int:
        # a job worker's process title is its actor class when idle and the task's name
        # ("file_processing <run id> <file> batch N") while it runs one; only this session's
        # (the raylet's children: other Rays on the machine run workers of the same titles)
        total = 0
        for proc in self.raylet.children(recursive=True):
            try:
                cmd = " ".join(proc.cmdline())
                if cmd.startswith(("ray::SyncJobWorker", "ray::file_processing")):
                    total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.driver.memory_info().rss - self.base + self._workers()
            self.peak = max(self.peak, now)
            time.sleep(0.05)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_stream_peak_memory_does_not_grow_with_file_size(ray_session, tmp_path):
    peaks = {}
    for rows in (60_000, 600_000):
        src = tmp_path / f"in-{rows}.csv"
        write_csv(src, rows)
        config = FileProcessingConfig(
            input_path=str(src),
            output_path=str(tmp_path / f"out-{rows}.jsonl"),
            mode=ProcessingMode.STREAM,
            chunk_size=16_384,
            workers=2,
            transformations=[lambda r: {**r, "double": r["amount"] * 2}],
            filters=[lambda r: r["qty"] != 3],
        )
        with PeakSampler() as sampler:
            result = FileProcessor(config).run()
        assert result["lines_read"] == rows
        peaks[rows] = sampler.peak
        src.unlink()
    small, large = peaks[60_000], peaks[600_000]
    assert small < BOUND and large < BOUND, peaks
    assert large < 1.3 * small + (40 << 20), peaks
