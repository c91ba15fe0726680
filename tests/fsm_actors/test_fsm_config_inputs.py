"""What a config may be and what it may declare: function specs, resources, bad values.

Issue 10 items 2 and 10; issue 9 items 19 and 28.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from fsm_actors import SimpleFSM, validate_data
from fsm_actors.platform.errors import FSMConfigError


def process_with_db(data):
    return {**data, "seen": True}


def _config(transform, **extra):
    return {
        "name": "seedcfg",
        "states": [
            {"name": "start", "is_start": True, "functions": {"transform": transform},
             **extra},
            {"name": "end", "is_end": True},
        ],
        "arcs": [{"from": "start", "to": "end"}],
    }


def test_custom_function_by_name_comes_from_custom_functions():
    config = _config({"type": "custom", "name": "process_with_db"})
    with SimpleFSM(config, custom_functions={"process_with_db": process_with_db},
                   local=True) as fsm:
        assert fsm.process({"x": 1})["data"] == {"x": 1, "seen": True}


def test_custom_function_with_a_module_is_imported():
    config = _config({"type": "custom", "module": __name__, "name": "process_with_db"})
    with SimpleFSM(config, local=True) as fsm:
        assert fsm.process({"x": 1})["data"]["seen"] is True


def test_unknown_custom_function_says_how_to_pass_it():
    with pytest.raises(FSMConfigError) as info:
        SimpleFSM(_config({"type": "custom", "name": "nope"}), local=True)
    assert "custom_functions" in str(info.value) and "'nope'" in str(info.value)
    assert info.value.key_path == "states[0].functions.transform"


@pytest.mark.parametrize("bad", [[{"name": "start"}], 5, None, b"x.yaml"])
def test_a_config_that_is_not_a_mapping_or_path_says_what_a_config_must_be(bad):
    with pytest.raises(FSMConfigError) as info:
        SimpleFSM(bad, local=True)
    text = str(info.value)
    assert "a config must be a mapping" in text and "PathLike" not in text
    if isinstance(bad, list):
        assert "'states:'" in text


def read_greeting(data, context):
    return {**data, "greeting": context.resources["settings"]["greeting"]}


def _with_resources(declared):
    config = _config("read_greeting", resources=["settings"])
    config["resources"] = declared
    return config


def test_a_configs_own_resources_are_registered_with_credentials_from_env(monkeypatch):
    monkeypatch.setenv("FSM_TEST_GREETING", "hello")
    config = _with_resources(
        [{"name": "settings", "type": "simple", "config": {"data": {"greeting": "${FSM_TEST_GREETING}"}}}]
    )
    with SimpleFSM(config, custom_functions={"read_greeting": read_greeting}, local=True) as fsm:
        assert fsm.get_resources() == ["settings"]
        result = fsm.process({"x": 1})
        assert result["success"], result["error"]
        assert result["data"]["greeting"] == "hello"
        assert fsm.process_batch([{"x": 2}])[0]["data"]["greeting"] == "hello"


def test_an_unset_credential_variable_is_named_at_build(monkeypatch):
    monkeypatch.delenv("FSM_TEST_UNSET", raising=False)
    config = _with_resources(
        [{"name": "settings", "type": "simple", "config": {"data": {"pw": "${FSM_TEST_UNSET}"}}}]
    )
    with pytest.raises(FSMConfigError) as info:
        SimpleFSM(config, custom_functions={"read_greeting": read_greeting}, local=True)
    assert "FSM_TEST_UNSET" in str(info.value) and "not set" in str(info.value)
    assert info.value.key_path == "resources[0].config.data.pw"


def test_a_used_resource_nobody_provides_fails_at_build_without_internal_names():
    config = _with_resources([])
    with pytest.raises(FSMConfigError) as info:
        SimpleFSM(config, custom_functions={"read_greeting": read_greeting}, local=True)
    text = str(info.value)
    assert "'settings'" in text and "resources=" in text
    assert "binder" not in text.lower() and "run_batch" not in text


def test_given_resources_take_precedence_over_declarations():
    config = _with_resources(
        [{"name": "settings", "type": "simple", "config": {"data": {"greeting": "${NOT_READ}"}}}]
    )
    with SimpleFSM(config, custom_functions={"read_greeting": read_greeting}, local=True,
                   resources={"settings": {"data": {"greeting": "given"}}}) as fsm:
        assert fsm.process({})["data"]["greeting"] == "given"


def test_validate_data_takes_custom_functions():
    config = _config({"type": "custom", "name": "process_with_db"},
                     schema={"required": ["x"]})
    out = validate_data(config, [{"x": 1}, {}], custom_functions={"process_with_db": process_with_db})
    assert [r["valid"] for r in out] == [True, False]


def test_direct_mode_changes_the_callers_dict_in_local_mode_only_as_documented():
    def mutate(data):
        data["touched"] = True

    record = {"x": 1}
    with SimpleFSM(_config("mutate"), data_mode="direct", custom_functions={"mutate": mutate},
                   local=True) as fsm:
        result = fsm.process(record)
    assert record["touched"] is True and result["data"] is record
    from fsm_actors.async_simple import AsyncSimpleFSM

    assert "on actors each record is a copy" in AsyncSimpleFSM.__doc__


def test_vectorized_failures_are_named_by_the_function():
    from patterns._files.job import BatchPipeline
    from patterns._records import vectorized

    @vectorized
    def add_tax(table):
        raise RuntimeError("no tax column")

    result = BatchPipeline(transformations=[add_tax]).apply(pa.table({"a": [1]}), "f", 0)
    assert "add_tax" in result.errors[0].reason and "Vectorized" not in result.errors[0].reason
