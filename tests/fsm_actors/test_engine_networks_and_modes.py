"""Push arcs into sub-networks, and what each data mode does to the caller's dict."""

from __future__ import annotations

import pytest

from fsm_actors.engine import DataHandlingMode, compile_machine, fast_copy


def pushing(arc_extra: dict, sub_transform: str, return_state: str | None = "after"):
    arc = {"target": "after", "target_network": "sub", **arc_extra}
    if return_state is not None:
        arc["return_state"] = return_state
    return compile_machine(
        {
            "name": "p",
            "main_network": "main",
            "networks": [
                {
                    "name": "main",
                    "states": [
                        {"name": "start", "is_start": True, "arcs": [arc]},
                        {"name": "after", "is_end": True},
                        {"name": "other", "is_end": True},
                    ],
                },
                {
                    "name": "sub",
                    "states": [
                        {
                            "name": "s0",
                            "is_start": True,
                            "arcs": [{"target": "s1", "transform": sub_transform}],
                        },
                        {"name": "s1", "is_end": True},
                    ],
                },
            ],
        }
    )


def test_push_arc_with_data_and_result_mappings():
    machine = pushing(
        {"data_mapping": {"x": "a"}, "result_mapping": {"b": "y"}},
        "lambda data, ctx: {**data, 'b': data.get('a', -1) * 10}",
    )
    assert machine.run({"x": 3, "z": 1}) == {
        "final_state": "after",
        "data": {"x": 3, "z": 1, "y": 30},
        "path": ["start", "s0", "s1", "after"],
        "success": True,
        "error": None,
        "metadata": {"arc_start_after_usage": 1, "arc_s0_s1_usage": 1},
    }


def test_push_arc_without_mappings_returns_the_sub_result_to_the_arc_target():
    machine = pushing({}, "{**data, 'b': 1}", return_state=None)
    result = machine.run({"x": 3})
    assert result["final_state"] == "after"
    assert result["data"] == {"x": 3, "b": 1}


def test_return_state_overrides_the_arc_target():
    machine = pushing({}, "{**data, 'b': 1}", return_state="other")
    assert machine.run({})["final_state"] == "other"


def test_sub_network_only_sees_mapped_keys():
    machine = pushing({"data_mapping": {"x": "a"}}, "{'keys': sorted(data)}")
    assert machine.run({"x": 1, "secret": 2})["data"] == {"keys": ["a"]}


@pytest.mark.parametrize(("isolation", "leaks"), [("copy", False), ("direct", True)])
def test_data_isolation_of_the_sub_network(isolation, leaks):
    machine = pushing(
        {"data_isolation": isolation, "result_mapping": {"b": "b"}},
        "data['leak'] = True\ndata['b'] = 2",
    )
    result = machine.run({"x": 1}, data_mode="direct")
    assert result["data"]["b"] == 2
    assert ("leak" in result["data"]) is leaks


def test_a_failure_in_the_sub_network_stops_the_record_there():
    machine = pushing({}, "data['missing']")
    result = machine.run({})
    assert result["success"] is False
    assert result["final_state"] == "s0"
    assert result["path"] == ["start", "s0"]
    assert "KeyError: 'missing'" in result["error"]


def test_sub_network_states_are_listed_after_the_main_ones():
    machine = pushing({}, "data")
    assert machine.state_names == ["start", "after", "other", "s0", "s1"]
    assert machine.end_states == ["after", "other"]


# --- data modes ----------------------------------------------------------------------


def mutating_machine(**top):
    def mutate(data):
        data["top"] = "set"
        data["items"].append(2)

    return compile_machine(
        {
            "name": "m",
            "states": [
                {"name": "a", "is_start": True, "transform": "mutate"},
                {"name": "b", "is_end": True},
            ],
            "arcs": [{"from": "a", "to": "b"}],
            **top,
        },
        {"mutate": mutate},
    )


def test_copy_mode_never_mutates_the_callers_dict():
    record = {"items": [1]}
    result = mutating_machine().run(record, data_mode=DataHandlingMode.COPY)
    assert record == {"items": [1]}
    assert result["data"] == {"top": "set", "items": [1, 2]}
    batch = [{"items": [1]}]
    mutating_machine().run_batch(batch)
    assert batch == [{"items": [1]}]


def test_reference_mode_shares_nested_objects_only():
    record = {"items": [1]}
    mutating_machine().run(record, data_mode="reference")
    assert record == {"items": [1, 2]}


def test_direct_mode_works_on_the_callers_dict():
    record = {"items": [1]}
    result = mutating_machine().run(record, data_mode=DataHandlingMode.DIRECT)
    assert result["data"] is record
    assert record == {"top": "set", "items": [1, 2]}


def test_the_configs_data_mode_is_the_default():
    record = {"items": [1]}
    mutating_machine(data_mode="direct").run_batch([record])
    assert record["top"] == "set"
    other = {"items": [1]}
    mutating_machine(data_mode={"default": "direct"}).run(other, data_mode="copy")
    assert other == {"items": [1]}


def test_a_copy_state_rolls_back_on_failure():
    def half(data):
        data["half"] = True
        raise ValueError("second half failed")

    def build(mode):
        state = {"name": "a", "is_start": True, "transform": "half"}
        if mode is not None:
            state["data_mode"] = mode
        return compile_machine(
            {
                "name": "r",
                "states": [state, {"name": "b", "is_end": True}],
                "arcs": [{"from": "a", "to": "b"}],
            },
            {"half": half},
        )

    assert build("copy").run({"x": 1}, data_mode="direct")["data"] == {"x": 1}
    assert build(None).run({"x": 1}, data_mode="direct")["data"] == {"x": 1, "half": True}


def test_state_overrides_in_the_config_data_mode():
    def half(data):
        data["half"] = True
        raise ValueError("no")

    machine = compile_machine(
        {
            "name": "r",
            "data_mode": {"default": "direct", "state_overrides": {"a": "copy"}},
            "states": [
                {"name": "a", "is_start": True, "transform": "half"},
                {"name": "b", "is_end": True},
            ],
            "arcs": [{"from": "a", "to": "b"}],
        },
        {"half": half},
    )
    record = {"x": 1}
    assert machine.run(record)["data"] == {"x": 1}
    assert record == {"x": 1}


def test_fast_copy_is_shallow_for_flat_records_and_deep_otherwise():
    flat = {"a": 1, "b": "s", "c": None, "d": 1.5}
    copied = fast_copy(flat)
    assert copied == flat and copied is not flat
    nested = {"a": {"b": [1]}}
    deep = fast_copy(nested)
    assert (
        deep == nested and deep["a"] is not nested["a"] and deep["a"]["b"] is not nested["a"]["b"]
    )
