"""API orchestration runs record every metric the Grafana dashboard charts, with the labels
its panels group by (issue 25, item 2): in-process modes from the orchestrating process (role
``orchestrator``), FANOUT from its job workers on actors (role ``worker``). Read from the
node's metrics export, as tests/ops/test_metrics_runs.py reads the other kinds of run."""

from __future__ import annotations

import time

import pytest

from patterns.api_orchestration import APIEndpoint, APIOrchestrationConfig, APIOrchestrator
from tests.ops.test_metrics_runs import _check_run, _exported, _series
from tests.patterns.api_servers import APITestServer

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def server():
    srv = APITestServer().start()
    yield srv
    srv.stop()


def _in_process(server, mode: str) -> dict:
    endpoints = [
        APIEndpoint("a", f"{server.url}/items/a"),
        APIEndpoint("b", f"{server.url}/status/404", retry_count=0),  # fails: an error
        APIEndpoint("c", f"{server.url}/items/c", depends_on=["a"] if mode == "hybrid" else []),
    ]
    config = APIOrchestrationConfig(name=f"metrics-{mode}", mode=mode, endpoints=endpoints)
    return APIOrchestrator(config).run()


def _fanout(server, ray_session) -> dict:
    endpoint = APIEndpoint("item", f"{server.url}/status/{{item}}", retry_count=0)
    config = APIOrchestrationConfig(name="metrics-fanout", mode="fanout", endpoints=[endpoint],
                                    workers=2, batch_size=50)
    items = [404 if i % 50 == 7 else 200 for i in range(300)]
    return APIOrchestrator(config, address=ray_session.address).run(items)


def test_api_runs_export_every_charted_metric_with_their_labels(ray_session, server):
    runs = {
        "sequential": _in_process(server, "sequential"),
        "hybrid": _in_process(server, "hybrid"),
        "fanout": _fanout(server, ray_session),
    }
    ids = {kind: result["_metrics"]["run_id"] for kind, result in runs.items()}
    assert all(ids.values()) and len(set(ids.values())) == 3, ids
    assert all(result["errors"] for result in runs.values())  # each run has failed calls

    def every_run_exported() -> str:
        text = _exported([f'run="{run_id}"' for run_id in ids.values()])
        for kind, run_id in ids.items():
            try:
                _check_run(text, run_id, runs[kind])
            except AssertionError as exc:
                raise AssertionError(f"{kind} run: {exc}") from None
        # the counts are the runs' (each worker's reach the export in their own cycle)
        assert sum(_values(text, "ray_fsm_actors_records_total", ids["fanout"])) == 300
        assert sum(_values(text, "ray_fsm_actors_errors_total", ids["fanout"])) == 6
        return text

    text = _eventually(every_run_exported)
    for kind in ("sequential", "hybrid"):
        (series,) = _series(text, "ray_fsm_actors_records_total", ids[kind])
        assert series["pipeline"] == f"metrics-{kind}" and series["role"] == "orchestrator"
    # an in-process run: 3 endpoints called, 1 failed, 2 good results
    assert _values(text, "ray_fsm_actors_records_total", ids["sequential"]) == [3.0]
    assert _values(text, "ray_fsm_actors_errors_total", ids["sequential"]) == [1.0]
    assert _values(text, "ray_fsm_actors_records_written_total", ids["sequential"]) == [2.0]
    fanout = _series(text, "ray_fsm_actors_records_total", ids["fanout"])
    assert {s["role"] for s in fanout} == {"worker"}
    assert {s["pipeline"] for s in fanout} == {"metrics-fanout"}


def _eventually(check, timeout: float = 60):
    """``check()`` once it passes: each metric reaches the export in its own report cycle."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _values(text: str, name: str, run_id: str) -> list[float]:
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(name + "{") and f'run="{run_id}"' in line]
