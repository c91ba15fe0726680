"""Seed 000 (integration patterns), "Quick Start", 3. Using Multiple Factory Functions.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``) and the API's base
URL (``https://api.example.com`` -> the local API that ``examples/_support.http_server``
serves on 127.0.0.1, with ``/users`` and ``/posts``). The block's LLM part is left out
(dataknobs-llm is out of scope, see examples/README.md). The block only builds the three
objects; this file then runs each: the CSV processor in a fresh directory
``examples/out/factory_functions/`` holding ``data.csv`` (demo orders), both API calls, and
the retry workflow around a call that fails once.

    .venv/bin/python examples/patterns/factory_functions.py
"""

# ruff: noqa: I001, E712 - the seed's lines are kept as written
from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from examples._support import http_server, workdir  # noqa: E402
from examples.make_orders import write_orders  # noqa: E402

ORDERS = 2000


def main() -> dict[str, Any]:
    """Build the block's objects and run each; returns their results."""
    work = workdir("factory_functions")
    with contextlib.chdir(work), http_server() as api:
        write_orders(Path("data.csv"), ORDERS)
        BASE_URL = api.url  # noqa: N806
        # -- the seed's block -----------------------------------------------------------------
        # File Processing
        from patterns.file_processing import create_csv_processor

        csv_processor = create_csv_processor(
            input_file="data.csv",
            output_file="output.json",
            transformations=[lambda row: {**row, "status": "processed"}],
            filters=[lambda row: row.get("active") == True]
        )

        # API Orchestration
        from patterns.api_orchestration import create_rest_api_orchestrator
        from patterns.api_orchestration import OrchestrationMode

        api_orchestrator = create_rest_api_orchestrator(
            base_url=BASE_URL,
            endpoints=[
                {"name": "users", "path": "/users", "method": "GET"},
                {"name": "posts", "path": "/posts", "method": "GET"}
            ],
            auth_token="your-api-token",
            rate_limit=100,  # requests per second
            mode=OrchestrationMode.PARALLEL
        )

        # LLM Workflow - in the dataknobs-llm package: out of scope here

        # Error Recovery
        from patterns.error_recovery import create_retry_workflow
        from patterns.error_recovery import BackoffStrategy

        retry_workflow = create_retry_workflow(
            max_attempts=3,
            backoff_strategy=BackoffStrategy.EXPONENTIAL,
            initial_delay=1.0,
            max_delay=60.0
        )
        # -------------------------------------------------------------------------------------
        files = asyncio.run(csv_processor.process())
        print(f"csv processor: kept {files['records_written']} of {files['records_processed']} "
              f"orders (active) in {work / 'output.json'}")
        calls = asyncio.run(api_orchestrator.orchestrate())
        print(f"API orchestrator: users {calls['users']}, posts {calls['posts']}, "
              f"errors {calls['errors']}")
        attempts: list[int] = []

        def fails_once() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError("the first call fails")
            return "ok"

        outcome = asyncio.run(retry_workflow.execute(fails_once))
        metrics = retry_workflow.get_metrics()
        print(f"retry workflow: {outcome!r} after {metrics['total_attempts']} attempts")
        served = [(c.method, c.path) for c in api.calls]
    return {"files": files, "calls": calls, "outcome": outcome, "metrics": metrics,
            "served": served, "workdir": work, "api_orchestrator": api_orchestrator}


if __name__ == "__main__":
    main()
