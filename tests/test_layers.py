"""Layers that hold: each plain core imports in a fresh interpreter without Ray, SQLAlchemy
or aiohttp (issue 8), and the user-facing entry points stay light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("ray", "sqlalchemy", "aiohttp")

CORES = [
    "fsm_actors.config",
    "fsm_actors.engine",
    "fsm_actors.platform.io",
    "fsm_actors.worker",
    "fsm_actors.platform.event_loop",
    "fsm_actors.platform.pickling",
    "fsm_actors.platform.errors",
    "fsm_actors.platform.jobs.model",
    "fsm_actors.platform.jobs.parts",
    "fsm_actors.platform.jobs.file_step",
    "fsm_actors.platform.jobs",
    "fsm_actors.platform.jobs.checkpoint",
    "fsm_actors.platform.jobs.file_kind",
    "fsm_actors.stream",
    "patterns._files.job",
    "patterns.pipeline",
    "fsm_actors.platform.policies",
    "patterns._recovery.retry_core",
    "patterns._recovery.breaker_core",
    "patterns._recovery.limiter_core",
    "patterns._recovery.bulkhead_core",
    "patterns._recovery.cache",
    "patterns._recovery.saga",
    "patterns._etl.dialect",
    "patterns._api.config",
    "patterns._records",
    "patterns._files.aggregate",
    "resource_actors",
    "resource_actors.base",
    "resource_actors.pool",
    "resource_actors.lease_book",
    "resource_actors.admission",
    "resource_actors.host",
    "resource_actors.local",
    "resource_actors.manager",
    "resource_actors.binder",
    "resource_actors.factory",
]

ENTRY_POINTS = ["fsm_actors", "fsm_actors.functions"]


def _loaded_after_import(module: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", CORES)
def test_core_imports_no_ray_sqlalchemy_or_aiohttp(module):
    assert _loaded_after_import(module) == []


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_entry_points_pull_in_no_sqlalchemy_or_aiohttp(module):
    loaded = _loaded_after_import(module)
    assert "sqlalchemy" not in loaded and "aiohttp" not in loaded


def test_the_user_function_api_still_offers_the_resource_names():
    from fsm_actors import functions

    assert functions.ResourceConfig.__name__ == "ResourceConfig"
    assert issubclass(functions.ResourceError, Exception)
