"""FANOUT: the HTTP worker step in-process, and whole runs on worker actors (job layer)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from fsm_actors.platform.jobs.model import StepContext, Task
from patterns._api.fanout_step import FanoutStepSpec
from patterns.api_orchestration import APIEndpoint, APIOrchestrationConfig, APIOrchestrator


def fanout(server, path="/items/{item}", **config):
    endpoint = APIEndpoint("item", f"{server.url}{path}", retry_delay=0.01,
                           **config.pop("endpoint", {}))
    return APIOrchestrator(APIOrchestrationConfig(mode="fanout", endpoints=[endpoint],
                                                  scope=config.pop("scope", "process"), **config))


def step(orch, tmp_path=None, staged=False):
    spec = FanoutStepSpec(orch.config, orch.calls[0], None, 16, None, staged)
    return spec.build(StepContext("t", 0, str(tmp_path) if tmp_path else None))


def run_task(worker, task):
    async def go():
        try:
            return await worker.run(task)
        finally:
            await worker.aclose()

    return asyncio.run(go())


def test_the_step_returns_a_slice_in_order_with_errors_by_index(server):
    orch = fanout(server, "/flaky/{item}?fail=1&status=500", endpoint={"retry_count": 1})
    items = [f"s{i}" for i in range(40)]
    result = run_task(step(orch), Task("items", 3, payload=items, first_record=120))
    assert result.batches == {3: {"read": 40, "processed": 40, "written": 40, "errors": 0,
                                  "skipped": 0}}
    assert result.output["values"] == [{"ok": f"s{i}"} for i in range(40)]
    bad = run_task(step(fanout(server, "/status/{item}")),
                   Task("items", 0, payload=[200, 404, 200], first_record=10))
    assert bad.output["values"] == [{"status": "as asked"}, None, {"status": "as asked"}]
    assert bad.output["errors"] == [{"index": 11, "status": 404, "attempts": 1,
                                     "reason": 'HTTP 404: {"status": "as asked"}'}]


def test_the_step_posts_each_item_as_its_body(server):
    orch = fanout(server, "/echo", endpoint={"method": "POST"})
    result = run_task(step(orch), Task("items", 0, payload=[{"n": 1}, {"n": 2}]))
    assert result.output["values"] == [{"method": "POST", "json": {"n": 1}},
                                       {"method": "POST", "json": {"n": 2}}]


def test_the_staged_step_writes_the_same_parts_when_sent_again(server, tmp_path):
    orch = fanout(server, "/status/{item}", checkpoint_id="stage-test")
    task = Task("items", 2, payload=[200, 500, 200], first_record=6)
    run_task(step(orch, tmp_path, staged=True), task)
    first = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    run_task(step(orch, tmp_path, staged=True), task)
    again = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert first == again and len(first) == 3  # values part, error part, slice outcome
    errors = [json.loads(line) for line in (tmp_path / "errors").glob("*.jsonl").__next__()
              .read_text().splitlines()]
    assert errors[0]["record"] == 8 and errors[0]["function"] == "item"


@pytest.mark.ray
def test_fanout_of_20000_ids_survives_a_killed_worker(ray_session, server):
    import ray

    n = 20_000
    orch = fanout(server, "/items/{item}", workers=2, batch_size=500)
    killed: list[str] = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and server.count("/items/fx") < n // 4:
            time.sleep(0.02)
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if actor["name"].startswith("api/") and actor["name"].endswith("/worker/0"):
                ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]))
                killed.append(actor["name"])
                return

    thread = threading.Thread(target=killer)
    thread.start()
    result = orch.run([f"fx{i}" for i in range(n)])
    thread.join()
    assert killed, "no worker was killed mid-run"
    values = result["item"]
    assert len(values) == n
    assert [v["id"] for v in values] == [f"fx{i}" for i in range(n)]
    assert result["errors"] == {}
    assert result["_metrics"]["items"] == n
    assert server.count("/items/fx") >= n  # the killed worker's slices were sent again


@pytest.mark.ray
@pytest.mark.parametrize("sink", ["out.jsonl", "out.csv"])
def test_fanout_streams_to_a_sink_in_input_order(ray_session, server, tmp_path, sink):
    import pyarrow as pa

    from fsm_actors.platform.io import read_arrow_batches

    target = tmp_path / sink
    orch = fanout(server, "/status/{item}", sink=str(target), batch_size=64, workers=2)
    items = (404 if i % 50 == 7 else 200 for i in range(600))  # read lazily, never a list
    result = orch.run(items)
    assert result["item"]["records_written"] == 588
    table = pa.Table.from_batches(list(read_arrow_batches(str(target))))
    assert table.column("_index").to_pylist() == [i for i in range(600) if i % 50 != 7]
    assert len(result["errors"]["item"]) == 12
    errors = [json.loads(x) for x in open(result["_metrics"]["error_file"])]
    assert [e["record"] for e in errors] == [i + 1 for i in range(600) if i % 50 == 7]
