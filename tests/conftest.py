"""Session fixtures shared by every test package: one Ray instance per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# CLI runs in tests start a Ray of their own as before; only tests of the background head
# (test_runtime_background.py) let a first run leave one (issue 26 item 1)
os.environ.setdefault("FSM_ACTORS_BACKGROUND_HEAD", "0")
# Ray's processes report their metrics to the node's export every 10 s by default: tests that
# read the export (tests/ops/test_metrics*.py, test_see_counts.py) would wait out most of
# that; every Ray the session starts (and the CLI runs it starts) reports every 2 s
os.environ.setdefault("RAY_metrics_report_interval_ms", "2000")


class _LiveRay:
    """The session's Ray as it is now: a fixture that must restart Ray (the S3 server's, so
    workers see its variables) changes its address, and tests read ``address`` from here."""

    def __init__(self, info):
        self._info = info

    @property
    def address(self) -> str:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().gcs_address
        return self._info.address

    def __getattr__(self, name):
        return getattr(self._info, name)


@pytest.fixture(scope="session")
def ray_session():
    """Start one local Ray (2 CPUs) for the whole session and stop it at the end."""
    from fsm_actors.platform import runtime

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    info = runtime.ensure_ray(address="local", num_cpus=2, include_dashboard=False)
    yield _LiveRay(info)
    runtime.shutdown()


@pytest.fixture(scope="session")
def s3_store() -> Iterator:
    """One moto S3 server (tests/s3_server.py) for the session, started on first use: each
    module makes buckets of its own names; a Ray needs restarting once, not per module."""
    from tests.s3_server import start_s3

    server = start_s3()
    yield server
    server.stop()
