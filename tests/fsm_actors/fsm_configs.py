"""FSM configs and functions shared by the SimpleFSM tests (importable by Ray workers)."""

from __future__ import annotations

import time

#: dataknobs-fsm's reference example in the functions form: x doubled, then ``big`` (x >= 10)
#: or ``small``.
MINI = {
    "name": "mini",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "double", "functions": {"transform": "double"}},
        {"name": "big", "is_end": True},
        {"name": "small", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "double"},
        {"from": "double", "to": "big", "condition": "data['x'] >= 10", "priority": 1},
        {"from": "double", "to": "small"},
    ],
}

#: ``MINI`` in the short form (``transforms``), named ``router``.
ROUTER = {
    "name": "router",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "double", "transforms": ["double"]},
        {"name": "big", "is_end": True},
        {"name": "small", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "double"},
        {"from": "double", "to": "big", "condition": "data['x'] >= 10", "priority": 1},
        {"from": "double", "to": "small"},
    ],
}


def double(data):
    return {**data, "x": data["x"] * 2}


def fragile(data):
    if data["x"] % 7 == 3:
        raise ValueError(f"x={data['x']} is unlucky")
    return {**data, "x": data["x"] * 2}


def slow_double(data):
    time.sleep(0.002)
    return {**data, "x": data["x"] * 2}
