"""fsm_actors.platform.metrics: no-op (and no Ray import) off Ray; exported with their tags on Ray."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import ray

from fsm_actors.platform import metrics


def test_off_ray_the_helpers_do_nothing_and_import_no_ray():
    code = ("import sys\nfrom fsm_actors.platform import metrics\n"
            "metrics.inc('records', 5, pipeline='p')\nmetrics.observe('batch_seconds', 0.1)\n"
            "metrics.set_gauge('leases_held', 2)\nprint('ray' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_an_unknown_metric_is_refused_by_name():
    with pytest.raises(KeyError, match="unknown metric 'recrods'"):
        metrics.inc("recrods", 1)


@ray.remote(num_cpus=0)
def _record(run: str) -> None:
    metrics.inc("records", 5000, pipeline="metrics-test", run=run, role="worker")
    metrics.inc("errors", 0, pipeline="metrics-test", run=run, role="worker")  # zero: skipped
    metrics.observe("batch_seconds", 0.02, pipeline="metrics-test", run=run, role="worker")
    metrics.set_gauge("leases_held", 3, pipeline="metrics-test", run=run, role="provider")


@pytest.mark.ray
def test_on_ray_they_are_exported_with_pipeline_run_and_role(ray_session):
    uid = uuid.uuid4().hex[:8]
    ray.get(_record.remote(uid))
    port = ray._private.worker.global_worker.node.metrics_export_port
    wanted = ['ray_fsm_actors_records_total{', f'run="{uid}"', 'pipeline="metrics-test"',
              "ray_fsm_actors_batch_seconds_bucket", "ray_fsm_actors_leases_held"]
    text, deadline = "", time.monotonic() + 60
    while time.monotonic() < deadline:  # the agent exports every few seconds
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        if all(w in text for w in wanted):
            break
        time.sleep(1)
    lines = [line for line in text.splitlines() if f'run="{uid}"' in line]
    assert all(w in text for w in wanted), "\n".join(lines) or text[-2000:]
    records = [line for line in lines if line.startswith("ray_fsm_actors_records_total{")]
    assert records and float(records[0].rsplit(" ", 1)[1]) == 5000
    assert 'role="worker"' in records[0]


def test_the_grafana_dashboard_has_a_panel_for_every_metric():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "dashboards" / "fsm-actors.json"
    board = json.loads(path.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    for name in metrics.CHARTED:
        assert any(f"ray_fsm_actors_{name}" in e for e in exprs), name
    # + the arcs panel and the state panel (issue 25); regenerate: scripts/make_dashboard.py
    assert len(board["panels"]) == len(metrics.CHARTED) + 2
