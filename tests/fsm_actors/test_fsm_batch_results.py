"""Results that crossed from the actors are the results local mode gives, record for record.

Chunk results travel column-wise (one state and one path when all records ended alike, path
ids otherwise, failures apart); whatever the mix, the driver must rebuild exactly what the
machine returned, each record with its own ``path`` list.
"""

from __future__ import annotations

import pytest

from fsm_actors import SimpleFSM

CONFIG = {
    "name": "mixed",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "small", "functions": {"transform": "tag_small"}},
        {"name": "big", "functions": {"transform": "tag_big"}},
        {"name": "end", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "small", "condition": {"type": "inline", "code": "data['x'] < 5"}},
        {"from": "start", "to": "big"},
        {"from": "small", "to": "end"},
        {"from": "big", "to": "end"},
    ],
}


def tag_small(data):
    if data["x"] == 3:
        raise ValueError(f"record {data['id']} is unlucky")
    return {**data, "size": "small"}


def tag_big(data):
    return {**data, "size": "big", "x2": data["x"] * 2}


FUNCTIONS = {"tag_small": tag_small, "tag_big": tag_big}


def _run(records, local, batch_size):
    fsm = SimpleFSM(CONFIG, custom_functions=FUNCTIONS, local=local, actors=None if local else 2)
    try:
        return fsm.process_batch(records, batch_size=batch_size)
    finally:
        fsm.close()


@pytest.mark.parametrize(
    "records",
    [
        [{"id": i, "x": i % 10} for i in range(200)],  # both paths and failures in each chunk
        [{"id": i, "x": 7} for i in range(200)],  # every record alike
        [{"id": i, "x": 3} for i in range(200)],  # every record failing alike
    ],
    ids=["mixed", "alike", "all-failing"],
)
def test_actor_results_equal_local_results(ray_session, records):
    local = _run(records, local=True, batch_size=64)
    actors = _run(records, local=False, batch_size=64)
    assert len(actors) == len(records)
    keys = ("final_state", "data", "path", "success", "error")
    assert [{k: r[k] for k in keys} for r in actors] == [{k: r[k] for k in keys} for r in local]
    # each record owns its path: changing one changes no other
    actors[0]["path"].append("changed")
    assert all(r["path"][-1] != "changed" for r in actors[1:])
