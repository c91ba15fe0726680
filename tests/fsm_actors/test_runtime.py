"""The Ray runtime: idempotent connection, clear errors, actor resource requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fsm_actors import runtime

CONNECT = """
from fsm_actors import runtime
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


ATTACH = """
from fsm_actors import SimpleFSM, runtime
from tests.fsm_actors.fsm_configs import ROUTER, double

info = runtime.ensure_ray("127.0.0.1:{port}")
with SimpleFSM(ROUTER, custom_functions={{"double": double}}, actors=2) as fsm:
    out = fsm.process_batch([{{"x": i}} for i in range(500)], batch_size=50)
print("ATTACHED", info.started_local, sum(r["success"] for r in out))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_attaches_to_a_cluster_started_with_ray_start(tmp_path):
    """A head started by `ray start` on this machine (token auth on, Ray's default) is
    reachable by address; work runs on its actors."""
    import shutil
    import tempfile
    from pathlib import Path

    port = _free_port()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # Ray's Unix sockets live under --temp-dir: pytest's long tmp_path would overflow them
    temp_dir = tempfile.mkdtemp(prefix="fa-ray-", dir="/tmp")
    log = open(tmp_path / "head.log", "w")  # noqa: SIM115
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--block",
         "--include-dashboard=false", f"--temp-dir={temp_dir}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        clean = {k: v for k, v in os.environ.items()
                 if k not in (*runtime.ADDRESS_ENV_VARS, "RAY_AUTH_MODE")}
        deadline = time.monotonic() + 60
        out = ""
        while time.monotonic() < deadline:  # the head needs a few seconds to come up
            proc = subprocess.run(
                [sys.executable, "-c", ATTACH.format(port=port)], capture_output=True,
                text=True, timeout=180, env=clean, cwd=Path(__file__).resolve().parents[2],
            )
            out = proc.stdout + proc.stderr[-2000:]
            if "ATTACHED" in proc.stdout or "nothing answered" not in out:
                break
            time.sleep(1)
        assert "ATTACHED False 500" in out, out + (tmp_path / "head.log").read_text()[-2000:]
    finally:
        head.terminate()
        head.wait(timeout=60)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
