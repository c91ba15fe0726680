"""The seed's API orchestration blocks (shared/seeds/000), run from their example files.

``examples/patterns/customizing_api.py`` holds the "Customizing Patterns" block (import prefix
and URLs changed, served by ``examples._support.http_server``); its ``main()`` returns the
result and the requests the local API answered, so the block is checked against what really
went over the wire. The Quick Start API part is ``factory_functions.py`` (tests/ops/
test_examples.py); the API names of the import reference are checked here.
"""

from __future__ import annotations

from examples._support import run_example


def test_customizing_block():
    out = run_example("patterns", "customizing_api.py")
    result = out["result"]
    assert result["auth"] == {"token": "tok-test"}  # the POST's body came back
    assert result["data"] == [1, 2, 3]              # transform applied
    assert result["errors"] == {}
    auth = [c for c in out["served"] if c.path == "/auth"]
    data = [c for c in out["served"] if c.path == "/data"]
    assert [c.method for c in auth] == ["POST"] and [c.method for c in data] == ["GET"]
    assert data[0].start >= auth[0].end             # depends_on held
    assert auth[0].headers["Content-Type"].startswith("application/json")
    assert result["_metrics"]["read_count"] == 1 and result["_metrics"]["write_count"] == 1


def test_import_reference_block_api_names():
    names = run_example("patterns", "import_reference.py")["patterns.api_orchestration"]
    assert [n.__name__ for n in names] == [
        "APIOrchestrator", "APIOrchestrationConfig", "OrchestrationMode", "APIEndpoint",
        "create_rest_api_orchestrator", "create_graphql_orchestrator"]
    from patterns import api_orchestration

    assert all(getattr(api_orchestration, n.__name__) is n for n in names)
