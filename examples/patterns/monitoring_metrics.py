"""Seed 000 (integration patterns), "Monitoring and Metrics": ``ErrorRecoveryWorkflow``.

Changed: the import prefix (``dataknobs_fsm.patterns`` -> ``patterns``). The block calls
``some_function(arg1, arg2)``, which the seed leaves undefined: here it adds its two
arguments and fails its first call with ``ConnectionError``, so the retry shows in the
metrics. The block's top-level ``await`` is the body of an ``async def`` run by
``asyncio.run``.

    .venv/bin/python examples/patterns/monitoring_metrics.py
"""

# ruff: noqa: I001 - the seed's import lines are kept as written
from __future__ import annotations

import asyncio
from typing import Any

calls: list[tuple[Any, ...]] = []
arg1, arg2 = 20, 22


def some_function(a: int, b: int) -> int:
    """``a + b``; the first call fails (a dropped connection)."""
    calls.append((a, b))
    if len(calls) == 1:
        raise ConnectionError("connection reset (the first call fails)")
    return a + b


async def seed_block() -> dict[str, Any]:
    # -- the seed's block ---------------------------------------------------------------------
    from patterns.error_recovery import ErrorRecoveryWorkflow, ErrorRecoveryConfig

    # Create workflow with monitoring
    config = ErrorRecoveryConfig(
        name="monitored_workflow",
        primary_strategy="retry",
        retry_config={
            "max_attempts": 3,
            "backoff_strategy": "exponential"
        }
    )

    workflow = ErrorRecoveryWorkflow(config)

    # Execute and get metrics
    await workflow.execute(some_function, arg1, arg2)
    metrics = workflow.get_metrics()

    print(f"Total attempts: {metrics['total_attempts']}")
    print(f"Success rate: {metrics['success_rate']}")
    print(f"Average retry count: {metrics['avg_retry_count']}")
    # -----------------------------------------------------------------------------------------
    return metrics


def main() -> dict[str, Any]:
    """Run the block; returns the workflow's metrics and the calls ``some_function`` saw."""
    calls.clear()
    metrics = asyncio.run(seed_block())
    return {"metrics": metrics, "calls": list(calls)}


if __name__ == "__main__":
    main()
