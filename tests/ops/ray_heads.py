"""Real Ray nodes for tests: ``ray start --head`` / ``--address`` on 127.0.0.1.

Each node gets its own short temp dir (Ray's Unix sockets overflow under pytest's long
tmp paths) and free ports for everything that has a fixed default (GCS, Ray Client,
dashboard), so it never meets another Ray on the machine. A node runs with ``--block`` and is
stopped by terminating that process: ``ray stop`` would stop every Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
CLIENT_ENV_DROP = ("RAY_ADDRESS", "FSM_ACTORS_ADDRESS", "RAY_AUTH_MODE")

#: the head's ``_system_config`` in multi-node tests that remove a node without grace: the GCS
#: declares it dead after 3 missed 0.5 s health checks instead of Ray's default 5 x 3 s, so a
#: test waits seconds, not tens of seconds, for the failover it checks
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 500,
                   "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}


def fast_failover_cluster():
    """A ``ray.cluster_utils.Cluster`` whose head offers no CPUs and declares a removed node
    dead within seconds (``FAST_NODE_DEATH``); add workers with ``cluster.add_node``."""
    from ray.cluster_utils import Cluster

    return Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "_system_config": FAST_NODE_DEATH})


#: the environment of every node these tests start: on SIGTERM (``RayNode.stop``) Ray would
#: first drain the node for up to 30 s (RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S, for Serve
#: replicas to move): a throw-away test node has nothing to hand over. Ray Client's servers
#: as ``fsm_actors.platform.background_head`` starts them (gRPC fork support off, a 10 s
#: channel wait; ray-project/ray#63202): with Ray's defaults a quarter to a half of the
#: connections made right after another crashed and cost 40 s each.
NODE_ENV = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "GRPC_ENABLE_FORK_SUPPORT": "0",
            "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "10"}


def client_env(**extra: str) -> dict[str, str]:
    """Environment for a driver subprocess: no inherited Ray address or auth mode."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_DROP}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray node exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"port {port} did not open in {timeout}s: {log.read_text()[-3000:]}")


@dataclass
class RayNode:
    """A running ``ray start --block`` process; ``stop()`` terminates it and its processes."""

    proc: subprocess.Popen
    temp_dir: str
    log: Path
    port: int = 0
    client_port: int = 0
    dashboard_port: int = 0
    workers: list[RayNode] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(
    *, auth: str = "token", cpus: int = 2, client: bool = False, dashboard: bool = False,
    log_dir: Path | None = None,
) -> RayNode:
    """Start a head on 127.0.0.1 with ``RAY_AUTH_MODE=auth``; returns when its ports answer."""
    temp_dir = tempfile.mkdtemp(prefix="fa-ray-", dir="/tmp")
    log = Path(log_dir or temp_dir) / f"head-{auth}.log"
    node = RayNode(proc=None, temp_dir=temp_dir, log=log, port=free_port())  # type: ignore[arg-type]
    args = [RAY, "start", "--head", f"--port={node.port}", f"--num-cpus={cpus}", "--block",
            f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1"]
    if client:
        node.client_port = free_port()
        args.append(f"--ray-client-server-port={node.client_port}")
    else:
        args.append(f"--ray-client-server-port={free_port()}")
    if dashboard:
        node.dashboard_port = free_port()
        args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1",
                 f"--dashboard-port={node.dashboard_port}",
                 f"--dashboard-agent-listen-port={free_port()}"]
    else:
        args.append("--include-dashboard=false")
    # a job's `python` is the first on the PATH of the process that started the head: this
    # venv's, as for a person who runs `ray start` with the venv activated
    env = client_env(RAY_AUTH_MODE=auth, **NODE_ENV,
                     PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    with open(log, "w") as out:
        node.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     cwd=REPO)
    try:
        for port in (node.port, node.client_port, node.dashboard_port):
            if port:
                _wait_port(port, node.proc, log)
    except BaseException:
        node.stop()  # a head that did not come up leaves no process and no temp dir
        raise
    return node


def start_worker(head: RayNode, *, cpus: int = 1, auth: str = "token") -> RayNode:
    """Start a worker node that joins ``head`` (its own temp dir); returns once it runs."""
    temp_dir = tempfile.mkdtemp(prefix="fa-rayw-", dir="/tmp")
    log = Path(temp_dir) / "worker.log"
    # its own temp dir: two nodes' runtime-env agents sharing one would delete each other's
    # unpacked working dirs
    args = [RAY, "start", f"--address={head.address}", f"--num-cpus={cpus}", "--block",
            "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env=client_env(RAY_AUTH_MODE=auth, **NODE_ENV), cwd=REPO)
    worker = RayNode(proc=proc, temp_dir=temp_dir, log=log)
    head.workers.append(worker)
    return worker


def run_driver(code: str, *, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python with the repo importable and no inherited Ray settings."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=client_env(**env), cwd=REPO)


def listening_addresses(pids: list[int]) -> list[str]:
    """``host:port`` of every TCP socket the processes ``pids`` listen on (from /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:  # gone, or not ours to read
            continue
    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with open(table) as f:
            next(f)
            for row in f:
                cols = row.split()
                if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                    continue
                hexip, hexport = cols[1].split(":")
                raw = bytes.fromhex(hexip)
                # /proc prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
                host = socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, words)
                found.append(f"{host}:{int(hexport, 16)}")
    return found


def is_loopback(address: str) -> bool:
    """``address`` (``host:port``) listens on the loopback only."""
    host = address.rpartition(":")[0]
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1") or \
        host.startswith("::ffff:127.")
