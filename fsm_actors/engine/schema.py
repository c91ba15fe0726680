"""A small JSON-schema subset for state ``schema`` checks, compiled once per state.

Supported keywords: ``type`` (string, integer, number, boolean, object, array, null, or
a list of them), ``properties``, ``required``, ``additionalProperties`` (true/false),
``enum``, ``minimum``, ``maximum``, ``minLength``, ``maxLength``, ``pattern`` (searched,
as JSON schema does), ``items``. Annotations (``title``, ``description``, ``format``, ...)
are ignored; any other keyword is a config error rather than a silently skipped rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fsm_actors.errors import FSMConfigError

Check = Callable[[Any, str, list[str]], bool]
"""``check(value, path, errors)`` appends messages; returns False to skip later checks."""

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list | tuple),
    "null": lambda v: v is None,
}
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "format",
        "$schema",
        "$id",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
    }
)
_RULES = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "items",
    }
)


def compile_schema(
    schema: dict[str, Any], key_path: str, source: str | None = None
) -> Callable[[Any], list[str]]:
    """Return ``errors_of(data) -> [message]`` (empty when ``data`` conforms). Raises
    ``FSMConfigError`` at ``key_path`` for an unsupported keyword or a malformed rule."""
    check = _build(schema, key_path, source)

    def errors_of(data: Any) -> list[str]:
        errors: list[str] = []
        check(data, "", errors)
        return errors

    return errors_of


def _build(schema: Any, where: str, source: str | None) -> Check:
    if not isinstance(schema, dict):
        raise FSMConfigError("a schema must be a mapping", key_path=where, source=source)
    unknown = sorted(set(schema) - _RULES - _ANNOTATIONS)
    if unknown:
        raise FSMConfigError(
            f"unsupported schema keyword(s) {', '.join(unknown)}; supported: "
            f"{', '.join(sorted(_RULES))}",
            key_path=f"{where}.{unknown[0]}",
            source=source,
        )
    # the type check goes first so later rules can assume the type
    names = sorted((n for n in schema if n in _RULES), key=lambda n: n != "type")
    checks: list[Check] = []
    for name in names:
        try:
            checks.append(_rule(name, schema, where, source))
        except (TypeError, ValueError, re.error) as exc:
            raise FSMConfigError(
                f"malformed schema rule '{name}': {exc}", key_path=f"{where}.{name}", source=source
            ) from None

    def check_all(value: Any, path: str, errors: list[str]) -> bool:
        for rule in checks:
            if not rule(value, path, errors):
                return False
        return True

    return check_all


def _rule(name: str, schema: dict[str, Any], where: str, source: str | None) -> Check:
    arg = schema[name]

    def at(path: str) -> str:
        return path or "record"

    if name == "type":
        names = [arg] if isinstance(arg, str) else list(arg)
        unknown = [n for n in names if n not in _TYPES]
        if unknown:
            raise ValueError(f"unknown type {unknown[0]!r}; use {', '.join(_TYPES)}")
        tests = [_TYPES[n] for n in names]
        wanted = " or ".join(names)

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if any(test(value) for test in tests):
                return True
            errors.append(f"{at(path)}: expected {wanted}, got {type(value).__name__}")
            return False

    elif name == "properties":
        fields = {key: _build(sub, f"{where}.properties.{key}", source) for key, sub in arg.items()}

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if isinstance(value, dict):
                for key, sub in fields.items():
                    if key in value:
                        sub(value[key], f"{path}.{key}" if path else key, errors)
            return True

    elif name == "required":
        required = [str(key) for key in arg]

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if isinstance(value, dict):
                prefix = f"{path}: " if path else ""
                errors.extend(
                    f"{prefix}missing required field '{key}'"
                    for key in required
                    if key not in value
                )
            return True

    elif name == "enum":
        choices = list(arg)

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if value not in choices:
                errors.append(f"{at(path)}: {value!r} is not one of {choices}")
            return True

    elif name in ("minimum", "maximum"):
        bound = float(arg)
        low = name == "minimum"

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if isinstance(value, int | float) and not isinstance(value, bool):
                if (value < bound) if low else (value > bound):
                    errors.append(
                        f"{at(path)}: {value} is {'below the minimum' if low else 'above the maximum'} {arg}"
                    )
            return True

    elif name in ("minLength", "maxLength"):
        limit = int(arg)
        shortest = name == "minLength"

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if isinstance(value, str):
                if (len(value) < limit) if shortest else (len(value) > limit):
                    errors.append(
                        f"{at(path)}: length {len(value)} is {'under' if shortest else 'over'} the {name} {limit}"
                    )
            return True

    elif name == "pattern":
        regex = re.compile(arg)

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if isinstance(value, str) and not regex.search(value):
                errors.append(f"{at(path)}: {value!r} does not match pattern {arg!r}")
            return True

    elif name == "additionalProperties":
        if not isinstance(arg, bool):
            raise TypeError("must be true or false (a schema here is not supported)")
        allowed = set(schema.get("properties", {}))

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if not arg and isinstance(value, dict):
                prefix = f"{path}: " if path else ""
                errors.extend(
                    f"{prefix}unexpected field '{key}'" for key in value if key not in allowed
                )
            return True

    else:  # items
        item = _build(arg, f"{where}.items", source)

        def check(value: Any, path: str, errors: list[str]) -> bool:
            if isinstance(value, list | tuple):
                for index, element in enumerate(value):
                    item(element, f"{path}[{index}]", errors)
            return True

    return check
