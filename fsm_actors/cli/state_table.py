"""The per-state table a run's summary ends with (issue 25): one line per FSM state."""

from __future__ import annotations

from typing import Any


def state_table(result: dict[str, Any]) -> list[str]:
    """Lines of a table of ``result["states"]`` (entered, ended, failed and their share,
    seconds, the error types); ``[]`` when the result has no per-state counts (a pipeline
    that runs no FSM)."""
    states = result.get("states")
    if not isinstance(states, dict) or not states:
        return []
    width = max(5, *(len(name) for name in states))
    lines = [f"{'state':<{width}}  {'entered':>9}  {'ended':>9}  {'failed':>9}  "
             f"{'%failed':>7}  {'seconds':>8}  errors"]
    for name, row in states.items():
        entered, failed = row.get("entered", 0), row.get("failed", 0)
        share = f"{failed / entered:.1%}" if entered and failed else ""
        errors = ", ".join(f"{k} {v}" for k, v in (row.get("errors") or {}).items())
        lines.append(f"{name:<{width}}  {entered:>9}  {row.get('ended', 0):>9}  {failed:>9}  "
                     f"{share:>7}  {row.get('seconds', 0):>8.3f}  {errors}".rstrip())
    return lines
