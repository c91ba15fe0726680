"""Issue 25 (2, 3): per-state counts are exact everywhere; an error line carries its path.

A branching FSM runs 50,000 records where one transform raises for 1% of them; the counts
the FSM reports must equal those computed from the paths it returned, in this process and
on actors, with an actor killed mid-batch (its in-flight chunk re-sent, counted once).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter

import pytest
import ray

from fsm_actors import SimpleFSM

BRANCHING = {
    "name": "branching",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "classify", "transforms": ["classify"]},
        {"name": "small", "transforms": ["mark"]},
        {"name": "big"},
        {"name": "huge", "is_end": True},
        {"name": "done", "is_end": True},
        {"name": "dropped", "is_end": True, "emit_output": False},
    ],
    "arcs": [
        {"from": "start", "to": "dropped", "condition": "data['x'] % 50 == 11", "priority": 5},
        {"from": "start", "to": "classify"},
        {"from": "classify", "to": "big", "condition": "data['x'] % 3 == 0", "priority": 2},
        {"from": "classify", "to": "small"},
        {"from": "big", "to": "huge", "condition": "data['x'] % 9 == 0"},
        {"from": "big", "to": "done"},
        {"from": "small", "to": "done"},
    ],
}


def classify(data):
    if data["x"] % 100 == 7:  # 1% of records
        raise ValueError(f"cannot classify {data['x']}")
    return {**data, "kind": data["x"] % 3}


def slow_classify(data):
    time.sleep(0.00002)
    return classify(data)


def mark(data):
    return {**data, "small": True}


def expected_from_paths(results):
    """What the counts must be, computed independently from the returned results."""
    entered, ended, failed, arcs = Counter(), Counter(), Counter(), Counter()
    for r in results:
        path = r["path"]
        entered.update(path)
        ended[path[-1]] += 1
        arcs.update(f"{a}->{b}" for a, b in zip(path, path[1:], strict=False))
        if not r["success"]:
            failed[r["final_state"]] += 1
    return entered, ended, failed, arcs


def assert_counts_match(stats, results):
    entered, ended, failed, arcs = expected_from_paths(results)
    for name in [s["name"] for s in BRANCHING["states"]]:
        row = stats["states"][name]
        assert (row["entered"], row["ended"], row["failed"]) == (
            entered[name], ended[name], failed[name]), name
        assert row["seconds"] >= 0
    assert stats["arcs"] == dict(arcs)
    assert stats["states"]["classify"]["errors"] == {"ValueError": failed["classify"]}


RECORDS = [{"x": i} for i in range(50_000)]


def test_counts_equal_the_paths_in_this_process(ray_session):
    with SimpleFSM(BRANCHING, custom_functions={"classify": classify, "mark": mark},
                   local=True) as fsm:
        out = fsm.process_batch(RECORDS, batch_size=2_000)
        assert_counts_match(out.stats, out)
        assert sum(not r["success"] for r in out) == 500
        assert fsm.stats()["states"] == out.stats["states"]
        again = fsm.process_batch(RECORDS[:1_000])  # totals since built add up
        assert fsm.stats()["states"]["start"]["entered"] == 51_000
        assert_counts_match(again.stats, again)
        timed = fsm.stats()["states"]["classify"]["seconds"]
        assert timed > 0  # sampled records passed through it


def test_counts_stay_exact_on_actors_when_an_actor_is_killed_mid_batch(ray_session):
    fsm = SimpleFSM(BRANCHING, custom_functions={"classify": slow_classify, "mark": mark},
                    actors=2)
    killed = []

    def kill_once(progress):
        if not killed:
            ray.kill(fsm.async_fsm._executor.pool.actors[0])
            killed.append(progress.completed)

    try:
        out = fsm.process_batch(RECORDS, batch_size=1_000, on_progress=kill_once)
        assert killed and fsm.async_fsm._executor.pool.stats.actors_replaced >= 1
        assert len(out) == 50_000
        assert_counts_match(out.stats, out)
        assert_counts_match(fsm.stats(), out)
    finally:
        fsm.close()


def test_state_counts_reach_the_node_metrics_with_a_state_tag(ray_session):
    name = f"counted-{uuid.uuid4().hex[:8]}"
    config = {**BRANCHING, "name": name}
    with SimpleFSM(config, custom_functions={"classify": classify, "mark": mark},
                   actors=1) as fsm:
        out = fsm.process_batch(RECORDS[:5_000])
    entered = Counter(s for r in out for s in r["path"])
    port = ray._private.worker.global_worker.node.metrics_export_port
    wanted = ('ray_fsm_actors_state_entered_total{', f'fsm="{name}"', 'state="classify"')
    line = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and line is None:  # the agent exports every few seconds
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        line = next((ln for ln in text.splitlines() if all(w in ln for w in wanted)), None)
        if line is None:
            time.sleep(1)
    assert line is not None, "no ray_fsm_actors_state_entered_total for state classify"
    assert float(line.rsplit(" ", 1)[1]) == entered["classify"]


@pytest.mark.parametrize("local", [True, False], ids=["local", "actors"])
def test_a_failed_record_error_line_has_its_path_and_stream_counts(ray_session, tmp_path,
                                                                    local):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(3_000)))
    sink = tmp_path / "out.jsonl"
    with SimpleFSM(BRANCHING, custom_functions={"classify": classify, "mark": mark},
                   local=local, **({} if local else {"actors": 2})) as fsm:
        result = fsm.process_stream(str(src), str(sink), chunk_size=400)
        stats = fsm.stats()
    errors = [json.loads(line) for line in open(result["error_file"], encoding="utf-8")]
    assert len(errors) == 30
    for line in errors:
        assert line["path"] == ["start", "classify"]
        assert line["state"] == "classify"
        assert "ValueError" in line["reason"]
    assert result["states"]["classify"]["failed"] == 30
    assert result["states"]["classify"]["errors"] == {"ValueError": 30}
    assert result["states"]["start"]["entered"] == 3_000
    assert result["states"]["dropped"]["ended"] == 60
    assert result["arcs"]["start->dropped"] == 60
    assert stats["states"] == result["states"]
