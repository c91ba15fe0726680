"""Every code block of the resource-management guide (shared/seeds/003), run from its example.

The seed's text lives once, in ``examples/resources/``. Each test loads one example file
(``runpy.run_path``) and calls its ``main()`` in the session's Ray, with the examples'
PostgreSQL pointed at the test server (``FSM_ACTORS_EXAMPLE_POSTGRES``; each example makes a
database of its own there), their output directory at the test's temp dir
(``FSM_ACTORS_EXAMPLE_OUT``) and, for the HTTP blocks, the test HTTP server; then it checks
what the blocks did: rows read, files written, leases held or ended, metrics, health, logs.
After every test the cluster holds no resource the example registered.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

import examples._support
from examples._support import query
from resource_actors.base import ResourceHealth, ResourceMetrics
from resource_actors.remote import BrokerClient

pytestmark = [pytest.mark.ray, pytest.mark.postgres]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "resources"


@pytest.fixture(autouse=True)
def _example_env(ray_session, tmp_path, monkeypatch):
    """The session's Ray, output under ``tmp_path``; afterwards no new registration is left."""
    monkeypatch.setenv("FSM_ACTORS_EXAMPLE_OUT", str(tmp_path))
    monkeypatch.delenv("FSM_ACTORS_EXAMPLE_POSTGRES", raising=False)
    before = set(BrokerClient().names())
    yield
    assert set(BrokerClient().names()) <= before, "the example left resources registered"


@pytest.fixture
def pg(postgres_server, monkeypatch):
    """The test PostgreSQL as the examples' server."""
    s = postgres_server
    monkeypatch.setenv("FSM_ACTORS_EXAMPLE_POSTGRES",
                       f"postgresql://{s.user}:{s.password}@{s.host}:{s.port}")
    return s


class ExampleDatabases:
    """Reads an example's own database back (``rows``), on the backend the examples got."""

    def __init__(self, backend: str, server: Any = None, directory: Path | None = None) -> None:
        self.backend, self.server, self.directory = backend, server, directory

    def rows(self, name: str, sql: str) -> list[tuple[Any, ...]]:
        if self.server is not None:
            return pg_rows(self.server, name, sql)
        path = self.directory / f"{name}.db"
        assert path.exists(), f"the example made no SQLite database {path}"
        return query(f"sqlite:///{path}", sql)


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request, tmp_path, monkeypatch):
    """Each backend the examples may get: the test PostgreSQL, and SQLite files (what a
    machine without PostgreSQL runs: no server in the environment, none to start)."""
    if request.param == "postgresql":
        return ExampleDatabases("postgresql", server=request.getfixturevalue("pg"))
    monkeypatch.setattr(examples._support, "_local_postgres", False)
    return ExampleDatabases("sqlite", directory=tmp_path)


def load_example(name: str) -> dict[str, Any]:
    """The globals of ``examples/resources/<name>.py`` loaded as a module (not ``__main__``)."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


def run_example(name: str, **kwargs: Any) -> Any:
    """What ``main(**kwargs)`` of ``examples/resources/<name>.py`` returns."""
    return load_example(name)["main"](**kwargs)


def pg_rows(server: Any, database: str, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows in ``database`` of the test server (the example's own database)."""
    return query(f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/"
                 f"{database}", sql)


def test_every_example_file_has_a_test():
    source = Path(__file__).read_text()
    files = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert files and all(f'_example("{stem}"' in source for stem in files)
    assert all("Seed 003" in (EXAMPLES / f"{stem}.py").read_text() for stem in files)


def test_resource_interface():
    checks = run_example("resource_interface")
    adapters = ("DatabaseResourceAdapter", "FileSystemResourceAdapter", "HTTPResourceAdapter")
    assert all(checks[name] == {"seed": True, "library": True} for name in adapters)
    assert checks["NotAProvider"] == {"seed": False, "library": False}


def test_resource_manager_status_and_metrics(db, capsys):
    seen = run_example("resource_manager")
    assert seen["one"] == [{"one": 1}]
    assert seen["users"] == [{"n": 2}]
    assert seen["owners_after_context"] == set()
    assert seen["status"]["active_count"] == 1 and seen["status"]["owners"] == ["state_789"]
    assert seen["metrics"]["database"].total_acquisitions == 3
    assert seen["health"]["database"] is ResourceHealth.HEALTHY
    printed = capsys.readouterr().out
    assert "Current owners: ['state_789']" in printed
    assert "Database health: ResourceHealth.HEALTHY" in printed
    assert db.rows("res_manager", "SELECT name FROM users ORDER BY id") == [("ada",), ("bob",)]


def test_database_resource_with_simple_fsm(db, postgres_server):
    seen = run_example("database_resource")
    assert seen["query"] == [{"name": "ada"}]
    assert postgres_server.password not in seen["repr"]
    assert seen["manager_resource"]["data"] == {"id": 1, "name": "ada"}
    assert seen["own_resource"]["data"] == {"id": 2, "name": "bob"}
    assert seen["fsm_resources"] == ["database"]
    assert db.rows("res_database", "SELECT count(*) FROM users") == [(2,)]
    # closing each FSM ended its registrations: the autouse fixture checks none is left


def test_file_system_resource(tmp_path):
    seen = run_example("filesystem_resource")
    base, temp = Path(seen["base_path"]), Path(seen["temp_dir"])
    assert base.is_relative_to(tmp_path) and temp.is_relative_to(tmp_path)
    assert seen["content"] == "id,name\n1,ada\n"
    assert json.loads((base / "output.json").read_text()) == {"rows": 1}
    assert seen["temp_existed"] and Path(seen["temp_path"]).parent == temp
    assert not Path(seen["temp_path"]).exists()  # auto_cleanup on release


def test_http_service_resource(http_server):
    seen = run_example("http_resource", api_url=http_server.url)
    assert seen["data"] == {"id": 123, "name": "user123"}
    assert http_server.last_headers["Authorization"] == "Bearer token"
    assert "Bearer token" not in seen["repr"]
    # on its own, the example serves its API itself
    assert run_example("http_resource")["data"] == {"id": 123, "name": "user123"}


def test_resource_pooling(db):
    pool = run_example("resource_pooling")["pool_metrics"]["database_pool"]
    assert (pool.size, pool.available) == (2, 2)  # warmed to min_size
    assert (pool.min_size, pool.max_size) == (2, 10)
    assert db.rows("res_pooling", "SELECT 1") == [(1,)]


def test_configuration_based_requirements(db):
    seen = run_example("config_requirements")
    assert [r["success"] for r in seen["results"]] == [True, True]
    assert [r["data"] for r in seen["results"]] == [
        {"id": 1, "name": "ada", "resources": ["database", "filesystem"]},
        {"id": 2, "name": "bob", "resources": ["database", "filesystem"]},
    ]
    written = Path(seen["files"])
    assert json.loads((written / "user_2.json").read_text()) == {"id": 2, "name": "bob"}
    assert sorted(p.name for p in written.iterdir()) == ["user_1.json", "user_2.json"]
    assert db.rows("res_config_req", "SELECT count(*) FROM users") == [(2,)]


def test_code_based_requirements(pg):
    from fsm_actors.functions import ResourceConfig

    seen = run_example("code_requirements")
    assert list(seen["resources"]) == ["database"]  # the optional, unregistered cache is skipped
    assert seen["users"] == 2 and seen["owners"] == {"state_123"}
    assert seen["ResourceConfig"] is ResourceConfig  # fsm_actors.functions' is the same class


def test_resource_lifecycle(pg):
    seen = run_example("resource_lifecycle")
    assert seen["result"] == {"name": "bob"}
    assert seen["error"] == "transform failed"
    assert seen["owners_after_success"] == seen["owners_after_error"] == set()


def test_owner_tracking(pg, capsys):
    seen = run_example("owner_tracking")
    assert seen["answer"] == [{"two": 2}]
    assert seen["owners"] == {"state_123"}
    assert seen["still_held"] is False
    assert "is not held any more" in seen["after_release"]
    assert "Database is used by: {'state_123'}" in capsys.readouterr().out


def test_custom_resources():
    seen = run_example("custom_resource")
    assert seen["status"]["provider_exists"]
    # No Redis server here: the provider reports it, and nothing leaks.
    assert seen["health"] is ResourceHealth.UNHEALTHY
    assert seen["valid"] is False


def test_simple_resource_provider():
    seen = run_example("simple_provider")
    assert seen["config"] == {"api_key": "secret", "endpoint": "https://api.example.com"}
    assert seen["settings"] == {"timeout": 30}


def test_health_monitoring(pg, http_server):
    seen = run_example("health_checks", api_url=http_server.url)
    assert seen["health"] == {"database": ResourceHealth.HEALTHY}
    assert seen["all_health"] == {"database": ResourceHealth.HEALTHY, "api": ResourceHealth.HEALTHY}


def test_resource_metrics(pg):
    seen = run_example("resource_metrics")
    db_metrics = seen["db_metrics"]
    assert isinstance(db_metrics, ResourceMetrics)
    assert (db_metrics.total_acquisitions, db_metrics.active_connections) == (1, 0)
    assert db_metrics.failed_acquisitions == 0
    assert db_metrics.average_hold_time > 0 and "database" in seen["all_metrics"]


def test_async_cleanup(pg):
    seen = run_example("async_cleanup")
    assert "database" in seen["before"] and "database" not in seen["after"]


def test_manager_as_context_manager(pg):
    seen = run_example("manager_context")
    assert seen["result"] == [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]
    assert "db" not in seen["after"]


def test_shared_resource_manager(pg):
    seen = run_example("shared_manager")
    assert seen["same"] is True
    assert seen["answer"] == [{"x": 1}]


def test_resource_with_fsm(db):
    seen = run_example("fsm_resources")
    assert seen["resources"] == ["database", "cache"]
    assert seen["lookup"]["success"] and seen["lookup"]["data"] == {"id": 1, "name": "ada"}
    assert seen["cached"]["success"] is False
    assert "unknown resource type 'redis'" in seen["cached"]["error"]
    assert db.rows("res_fsm", "SELECT name FROM users WHERE id = 1") == [("ada",)]


def test_best_practices(db):
    seen = run_example("best_practices")
    assert seen["result"] == [{"n": 2}]
    assert seen["owners_after_1"] == set()
    assert seen["owners_after_2"] == {"state_load_e42", "state"}
    assert seen["pool_configs"]["low"].max_idle_time == 600
    high, low = seen["pools"]["high"], seen["pools"]["low"]
    assert (high.size, high.max_size) == (5, 20)
    assert (low.size, low.max_size) == (1, 5)
    assert db.rows("res_best_practices", "SELECT count(*) FROM users") == [(2,)]


def test_monitor_resources_thread(pg):
    seen = run_example("monitor_thread")
    assert seen["warnings"] == ["Resource broken is ResourceHealth.UNHEALTHY"]
    assert seen["alive"]  # the seed's monitor runs on (daemon) and finds nothing more to check


def test_handle_resource_errors(pg):
    from fsm_actors.functions import ResourceError as FunctionsResourceError
    from resource_actors.errors import ResourceError

    assert FunctionsResourceError is ResourceError
    namespace = load_example("error_handling")
    seen = namespace["main"]()
    assert seen["unregistered"] is None and seen["unreachable"] is None
    assert seen["registered"] == [{"ok": 1}]
    unknown, unreachable = seen["logged"]
    assert unknown.startswith("Failed to acquire database: unknown resource 'database'")
    assert unreachable.startswith("Failed to acquire database: cannot connect resource")
    assert namespace["UNREACHABLE_PASSWORD"] not in unreachable


def test_common_pitfalls(pg):
    seen = run_example("common_pitfalls")
    assert seen["leaky"] == seen["tidy"] == [{"x": 1}]
    assert seen["held_after_leaky"] is True and seen["held_after_tidy"] is False
    assert seen["owners"] == {"state_123"}
    assert seen["result"] == "called"


def test_debug_resource_status(pg, capsys):
    resources = run_example("debug_status")["all_resources"]
    assert resources["database"]["has_pool"] is True
    assert resources["database"]["owners"] == ["state_dbg"]
    assert resources["settings"]["has_pool"] is False
    assert "Resource: database\n  Has provider: True\n  Has pool: True" in capsys.readouterr().out
