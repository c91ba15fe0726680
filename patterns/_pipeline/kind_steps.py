"""``kind: steps``: a list of jobs of the other kinds, run in order; a later step names an
earlier step's result as ``${steps.NAME.KEY}``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patterns._pipeline.registry import PipelineKind, get_kind, kind_names, register_kind
from patterns.errors import PatternError


def step_kinds() -> tuple[str, ...]:
    """The kinds a step may be: every kind that is not itself a list of jobs."""
    return tuple(k for k in kind_names() if get_kind(k).expand is None)


def expand(spec: dict[str, Any], path: Path) -> list[tuple[str, dict[str, Any], str]]:
    """Each step as ``(kind, mapping with its name, where)``; names are unique."""
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise PatternError(f"{path}: steps: a list of jobs is needed", file=str(path))
    allowed = step_kinds()
    names: set[str] = set()
    out = []
    for i, step in enumerate(steps):
        where = f"{path}: steps[{i}]"
        if not isinstance(step, dict) or step.get("kind") not in allowed:
            raise PatternError(
                f"{where}: each step is a mapping with kind one of {', '.join(allowed)}",
                file=str(path),
            )
        name = str(step.get("name") or f"step{i + 1}")
        if name in names:
            raise PatternError(f"{where}: step name {name!r} is used twice", file=str(path))
        names.add(name)
        out.append((step["kind"], {**step, "name": name}, where))
    return out


def schema() -> dict[str, Any]:
    """The steps' own keys; ``patterns._pipeline.schema`` fills in the step schemas."""
    return {"title": "steps pipeline", "type": "object", "additionalProperties": False,
            "required": ["steps"],
            "properties": {"steps": {"type": "array", "minItems": 1}}}


register_kind(PipelineKind(
    name="steps", expand=expand, schema=schema,
    description="jobs of the other kinds in order, passing results on",
))
