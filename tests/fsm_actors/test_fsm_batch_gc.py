"""After a batch, the garbage collector is on and does not owe a pass over the batch's results.

``process_batch`` holds the cyclic GC while records move in bulk. Re-enabling it used to leave
every result object in the young generation, so the caller's next allocation paid a
collection over all of them (tens of ms for 100k records, on every batch).
"""

from __future__ import annotations

import gc
import weakref

import pytest

from fsm_actors import SimpleFSM
from fsm_actors.platform.gc_pause import gc_paused

CONFIG = {
    "name": "gc3",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "double", "functions": {"transform": "double"}},
        {"name": "end", "is_end": True},
    ],
    "arcs": [{"from": "start", "to": "double"}, {"from": "double", "to": "end"}],
}


def double(data):
    return {**data, "y": data["x"] * 2}


@pytest.fixture
def gc_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def _young_ids() -> set[int]:
    return {id(o) for gen in (0, 1) for o in gc.get_objects(generation=gen)}


def test_batch_results_are_not_left_in_the_young_generations(gc_on):
    fsm = SimpleFSM(CONFIG, custom_functions={"double": double}, local=True)
    try:
        out = fsm.process_batch([{"x": i % 7} for i in range(20_000)])
        young = _young_ids()
    finally:
        fsm.close()
    assert gc.isenabled()
    assert len(out) == 20_000 and out[-1]["data"]["y"] == 2 * (19_999 % 7)
    # the results were made with the collector held: they wait in the oldest generation for a
    # full collection instead of making the young ones' next passes walk all of them
    left = [r for r in out if id(r) in young or id(r["path"]) in young]
    assert not left, f"{len(left)} of {len(out)} results are still in the young generations"


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_cycles_made_while_paused_are_still_collected(gc_on):
    with gc_paused():
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        del a, b
    assert ref() is not None  # only a cycle keeps it; nothing collected it while paused
    gc.collect()
    assert ref() is None


def test_objects_the_process_froze_stay_frozen(gc_on):
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            rows = [{"i": i} for i in range(5_000)]
        assert gc.isenabled() and len(rows) == 5_000
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
