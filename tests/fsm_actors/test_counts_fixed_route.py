"""Per-state counts of a machine whose successful records all take one route
(``Machine.success_path``) look only at the failed records, and stay equal to the counts
computed from every record's path (issue 25: counting overhead under 5%)."""

from __future__ import annotations

from collections import Counter

from fsm_actors import SimpleFSM
from fsm_actors.engine import compile_machine
from fsm_actors.engine.counts import StateCounts

ROUTED = {
    "name": "routed",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "work", "functions": {"transform": "work"}},
        {"name": "handle", "run_on_failure": True, "functions": {"transform": "note"}},
        {"name": "parked", "is_end": True, "emit_output": False},
        {"name": "done", "is_end": True},
    ],
    "arcs": [
        {"from": "start", "to": "work"},
        {"from": "work", "to": "done", "priority": 1},
        {"from": "work", "to": "handle", "condition": "False"},
        {"from": "handle", "to": "parked"},
    ],
}


def work(data):
    if data["x"] % 10 == 3:
        raise ValueError(f"bad {data['x']}")
    return {**data, "y": data["x"] * 2}


def note(data):
    return {**data, "noted": True}


FUNCTIONS = {"work": work, "note": note}


def from_paths(results):
    entered, ended, arcs = Counter(), Counter(), Counter()
    for r in results:
        path = r["path"]
        entered.update(path)
        if path:
            ended[path[-1]] += 1
        arcs.update(f"{a}->{b}" for a, b in zip(path, path[1:], strict=False))
    return entered, ended, arcs


def test_success_path_is_the_fixed_route_or_none():
    assert compile_machine(ROUTED, FUNCTIONS).success_path == ("start", "work", "done")
    branching = {**ROUTED, "arcs": [{"from": "start", "to": "work", "condition": "True"},
                                    *ROUTED["arcs"][1:]]}
    assert compile_machine(branching, FUNCTIONS).success_path is None
    looping = {"name": "loop", "states": [{"name": "a", "is_start": True}, {"name": "b"},
                                          {"name": "end", "is_end": True}],
               "arcs": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}
    assert compile_machine(looping, {}).success_path is None


def test_counts_from_failures_only_equal_counts_from_every_path():
    machine = compile_machine(ROUTED, FUNCTIONS)
    records = [{"x": i} for i in range(1_000)] + ["not a dict"]
    results = machine.run_batch(records)
    failed = sum(not r["success"] for r in results)
    assert failed == 101
    fast = StateCounts().add_results(results, failed, machine.success_path).to_dict()
    general = StateCounts().add_results(results).to_dict()
    assert fast == general
    entered, ended, arcs = from_paths(results)
    for name, row in fast["states"].items():
        assert (row["entered"], row["ended"]) == (entered[name], ended[name]), name
    assert fast["arcs"] == dict(arcs)
    assert fast["states"]["work"]["failed"] == 100
    assert fast["states"]["work"]["errors"] == {"ValueError": 100}
    assert fast["states"]["parked"]["entered"] == 100


def test_process_batch_counts_a_fixed_route_machine_exactly():
    records = [{"x": i} for i in range(5_000)]
    with SimpleFSM(ROUTED, custom_functions=FUNCTIONS, local=True) as fsm:
        out = fsm.process_batch(records, batch_size=700)
    entered, ended, arcs = from_paths(out)
    assert {n: r["entered"] for n, r in out.stats["states"].items()} == {
        n: entered[n] for n in ("start", "work", "handle", "parked", "done")}
    assert {n: r["ended"] for n, r in out.stats["states"].items()} == {
        n: ended[n] for n in ("start", "work", "handle", "parked", "done")}
    assert out.stats["arcs"] == dict(arcs)
    assert out.stats["states"]["work"]["failed"] == 500
