"""Resource behaviour that code written for dataknobs-fsm 0.5.0 relies on (issue 20)."""

from __future__ import annotations

import pytest

from fsm_actors import SimpleFSM
from resource_actors.database import DatabaseResourceAdapter
from resource_actors.errors import ResourceError
from resource_actors.filesystem import FileSystemResource


@pytest.fixture(params=["local", "actors"])
def mode(request):
    if request.param == "actors":
        request.getfixturevalue("ray_session")
    return request.param


def see(data, context):
    """What the innermost state holds, and that each resource is a live database."""
    held = sorted(context.resources)
    answers = [context.resources[n].query("SELECT 1 AS one")[0]["one"] for n in held]
    return {**data, "held": held, "answers": answers}


def level(name: str, resource: str, push_to: str | None) -> dict:
    work = {"name": "work", "resources": [resource]}
    if push_to is None:
        work["transform"] = "see"
        work["arcs"] = [{"target": "done"}]
    else:
        work["arcs"] = [{"target": "done", "target_network": push_to}]
    return {
        "name": name,
        "states": [
            {"name": "enter", "is_start": True, "arcs": [{"target": "work"}]},
            work,
            {"name": "done", "is_end": True},
        ],
    }


def test_sub_networks_inherit_the_pushing_states_resources(tmp_path, mode):
    config = {
        "name": "three_levels",
        "main_network": "l1",
        "networks": [level("l1", "r1", "l2"), level("l2", "r2", "l3"), level("l3", "r3", None)],
    }
    resources = {
        name: {"backend": "sqlite", "database": str(tmp_path / f"{name}.db")}
        for name in ("r1", "r2", "r3")
    }
    kwargs = {"local": True} if mode == "local" else {"actors": 1}
    with SimpleFSM(config, resources=resources, custom_functions={"see": see}, **kwargs) as fsm:
        one = fsm.process({"id": 1})
        batch = fsm.process_batch([{"id": 2}, {"id": 3}])
    for result in (one, *batch):
        assert result["success"] is True, result
        assert result["data"]["held"] == ["r1", "r2", "r3"]
        assert result["data"]["answers"] == [1, 1, 1]


@pytest.mark.parametrize(
    "connection_string",
    ["not a url at all", "postgresql://app:s3cr3tpw@db.example:notaport/orders"],
)
def test_a_malformed_connection_string_is_a_resource_error(connection_string):
    with pytest.raises(ResourceError) as caught:
        DatabaseResourceAdapter("orders_db", connection_string=connection_string)
    error = caught.value
    assert error.resource_name == "orders_db"
    assert error.operation == "configure"
    assert "s3cr3tpw" not in str(error) and "connection string" in str(error)


def test_an_unknown_scheme_names_the_resource():
    with pytest.raises(ResourceError) as caught:
        DatabaseResourceAdapter("orders_db", connection_string="oracle://u:pw123@h/db")
    assert caught.value.resource_name == "orders_db"
    assert "pw123" not in str(caught.value)


def test_file_system_resource_has_the_package_methods(tmp_path):
    fs = FileSystemResource("files", base_path=str(tmp_path / "base"))
    with fs.open("sub/a.txt", "w") as handle:
        handle.write("hello")
    with fs.open("b.txt", "w") as handle:
        handle.write("x")
    with fs.open("sub/a.txt") as handle:
        assert handle.read() == "hello"
    assert fs.exists("sub/a.txt") and not fs.exists("missing.txt")
    assert fs.list_files("*") == ["b.txt"]
    assert fs.list_files("**/*.txt") == ["b.txt", "sub/a.txt"]
    assert fs.delete("b.txt") is True and fs.delete("b.txt") is False
    assert fs.list_files("*") == []
    with pytest.raises(ResourceError) as caught:
        with fs.open("../escape.txt", "w"):
            pass
    assert caught.value.resource_name == "files"
    assert not (tmp_path / "escape.txt").exists()
