"""The Ray runtime: idempotent connection, clear errors, actor resource requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fsm_actors.platform import runtime

CONNECT = """
from fsm_actors.platform import runtime
try:
    runtime.ensure_ray({address!r})
except runtime.RuntimeConnectError as exc:
    print("ERROR:", exc)
"""


def _connect_in_subprocess(address: str | None, **env: str) -> tuple[str, float]:
    started = time.monotonic()
    clean = {k: v for k, v in os.environ.items() if k not in runtime.ADDRESS_ENV_VARS}
    proc = subprocess.run(
        [sys.executable, "-c", CONNECT.format(address=address)],
        capture_output=True, text=True, timeout=120, env={**clean, **env},
    )
    return proc.stdout, time.monotonic() - started


def test_unreachable_address_fails_fast_with_what_was_tried():
    out, seconds = _connect_in_subprocess("127.0.0.1:1")
    assert "ERROR:" in out and "127.0.0.1:1" in out and "ray status" in out
    assert seconds < 30


def test_address_from_the_environment_is_named_in_the_error():
    out, _ = _connect_in_subprocess(None, FSM_ACTORS_ADDRESS="ray://127.0.0.1:1")
    assert "from FSM_ACTORS_ADDRESS" in out


def test_malformed_address_is_explained():
    out, _ = _connect_in_subprocess("not-an-address")
    assert "is not host:port" in out


def test_worker_cpus_are_fractional_and_configurable(monkeypatch):
    assert 0 < runtime.role_cpus("worker") < 1
    assert runtime.role_cpus("broker") == 0
    monkeypatch.setenv("FSM_ACTORS_WORKER_CPUS", "0.5")
    assert runtime.role_cpus("worker") == 0.5


@pytest.mark.ray
def test_ensure_ray_is_idempotent(ray_session):
    first = runtime.ensure_ray()
    assert runtime.ensure_ray() is first
    assert first.namespace == "fsm_actors"
    opts = runtime.actor_options("worker", name="x")
    assert opts["namespace"] == "fsm_actors" and opts["num_cpus"] == runtime.role_cpus("worker")
    assert opts["scheduling_strategy"] == "SPREAD"


def test_the_runtime_imports_no_package_that_uses_it():
    """The runtime sits below resource_actors and patterns: it finds their directories (for
    ``py_modules``) by path, never by importing them."""
    code = (
        "import sys\n"
        "from fsm_actors.platform import runtime\n"
        "dirs = runtime.project_runtime_env()['py_modules']\n"
        "assert sorted(d.rsplit('/', 1)[1] for d in dirs) == ['fsm_actors', 'patterns', 'resource_actors'], dirs\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'resource_actors', 'patterns'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
