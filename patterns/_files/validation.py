"""Turning a ``validation_schema`` into a record check (plain core).

Accepted schemas: a pydantic model class (``Model.model_validate(record)`` must pass); a
callable returning truthy for a valid record (or raising); or a JSON-Schema-like dict with
``required`` and ``properties: {name: {"type": ..., "enum": [...], "minimum": ...,
"maximum": ...}}``. The check returns ``None`` for a valid record, else the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}

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
    required = list(schema.get("required", ()))
    properties: dict[str, dict[str, Any]] = dict(schema.get("properties", {}))
    for name, spec in properties.items():
        kinds = spec.get("type")
        for kind in [kinds] if isinstance(kinds, str) else kinds or []:
            if kind not in _JSON_TYPES:
                raise ValueError(f"validation_schema: property {name!r} has unknown type {kind!r}")

    def check(record: dict[str, Any]) -> str | None:
        missing = [k for k in required if record.get(k) is None]
        if missing:
            return f"missing required field(s) {missing}"
        for name, spec in properties.items():
            value = record.get(name)
            if value is None:
                continue
            reason = _check_value(name, value, spec)
            if reason:
                return reason
        return None

    return check


def _check_value(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    kinds = spec.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else list(kinds)
        ok = False
        for kind in allowed:
            if isinstance(value, _JSON_TYPES[kind]):
                ok = not (kind in ("integer", "number") and isinstance(value, bool))
                if ok:
                    break
        if not ok:
            return f"field {name!r}: expected {'/'.join(allowed)}, got {type(value).__name__}"
    if "enum" in spec and value not in spec["enum"]:
        return f"field {name!r}: {value!r} not in {spec['enum']}"
    if "minimum" in spec and value < spec["minimum"]:
        return f"field {name!r}: {value!r} < minimum {spec['minimum']}"
    if "maximum" in spec and value > spec["maximum"]:
        return f"field {name!r}: {value!r} > maximum {spec['maximum']}"
    return None
