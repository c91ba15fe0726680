"""How `fsm-actors status` groups and shows actors (the live listing is tested against a
real head in tests/ops/test_ops.py)."""

from __future__ import annotations

from fsm_actors.cli.status import ActorRow, _rates, group_of, render


def test_actor_names_are_grouped_by_pipeline_run_and_role():
    assert group_of("fsm/orders/0") == (("fsm", "orders"), "worker")
    assert group_of("fsm/orders/1.2") == (("fsm", "orders"), "worker")  # a replacement
    assert group_of("file_processing/ab12/worker/3") == (("file_processing", "ab12"), "worker")
    assert group_of("etl/r1/loader/0") == (("etl", "r1"), "loader")
    assert group_of("resource/db") == (("resources", "providers"), "provider")
    assert group_of("resource-manager") == (("resources", "broker"), "broker")
    assert group_of("something") == (("other", ""), "something")


def test_the_view_shows_counters_rates_and_running_jobs():
    rows = [
        ActorRow(("fsm", "orders"), "worker", "fsm/orders/0", "FSMActor", "n" * 20,
                 {"fsm": "orders", "records": 1000, "failed": 2, "busy": True}),
        ActorRow(("resources", "broker"), "broker", "resource-manager", "Broker", "m" * 20,
                 None, note="busy (no answer in 2s)"),
    ]
    seen: dict = {}
    _rates(rows, seen)
    rows[0].status = {**rows[0].status, "records": 3000}
    seen["fsm/orders/0"] = (seen["fsm/orders/0"][0] - 2.0, seen["fsm/orders/0"][1])
    _rates(rows, seen)
    lines = render(rows, [("raysubmit_1", "python -m fsm_actors.cli.main run x.yaml")], "h:1")
    text = "\n".join(lines)
    assert "FSM pool 'orders': 1 actor" in text and "resources (broker): 1 actor" in text
    assert "records=3,000 failed=2 busy=True" in text and "records/s=1,000" in text
    assert "busy (no answer in 2s)" in text
    assert lines[-2:] == ["running jobs: 1",
                          "  raysubmit_1  python -m fsm_actors.cli.main run x.yaml"]
