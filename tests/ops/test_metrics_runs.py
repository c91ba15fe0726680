"""Every metric the Grafana dashboard charts reaches the node's metrics export from real runs
of each kind (file, FSM stream, ETL; API runs in tests/ops/test_metrics_api.py), with the
labels its panels group by (issue 25 item 2). The pipeline-file examples run on 2,000 demo
orders, as in test_example_runs."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
import ray

from fsm_actors.platform import metrics
from tests.helpers.examples import copy_examples
from tests.helpers.examples import run_example as _run

pytestmark = pytest.mark.ray
BY = ("pipeline", "run", "role")


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return copy_examples(tmp_path_factory.mktemp("metrics") / "repo")


def _exported(wanted: list[str], timeout: float = 60) -> str:
    """The node's metrics export once every string of ``wanted`` is in it (or the last)."""
    port = ray._private.worker.global_worker.node.metrics_export_port
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:  # the agent exports every few seconds
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        if all(w in text for w in wanted):
            break
        time.sleep(1)
    return text


def _series(text: str, name: str, run_id: str) -> list[dict[str, str]]:
    """The label sets of the samples of ``name`` carrying ``run="<run_id>"``."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") and f'run="{run_id}"' in line:
            out.append(dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0])))
    return out


def _check_run(text: str, run_id: str, result: dict) -> None:
    for name in metrics.CHARTED:
        if name == "errors" and not result.get("errors", result.get("rejected")):
            continue  # a counter never incremented has no sample (Ray refuses inc(0))
        kind = metrics.CATALOG[name][0]
        exported = f"ray_fsm_actors_{name}" + ("_bucket" if kind == "histogram" else
                                               "_total" if kind == "counter" else "")
        series = _series(text, exported, run_id)
        assert series, f"{exported} of run {run_id} not exported"
        assert all(s.get(k) for s in series for k in BY), series


def test_file_fsm_stream_and_etl_runs_export_every_charted_metric(ray_session, examples):
    ex = examples / "examples"
    runs = {
        "file": _run(ex / "orders_clean.yaml", ray_session.address),
        "fsm stream": _run(ex / "orders_stream.yaml", ray_session.address),
        "etl": _run(ex / "orders_to_parquet.yaml", ray_session.address),
    }
    ids = {kind: result.get("run_id") for kind, result in runs.items()}
    assert all(ids.values()), {k: sorted(r) for k, r in runs.items()}
    wanted = [f'run="{run_id}"' for run_id in ids.values()]
    deadline = time.monotonic() + 60
    while True:  # each metric reaches the export in its own report cycle: wait for all
        text = _exported(wanted + ["ray_fsm_actors_state_entered_total"])
        try:
            for kind, run_id in ids.items():
                try:
                    _check_run(text, run_id, runs[kind])
                except AssertionError as exc:
                    raise AssertionError(f"{kind} run: {exc}") from None
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    # the FSM stream's per-state counters, with the labels the state panels group by
    states = [line for line in text.splitlines()
              if line.startswith("ray_fsm_actors_state_entered_total{") and 'fsm="orders"' in line]
    assert any('state="price"' in line for line in states), states
