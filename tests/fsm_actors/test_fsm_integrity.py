"""SimpleFSM keeps every record: after timeouts, under concurrent calls, with odd records.

Issue 9 items 1, 2, 16, 17, 18; async user functions in local mode (issue 8); worker
failures as ``WorkerError``; actor repr/status/task names (issue 15).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from fsm_actors import AsyncSimpleFSM, SimpleFSM
from fsm_actors.platform import runtime
from fsm_actors.platform.errors import FSMError, PoolError, WorkerError

pytestmark = pytest.mark.ray

SLEEPY = {
    "name": "sleepy",
    "states": [
        {"name": "start", "is_start": True, "transforms": ["nap"]},
        {"name": "end", "is_end": True},
    ],
    "arcs": [{"from": "start", "to": "end"}],
}


def nap(data):
    time.sleep(data.get("sleep", 0))
    return {**data, "done": True}


def positive(data):
    if data["x"] <= 0:
        raise ValueError(f"value must be >0, got {data['x']}")
    return data


async def async_double(data):
    await asyncio.sleep(0)
    return {**data, "x": data.get("x", 0) * 2}


def _ok(results, n):
    assert len(results) == n
    assert all(r["success"] for r in results), [r["error"] for r in results if not r["success"]]


@pytest.fixture(params=["actors", "local"])
def sleepy(request, ray_session):
    local = request.param == "local"
    fsm = SimpleFSM(SLEEPY, custom_functions={"nap": nap}, local=local,
                    **({} if local else {"actors": 1}))
    yield fsm
    fsm.close()


def test_a_batch_timeout_cancels_that_call_only(sleepy):
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        sleepy.process_batch([{"sleep": 1}] * 4, batch_size=1, timeout=0.3)
    assert time.perf_counter() - started < 0.9  # honoured locally too (item 18)
    _ok(sleepy.process_batch([{"i": i} for i in range(10)]), 10)
    assert sleepy.process({"i": 1})["success"]


def test_process_timeouts_do_not_leak_capacity(sleepy):
    started = time.perf_counter()
    for _ in range(4):
        result = sleepy.process({"sleep": 0.4}, timeout=0.1)
        assert not result["success"] and "timeout" in result["error"]
    assert time.perf_counter() - started < 1.2
    assert sleepy.process({"i": 1}, timeout=30)["success"]
    _ok(sleepy.process_batch([{"i": i} for i in range(10)]), 10)
    pool = getattr(sleepy.async_fsm._executor, "_pool", None)  # None in local mode
    assert pool is None or pool.busy == 0  # timed-out calls gave their capacity back


@pytest.mark.parametrize("local", [False, True])
def test_concurrent_calls_on_one_async_fsm_are_all_served(ray_session, local):
    async def main():
        fsm = AsyncSimpleFSM(SLEEPY, custom_functions={"nap": nap}, local=local,
                             **({} if local else {"actors": 2, "max_in_flight": 1}))
        try:
            singles = await asyncio.gather(*(fsm.process({"x": i}) for i in range(5)))
            batches = await asyncio.gather(
                *(fsm.process_batch([{"x": i, "b": b} for i in range(10)], batch_size=3)
                  for b in range(4)))
        finally:
            await fsm.close()
        return singles, batches

    singles, batches = asyncio.run(main())
    assert [r["data"]["x"] for r in singles] == list(range(5))
    assert all(r["success"] for r in singles)
    assert [len(b) for b in batches] == [10, 10, 10, 10]
    for b, out in enumerate(batches):
        assert [r["data"] for r in out] == [{"x": i, "b": b, "done": True} for i in range(10)]


@pytest.mark.parametrize("local", [False, True])
def test_a_chunk_where_no_record_succeeds_is_returned_not_raised(ray_session, local):
    with SimpleFSM(SLEEPY, custom_functions={"nap": positive}, local=local,
                   **({} if local else {"actors": 1})) as fsm:
        out = fsm.process_batch([{"x": 0}, {"x": 0}])
    assert len(out) == 2 and not any(r["success"] for r in out)
    assert "value must be >0" in out[0]["error"]


@pytest.mark.parametrize("local", [False, True])
def test_a_non_dict_record_fails_alone(ray_session, local):
    with SimpleFSM(SLEEPY, custom_functions={"nap": nap}, local=local,
                   **({} if local else {"actors": 1})) as fsm:
        out = fsm.process_batch([{"a": 1}, "oops", {"a": 2}])
        single = fsm.process("oops")
    assert [r["success"] for r in out] == [True, False, True]
    assert "must be a dict" in out[1]["error"] and out[1]["data"] == "oops"
    assert not single["success"] and "must be a dict" in single["error"]


@pytest.mark.parametrize("local", [False, True])
def test_async_custom_functions_run_in_every_mode(ray_session, local):
    config = {**SLEEPY, "name": "asyncfn",
              "states": [{"name": "start", "is_start": True, "transforms": ["dbl"]},
                         {"name": "end", "is_end": True}]}
    with SimpleFSM(config, custom_functions={"dbl": async_double}, local=local,
                   **({} if local else {"actors": 1})) as fsm:
        single = fsm.process({"x": 2})
        out = fsm.process_batch([{"x": i} for i in range(20)])
    assert single["success"], single["error"]
    assert single["data"]["x"] == 4
    assert [r["data"]["x"] for r in out] == [2 * i for i in range(20)]


def test_async_functions_also_work_under_an_async_facade(ray_session):
    config = {**SLEEPY, "name": "asyncfn2",
              "states": [{"name": "start", "is_start": True, "transforms": ["dbl"]},
                         {"name": "end", "is_end": True}]}

    async def main():
        async with AsyncSimpleFSM(config, custom_functions={"dbl": async_double},
                                  local=True) as fsm:
            return await fsm.process({"x": 5})

    assert asyncio.run(main())["data"]["x"] == 10


def test_pool_and_worker_errors_are_fsm_errors(ray_session):
    assert issubclass(PoolError, FSMError) and issubclass(WorkerError, FSMError)
    with SimpleFSM(SLEEPY, custom_functions={"nap": nap}, actors=1) as fsm:
        # a whole call fails on the actor (a data mode it cannot read), not one record
        fsm.async_fsm._data_mode = "no-such-mode"
        with pytest.raises(WorkerError) as info:
            fsm.process_batch([{"x": 1}])
        assert info.value.fsm == "sleepy" and info.value.cause_type == "ValueError"
        assert "not at fault" in str(info.value)
        assert not isinstance(info.value, ray.exceptions.RayTaskError)


def test_actor_repr_is_identity_and_status_is_live(ray_session):
    with SimpleFSM(SLEEPY, custom_functions={"nap": nap}, actors=1) as fsm:
        fsm.process_batch([{"i": i} for i in range(7)], batch_size=3)
        actor = fsm.async_fsm._executor.pool.actors[0]
        text = repr(actor)  # the handle; the actor's own repr is read from Ray's state
        assert text
        status = fsm.async_fsm.status()
        assert status[0]["records"] == 7 and status[0]["batches"] == 3
        assert status[0]["busy"] is False and status[0]["fsm"] == "sleepy"
        ident = ray.get(actor.__ray_call__.remote(lambda self: repr(self)))
    assert ident == "FSMActor(fsm='sleepy', index=0)"
    assert "records" not in ident


def test_actor_calls_carry_task_names(ray_session):
    with SimpleFSM(SLEEPY, custom_functions={"nap": nap}, actors=1) as fsm:
        fsm.process_batch([{"i": i} for i in range(6)], batch_size=3)
        assert fsm.async_fsm.status()[0]["last_task"] == "sleepy chunk 1 rows 3-5"
        fsm.process({"i": 1})
        assert fsm.async_fsm.status()[0]["last_task"].startswith("sleepy record ")


def test_no_never_retrieved_noise_after_close_or_failure(ray_session, caplog):
    import gc
    import logging

    caplog.set_level(logging.ERROR, logger="asyncio")
    fsm = SimpleFSM(SLEEPY, custom_functions={"nap": nap}, actors=1)
    fsm.process_batch([{"i": 1}])
    fsm.close()
    fsm = SimpleFSM(SLEEPY, custom_functions={"nap": positive}, actors=1)
    fsm.process_batch([{"x": 0}])  # a failing call (before the fix: a raised RayTaskError)
    fsm.close()
    fsm = SimpleFSM(SLEEPY, custom_functions={"nap": nap}, actors=1)
    fsm.close()  # closed before its actors were ever ready
    gc.collect()
    time.sleep(1.0)
    gc.collect()
    noise = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert noise == []
    assert runtime.namespace()
