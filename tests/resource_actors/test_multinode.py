"""Resources on a ``ray.cluster_utils.Cluster`` of two worker nodes (issue 11; issue 10 item 7,
the resource-lease half): the broker on another node than its callers, killed and back; a
lease holder's node removed without grace, its lease reclaimed for a waiter.

The suite has one Ray per session, so the cluster lives in its own process
(tests/resource_actors/multinode_script.py); this test reads the JSON line it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.ops.ray_heads import REPO, client_env


def test_broker_restart_and_node_loss_on_a_two_node_cluster():
    proc = subprocess.run(
        [sys.executable, "-m", "tests.resource_actors.multinode_script"],
        capture_output=True, text=True, timeout=420, cwd=REPO, env=client_env(),
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr[-4000:]
    result = lines[-1]
    assert result["broker_node_is_b"] and result["owners_after"] == ["driver-waiter"]
    print(result)
