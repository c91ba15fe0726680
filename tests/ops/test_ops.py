"""Operations against real Ray nodes (issue 15): a `ray start --head` on 127.0.0.1 with its
dashboard plus one `ray start --address` worker node; submit/logs/jobs/stop/status through
the command line, and `up`/`down` leaving no process behind.

The CLI runs in subprocesses, as a person runs it (and so the suite's own Ray is untouched).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.make_orders import write_orders
from fsm_actors.cli.cluster import session_processes
from tests.ops.ray_heads import REPO, client_env, start_head, start_worker

EXAMPLES = REPO / "examples"


def fsm_actors(*args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsm_actors.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=client_env(**env))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    head = start_head(auth="token", cpus=1, dashboard=True,
                      log_dir=tmp_path_factory.mktemp("head"))
    try:
        start_worker(head, cpus=1)
        yield head
    finally:
        head.stop()


def _example_job(tmp_path: Path, rows: int) -> Path:
    """examples/orders_clean.yaml with its data, in a directory of the test's own."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    job = tmp_path / "orders_clean.yaml"
    shutil.copy(EXAMPLES / "orders_clean.yaml", job)
    write_orders(tmp_path / "data" / "orders.csv", rows)
    return job


def test_submit_with_a_working_dir_wait_then_logs_and_jobs(cluster, tmp_path):
    """The job file and its data travel in --working-dir; its output path is absolute, so
    the test can read what the job wrote on this machine."""
    job = _example_job(tmp_path / "w", 5000)
    out = tmp_path / "out" / "orders_clean.jsonl"
    job.write_text(job.read_text().replace("../out/orders_clean.jsonl", str(out)))
    proc = fsm_actors("submit", str(job), "--address", cluster.dashboard_url,
                      "--working-dir", str(tmp_path / "w"), "--wait")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCEEDED" in proc.stderr and "done: 5,000 records in" in proc.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["active"] and r["quantity"] > 0 for r in rows)
    assert all(r["total"] == round(r["quantity"] * r["unit_price"], 2) for r in rows)

    job_id = proc.stdout.splitlines()[0].strip()
    logs = fsm_actors("logs", job_id, "--address", cluster.dashboard_url)
    assert logs.returncode == 0 and "done: 5,000 records in" in logs.stdout, logs.stderr
    listed = fsm_actors("jobs", "--address", cluster.dashboard_url)
    assert any(line.startswith(job_id) and "SUCCEEDED" in line
               for line in listed.stdout.splitlines()), listed.stdout


def test_submit_of_an_etl_job_wait_writes_its_file(cluster, tmp_path):
    """examples/orders_to_parquet.yaml (an ETL job into a file) as a Ray Job on the two nodes."""
    import pyarrow.parquet as pq

    work = tmp_path / "w"
    work.mkdir()
    job = work / "orders_to_parquet.yaml"
    out = tmp_path / "out" / "orders.parquet"
    job.write_text((EXAMPLES / "orders_to_parquet.yaml").read_text()  # no rejects: exit 0
                   .replace("../out/orders.parquet", str(out)).replace("minimum: 0", "minimum: -1"))
    write_orders(work / "data" / "orders.csv", 3000)
    proc = fsm_actors("submit", str(job), "--address", cluster.dashboard_url,
                      "--working-dir", str(work), "--wait")
    assert proc.returncode == 0 and "SUCCEEDED" in proc.stderr, proc.stdout + proc.stderr
    assert "3,000 records in, 3,000 written" in proc.stdout, proc.stdout + proc.stderr
    table = pq.read_table(out)
    assert table.num_rows == 3000 and "total" in table.column_names
    ids = table.column("id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_status_shows_a_running_jobs_actors_and_stop_stops_it(cluster, tmp_path):
    job = _example_job(tmp_path / "w", 200_000)
    slow = job.read_text().replace(
        'transformations:\n', "chunk_size: 1000\ntransformations:\n"
        "  - \"lambda r: (__import__('time').sleep(0.002), r)[1]\"\n")
    job.write_text(slow)
    proc = fsm_actors("submit", str(job), "--address", cluster.dashboard_url)
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    deadline, shown = time.monotonic() + 120, ""
    while time.monotonic() < deadline:
        shown = fsm_actors("status", "--address", cluster.address).stdout
        # the run's record can be there before its workers are (a loaded machine)
        if "file_processing run" in shown and job_id in shown and "/worker/0" in shown:
            break
        time.sleep(1)
    assert "file_processing run" in shown and "/worker/0" in shown, shown
    assert f"running jobs: 1\n  {job_id}" in shown
    stopped = fsm_actors("stop", job_id, "--address", cluster.dashboard_url)
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout, stopped.stderr
    after = fsm_actors("status", "--address", cluster.address).stdout
    assert "running jobs: 0" in after and "file_processing run" not in after, after


PYTHON_API_RUN = """
import json, sys
import ray
from patterns.file_processing import create_csv_processor
result = create_csv_processor(sys.argv[1], sys.argv[2]).run()
print(json.dumps({"written": result["records_written"],
                  "gcs": ray.get_runtime_context().gcs_address}))
"""


def test_up_then_run_attaches_then_down_leaves_no_process(tmp_path):
    from tests.servers import free_port

    home = {"FSM_ACTORS_HOME": str(tmp_path / "home")}
    port = free_port()
    proc = fsm_actors("up", "--port", str(port), "--dashboard-port", str(free_port()),
                      "--client-port", str(free_port()), "--num-cpus", "1", **home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    head = json.loads((tmp_path / "home" / "head.json").read_text())
    try:
        assert "dashboard: http://127.0.0.1:" in proc.stdout
        job = _example_job(tmp_path / "w", 2000)
        ran = fsm_actors("run", str(job), "--json", **home)
        assert ran.returncode == 0, ran.stderr
        assert f"connecting to the Ray cluster at 127.0.0.1:{port} (from `fsm-actors up`)" \
            in ran.stderr
        assert json.loads(ran.stdout)["lines_read"] == 2000
        # the Python API attaches to the same head (a loopback-only head: Ray would swap
        # 127.0.0.1 for the machine's address and wait for a GCS there that never answers)
        api = subprocess.run(
            [sys.executable, "-c", PYTHON_API_RUN, str(tmp_path / "w" / "data" / "orders.csv"),
             str(tmp_path / "api.jsonl")],
            capture_output=True, text=True, timeout=120, cwd=REPO, env=client_env(**home))
        assert api.returncode == 0, api.stderr[-2000:]
        assert json.loads(api.stdout.splitlines()[-1]) == {"written": 2000, "gcs": head["address"]}
        assert session_processes(head["pid"])  # the head outlives the run
        # its Ray Client proxy forks a server per connection: without gRPC's fork handlers
        # (ray-project/ray#63202: with them, a quarter to a half of the connections made
        # right after another crashed and cost 40 s each)
        proxies = [pid for pid in session_processes(head["pid"])
                   if "--mode=proxy" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()]
        assert len(proxies) == 1
        environ = Path(f"/proc/{proxies[0]}/environ").read_bytes().split(b"\0")
        assert b"GRPC_ENABLE_FORK_SUPPORT=0" in environ
    finally:
        down = fsm_actors("down", **home)
    assert down.returncode == 0 and "no process left" in down.stdout, down.stderr
    assert session_processes(head["pid"]) == []
    assert not os.path.exists(head["temp_dir"])
    assert "nothing to stop" in fsm_actors("down", **home).stdout


def test_a_missing_token_is_reported_with_what_to_set(cluster, tmp_path):
    env = {"HOME": str(tmp_path)}  # no ~/.ray/auth_token here
    for args in (["jobs", "--address", cluster.dashboard_url],
                 ["status", "--address", cluster.address]):
        proc = fsm_actors(*args, **env)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "uses token authentication" in proc.stderr and "RAY_AUTH_TOKEN" in proc.stderr
        assert "Traceback" not in proc.stderr
