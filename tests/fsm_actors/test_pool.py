"""The actor pool: order, back-pressure, replacement of dead actors."""

from __future__ import annotations

import os
import time

import pytest
import ray

from fsm_actors.platform import runtime
from fsm_actors.platform.actor_pool import ActorPool, PoolError, pool_actor_name

pytestmark = pytest.mark.ray


@ray.remote
class Echo:
    """Test actor: doubles numbers, can be made to die on a chosen item."""

    def __init__(self, die_on: int | None = None, delay: float = 0.0) -> None:
        self.die_on = die_on
        self.delay = delay
        self.seen = 0

    def work(self, batch: list[int]) -> list[int]:
        self.seen += 1
        if self.die_on is not None and self.die_on in batch:
            os._exit(1)
        if self.delay:
            time.sleep(self.delay)
        return [x * 2 for x in batch]


def _factory(base: str, **kw):
    def make(index: int, generation: int):
        name = pool_actor_name(base, index, generation)
        return Echo.options(**runtime.actor_options("worker", name=name)).remote(**kw)

    return make


def test_results_come_back_in_input_order(ray_session):
    pool = ActorPool(_factory("test/order"), 2, max_in_flight=2)
    try:
        batches = [list(range(i * 10, i * 10 + 10)) for i in range(50)]
        out = list(pool.map_sync(lambda a, b: a.work.remote(b), batches))
        assert [i for i, _ in out] == list(range(50))
        assert [x for _, r in out for x in r] == [x * 2 for b in batches for x in b]
    finally:
        pool.shutdown()


def test_input_is_pulled_lazily(ray_session):
    pool = ActorPool(_factory("test/lazy", delay=0.05), 2, max_in_flight=1)
    pulled = []

    def source():
        for i in range(20):
            pulled.append(i)
            yield [i]

    try:
        it = pool.map_sync(lambda a, b: a.work.remote(b), source())
        next(it)
        # 2 actors x 1 in flight, plus the ordered window: far fewer than all 20 pulled
        assert len(pulled) < 20
        rest = list(it)
        assert len(rest) == 19
    finally:
        pool.shutdown()


def test_killed_actor_is_replaced_and_its_batch_resubmitted(ray_session):
    pool = ActorPool(_factory("test/kill", delay=0.02), 2, max_in_flight=2)
    try:
        batches = [[i] for i in range(60)]
        got = []
        for n, (i, r) in enumerate(pool.map_sync(lambda a, b: a.work.remote(b), batches)):
            got.append((i, r))
            if n == 10:
                ray.kill(pool.actors[0])
        assert [i for i, _ in got] == list(range(60))
        assert [r for _, r in got] == [[2 * i] for i in range(60)]
        assert pool.stats.actors_replaced >= 1
    finally:
        pool.shutdown()


def test_poison_item_fails_with_pool_error(ray_session):
    pool = ActorPool(_factory("test/poison", die_on=7), 2, max_item_retries=1)
    try:
        with pytest.raises(PoolError, match="item 7"):
            list(pool.map_sync(lambda a, b: a.work.remote(b), [[i] for i in range(10)]))
    finally:
        pool.shutdown()


def test_unordered_map_yields_every_item_once(ray_session):
    pool = ActorPool(_factory("test/unordered"), 2)
    try:
        out = dict(pool.map_sync(lambda a, b: a.work.remote(b), [[i] for i in range(30)], ordered=False))
        assert out == {i: [2 * i] for i in range(30)}
    finally:
        pool.shutdown()


def test_actors_that_cannot_be_placed_fail_with_a_message(ray_session):
    def make(index: int, generation: int):
        opts = runtime.actor_options("worker", name=pool_actor_name("test/huge", index, generation))
        return Echo.options(**{**opts, "num_cpus": 64}).remote()

    pool = ActorPool(make, 1, ready_timeout=2)
    try:
        with pytest.raises(PoolError, match="not placed within 2s"):
            list(pool.map_sync(lambda a, b: a.work.remote(b), [[1], [2]]))
    finally:
        pool.shutdown()


@ray.remote
class BrokenAtStart:
    """Test actor whose constructor fails."""

    def __init__(self) -> None:
        raise ValueError("cannot open the model file")

    def work(self, batch: list[int]) -> list[int]:
        return batch


def test_actor_constructor_errors_are_reported(ray_session):
    def make(index: int, generation: int):
        name = pool_actor_name("test/broken", index, generation)
        return BrokenAtStart.options(**runtime.actor_options("worker", name=name)).remote()

    pool = ActorPool(make, 1, max_item_retries=1)
    try:
        with pytest.raises(PoolError, match="cannot open the model file"):
            list(pool.map_sync(lambda a, b: a.work.remote(b), [[1]]))
    finally:
        pool.shutdown()
