"""A Ray head on this machine that outlives the command that started it.

``fsm-actors up`` starts one that runs until ``fsm-actors down``; the first ``fsm-actors run``
on a machine without Ray starts one with an idle timer (``FSM_ACTORS_IDLE_MINUTES``,
default 15) and runs its own job in-process meanwhile, so later runs attach in about a
second instead of paying Ray's start and stop (5-7 s on 2 cores) each time.

The head is supervised by a small process of its own (``python -m
fsm_actors.platform.background_head``), the leader of a new session: it starts ``ray start
--head --block`` (dashboard on, every port on 127.0.0.1 by default), writes
``$FSM_ACTORS_HOME/head.json`` once the ports answer, and with an idle timer stops the head
when no driver has been connected for that long. SIGTERM (``fsm-actors down``) stops it too;
either way it removes ``head.json`` and Ray's temp directory, and ends every process of its
session. ``head.json`` holds ``pid`` (the supervisor), ``address``, ``dashboard_url``,
``client_address``, ``temp_dir``, ``log``, ``host`` and ``idle_timeout`` (seconds or null).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
#: idle minutes of a head started by ``run`` (``FSM_ACTORS_IDLE_MINUTES``)
DEFAULT_IDLE_MINUTES = 15.0
#: seconds the head's Ray Client proxy waits for a per-connection server to answer
CLIENT_CHANNEL_TIMEOUT = 10
#: ``FSM_ACTORS_BACKGROUND_HEAD=0``: ``run`` never starts a background head
BACKGROUND_ENV = "FSM_ACTORS_BACKGROUND_HEAD"


def state_dir() -> Path:
    """``$FSM_ACTORS_HOME``, else ~/.fsm-actors (where ``head.json`` and its log live)."""
    return Path(os.environ.get("FSM_ACTORS_HOME") or Path.home() / ".fsm-actors")


def head_file() -> Path:
    return state_dir() / "head.json"


def starting_file() -> Path:
    return state_dir() / "head.starting"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` (> 0) runs here."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def local_head() -> dict[str, Any] | None:
    """The head recorded in ``head.json`` while its supervisor lives.

    Keys: ``pid``, ``address`` (GCS host:port), ``dashboard_url``, ``client_address``,
    ``temp_dir``, ``log``, ``host``, ``idle_timeout``.
    """
    try:
        head = json.loads(head_file().read_text())
        if not pid_alive(int(head["pid"])):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return head


def latest_ray_start() -> str | None:
    """The GCS address the latest ``ray start`` here recorded, if it answers (what Ray's
    ``find_bootstrap_address`` reads, found without importing Ray)."""
    base = os.environ.get("RAY_TMPDIR") or "/tmp"
    try:
        found = (Path(base) / "ray" / "ray_current_cluster").read_text().strip()
        host, _, port = found.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=0.5):
            return found
    except (OSError, ValueError):
        return None


def ray_named() -> bool:
    """Whether this process is connected to Ray or an address variable names a cluster."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return True
    return any(os.environ.get(v) for v in ("FSM_ACTORS_ADDRESS", "RAY_ADDRESS",
                                            "RAY_API_SERVER_ADDRESS"))


def ray_elsewhere() -> bool:
    """Whether a run in this process would attach to some Ray rather than start one: this
    process is connected, an address variable is set, or a head runs here."""
    return ray_named() or local_head() is not None or latest_ray_start() is not None


def starting() -> int | None:
    """The pid of a supervisor still starting its head (no ``head.json`` yet), if any."""
    try:
        pid = int(starting_file().read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def idle_timeout_default() -> float:
    """Seconds a head started by ``run`` waits without drivers before it stops itself."""
    minutes = os.environ.get("FSM_ACTORS_IDLE_MINUTES")
    try:
        return max(0.05, float(minutes)) * 60 if minutes else DEFAULT_IDLE_MINUTES * 60
    except ValueError:
        return DEFAULT_IDLE_MINUTES * 60


def background_allowed() -> bool:
    """Whether ``run`` may start a background head (``FSM_ACTORS_BACKGROUND_HEAD`` not 0)."""
    return os.environ.get(BACKGROUND_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def port_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def pick_port(default: int) -> int:
    return default if port_free(default) else free_port()


def spawn(*, gcs: int, dashboard: int, client: int, agent: int, host: str = LOOPBACK,
          num_cpus: int | None = None, temp_dir: Path | None = None,
          idle_timeout: float | None = None) -> tuple[subprocess.Popen, Path]:
    """Start the supervisor (and through it the head) in a new session; returns it and the
    log path. It writes ``head.json`` once every port answers."""
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    # short: Ray's Unix socket paths live under it
    temp = Path(temp_dir or tempfile.mkdtemp(prefix="fsm-actors-ray-", dir="/tmp"))
    log = state / "head.log"
    args = [sys.executable, "-m", "fsm_actors.platform.background_head",
            f"--gcs={gcs}", f"--dashboard={dashboard}", f"--client={client}",
            f"--agent={agent}", f"--host={host}", f"--temp-dir={temp}", f"--log={log}"]
    if num_cpus is not None:
        args.append(f"--num-cpus={num_cpus}")
    if idle_timeout is not None:
        args.append(f"--idle={idle_timeout}")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")])}
    for var in ("FSM_ACTORS_ADDRESS", "RAY_ADDRESS"):
        env.pop(var, None)
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    starting_file().write_text(str(proc.pid))
    return proc, log


def start_background(idle_timeout: float | None = None) -> dict[str, Any]:
    """Start a head with an idle timer without waiting for it; returns what it will be
    (``pid``, ``dashboard_url``, ``idle_timeout``, ``log``) for the announcement."""
    idle = idle_timeout_default() if idle_timeout is None else idle_timeout
    dash = pick_port(8265)
    proc, log = spawn(gcs=pick_port(6379), dashboard=dash, client=pick_port(10001),
                      agent=pick_port(52365), idle_timeout=idle)
    return {"pid": proc.pid, "dashboard_url": f"http://{LOOPBACK}:{dash}",
            "idle_timeout": idle, "log": str(log)}


def session_processes(sid: int) -> list[int]:
    """Pids of the live processes in session ``sid`` (the supervisor leads its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # fields[3]: session id
            pids.append(int(entry))
    return pids


# --- the supervisor -------------------------------------------------------------------

def _ray_args(ns: argparse.Namespace) -> list[str]:
    ray = str(Path(sys.executable).with_name("ray"))
    args = [ray, "start", "--head", "--block", f"--port={ns.gcs}", f"--temp-dir={ns.temp_dir}",
            f"--node-ip-address={ns.host}", "--include-dashboard=true",
            f"--dashboard-host={ns.host}", f"--dashboard-port={ns.dashboard}",
            f"--ray-client-server-port={ns.client}",
            # the job agent's HTTP port defaults to 52365: a second Ray on the machine holds
            # it and then every job submission is refused ("No available agent")
            f"--dashboard-agent-listen-port={ns.agent}"]
    if ns.num_cpus is not None:
        args.append(f"--num-cpus={ns.num_cpus}")
    return args


def _wait_ports(ports: list[int], proc: subprocess.Popen, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    left = list(ports)
    while left and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOPBACK, left[0]), timeout=1):
                left.pop(0)
        except OSError:
            time.sleep(0.2)
    return not left


def _live_drivers(address: str) -> int | None:
    """Drivers connected to the head now (None when the GCS cannot be asked)."""
    try:
        from ray._raylet import GcsClient

        jobs = GcsClient(address=address).get_all_job_info(timeout=10)
    except Exception as exc:  # noqa: BLE001 - a busy GCS: ask again at the next tick
        if "auth" in str(exc).lower() and os.environ.get("RAY_AUTH_MODE") != "token":
            # `ray start` turned token auth on (this machine's token): speak it from now on
            from ray._raylet import Config

            os.environ["RAY_AUTH_MODE"] = "token"
            Config.initialize("")  # Ray caches the mode in its config
            return _live_drivers(address)
        return None
    return sum(1 for job in jobs.values() if not job.is_dead)


def _end_session(proc: subprocess.Popen) -> None:
    """Stop ``ray start`` (which stops its node), then end what is left of this session."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    me = os.getpid()
    for _ in range(20):
        left = [p for p in session_processes(os.getsid(0)) if p != me]
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)


def supervise(ns: argparse.Namespace) -> int:
    """Run the head; stop it on SIGTERM, when it exits, or after ``ns.idle`` idle seconds."""
    stop = {"why": ""}

    def on_term(signum: int, _frame: Any) -> None:
        stop["why"] = "stopped (fsm-actors down)"

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    env = dict(os.environ)
    # Ray Client's proxy forks a server per connection while its gRPC threads run, and
    # gRPC's fork handlers then crash the child (ray-project/ray#63202: 2 of 4 connections
    # right after another here). The child execs at once, so it needs no fork support: off,
    # 0 of 8 failed. Should one still fail, the proxy waits CLIENT_CHANNEL_TIMEOUT (Ray's
    # default 30 s, then 10 s of log-stream retries) before the client tries again.
    env.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    env.setdefault("RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S", str(CLIENT_CHANNEL_TIMEOUT))
    if ns.host in LOCAL_NAMES:
        # `ray start` swaps a loopback --node-ip-address for the machine's network address,
        # and its servers then listen on every interface; out of "cluster mode" the node
        # keeps 127.0.0.1 and Ray's servers listen on the loopback only
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    proc = subprocess.Popen(_ray_args(ns), stdin=subprocess.DEVNULL, env=env)
    where = LOOPBACK if ns.host in LOCAL_NAMES else ns.host
    head = {"pid": os.getpid(), "address": f"{where}:{ns.gcs}",
            "dashboard_url": f"http://{where}:{ns.dashboard}",
            "client_address": f"ray://{where}:{ns.client}", "temp_dir": ns.temp_dir,
            "log": ns.log, "host": ns.host, "idle_timeout": ns.idle}
    try:
        if not _wait_ports([ns.gcs, ns.client, ns.dashboard], proc):
            print("fsm-actors: the Ray head did not come up", flush=True)
            return 1
        head_file().write_text(json.dumps(head, indent=2))
        starting_file().unlink(missing_ok=True)
        print(f"fsm-actors: head up at {head['address']}"
              + (f"; stops after {ns.idle:g}s without drivers" if ns.idle else ""), flush=True)
        # the GCS is asked with the head's own environment (its auth mode and token)
        idle_since = time.monotonic()
        tick = min(5.0, max(0.5, (ns.idle or 5.0) / 4))
        while not stop["why"]:
            if proc.poll() is not None:
                stop["why"] = f"the head exited ({proc.returncode})"
                break
            time.sleep(tick)
            if ns.idle:
                drivers = _live_drivers(head["address"])
                if drivers:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= ns.idle:  # none seen for that long
                    stop["why"] = f"idle for {ns.idle:g}s: stopped itself"
        print(f"fsm-actors: head {stop['why']}", flush=True)
        return 0
    finally:
        _forget(head)
        _end_session(proc)
        shutil.rmtree(ns.temp_dir, ignore_errors=True)


def _forget(head: dict[str, Any]) -> None:
    """Remove ``head.json`` / ``head.starting`` when they are this supervisor's."""
    for path in (head_file(), starting_file()):
        try:
            text = path.read_text()
            mine = (json.loads(text).get("pid") if path.suffix == ".json"
                    else int(text.strip())) == head["pid"]
        except (OSError, ValueError, AttributeError):
            continue
        if mine:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fsm_actors.platform.background_head")
    for name in ("gcs", "dashboard", "client", "agent"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--idle", type=float, default=None)
    return supervise(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
