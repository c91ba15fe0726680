"""Multi-node run on one machine, driven by tests/ops/test_multinode.py in its own process.

A ``ray.cluster_utils.Cluster`` head that offers no CPUs and two worker nodes; the work must
spread its actors over both workers, and a worker node is removed (no grace) mid-run. Prints
one JSON line per scenario: which nodes the actors ran on, and what came back.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from fsm_actors import SimpleFSM
from fsm_actors.platform import runtime
from tests.ops.ray_heads import fast_failover_cluster

FSM = {
    "name": "multinode",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "work", "transforms": ["work"]},
        {"name": "done", "is_end": True},
    ],
    "arcs": [{"from": "start", "to": "work"}, {"from": "work", "to": "done"}],
}


def work(data: dict) -> dict:
    time.sleep(0.002)  # long enough for a node to go away mid-run
    return {**data, "y": data["x"] * 2}


def actor_nodes(prefix: str) -> dict[str, str]:
    """Name -> node id of the live actors whose name starts with ``prefix``."""
    table = ray._private.state.state.actor_table(None)
    return {
        info["Name"]: info["Address"]["NodeID"]
        for info in table.values()
        if info.get("Name", "").startswith(prefix) and info["State"] == "ALIVE"
    }


class NodeKiller:
    """Removes ``node`` (no grace) from another thread once ``trigger()`` is called, after
    noting where the actors named ``prefix...`` run."""

    def __init__(self, cluster: Cluster, node, prefix: str) -> None:
        self.cluster, self.node, self.prefix = cluster, node, prefix
        self.fired = threading.Event()
        self.nodes_before: dict[str, str] = {}
        self.removed_at = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def trigger(self, done: int) -> None:
        if not self.fired.is_set():
            self.removed_at = done
            self.fired.set()

    def _run(self) -> None:
        self.fired.wait()
        self.nodes_before = actor_nodes(self.prefix)
        self.cluster.remove_node(self.node, allow_graceful=False)


def main(workdir: str) -> None:
    cluster = fast_failover_cluster()
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    info = runtime.ensure_ray(cluster.address)
    worker_ids = sorted(w.node_id for w in workers)
    print(json.dumps({"scenario": "attach", "address": info.address,
                      "auth": runtime.cluster_auth_mode(cluster.address)}), flush=True)

    # 1. SimpleFSM.process_batch over both workers; one worker removed mid-run
    n = 4000
    killer = NodeKiller(cluster, workers[0], "fsm/multinode/")
    with SimpleFSM(FSM, custom_functions={"work": work}, actors=4) as fsm:
        results = fsm.process_batch(
            [{"x": i} for i in range(n)], batch_size=100,
            on_progress=lambda p: p.completed >= n // 4 and killer.trigger(p.completed),
        )
    killer.thread.join(timeout=60)
    print(json.dumps({
        "scenario": "process_batch", "worker_nodes": worker_ids,
        "actor_nodes": sorted(set(killer.nodes_before.values())),
        "removed": workers[0].node_id, "removed_after": killer.removed_at,
        "results": len(results), "ok": sum(r["success"] for r in results),
        "in_order": [r["data"]["x"] for r in results] == list(range(n)),
        "values_right": all(r["data"]["y"] == 2 * r["data"]["x"] for r in results),
    }), flush=True)

    # 2. A file-processing job over both workers (a new one replaces the removed node)
    workers[0] = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    worker_ids = sorted(w.node_id for w in workers)
    from patterns.file_processing import FileProcessor

    rows = 80_000
    src = Path(workdir) / "in.csv"
    src.write_text("x\n" + "".join(f"{i}\n" for i in range(rows)))
    out = Path(workdir) / "out.jsonl"
    killer = NodeKiller(cluster, workers[1], "file_processing/")
    job = FileProcessor({
        "input_path": str(src), "output_path": str(out), "chunk_size": 2000, "workers": 4,
        "transformations": [slow_row],
    })
    result = job.run(on_progress=lambda p: p.lines_read >= rows // 4
                     and killer.trigger(p.lines_read))
    killer.thread.join(timeout=60)
    written = [json.loads(line)["x"] for line in out.read_text().splitlines()]
    print(json.dumps({
        "scenario": "file_job", "worker_nodes": worker_ids,
        "actor_nodes": sorted(set(killer.nodes_before.values())),
        "removed_after": killer.removed_at,
        "records_written": result.get("records_written"),
        "rows": len(written), "distinct": len(set(map(int, written))),
        "all": sorted(map(int, written)) == list(range(rows)),
    }), flush=True)
    runtime.shutdown()
    cluster.shutdown()


def slow_row(record: dict) -> dict:
    if int(record["x"]) % 200 == 0:
        time.sleep(0.004)
    return record


if __name__ == "__main__":
    main(sys.argv[1])
