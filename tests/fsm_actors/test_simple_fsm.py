"""SimpleFSM on FSM actors and in local mode: results, order, failures, chaos, streams."""

from __future__ import annotations

import asyncio
import json

import pytest
import ray

from fsm_actors import AsyncSimpleFSM, SimpleFSM, batch_process, process_file
from fsm_actors.platform import runtime
from tests.fsm_actors.fsm_configs import ROUTER, double, fragile, slow_double

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def router(ray_session):
    fsm = SimpleFSM(ROUTER, custom_functions={"double": double}, actors=2)
    yield fsm
    fsm.close()


def test_process_runs_on_an_actor_with_the_peer_result_shape(router):
    result = router.process({"x": 7})
    assert result["final_state"] == "big"
    assert result["data"] == {"x": 14}
    assert result["path"] == ["start", "double", "big"]
    assert result["success"] is True and result["error"] is None
    assert "metadata" in result


def test_actors_are_named_in_the_namespace_and_show_progress(router):
    router.process_batch([{"x": i} for i in range(100)])
    handle = ray.get_actor("fsm/router/0", namespace=runtime.namespace())
    assert handle is not None
    assert ray.get_actor("fsm/router/1", namespace=runtime.namespace()) is not None


def test_process_batch_keeps_input_order_and_returns_each_record_once(router):
    data = [{"x": i, "id": i} for i in range(5000)]
    out = router.process_batch(data, batch_size=128)
    assert [r["data"]["id"] for r in out] == list(range(5000))
    assert all(r["data"]["x"] == 2 * i for i, r in enumerate(out))
    assert {r["final_state"] for r in out[:5]} == {"small"}
    assert out[4999]["final_state"] == "big"


def test_process_batch_matches_local_mode(router):
    data = [{"x": i} for i in range(300)]
    with SimpleFSM(ROUTER, custom_functions={"double": double}, local=True) as local:
        assert local.process_batch(data) == router.process_batch(data)


def test_record_failures_come_back_without_killing_the_batch(ray_session):
    with SimpleFSM(ROUTER, custom_functions={"double": fragile}, actors=2) as fsm:
        out = fsm.process_batch([{"x": i} for i in range(200)], batch_size=16)
    bad = [r for r in out if not r["success"]]
    assert len(out) == 200
    assert len(bad) == len([i for i in range(200) if i % 7 == 3])
    assert "unlucky" in bad[0]["error"] and "double" in bad[0]["error"]


def test_progress_callback_sees_every_record(router):
    seen = []
    router.process_batch([{"x": i} for i in range(1000)], batch_size=100,
                         on_progress=lambda p: seen.append(p.completed))
    assert seen[-1] == 1000 and seen == sorted(seen)


def test_killed_fsm_actor_is_replaced_and_every_record_returned_once(ray_session):
    fsm = SimpleFSM(ROUTER, custom_functions={"double": slow_double}, actors=2)
    killed = []

    def kill_once(progress):
        if not killed:
            actor = fsm.async_fsm._executor.pool.actors[0]
            ray.kill(actor)
            killed.append(progress.completed)

    try:
        data = [{"x": i, "id": i} for i in range(2000)]
        out = fsm.process_batch(data, batch_size=50, on_progress=kill_once)
        assert killed
        assert [r["data"]["id"] for r in out] == list(range(2000))
        assert all(r["success"] for r in out)
        pool = fsm.async_fsm._executor.pool
        assert pool.stats.actors_replaced >= 1
        # the replacement restored the dead actor's counters: the actors account for every
        # record exactly once
        snapshots = ray.get([a.snapshot.remote() for a in pool.actors])
        assert sum(s["records_done"] for s in snapshots) == 2000
    finally:
        fsm.close()


def test_process_timeout_gives_a_failed_result(ray_session):
    with SimpleFSM(ROUTER, custom_functions={"double": slow_double}, actors=1) as fsm:
        fsm.process({"x": 1})  # actor placed
        result = fsm.process({"x": 1}, timeout=0.0)
    assert result["success"] is False and "timeout" in result["error"]


def test_process_stream_from_csv_to_jsonl(router, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("x,name\n" + "".join(f"{i},n{i}\n" for i in range(1000)))
    out = tmp_path / "out.jsonl"
    result = router.process_stream(str(src), str(out), chunk_size=64)
    assert result["total_processed"] == 1000 and result["successful"] == 1000
    assert result["failed"] == 0 and result["throughput"] > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["x"] for r in rows] == [2 * i for i in range(1000)]


def test_process_stream_from_an_iterator_writes_failures_to_an_error_file(ray_session, tmp_path):
    out = tmp_path / "out.jsonl"
    with SimpleFSM(ROUTER, custom_functions={"double": fragile}, actors=2) as fsm:
        result = fsm.process_stream(({"x": i} for i in range(100)), str(out), chunk_size=10)
    assert result["failed"] == len([i for i in range(100) if i % 7 == 3])
    assert result["successful"] + result["failed"] == 100
    errors = [json.loads(x) for x in open(result["error_file"])]
    assert len(errors) == result["failed"] and "unlucky" in errors[0]["reason"]


def test_module_functions(ray_session, tmp_path):
    out = batch_process(ROUTER, [{"x": 1}, {"x": 9}], custom_functions={"double": double})
    assert [r["final_state"] for r in out] == ["small", "big"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(50)))
    result = process_file(ROUTER, src, tmp_path / "o.jsonl", custom_functions={"double": double})
    assert result["total_processed"] == 50


def test_async_facade(ray_session):
    async def go():
        async with AsyncSimpleFSM(ROUTER, custom_functions={"double": double}, actors=1) as fsm:
            one = await fsm.process({"x": 7})
            many = await fsm.process_batch([{"x": i} for i in range(20)])
            return one, many

    one, many = asyncio.run(go())
    assert one["final_state"] == "big" and len(many) == 20


def test_local_mode_does_not_need_ray():
    with SimpleFSM(ROUTER, custom_functions={"double": double}, local=True) as fsm:
        assert fsm.process({"x": 2})["final_state"] == "small"
        assert fsm.get_states() == ["start", "double", "big", "small"]
        assert fsm.validate({"x": 1})["valid"] is True


def test_functions_from_a_driver_only_module_reach_the_actors(ray_session, tmp_path, monkeypatch):
    (tmp_path / "driver_only_funcs.py").write_text(
        "OFFSET = 5\n\ndef shift(data):\n    return {**data, 'x': data['x'] + OFFSET}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import driver_only_funcs

    with SimpleFSM(ROUTER, custom_functions={"double": driver_only_funcs.shift}, actors=1) as fsm:
        assert fsm.process({"x": 1})["data"] == {"x": 6}


def test_data_mode_comes_from_the_config_unless_given():
    config = {
        "name": "modes", "data_mode": "direct",
        "states": [{"name": "a", "is_start": True,
                    "transforms": ["lambda data, ctx: data.update(seen=True)"]},
                   {"name": "b", "is_end": True}],
        "arcs": [{"from": "a", "to": "b"}],
    }
    mine = {"x": 1}
    with SimpleFSM(config, local=True) as fsm:  # DIRECT from the config: works in place
        assert fsm.process(mine)["data"] == {"x": 1, "seen": True}
    assert mine == {"x": 1, "seen": True}
    untouched = {"x": 1}
    with SimpleFSM(config, data_mode="copy", local=True) as fsm:
        assert fsm.process(untouched)["data"] == {"x": 1, "seen": True}
    assert untouched == {"x": 1}
