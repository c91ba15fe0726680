"""The engine's run semantics, one record at a time and in batches."""

from __future__ import annotations

import pickle
from itertools import pairwise

import pytest

from fsm_actors.engine import ExecutionResult, Machine, compile_machine
from fsm_actors.platform.errors import FSMConfigError, FSMError
from tests.fsm_actors.fsm_configs import MINI, double


def chain(*states, arcs=None, custom=None, **top) -> Machine:
    """A machine over ``states`` (dicts; the first is the start, the last the end) with
    arcs between neighbours unless ``arcs`` is given."""
    states = [dict(s) for s in states]
    states[0]["is_start"] = True
    states[-1]["is_end"] = True
    if arcs is None:
        arcs = [{"from": a["name"], "to": b["name"]} for a, b in pairwise(states)]
    return compile_machine({"name": "t", "states": states, "arcs": arcs, **top}, custom)


def test_the_reference_example():
    machine = compile_machine(MINI, {"double": double})
    assert machine.run({"x": 7}) == {
        "final_state": "big",
        "data": {"x": 14},
        "path": ["start", "double", "big"],
        "success": True,
        "error": None,
        "metadata": {"arc_start_double_usage": 1, "arc_double_big_usage": 1},
    }
    small = machine.run({"x": 2})
    assert (small["final_state"], small["data"], small["path"]) == (
        "small",
        {"x": 4},
        ["start", "double", "small"],
    )
    assert machine.validate({"x": 1}) == {"valid": True, "errors": []}


def test_run_batch_keeps_order_and_reports_paths():
    machine = compile_machine(MINI, {"double": double})
    results = machine.run_batch([{"x": i} for i in (1, 6, 2)])
    assert [r["final_state"] for r in results] == ["small", "big", "small"]
    assert [r["data"]["x"] for r in results] == [2, 12, 4]
    assert all(r["path"][0] == "start" and len(r["path"]) == 3 for r in results)
    assert set(results[0]) == {"final_state", "data", "path", "success", "error"}


def test_machine_introspection():
    machine = compile_machine(MINI, {"double": double})
    assert machine.name == "mini"
    assert machine.state_names == ["start", "double", "big", "small"]
    assert machine.start_state == "start"
    assert machine.end_states == ["big", "small"]
    assert machine.get_state("double").name == "double"
    assert machine.get_state("nope") is None
    assert machine.max_transitions == 1000
    assert machine.config.name == "mini"
    assert "mini" in repr(machine)


def test_compiles_from_a_yaml_path(tmp_path):
    path = tmp_path / "fsm.yaml"
    path.write_text(
        "name: y\nstates:\n  - {name: a, is_start: true, transform: \"{**data, 'a': 1}\"}\n"
        "  - {name: b, is_end: true}\narcs:\n  - {from: a, to: b}\n"
    )
    assert compile_machine(path).run({})["data"] == {"a": 1}


def test_priority_higher_first_and_ties_in_declaration_order():
    arcs = [
        {"from": "s", "to": "low", "priority": 0},
        {"from": "s", "to": "tie1", "priority": 5},
        {"from": "s", "to": "tie2", "priority": 5},
    ]
    states = [{"name": n, "is_end": n != "s"} for n in ("s", "low", "tie1", "tie2")]
    machine = chain(*states, arcs=arcs)
    assert machine.run({})["final_state"] == "tie1"
    arcs[1]["condition"] = "data.get('first', False)"
    assert chain(*states, arcs=arcs).run({})["final_state"] == "tie2"
    assert chain(*states, arcs=arcs).run({"first": 1})["final_state"] == "tie1"


def test_a_raising_transform_stops_the_record_and_keeps_its_text():
    def boom(data):
        raise ValueError(f"bad x {data['x']}")

    ran = []
    machine = chain(
        {"name": "a"},
        {"name": "work", "transforms": ["boom", "after"]},
        {"name": "end"},
        custom={"boom": boom, "after": lambda d: ran.append(d) or d},
    )
    result = machine.run({"x": 3})
    assert result["success"] is False
    assert result["final_state"] == "work"
    assert result["path"] == ["a", "work"]
    assert result["error"] == "Transform 'boom' failed in state 'work': ValueError: bad x 3"
    assert result["data"] == {"x": 3}
    assert ran == []
    assert machine.run_batch([{"x": 4}])[0]["error"].endswith("ValueError: bad x 4")


def test_transform_results_none_execution_result_and_wrong_types():
    def mutate(data):
        data["m"] = 1

    machine = chain(
        {"name": "a", "transforms": ["mutate", "wrapped"]},
        {"name": "b"},
        custom={
            "mutate": mutate,
            "wrapped": lambda d: ExecutionResult.success_result({**d, "w": 2}),
        },
    )
    assert machine.run({})["data"] == {"m": 1, "w": 2}
    kept = chain(
        {"name": "a", "transform": "r"},
        {"name": "b"},
        custom={"r": lambda d: ExecutionResult(True)},
    )
    assert kept.run({"k": 1})["data"] == {"k": 1}
    failing = chain(
        {"name": "a", "transform": "r"},
        {"name": "b"},
        custom={"r": lambda d: ExecutionResult.failure_result("no stock")},
    )
    assert failing.run({})["error"] == "Transform 'r' failed in state 'a': no stock"
    wrong = chain({"name": "a", "transform": "r"}, {"name": "b"}, custom={"r": lambda d: True})
    result = wrong.run({})
    assert result["success"] is False and "returned a bool" in result["error"]


@pytest.mark.parametrize(
    ("validator", "reason"),
    [
        (lambda d: False, "it returned False"),
        (lambda d: ExecutionResult.failure_result("x too small"), "x too small"),
        (lambda d: 1 / 0, "ZeroDivisionError: division by zero"),
    ],
)
def test_validators_are_enforced(validator, reason):
    transformed = []
    machine = chain(
        {"name": "a"},
        {"name": "check", "validators": ["v"], "transform": "t"},
        {"name": "end"},
        custom={"v": validator, "t": lambda d: transformed.append(1)},
    )
    result = machine.run({"x": 1})
    assert result["success"] is False and result["final_state"] == "check"
    assert result["error"] == f"Validator 'v' failed in state 'check': {reason}"
    assert transformed == []


def test_passing_validators_and_pre_validators():
    seen = []
    machine = chain(
        {"name": "a", "pre_validators": ["pre"], "validator": "data['x'] > 0"},
        {"name": "b"},
        custom={"pre": lambda d: seen.append("pre") or ExecutionResult.success_result(d)},
    )
    assert machine.run({"x": 1})["success"] is True and seen == ["pre"]
    result = machine.run({"x": 0})
    assert result["error"] == "Validator 'data['x'] > 0' failed in state 'a': it returned False"
    pre = chain({"name": "a", "pre_validators": ["data['ok']"]}, {"name": "b"})
    assert pre.run({"ok": 0})["error"].startswith("Pre-validator 'data['ok']' failed in state 'a'")


def test_state_schema_is_enforced_and_used_by_validate():
    schema = {
        "type": "object",
        "required": ["x", "name"],
        "properties": {"x": {"type": "integer", "minimum": 0}, "name": {"type": "string"}},
    }
    machine = chain({"name": "a", "schema": schema}, {"name": "b"})
    assert machine.run({"x": 1, "name": "n"})["success"] is True
    result = machine.run({"x": "1"})
    assert result["success"] is False and result["final_state"] == "a"
    assert result["error"] == (
        "Schema validation failed in state 'a': missing required field 'name'; "
        "x: expected integer, got str"
    )
    assert machine.validate({"x": -1, "name": "n"}) == {
        "valid": False,
        "errors": ["x: -1 is below the minimum 0"],
    }


def test_max_transitions_is_enforced():
    machine = chain(
        {"name": "a"},
        {"name": "loop"},
        {"name": "end"},
        arcs=[
            {"from": "a", "to": "loop"},
            {"from": "loop", "to": "a", "condition": "data['spin']"},
            {"from": "loop", "to": "end"},
        ],
        max_transitions=5,
    )
    result = machine.run({"spin": True})
    assert result["success"] is False
    assert result["error"] == "Maximum transitions (5) exceeded"
    assert len(result["path"]) == 6
    assert sum(result["metadata"].values()) == 5  # the sixth was refused
    assert machine.run({"spin": False})["success"] is True


def test_non_comparison_inline_conditions_use_truthiness():
    states = [{"name": "s"}, {"name": "yes", "is_end": True}, {"name": "no"}]
    arcs = [
        {"from": "s", "to": "yes", "condition": 'data["ok"]', "priority": 1},
        {"from": "s", "to": "no"},
    ]
    machine = chain(*states, arcs=arcs)
    assert machine.run({"ok": 1})["final_state"] == "yes"
    assert machine.run({"ok": 0})["final_state"] == "no"
    assert machine.run({"ok": []})["final_state"] == "no"


def test_a_raising_condition_fails_with_state_arc_and_text():
    machine = chain(
        {"name": "s"},
        {"name": "e"},
        arcs=[{"from": "s", "to": "e", "condition": "data['missing'] > 1"}],
    )
    result = machine.run({})
    assert result["success"] is False and result["final_state"] == "s"
    assert result["error"] == (
        "Condition 'data['missing'] > 1' of arc 's->e' failed in state 's': KeyError: 'missing'"
    )


def test_no_valid_transition():
    machine = chain(
        {"name": "s"}, {"name": "e"}, arcs=[{"from": "s", "to": "e", "condition": "False"}]
    )
    result = machine.run({})
    assert result == {
        "final_state": "s",
        "data": {},
        "path": ["s"],
        "success": False,
        "error": "No valid transitions from state: s",
        "metadata": {},
    }


def test_arc_transform_and_success_failure_conditions():
    machine = chain(
        {"name": "s", "validator": "True"},
        {"name": "ok", "is_end": True},
        {"name": "bad"},
        arcs=[
            {"from": "s", "to": "ok", "condition": "success", "transform": "{**data, 'via': 'ok'}"},
            {"from": "s", "to": "bad", "condition": "failure"},
        ],
    )
    assert machine.run({})["data"] == {"via": "ok"}
    assert machine.run({"valid": False})["final_state"] == "bad"


def test_a_raising_arc_transform_fails_the_record():
    machine = chain(
        {"name": "s"},
        {"name": "e"},
        arcs=[{"from": "s", "to": "e", "transform": "data['nope']"}],
    )
    result = machine.run({})
    assert result["final_state"] == "s"
    assert result["error"] == (
        "Transform 'data['nope']' of arc 's->e' failed in state 's': KeyError: 'nope'"
    )


def test_context_and_variables():
    def first(data, context):
        context.variables["seen"] = context.state_name
        return {**data, "fn": context.function_name, "net": context.network_name}

    def second(data, ctx):
        return {**data, "seen": ctx.variables["seen"], "meta": ctx.metadata}

    machine = chain(
        {"name": "a", "transform": "first"},
        {"name": "b", "transform": "second"},
        custom={"first": first, "second": second},
    )
    variables = {}
    result = machine.run({}, variables=variables)
    assert result["data"] == {"fn": "first", "net": "main", "seen": "a", "meta": {"state": "b"}}
    assert variables == {"seen": "a"}
    assert machine.run_batch([{}, {}])[1]["data"]["seen"] == "a"


def test_statement_code_transform():
    machine = chain({"name": "a", "transform": "data['y'] = data['x'] + 1"}, {"name": "b"})
    assert machine.run({"x": 1})["data"] == {"x": 1, "y": 2}


def test_run_on_failure_state_receives_failed_records():
    def boom(data):
        raise RuntimeError("down")

    machine = chain(
        {"name": "a", "transform": "boom"},
        {"name": "handle", "run_on_failure": True, "transform": "note"},
        {"name": "done", "is_end": True},
        {"name": "ok"},
        arcs=[
            {"from": "a", "to": "ok", "priority": 1},
            {"from": "a", "to": "handle", "condition": "False"},
            {"from": "handle", "to": "done"},
        ],
        custom={
            "boom": boom,
            "note": lambda d, ctx: {**d, "why": ctx.metadata["error"]},
        },
    )
    result = machine.run({"x": 1})
    assert result["path"] == ["a", "handle", "done"]
    assert result["final_state"] == "done"
    assert result["success"] is False
    assert result["error"] == "Transform 'boom' failed in state 'a': RuntimeError: down"
    assert result["data"] == {"x": 1, "why": result["error"]}


def test_emits_only_end_states_with_emit_output():
    machine = chain(
        {"name": "a"},
        {"name": "kept", "is_end": True},
        {"name": "dropped", "emit_output": False},
        arcs=[{"from": "a", "to": "kept"}],
    )
    assert machine.emits("kept") is True
    assert machine.emits("dropped") is False
    assert machine.emits("a") is False
    assert machine.emits(None) is False


def test_initial_state():
    machine = compile_machine(MINI, {"double": double})
    result = machine.run({"x": 6}, initial_state="double")
    assert result["path"] == ["double", "big"]
    with pytest.raises(FSMError) as info:
        machine.run({}, initial_state="nope")
    assert "known states: start, double, big, small" in str(info.value)


def test_bad_records_do_not_stop_a_batch():
    machine = compile_machine(MINI, {"double": double})
    results = machine.run_batch([{"x": 6}, None, {"y": 1}, {"x": 1}])
    assert [r["success"] for r in results] == [True, False, False, True]
    assert results[1]["error"] == "a record must be a dict, not NoneType"
    assert results[2]["error"] == "Transform 'double' failed in state 'double': KeyError: 'x'"
    assert machine.run([1])["error"] == "a record must be a dict, not list"


def test_compile_errors_carry_key_paths():
    with pytest.raises(FSMConfigError) as info:
        compile_machine(MINI)
    assert info.value.key_path == "states[1].functions.transform"
    assert "unknown function 'double'" in str(info.value)
    bad_code = {
        **MINI,
        "arcs": [*MINI["arcs"][:2], {"from": "double", "to": "small", "condition": "data[)"}],
    }
    with pytest.raises(FSMConfigError) as info:
        compile_machine(bad_code, {"double": double})
    assert info.value.key_path == "arcs[2].condition"
    assert "syntax error" in str(info.value) and "data[)" in str(info.value)


def test_unsupported_schema_keyword_is_a_compile_error():
    with pytest.raises(FSMConfigError) as info:
        chain({"name": "a", "schema": {"oneOf": []}}, {"name": "b"})
    assert info.value.key_path == "states[0].schema.oneOf"


def test_machine_pickles_by_recompiling():
    machine = compile_machine(MINI, {"double": double})
    restored = pickle.loads(pickle.dumps(machine))
    assert restored.run({"x": 7})["data"] == {"x": 14}
    assert restored.state_names == machine.state_names
