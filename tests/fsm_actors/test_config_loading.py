"""Loading FSM configs: both forms, from dicts and files, and every load-time error."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import yaml

from fsm_actors.config import (
    DataHandlingMode,
    FSMConfig,
    FunctionSpec,
    config_json_schema,
    load_config,
)
from fsm_actors.platform.errors import FSMConfigError
from tests.fsm_actors.fsm_configs import MINI

CANONICAL = {
    "name": "canon",
    "main_network": "main",
    "networks": [
        {
            "name": "main",
            "resources": ["db"],
            "states": [
                {"name": "a", "is_start": True, "arcs": [{"target": "b", "priority": 2}]},
                {"name": "b", "is_end": True, "schema": {"type": "object"}},
            ],
        },
        {
            "name": "sub",
            "states": [{"name": "s", "is_start": True, "is_end": True}],
        },
    ],
}


def error_of(raw, **kwargs) -> FSMConfigError:
    with pytest.raises(FSMConfigError) as info:
        load_config(raw, **kwargs)
    return info.value


def mutated(base: dict, change) -> dict:
    raw = copy.deepcopy(base)
    change(raw)
    return raw


#: the reference machine with its last arc named
SIMPLE = mutated(MINI, lambda r: r["arcs"][2].update(name="fallback"))


def test_simple_form_becomes_one_network_named_main_with_arcs_under_their_states():
    config = load_config(SIMPLE)
    assert config.main_network == "main"
    assert config.states is None and config.arcs is None
    (network,) = config.networks
    assert [s.name for s in network.states] == ["start", "double", "big", "small"]
    double = network.states[1]
    assert [(a.target, a.priority, a.name) for a in double.arcs] == [
        ("big", 1, None),
        ("small", 0, "fallback"),
    ]
    assert double.function_refs("transform") == [("states[1].functions.transform", "double")]


def test_canonical_form_keeps_networks_and_the_schema_alias():
    config = load_config(CANONICAL)
    assert [n.name for n in config.networks] == ["main", "sub"]
    assert config.network("main").resources == ["db"]
    assert config.network("main").states[1].data_schema == {"type": "object"}
    assert config.network("nope") is None
    dumped = config.model_dump(by_alias=True, exclude_none=True)
    assert dumped["networks"][0]["states"][1]["schema"] == {"type": "object"}
    assert load_config(dumped).model_dump() == config.model_dump()


def test_data_schema_is_accepted_as_the_field_name_too():
    raw = mutated(SIMPLE, lambda r: r["states"][2].update(data_schema={"required": ["x"]}))
    assert load_config(raw).networks[0].states[2].data_schema == {"required": ["x"]}


def test_defaults_of_top_level_keys():
    config = load_config(SIMPLE)
    assert config.max_transitions == 1000
    assert config.version == "1.0.0"
    assert config.default_data_mode is DataHandlingMode.COPY
    assert config.source is None


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file(tmp_path, suffix):
    path = tmp_path / f"fsm{suffix}"
    path.write_text(yaml.safe_dump(SIMPLE))
    config = load_config(path)
    assert config.source == str(path)
    assert config.networks[0].states[0].is_start
    assert load_config(str(path)).model_dump() == config.model_dump()


def test_json_file_in_canonical_form(tmp_path):
    path = tmp_path / "fsm.json"
    path.write_text(json.dumps(CANONICAL))
    assert [n.name for n in load_config(path).networks] == ["main", "sub"]


def test_state_and_function_keys_of_every_documented_shape():
    raw = {
        "name": "shapes",
        "version": "2",
        "description": "d",
        "data_mode": {"default": "reference", "state_overrides": {"a": "copy"}},
        "resources": [{"name": "db", "type": "database", "config": {"path": "x.db"}}],
        "execution_strategy": "breadth_first",
        "max_transitions": 5,
        "timeout_seconds": 3,
        "metadata": {"k": 1},
        "states": [
            {
                "name": "a",
                "is_start": True,
                "pre_validators": ["data['x'] > 0"],
                "validators": [{"type": "inline", "code": "True"}],
                "validator": "data is not None",
                "transforms": ["f", {"type": "registered", "name": "f", "params": {"k": 1}}],
                "transform": {"module": "copy", "name": "copy"},
                "functions": {"transform": "f", "validate": "True", "pre_validate": ["True"]},
                "resources": ["db"],
                "data_mode": "direct",
                "emit_output": False,
                "run_on_failure": True,
                "metadata": {"m": 2},
            },
            {"name": "b", "is_end": True},
        ],
        "arcs": [
            {
                "from": "a",
                "to": "b",
                "condition": "success",
                "transform": ["f"],
                "priority": 3,
                "name": "go",
                "metadata": {"x": 1},
                "resources": {"conn": "db"},
            }
        ],
    }
    config = load_config(raw)
    state = config.networks[0].states[0]
    assert config.default_data_mode is DataHandlingMode.REFERENCE
    assert config.resources[0].connection_pool_size == 10
    assert [path for path, _ in state.function_refs("validate")] == [
        "states[0].validators[0]",
        "states[0].validator",
        "states[0].functions.validate",
    ]
    assert [path for path, _ in state.function_refs("pre_validate")] == [
        "states[0].pre_validators[0]",
        "states[0].functions.pre_validate[0]",
    ]
    refs = state.function_refs("transform")
    assert [path for path, _ in refs] == [
        "states[0].transforms[0]",
        "states[0].transforms[1]",
        "states[0].transform",
        "states[0].functions.transform",
    ]
    assert refs[2][1] == FunctionSpec(type="custom", module="copy", name="copy")
    assert state.arcs[0].resources == {"conn": "db"}


@pytest.mark.parametrize(
    ("change", "key_path", "fragment"),
    [
        (lambda r: r.update(nmae="x"), "nmae", "did you mean 'name'?"),
        (lambda r: r["states"][1].update(tranform="x"), "states[1].tranform", "'transform'"),
        (
            lambda r: r["states"][1]["functions"].update(transfrom="x"),
            "states[1].functions.transfrom",
            "allowed keys here: pre_validate, transform, validate, validator",
        ),
        (lambda r: r["arcs"][0].update(target="x"), "arcs[0].target", "allowed keys here"),
        (
            lambda r: r["states"][1].update(transform={"type": "inline", "cod": "1"}),
            "states[1].transform.cod",
            "did you mean 'code'?",
        ),
    ],
)
def test_unknown_keys_name_their_path_and_the_allowed_keys(change, key_path, fragment):
    error = error_of(mutated(SIMPLE, change))
    assert error.key_path == key_path
    assert str(error).startswith(f"{key_path}: unknown key")
    assert fragment in str(error)


def test_unknown_key_inside_a_canonical_arc():
    raw = mutated(CANONICAL, lambda r: r["networks"][0]["states"][0]["arcs"][0].update(to="b"))
    error = error_of(raw)
    assert error.key_path == "networks[0].states[0].arcs[0].to"
    assert "target_network" in str(error)


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(mutated(SIMPLE, lambda r: r["states"][2].update(is_ned=True))))
    error = error_of(path)
    assert error.source == str(path)
    assert str(error).startswith(f"{path}: states[2].is_ned: unknown key 'is_ned'")
    assert "did you mean 'is_end'?" in str(error)


def test_no_start_state():
    error = error_of(mutated(SIMPLE, lambda r: r["states"][0].update(is_start=False)))
    assert error.key_path == "states"
    assert "no start state" in str(error) and "is_start: true" in str(error)


def test_more_than_one_start_state():
    error = error_of(mutated(SIMPLE, lambda r: r["states"][2].update(is_start=True)))
    assert "2 start states (start, big)" in str(error)


def test_several_networks_need_main_network():
    error = error_of(mutated(CANONICAL, lambda r: r.pop("main_network")))
    assert error.key_path == "main_network"
    assert "several networks (main, sub)" in str(error)


def test_a_single_network_is_main_without_saying_so():
    raw = mutated(CANONICAL, lambda r: (r.pop("main_network"), r["networks"].pop()))
    assert load_config(raw).main_network == "main"


def test_unknown_main_network():
    error = error_of(mutated(CANONICAL, lambda r: r.update(main_network="mian")))
    assert error.key_path == "main_network"
    assert "known networks: main, sub" in str(error)


def test_arc_to_an_unknown_state_lists_the_known_states():
    error = error_of(mutated(SIMPLE, lambda r: r["arcs"][1].update(to="bigg")))
    assert error.key_path == "arcs[1].to"
    assert "'bigg'" in str(error) and "known states: start, double, big, small" in str(error)


def test_canonical_arc_to_an_unknown_state():
    raw = mutated(CANONICAL, lambda r: r["networks"][0]["states"][0]["arcs"][0].update(target="z"))
    error = error_of(raw)
    assert error.key_path == "networks[0].states[0].arcs[0].target"
    assert "known states: a, b" in str(error)


def test_arc_from_an_unknown_state():
    error = error_of(mutated(SIMPLE, lambda r: r["arcs"][0].update({"from": "strat"})))
    assert error.key_path == "arcs[0].from"
    assert "known states: start, double, big, small" in str(error)


def test_push_arc_to_an_unknown_network_or_return_state():
    def arc(r):
        return r["networks"][0]["states"][0]["arcs"][0]

    error = error_of(mutated(CANONICAL, lambda r: arc(r).update(target_network="nope")))
    assert error.key_path == "networks[0].states[0].arcs[0].target_network"
    error = error_of(
        mutated(CANONICAL, lambda r: arc(r).update(target_network="sub", return_state="zz"))
    )
    assert error.key_path == "networks[0].states[0].arcs[0].return_state"


def test_duplicate_state_names():
    error = error_of(mutated(SIMPLE, lambda r: r["states"].append({"name": "big"})))
    assert error.key_path == "states[4].name"
    assert "duplicate state name 'big' (first declared at states[2])" in str(error)


def test_duplicate_network_names():
    error = error_of(mutated(CANONICAL, lambda r: r["networks"][1].update(name="main")))
    assert error.key_path == "networks[1].name"


def test_network_without_an_end_state():
    error = error_of(mutated(SIMPLE, lambda r: [s.update(is_end=False) for s in r["states"]]))
    assert "no end state" in str(error)


def test_both_forms_at_once_and_arcs_without_states():
    assert error_of({**CANONICAL, "states": SIMPLE["states"]}).key_path == "networks"
    assert error_of({"name": "x", "arcs": SIMPLE["arcs"]}).key_path == "arcs"
    assert "no states" in str(error_of({"name": "x"}))


def test_wrong_types_name_the_path_and_the_value():
    error = error_of(mutated(SIMPLE, lambda r: r["arcs"][1].update(priority="high")))
    assert error.key_path == "arcs[1].priority"
    assert "valid integer" in str(error) and "'high'" in str(error)
    error = error_of(mutated(SIMPLE, lambda r: r["states"][1].update(transform=5)))
    assert error.key_path == "states[1].transform"
    assert "(got 5)" in str(error)


def test_function_mapping_missing_what_its_type_needs():
    raw = mutated(
        SIMPLE, lambda r: r["states"][1].update(transform={"type": "custom", "module": "m"})
    )
    error = error_of(raw)
    assert error.key_path == "states[1].transform"
    assert "needs name" in str(error)
    assert "valid string" not in str(error)  # the union's type mismatches are hidden


def test_missing_required_key_and_several_errors_at_once():
    error = error_of(mutated(SIMPLE, lambda r: r["arcs"][0].pop("to")))
    assert error.key_path == "arcs[0].to"
    assert "missing required key" in str(error)
    error = error_of(mutated(SIMPLE, lambda r: (r.pop("name"), r.update(max_transitions=0))))
    assert "2 invalid values" in str(error)
    assert "name: missing required key" in str(error)
    assert "max_transitions: Input should be greater than or equal to 1" in str(error)


def test_unknown_data_mode_override_state():
    raw = mutated(SIMPLE, lambda r: r.update(data_mode={"state_overrides": {"nope": "copy"}}))
    assert error_of(raw).key_path == "data_mode.state_overrides.nope"


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("bad.txt", "name: x", "unsupported config file type '.txt'"),
        ("bad.yaml", "name: [unclosed", "cannot parse the config"),
        ("bad.json", "{nope", "cannot parse the config"),
        ("list.yaml", "- 1\n- 2", "must be a mapping at the top level, not list"),
    ],
)
def test_unreadable_files(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    error = error_of(path)
    assert fragment in str(error) and str(path) in str(error)


def test_missing_file():
    assert "cannot read the config" in str(error_of("/nonexistent/fsm.yaml"))


def test_fsm_config_is_returned_as_is():
    config = load_config(SIMPLE)
    assert load_config(config) is config


def test_json_schema_describes_both_forms():
    schema = FSMConfig.json_schema()
    assert schema == config_json_schema()
    assert {"name", "states", "arcs", "networks", "main_network"} <= set(schema["properties"])
    state = schema["$defs"]["StateConfig"]["properties"]
    assert "schema" in state and "data_schema" not in state
    assert "from" in schema["$defs"]["SimpleArcConfig"]["properties"]
    json.dumps(schema)


def test_config_error_pickles_with_its_context():
    error = error_of(mutated(SIMPLE, lambda r: r["arcs"][1].update(to="bigg")))
    copy_ = pickle.loads(pickle.dumps(error))
    assert type(copy_) is FSMConfigError
    assert str(copy_) == str(error)
    assert copy_.key_path == "arcs[1].to"


def test_a_problem_inside_a_union_value_is_reported_where_it_is():
    raw = mutated(SIMPLE, lambda r: r.update(data_mode={"default": "cpy"}))
    error = error_of(raw)
    assert error.key_path == "data_mode.default"
    assert "invalid values" not in str(error) and "(got 'cpy')" in str(error)
    raw = mutated(SIMPLE, lambda r: r["states"][1].update(transforms=[{"code": 5}]))
    assert error_of(raw).key_path == "states[1].transforms[0].code"
