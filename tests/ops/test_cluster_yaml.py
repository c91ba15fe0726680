"""cluster.yaml is a config Ray's launcher accepts (its own schema and preparation), and it
installs this project on every node and starts Ray from that install."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


def test_ray_up_accepts_the_cluster_config():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    prepared = prepare_config(config)  # what `ray up` does first, then it validates
    validate_config(prepared)  # raises on anything `ray up` would refuse
    assert prepared["provider"]["type"] == "local" and prepared["available_node_types"]


def test_every_node_gets_the_project_and_starts_ray_from_it():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert config["file_mounts"]["/opt/fsm-actors"] == "."
    assert any("pip install" in c and "/opt/fsm-actors" in c for c in config["setup_commands"])
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-port=8265" in head and "--ray-client-server-port=10001" in head
    for command in (config["head_start_ray_commands"][-1],
                    config["worker_start_ray_commands"][-1]):
        assert "fsm-actors-venv/bin:$PATH" in command  # a job's python is the venv's
