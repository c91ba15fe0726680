"""Configs and functions written for dataknobs-fsm 0.5.0 run here unchanged (issue 20).

Each test runs the same config locally and on FSM actors where a run is involved.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from fsm_actors import SimpleFSM
from fsm_actors.cli.main import cli
from fsm_actors.config import load_config
from fsm_actors.engine import DataHandlingMode, compile_machine
from fsm_actors.platform.errors import FSMConfigError


@pytest.fixture(params=["local", "actors"])
def mode(request):
    if request.param == "actors":
        request.getfixturevalue("ray_session")
    return request.param


def run_both(mode: str, config, records, custom=None):
    kwargs = {"local": True} if mode == "local" else {"actors": 1}
    with SimpleFSM(config, custom_functions=custom, **kwargs) as fsm:
        return [fsm.process(r) for r in records], fsm.process_batch(records)


def inline(code: str) -> dict:
    return {"type": "inline", "code": code}


NETWORK_FORM = {
    "name": "netarcs",
    "main_network": "main",
    "networks": [
        {
            "name": "main",
            "states": [
                {"name": "a", "is_start": True},
                {"name": "big", "is_end": True},
                {"name": "small", "is_end": True},
            ],
            "arcs": [
                {"from": "a", "to": "small", "condition": inline("lambda data: True")},
                {
                    "from": "a",
                    "to": "big",
                    "priority": 5,
                    "condition": inline("lambda state: state.data['x'] > 10"),
                    "transform": inline("lambda state: {**state.data, 'tag': 'big'}"),
                },
            ],
        }
    ],
}


# -- 1. network-level arcs -----------------------------------------------------------------
def test_network_level_arcs_with_conditions_priorities_and_transforms(mode):
    one, batch = run_both(mode, NETWORK_FORM, [{"x": 20}, {"x": 3}])
    for results in (one, batch):
        assert [r["final_state"] for r in results] == ["big", "small"]
        assert [r["data"] for r in results] == [{"x": 20, "tag": "big"}, {"x": 3}]
        assert [r["path"] for r in results] == [["a", "big"], ["a", "small"]]


def test_network_arcs_join_arcs_declared_under_states():
    config = json.loads(json.dumps(NETWORK_FORM))
    config["networks"][0]["states"][0]["arcs"] = [{"target": "big", "condition": "data['x'] < 0"}]
    machine = compile_machine(config)
    assert machine.run({"x": -1})["final_state"] == "big"
    assert machine.run({"x": 50})["data"] == {"x": 50, "tag": "big"}


def test_a_network_arc_from_an_unknown_state_names_its_key_path():
    config = json.loads(json.dumps(NETWORK_FORM))
    config["networks"][0]["arcs"][1]["from"] = "nope"
    with pytest.raises(FSMConfigError) as caught:
        load_config(config)
    assert caught.value.key_path == "networks[0].arcs[1].from"
    assert "known states: a, big, small" in str(caught.value)


def test_cli_validate_and_the_config_schema_accept_network_arcs(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(NETWORK_FORM))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    printed = CliRunner().invoke(cli, ["schema", "--kind", "fsm"])
    assert printed.exit_code == 0, printed.output
    jsonschema.validate(NETWORK_FORM, json.loads(printed.output))


# -- 2. state-object functions -------------------------------------------------------------
def is_positive(state):
    return state.data["x"] > 0


def add_flag(state):
    state.data["flag"] = True  # changed in place, nothing returned


def test_functions_written_for_a_state_object(mode):
    config = {
        "name": "stateobj",
        "states": [
            {"name": "a", "is_start": True, "transforms": ["add_flag"]},
            {"name": "pos", "is_end": True},
            {"name": "neg", "is_end": True},
        ],
        "arcs": [
            {"from": "a", "to": "pos", "condition": "is_positive", "priority": 1},
            {"from": "a", "to": "neg", "condition": "lambda state: state['x'] <= 0"},
        ],
    }
    one, batch = run_both(
        mode, config, [{"x": 1}, {"x": -1}], {"is_positive": is_positive, "add_flag": add_flag}
    )
    for results in (one, batch):
        assert [r["final_state"] for r in results] == ["pos", "neg"], results
        assert [r["data"] for r in results] == [{"x": 1, "flag": True}, {"x": -1, "flag": True}]


def test_plain_data_functions_still_get_the_dict_itself():
    seen = []
    machine = compile_machine(
        {
            "name": "plain",
            "states": [
                {"name": "a", "is_start": True, "transform": "probe"},
                {"name": "b", "is_end": True},
            ],
            "arcs": [{"from": "a", "to": "b"}],
        },
        {"probe": lambda data: seen.append(type(data))},
    )
    machine.run({"x": 1})
    assert seen == [dict]


class Rules:
    def over(self, state):
        return state.data["x"] > 5


def test_a_bound_method_written_for_a_state_object():
    machine = compile_machine(
        {
            "name": "method",
            "states": [{"name": "a", "is_start": True}, {"name": "big", "is_end": True},
                       {"name": "other", "is_end": True}],
            "arcs": [{"from": "a", "to": "big", "condition": "over", "priority": 1},
                     {"from": "a", "to": "other"}],
        },
        {"over": Rules().over},
    )
    assert [machine.run({"x": x})["final_state"] for x in (9, 1)] == ["big", "other"]


# -- 3. inline code defining a function ------------------------------------------------------
DEFINES = "def transform(data, context):\n    data['y'] = 1\n    return data"


def test_inline_code_that_defines_one_function_is_that_function(mode):
    config = {
        "name": "defs",
        "states": [
            {"name": "a", "is_start": True, "transform": inline(DEFINES)},
            {"name": "b", "is_end": True},
        ],
        "arcs": [{"from": "a", "to": "b", "transform": inline("def f(d):\n    return {**d, 'z': 2}")}],
    }
    one, batch = run_both(mode, config, [{"x": 1}])
    for results in (one, batch):
        assert results[0]["data"] == {"x": 1, "y": 1, "z": 2}
        assert results[0]["success"] is True


@pytest.mark.parametrize(
    ("code", "said"),
    [("x = 1", "neither defines a function"), ("def a(d): pass\ndef b(d): pass", "2 functions")],
)
def test_inline_code_that_would_do_nothing_fails_at_load(code, said):
    config = {
        "name": "noop",
        "states": [
            {"name": "a", "is_start": True, "transform": code},
            {"name": "b", "is_end": True},
        ],
        "arcs": [{"from": "a", "to": "b"}],
    }
    with pytest.raises(FSMConfigError) as caught:
        SimpleFSM(config, local=True)
    assert said in str(caught.value)
    assert caught.value.key_path == "states[0].transform"


# -- 5. target_network "net:state" -----------------------------------------------------------
def test_push_into_a_named_state_of_a_sub_network(mode):
    config = {
        "name": "entry",
        "main_network": "main",
        "networks": [
            {
                "name": "main",
                "states": [
                    {
                        "name": "start",
                        "is_start": True,
                        "arcs": [{"target": "done", "target_network": "sub:second"}],
                    },
                    {"name": "done", "is_end": True},
                ],
            },
            {
                "name": "sub",
                "states": [
                    {"name": "first", "is_start": True, "transform": "data['via'] = 'first'",
                     "arcs": [{"target": "second"}]},
                    {"name": "second", "transform": "data['at'] = 'second'",
                     "arcs": [{"target": "out"}]},
                    {"name": "out", "is_end": True},
                ],
            },
        ],
    }
    one, batch = run_both(mode, config, [{"x": 1}])
    for results in (one, batch):
        assert results[0]["success"] is True, results[0]
        assert results[0]["data"] == {"x": 1, "at": "second"}
        assert results[0]["path"] == ["start", "second", "out", "done"]


def test_a_target_state_that_is_not_in_the_sub_network_is_named():
    config = {
        "name": "entry",
        "main_network": "main",
        "networks": [
            {"name": "main", "states": [
                {"name": "s", "is_start": True,
                 "arcs": [{"target": "e", "target_network": "sub:nope"}]},
                {"name": "e", "is_end": True}]},
            {"name": "sub", "states": [{"name": "only", "is_start": True, "is_end": True}]},
        ],
    }
    with pytest.raises(FSMConfigError) as caught:
        load_config(config)
    assert "'nope' is not a state of network 'sub'" in str(caught.value)
    assert caught.value.key_path == "networks[0].states[0].arcs[0].target_network"


# -- 8. data_mode property and the legacy pre_test key ---------------------------------------
def test_data_mode_reports_the_mode_in_use():
    config = {"name": "m", "data_mode": "reference",
              "states": [{"name": "a", "is_start": True, "is_end": True}]}
    with SimpleFSM(config, local=True) as fsm:
        assert fsm.data_mode is DataHandlingMode.REFERENCE
    with SimpleFSM(config, data_mode="direct", local=True) as fsm:
        assert fsm.data_mode is DataHandlingMode.DIRECT


@pytest.mark.parametrize("pre_test", ["data['x'] > 0", {"test": "data['x'] > 0"}])
def test_the_legacy_pre_test_key_is_the_arc_condition(pre_test):
    config = {
        "name": "legacy",
        "states": [
            {"name": "a", "is_start": True},
            {"name": "pos", "is_end": True},
            {"name": "other", "is_end": True},
        ],
        "arcs": [
            {"from": "a", "to": "pos", "pre_test": pre_test, "priority": 1},
            {"from": "a", "to": "other"},
        ],
    }
    machine = compile_machine(config)
    assert machine.run({"x": 1})["final_state"] == "pos"
    assert machine.run({"x": -1})["final_state"] == "other"


def test_pre_test_beside_condition_is_refused():
    config = {
        "name": "legacy",
        "states": [{"name": "a", "is_start": True}, {"name": "b", "is_end": True}],
        "arcs": [{"from": "a", "to": "b", "pre_test": "True", "condition": "True"}],
    }
    with pytest.raises(FSMConfigError) as caught:
        load_config(config)
    assert caught.value.key_path == "arcs[0].pre_test"


# -- 9. malformed schemas fail at load -------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "object", "properties": {"x": {"type": "strang"}}}, "schema.properties.x.type"),
        ({"type": "object", "required": "x"}, "schema.required"),
    ],
)
def test_a_malformed_state_schema_fails_when_the_config_loads(tmp_path, schema, where):
    config = {
        "name": "bad_schema",
        "states": [
            {"name": "a", "is_start": True, "schema": schema},
            {"name": "b", "is_end": True},
        ],
        "arcs": [{"from": "a", "to": "b"}],
    }
    with pytest.raises(FSMConfigError) as caught:
        load_config(config)
    assert caught.value.key_path == f"states[0].{where}"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert where in result.output and "Traceback" not in result.output


def test_a_malformed_file_processing_validation_schema_fails_at_construction(tmp_path):
    from patterns.file_processing import FileProcessingConfig

    with pytest.raises(FSMConfigError) as caught:
        FileProcessingConfig(
            input_path=str(tmp_path / "in.csv"),
            validation_schema={"type": "object", "properties": {"a": {"type": "strang"}}},
        )
    assert caught.value.key_path == "validation_schema.properties.a.type"
