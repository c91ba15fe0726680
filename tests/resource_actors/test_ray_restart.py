"""A Ray restarted inside one process (a test fixture, a notebook) repeats job ids: the
cluster's broker, the owner anchor and policy actors must be looked up anew, not taken from
a cache keyed by job id (a stale handle answers "Can't find actor")."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
from fsm_actors.platform import runtime
from resource_actors import ResourceManager


def use(label):
    manager = ResourceManager()
    manager.register_from_dict("mem", {"data": {"x": 1}})
    assert "mem" in manager.resource_names(), label
    manager.close()


runtime.ensure_ray(address="local", num_cpus=1, include_dashboard=False)
use("first Ray")
runtime.shutdown()
runtime.ensure_ray(address="local", num_cpus=1, include_dashboard=False)
use("restarted Ray")
runtime.shutdown()
print("ok")
"""


def test_the_broker_is_found_again_after_ray_restarts_in_the_same_process():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr
