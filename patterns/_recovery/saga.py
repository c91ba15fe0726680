"""Sagas: steps with compensations; on failure the done steps are undone in reverse order.

Each step's ``action`` is called with the saga's arguments; its ``compensation`` (if any) with
the step's result (or with nothing, when it takes no parameters). Every compensation is retried by the saga's ``RetryPolicy``. The result
dict says what ran: ``status`` (``completed``, ``compensated`` or ``compensation_failed``),
``completed`` (step names, in order), ``failed_step`` and ``error``, ``compensated`` (in the
order they ran), ``compensation_errors`` ({step: message}) and ``results`` ({step: value}).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from patterns._recovery.invoke import invoke
from patterns._recovery.retry import RetryPolicy


@dataclass(frozen=True)
class SagaStep:
    """One step: ``action(*args, **kwargs)`` and how to undo it: ``compensation(result)``."""

    name: str
    action: Callable[..., Any]
    compensation: Callable[[Any], Any] | None = None


def as_steps(steps: Sequence[SagaStep | tuple[Any, ...] | dict[str, Any]]) -> list[SagaStep]:
    """Steps from ``SagaStep``s, ``(name, action[, compensation])`` tuples or dicts."""
    out = []
    for i, step in enumerate(steps):
        if isinstance(step, SagaStep):
            out.append(step)
        elif isinstance(step, tuple):
            out.append(SagaStep(*step))
        elif isinstance(step, dict):
            out.append(SagaStep(**step))
        else:
            raise TypeError(f"saga step {i}: expected SagaStep, tuple or dict, got "
                            f"{type(step).__name__}")
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"saga step names must be unique, got {names}")
    return out


async def run_saga(steps: Sequence[SagaStep], args: tuple[Any, ...], kwargs: dict[str, Any],
                   compensation_retry: RetryPolicy,
                   on_start: Callable[..., Any] | None = None,
                   on_complete: Callable[..., Any] | None = None,
                   ) -> tuple[dict[str, Any], Exception | None]:
    """Run ``steps``; the result dict of the module docstring and the failed step's error
    (never raises for a step)."""
    result: dict[str, Any] = {"status": "completed", "completed": [], "failed_step": None,
                              "error": None, "compensated": [], "compensation_errors": {},
                              "results": {}}
    done: list[tuple[SagaStep, Any]] = []
    error: Exception | None = None
    for step in steps:
        try:
            value = await invoke(step.action, args, kwargs)
        except Exception as exc:
            error = exc
            result.update(failed_step=step.name, error=f"{type(exc).__name__}: {exc}")
            break
        done.append((step, value))
        result["completed"].append(step.name)
        result["results"][step.name] = value
    else:
        return result, None
    if on_start is not None:
        on_start(result["failed_step"], list(result["completed"]))
    await compensate(done, compensation_retry, result)
    if on_complete is not None:
        on_complete(result)
    return result, error


async def compensate(done: Sequence[tuple[SagaStep, Any]], retry: RetryPolicy,
                     result: dict[str, Any]) -> None:
    """Undo ``done`` in reverse order into ``result`` (a failed compensation does not stop
    the others)."""
    result["status"] = "compensated"
    for step, value in reversed(done):
        if step.compensation is None:
            continue
        takes_result = _takes_argument(step.compensation)
        try:
            await retry.run(step.compensation, (value,) if takes_result else (), {})
        except Exception as exc:
            result["compensation_errors"][step.name] = f"{type(exc).__name__}: {exc}"
            result["status"] = "compensation_failed"
        else:
            result["compensated"].append(step.name)


def _takes_argument(fn: Callable[..., Any]) -> bool:
    """False for a compensation declared without parameters (``lambda: undo()``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is not p.KEYWORD_ONLY for p in params)
