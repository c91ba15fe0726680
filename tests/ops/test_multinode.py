"""Multi-node for real (issue 10 item 7): a Cluster head with no CPUs for work and two worker
nodes; process_batch and a file job spread their actors over both; a worker node removed
mid-run without grace; every record comes back (or is written) exactly once.

The suite has one Ray per session, so the cluster lives in its own process
(tests/ops/multinode_script.py); this test reads the JSON lines it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.ops.ray_heads import REPO, client_env


def test_work_spreads_over_nodes_and_survives_losing_one(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ops.multinode_script", str(tmp_path)],
        capture_output=True, text=True, timeout=420, cwd=REPO, env=client_env(),
    )
    lines = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            lines[doc["scenario"]] = doc
    assert proc.returncode == 0 and "file_job" in lines, proc.stdout + proc.stderr[-4000:]

    batch = lines["process_batch"]
    assert batch["actor_nodes"] == batch["worker_nodes"], batch
    assert batch["removed_after"] is not None and batch["removed_after"] < 4000, batch
    assert batch["results"] == batch["ok"] == 4000, batch
    assert batch["in_order"] and batch["values_right"], batch

    job = lines["file_job"]
    assert job["actor_nodes"] == job["worker_nodes"], job
    assert job["removed_after"] is not None and job["removed_after"] < 80_000, job
    assert job["rows"] == job["distinct"] == job["records_written"] == 80_000 and job["all"], job
