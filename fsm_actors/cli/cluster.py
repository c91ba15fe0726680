"""``fsm-actors up`` / ``down``: a persistent Ray head on this machine for people who watch.

``up`` starts ``ray start --head --block`` under a supervisor in its own session (so it
outlives the command; ``fsm_actors.platform.background_head``), with the dashboard on
127.0.0.1, this Python's directory first on PATH (a job's ``python`` is the one on the PATH
of the process that started the head), and records it in ``$FSM_ACTORS_HOME/head.json``
(default ``~/.fsm-actors``). A first ``fsm-actors run`` starts the same head with an idle
timer; ``down`` stops either. ``run`` and the other commands
then attach to it. ``down`` stops that process (which stops its node's processes), then ends
any process of that session that is still there: nothing is left behind, and no other Ray on
the machine is touched (``ray stop`` would stop them all).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import click

from fsm_actors.cli.documents import UserError
from fsm_actors.platform import background_head
from fsm_actors.platform.background_head import session_processes

LOOPBACK = "127.0.0.1"
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pick(port: int | None, default: int, what: str) -> int:
    if port is not None:
        if not _port_free(port):
            raise UserError(f"port {port} for the {what} is in use; pick another one")
        return port
    return default if _port_free(default) else _free_port()


def _wait_for_head(proc: subprocess.Popen, log: Path, timeout: float) -> dict:
    """Wait until the supervisor recorded its head (every port answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = background_head.local_head()
        if head is not None and int(head["pid"]) == proc.pid:
            return head
        if proc.poll() is not None:
            raise UserError(f"the Ray head exited ({proc.returncode}); its log ({log}) ends "
                            f"with:\n{_tail(log)}")
        time.sleep(0.2)
    raise UserError(f"the Ray head did not come up within {timeout:.0f}s; see {log}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@click.command()
@click.option("--port", type=int, default=None, help="GCS port (default 6379, else a free one).")
@click.option("--dashboard-port", type=int, default=None,
              help="Dashboard port on 127.0.0.1 (default 8265, else a free one).")
@click.option("--client-port", type=int, default=None,
              help="Ray Client (ray://) port (default 10001, else a free one).")
@click.option("--num-cpus", type=int, default=None, help="CPUs the head offers (default: all).")
@click.option("--temp-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Ray's session directory (default: a new one under /tmp).")
@click.option("--host", default=LOOPBACK, show_default=True,
              help="The address the head's ports listen on; the default keeps every port on "
              "this machine. Another (this machine's address on a network) lets other "
              "machines join and submit.")
def up(port: int | None, dashboard_port: int | None, client_port: int | None,
       num_cpus: int | None, temp_dir: Path | None, host: str) -> None:
    """Start a persistent Ray head on this machine (every port on 127.0.0.1 by default)."""
    head = background_head.local_head()
    if head is not None:
        idle = head.get("idle_timeout")
        click.echo(f"already up: Ray at {head['address']}, dashboard {head['dashboard_url']} "
                   f"(pid {head['pid']}); `fsm-actors down` stops it"
                   + (f"; it stops itself after {idle / 60:g} min without runs" if idle else ""))
        return
    if background_head.starting() is not None:
        raise UserError("a Ray head is starting in the background (a first `fsm-actors run` "
                        "started it); wait a few seconds and run `fsm-actors up` again, or "
                        "`fsm-actors down` to stop it")
    gcs, dash, client = (_pick(port, 6379, "GCS"), _pick(dashboard_port, 8265, "dashboard"),
                         _pick(client_port, 10001, "Ray Client server"))
    started = time.monotonic()
    proc, log = background_head.spawn(
        gcs=gcs, dashboard=dash, client=client, agent=_pick(None, 52365, "job agent"),
        host=host, num_cpus=num_cpus, temp_dir=temp_dir)
    try:
        head = _wait_for_head(proc, log, timeout=180)
    except BaseException:
        _stop(proc.pid, quiet=True)
        raise
    from fsm_actors.platform import runtime

    token = runtime.cluster_auth_mode(head["address"]) == "token"
    click.echo(
        f"Ray head up in {time.monotonic() - started:.1f}s (pid {proc.pid}), listening on "
        + ("this machine only (127.0.0.1)" if host in LOCAL_NAMES else host) + "\n"
        f"  address:   {head['address']}   (every fsm-actors command uses it by itself; "
        "elsewhere give --address with it)\n"
        f"  dashboard: {head['dashboard_url']}"
        + ("   (it asks for the cluster's token: `ray get-auth-token` prints it)"
           if token else "") + "\n"
        "  jobs:      fsm-actors submit FILE --wait\n"
        "  stop:      fsm-actors down"
    )


def _stop(pid: int, *, quiet: bool = False, timeout: float = 60) -> int:
    """Stop the head process ``pid`` and every process left in its session; returns how
    many had to be killed after the head stopped."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and session_processes(pid):
        try:  # reap it if it is our child (up failed before it was recorded)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if pid not in session_processes(pid):
            break
        time.sleep(0.3)
    killed = 0
    for _ in range(20):  # what the head did not stop within the time: end it
        left = session_processes(pid)
        if not left:
            break
        for other in left:
            try:
                os.kill(other, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.3)
    if not quiet and killed:
        click.echo(f"ended {killed} Ray processes the head left behind", err=True)
    return killed


@click.command()
def down() -> None:
    """Stop the Ray head started by `fsm-actors up` (and every process it started)."""
    path = background_head.state_dir() / "head.json"
    head = background_head.local_head()
    if head is None:
        pending = background_head.starting()
        if pending is not None:  # still starting: its supervisor cleans up after itself
            _stop(pending)
            background_head.starting_file().unlink(missing_ok=True)
            click.echo("Ray head (still starting) stopped; no process left")
            return
        path.unlink(missing_ok=True)
        click.echo("nothing to stop: no head started by `fsm-actors up` or `fsm-actors run` "
                   "is running")
        return
    started = time.monotonic()
    _stop(int(head["pid"]))
    path.unlink(missing_ok=True)
    import shutil

    shutil.rmtree(head.get("temp_dir") or "", ignore_errors=True)
    click.echo(f"Ray head stopped in {time.monotonic() - started:.1f}s; no process left")
