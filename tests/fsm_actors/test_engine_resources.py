"""Resources declared by states and arcs are leased through a ``ResourceBinder``."""

from __future__ import annotations

from typing import Any

from fsm_actors.engine import ResourceBinder, compile_machine
from resource_actors.errors import ResourceError


class RecordingBinder:
    """A binder that hands out ``"<name>-handle"`` and records every call."""

    def __init__(self, fail_acquire: bool = False, fail_release: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_acquire = fail_acquire
        self.fail_release = fail_release

    def acquire(self, names, owner_id, timeout=None):
        self.calls.append(("acquire", tuple(names), owner_id))
        if self.fail_acquire:
            raise ResourceError("pool exhausted", names[0], "acquire")
        return {name: f"{name}-handle" for name in names}

    def release(self, names, owner_id):
        self.calls.append(("release", tuple(names), owner_id))
        if self.fail_release:
            raise RuntimeError("lost connection")

    def release_all(self, owner_id):
        self.calls.append(("release_all", owner_id))


def use_db(data, context):
    return {**data, "db": context.require_resource("db"), "held": sorted(context.resources)}


def machine(custom=None, network_resources=(), state=None, arc=None):
    load = {"name": "load", "resources": ["db"], "transform": "use_db", **(state or {})}
    return compile_machine(
        {
            "name": "r",
            "networks": [
                {
                    "name": "main",
                    "resources": list(network_resources),
                    "states": [
                        {"name": "start", "is_start": True, "arcs": [{"target": "load"}]},
                        {**load, "arcs": [{"target": "end", **(arc or {})}]},
                        {"name": "end", "is_end": True},
                    ],
                }
            ],
        },
        {"use_db": use_db, **(custom or {})},
    )


def test_the_recording_binder_satisfies_the_protocol():
    assert isinstance(RecordingBinder(), ResourceBinder)


def test_state_resources_are_acquired_before_and_released_after_the_state():
    binder = RecordingBinder()
    result = machine().run({}, resources=binder, execution_id="e1")
    assert result["success"] is True
    assert result["data"] == {"db": "db-handle", "held": ["db"]}
    assert binder.calls == [
        ("acquire", ("db",), "state_load_e1"),
        ("release", ("db",), "state_load_e1"),
    ]


def test_network_resources_join_those_of_states_that_declare_resources():
    binder = RecordingBinder()
    result = machine(network_resources=["cache", "db"]).run({}, resources=binder, execution_id="e")
    assert result["data"]["held"] == ["cache", "db"]
    assert binder.calls[0] == ("acquire", ("db", "cache"), "state_load_e")
    assert len(binder.calls) == 2  # start and end declare nothing, so lease nothing


def test_batch_records_get_their_own_owner_ids():
    binder = RecordingBinder()
    machine().run_batch([{}, {}], resources=binder, execution_id_prefix="b")
    owners = [call[2] for call in binder.calls if call[0] == "acquire"]
    assert owners == ["state_load_b_0", "state_load_b_1"]


def test_without_a_binder_the_record_fails_naming_state_and_resources():
    result = machine().run({})
    assert result["success"] is False and result["final_state"] == "load"
    assert result["error"].startswith(
        "The state 'load' needs resources ['db'] but no resource binder was given"
    )


def test_a_failed_acquire_fails_the_record_and_releases_everything():
    binder = RecordingBinder(fail_acquire=True)
    result = machine().run({}, resources=binder, execution_id="e")
    assert result["error"] == (
        "Could not acquire resources ['db'] for state 'load': ResourceError: pool exhausted"
    )
    assert binder.calls[-1] == ("release_all", "state_load_e")


def test_a_failing_function_releases_all_of_the_owner():
    def boom(data):
        raise OSError("disk full")

    binder = RecordingBinder()
    result = machine({"boom": boom}, state={"transform": "boom"}).run(
        {}, resources=binder, execution_id="e"
    )
    assert result["error"] == "Transform 'boom' failed in state 'load': OSError: disk full"
    assert binder.calls == [("acquire", ("db",), "state_load_e"), ("release_all", "state_load_e")]


def test_a_failed_release_is_reported():
    result = machine().run({}, resources=RecordingBinder(fail_release=True), execution_id="e")
    assert result["success"] is False
    assert result["error"] == (
        "releasing ['db'] for state_load_e failed: RuntimeError: lost connection"
    )


def test_arc_resources_by_role_around_the_arc_transform():
    def with_conn(data, context):
        return {**data, "conn": context.resources["conn"], "state_db": context.resources["db"]}

    binder = RecordingBinder()
    built = machine(
        {"with_conn": with_conn},
        arc={"resources": {"conn": "warehouse"}, "transform": "with_conn"},
    )
    result = built.run({}, resources=binder, execution_id="e")
    assert result["data"]["conn"] == "warehouse-handle"
    assert result["data"]["state_db"] == "db-handle"
    assert binder.calls == [
        ("acquire", ("db",), "state_load_e"),
        ("acquire", ("warehouse",), "arc_load_end_e"),
        ("release", ("warehouse",), "arc_load_end_e"),
        ("release", ("db",), "state_load_e"),
    ]
