"""One cluster address for every command: a real head started by the test (its own ports,
stopped by its pid), each of Ray's address forms given to status, jobs, logs, stop, submit
and run, with and without token authentication. Each command names the cluster it talked
to; a form that points at the wrong server is one message showing the right form.

The same two heads (token auth, Ray's default, and RAY_AUTH_MODE=disabled, each with its
dashboard and Ray Client) are attached to by a driver, by address and through Ray Client
(``ray://``) with Ray's default settings (the tests of the former test_runtime_clusters.py:
they share the heads instead of starting two more)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fsm_actors.test_cli_person import cli, in_terminal
from tests.ops.ray_heads import RayNode, run_driver, start_head

FORMS = ["dashboard", "gcs", "client", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"]


@pytest.fixture(scope="module", params=["disabled", "token"])
def head(request, tmp_path_factory):
    node = start_head(auth=request.param, client=True, dashboard=True, cpus=2,
                      log_dir=tmp_path_factory.mktemp("head"))
    yield node
    node.stop()


ATTACH = """
from fsm_actors import SimpleFSM
from fsm_actors.platform import runtime
from tests.fsm_actors.fsm_configs import ROUTER, double

info = runtime.ensure_ray({address!r})
with SimpleFSM(ROUTER, custom_functions={{"double": double}}, actors=2) as fsm:
    out = fsm.process_batch([{{"x": i}} for i in range(500)], batch_size=50)
print("ATTACHED", info.started_local, sum(r["success"] for r in out))
"""


def _attach(address: str) -> str:
    proc = run_driver(ATTACH.format(address=address))
    return proc.stdout + proc.stderr[-3000:]


# the attach tests come first: they run on each head before the commands below use it


def test_attaches_by_address_with_the_clusters_auth_mode(head):
    """Token auth is used where the cluster has it and never forced on one without it
    (a driver requiring tokens made every actor die before it ran)."""
    out = _attach(head.address)
    assert "ATTACHED False 500" in out, out + head.log.read_text()[-2000:]


def test_attaches_through_ray_client_with_rays_defaults(head):
    """``ray://`` ships the project as package directories: module objects in py_modules
    broke Ray Client's default UV hook ("cannot pickle 'module' object")."""
    out = _attach(head.client_address)
    assert "ATTACHED False 500" in out, out


def test_the_auth_mode_is_read_from_the_cluster(head, request):
    from fsm_actors.platform import runtime

    auth = request.node.callspec.params["head"]
    assert runtime.cluster_auth_mode(head.address) == auth
    assert runtime.cluster_auth_mode(head.client_address) == auth


def _address(node: RayNode, form: str) -> tuple[list[str], dict[str, str]]:
    """(``--address`` args, environment) that name ``node`` in ``form``."""
    return {"dashboard": (["--address", node.dashboard_url], {}),
            "gcs": (["--address", node.address], {}),
            "client": (["--address", node.client_address], {}),
            "RAY_ADDRESS": ([], {"RAY_ADDRESS": node.address}),
            "RAY_API_SERVER_ADDRESS": ([], {"RAY_API_SERVER_ADDRESS": node.dashboard_url}),
            }[form]


def _job(tmp_path: Path, rows: int, slow: bool = False) -> Path:
    (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(rows)))
    job = tmp_path / "job.yaml"
    sleep = "\ntransformations: [\"lambda r: (__import__('time').sleep(0.05), r)[1]\"]" \
        if slow else ""
    job.write_text(f"kind: file_processing\ninput_path: in.csv\noutput_path: out.jsonl\n"
                   f"chunk_size: 10{sleep}\n")
    return job


def _clean(done) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


def at_once(form: str, commands: list[tuple[str, ...]], args: list[str], cwd: Path,
            env: dict[str, str]) -> list:
    """The ``commands`` with the address ``args``, at once (each a process of its own), but
    one after the other through Ray Client: its proxy forks a server per connection, and
    connections that start together make that fork fail (ray-project/ray#63202; the CLI
    retries it, but not forever)."""
    def one(argv: tuple[str, ...]):
        return cli(*argv, *args, cwd=cwd, **env)

    if form == "client":
        return [one(argv) for argv in commands]
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(one, commands))


@pytest.mark.parametrize("form", FORMS)
def test_every_command_takes_every_address_form(head, form, tmp_path):
    """Commands that do not depend on each other run at once (``at_once``): four command
    times per form instead of six."""
    args, env = _address(head, form)
    home = {"FSM_ACTORS_HOME": str(tmp_path / "home"), **env}
    named = re.escape(head.dashboard_url) if form != "gcs" and form != "RAY_ADDRESS" \
        else re.escape(head.address)
    job = _job(tmp_path, 200)
    (tmp_path / "slow").mkdir()
    slow = _job(tmp_path / "slow", 5000, slow=True)
    ran, status = at_once(form, [("run", str(job), "--no-progress"), ("status",)],
                          args, tmp_path, home)  # (the slow job is submitted after: it
    submitted = cli("submit", str(slow), *args, cwd=tmp_path, **home)  # would take the CPUs)

    _clean(ran)
    assert ran.returncode == 0, ran.stderr
    assert "done: 200 records in, 200 written" in ran.stderr
    assert re.search(r"Ray ready: Ray cluster at \S+:" + str(head.port), ran.stderr), ran.stderr

    _clean(status)
    assert status.returncode == 0, status.stderr
    assert re.search("cluster .*" + named, status.stdout), status.stdout

    _clean(submitted)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]
    assert re.search("submitted to .*" + re.escape(head.dashboard_url), submitted.stderr)

    jobs, logs = at_once(form, [("jobs",), ("logs", job_id)], args, tmp_path, home)
    _clean(jobs)
    assert jobs.returncode == 0 and job_id in jobs.stdout, jobs.stderr
    assert re.search("^cluster .*" + re.escape(head.dashboard_url), jobs.stderr, re.M)

    _clean(logs)
    assert logs.returncode == 0, logs.stderr
    assert re.search("^cluster .*" + re.escape(head.dashboard_url), logs.stderr, re.M)

    done = cli("stop", job_id, *args, cwd=tmp_path, **home)
    _clean(done)
    assert done.returncode == 0, done.stderr
    assert f"job {job_id}: STOPPED" in done.stdout
    assert re.search("^cluster .*" + re.escape(head.dashboard_url), done.stderr, re.M)


def _client_servers(node: RayNode) -> int:
    """How many per-connection Ray Client servers the head has started so far."""
    return len(list(Path(node.temp_dir).glob("session_latest/logs/ray_client_server_*.err")))


def test_a_client_address_connects_once_for_its_dashboard(head, tmp_path):
    """The job commands need only the dashboard: by ``ray://`` the first finds it through a
    Ray Client connection (a server process forked on the head), later ones reach it
    directly; a noted dashboard that no longer answers is looked up again."""
    home = tmp_path / "home"
    home.mkdir()
    known = home / "client_dashboards.json"
    known.write_text(json.dumps({head.client_address: "http://127.0.0.1:9"}))  # stale
    args = ["jobs", "--address", head.client_address]
    first = cli(*args, cwd=tmp_path, FSM_ACTORS_HOME=str(home))
    assert first.returncode == 0, first.stderr
    assert f"cluster {head.dashboard_url} (Ray Client {head.client_address}" in first.stderr
    assert json.loads(known.read_text()) == {head.client_address: head.dashboard_url}
    servers = _client_servers(head)
    again = cli(*args, cwd=tmp_path, FSM_ACTORS_HOME=str(home))
    assert again.returncode == 0, again.stderr
    assert f"cluster {head.dashboard_url} (Ray Client" in again.stderr
    assert _client_servers(head) == servers  # no new Ray Client connection


def test_status_by_ray_client_connects_once(head, tmp_path):
    """``status`` needs a driver and the dashboard: by ``ray://`` its one connection names
    the dashboard too (it used to connect a second time to ask)."""
    home = tmp_path / "home"
    servers = _client_servers(head)
    done = cli("status", "--address", head.client_address, cwd=tmp_path,
               FSM_ACTORS_HOME=str(home))
    assert done.returncode == 0, done.stderr
    assert re.search("cluster .*" + re.escape(head.dashboard_url), done.stdout), done.stdout
    assert _client_servers(head) == servers + 1
    known = json.loads((home / "client_dashboards.json").read_text())
    assert known == {head.client_address: head.dashboard_url}


@pytest.mark.parametrize("command", ["status", "jobs", "run"])
def test_a_wrong_form_is_one_message_with_the_right_one(head, command, tmp_path):
    home = {"FSM_ACTORS_HOME": str(tmp_path / "home")}
    extra = [str(_job(tmp_path, 3))] if command == "run" else []
    wrong = {f"http://{head.address}": f"is the cluster's GCS: give it as {head.address}",
             f"ray://{head.address}": f"is the cluster's GCS: give it as {head.address}",
             f"127.0.0.1:{head.client_port}": f"give it as {head.client_address}",
             f"ray://127.0.0.1:{head.dashboard_port}": f"give it as {head.dashboard_url}"}
    with ThreadPoolExecutor(len(wrong)) as pool:  # each a process of its own
        answers = dict(zip(wrong, pool.map(
            lambda address: cli(command, *extra, "--address", address, cwd=tmp_path, **home),
            wrong), strict=True))
    for address, right in wrong.items():
        done = answers[address]
        _clean(done)
        assert done.returncode == 1, done.stderr
        assert right in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_ctrl_c_while_logs_follow_starts_is_one_line_and_130(head, tmp_path):
    home = {"FSM_ACTORS_HOME": str(tmp_path / "home")}
    done = cli("submit", str(_job(tmp_path, 5000, slow=True)), "--address", head.address,
               cwd=tmp_path, **home)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[0]
    out, code = in_terminal(["logs", job_id, "--follow", "--address", head.address],
                            cwd=tmp_path, interrupt_after=1.0, **home)
    assert code == 130, out
    assert "Traceback" not in out and "Aborted" not in out, out
    assert "interrupted" in out or "stopped following" in out, out
    cli("stop", job_id, "--address", head.address, cwd=tmp_path, **home)


def test_submit_keeps_rays_packaging_lines_for_verbose(head, tmp_path):
    home = {"FSM_ACTORS_HOME": str(tmp_path / "home")}
    project = tmp_path / "project"
    project.mkdir()
    _job(project, 100)
    quiet = cli("submit", "job.yaml", "--working-dir", ".", "--address", head.address,
                cwd=project, **home)
    assert quiet.returncode == 0, quiet.stderr
    assert "INFO" not in quiet.stderr and "WARNING" not in quiet.stderr, quiet.stderr
    (project / "more.txt").write_text("a new package to upload")
    loud = cli("submit", "job.yaml", "--working-dir", ".", "--address", head.address,
               "--verbose", cwd=project, **home)
    assert loud.returncode == 0, loud.stderr
    assert "packag" in loud.stderr.lower() and "INFO" in loud.stderr, loud.stderr
    for done in (quiet, loud):
        cli("stop", done.stdout.split()[0], "--address", head.address, cwd=project, **home)
