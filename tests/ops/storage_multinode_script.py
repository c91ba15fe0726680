"""A file job on S3 over a multi-node cluster, driven by tests/ops/test_storage_multinode.py
in its own process (the suite has one Ray per session).

A ``ray.cluster_utils.Cluster`` head that offers no CPUs and two worker nodes; the job reads
``s3://`` inputs and writes an ``s3://`` output (the store reached through the AWS_*
variables every node inherits). Prints one JSON line: the nodes the job's actors ran on,
the worker nodes, the result and the warnings the job gave.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

from fsm_actors.platform import runtime
from tests.ops.multinode_script import actor_nodes
from tests.ops.ray_heads import fast_failover_cluster


def slow_row(record: dict) -> dict:
    if int(record["x"]) % 100 == 0:
        time.sleep(0.004)
    return record


def main(source: str, target: str) -> None:
    cluster = fast_failover_cluster()
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    runtime.ensure_ray(cluster.address)
    from patterns.file_processing import FileProcessor

    seen: dict[str, str] = {}

    def note(progress) -> None:
        seen.update(actor_nodes("file_processing/"))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = FileProcessor({
            "input_path": source, "output_path": target, "chunk_size": 1000, "workers": 2,
            "transformations": [slow_row],
        }).run(on_progress=note)
    print(json.dumps({
        "worker_nodes": sorted(w.node_id for w in workers),
        "actor_nodes": sorted(set(seen.values())),
        "records_written": result.get("records_written"),
        "output_path": result.get("output_path"),
        "warnings": [str(w.message) for w in caught if "local path" in str(w.message)],
    }), flush=True)
    runtime.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
