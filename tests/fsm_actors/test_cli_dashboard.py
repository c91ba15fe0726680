"""What the Ray dashboard shows of the CLI's work (issue 24 item 13), on a real head: a
submitted job is named after its pipeline (job id and metadata, listed by ``fsm-actors
jobs``), and the job's worker actors end as a normal exit, not "killed by ray.kill"."""

from __future__ import annotations

import time

import pytest

from tests.fsm_actors.test_cli_person import cli
from tests.ops.ray_heads import start_head


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    node = start_head(auth="disabled", dashboard=True, cpus=2,
                      log_dir=tmp_path_factory.mktemp("head"))
    yield node
    node.stop()


def test_a_submitted_job_carries_its_pipeline_and_its_actors_end_normally(head, tmp_path):
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors

    (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(2000)))
    job = tmp_path / "orders.yaml"
    job.write_text("kind: file_processing\ninput_path: in.csv\noutput_path: out.jsonl\n"
                   "chunk_size: 200\n")
    home = {"FSM_ACTORS_HOME": str(tmp_path / "home")}
    done = cli("submit", str(job), "--wait", "--address", head.dashboard_url, cwd=tmp_path,
               **home)
    assert done.returncode == 0, done.stderr + done.stdout
    job_id = done.stdout.split()[0]
    assert job_id.startswith("orders-"), done.stdout
    info = JobSubmissionClient(head.dashboard_url).get_job_info(job_id)
    assert info.metadata["pipeline"] == "orders" and info.metadata["kind"] == "file_processing"
    listed = cli("jobs", "--address", head.dashboard_url, cwd=tmp_path, **home)
    row = next(x for x in listed.stdout.splitlines() if x.startswith(job_id))
    assert row.split()[4] == "orders", listed.stdout  # id, status, date, time, pipeline
    deadline = time.monotonic() + 60
    while True:  # an actor's end reaches the state API a moment after the job's
        workers = [a for a in list_actors(address=head.dashboard_url, detail=True, limit=1000)
                   if (a.name or "").startswith("file_processing/")]
        if workers and all(a.state == "DEAD" for a in workers) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert workers and all(a.state == "DEAD" for a in workers), workers
    for actor in workers:
        cause = str(actor.death_cause)
        assert "ray.kill" not in cause, cause
        assert "exit_actor" in cause or "INTENDED" in cause.upper(), cause
