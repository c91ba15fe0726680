"""Turning a ``validation_schema`` into a record check (plain core).

Accepted schemas: a pydantic model class (``Model.model_validate(record)`` must pass); a
callable returning truthy for a valid record (or raising); or a JSON Schema (draft 7) dict,
checked by the project's one validator (``fsm_actors.engine.schema``) with ``None`` values
treated as missing (a table row has no other way to say "no value"). The check returns
``None`` for a valid record, else the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fsm_actors.engine.schema import compile_schema

Check = Callable[[dict[str, Any]], str | None]


def make_validator(schema: Any) -> Check | None:
    """A check for ``schema`` (``None`` gives ``None``); raises ``TypeError`` for other values."""
    if schema is None:
        return None
    if isinstance(schema, type) and hasattr(schema, "model_validate"):
        return _pydantic_check(schema)
    if isinstance(schema, dict):
        return _dict_check(schema)
    if callable(schema):
        return _callable_check(schema)
    raise TypeError(
        "validation_schema must be a pydantic model class, a callable or a JSON-Schema-like "
        f"dict, got {type(schema).__name__}"
    )


def _pydantic_check(model: Any) -> Check:
    def check(record: dict[str, Any]) -> str | None:
        try:
            model.model_validate(record)
        except Exception as exc:  # pydantic's ValidationError; its text lists the fields
            return str(exc).replace("\n", "; ")
        return None

    return check


def _callable_check(fn: Callable[[dict[str, Any]], Any]) -> Check:
    def check(record: dict[str, Any]) -> str | None:
        return None if fn(record) else f"rejected by {getattr(fn, '__name__', 'validator')}"

    return check


def _dict_check(schema: dict[str, Any]) -> Check:
    errors_of = compile_schema(schema, "validation_schema", nulls_as_missing=True)

    def check(record: dict[str, Any]) -> str | None:
        problems = errors_of(record)
        return "; ".join(problems) if problems else None

    return check
