"""JSON schemas of config models as pipeline files write them: a callable is a function
reference (a string), a Python-only value is 'anything'. Plain core."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema

FUNCTION = {"type": "string",
            "description": "a function: a dotted path (package.module.name), 'lambda r: ...' "
                           "text, or inline code"}


class Generator(GenerateJsonSchema):
    """Callables as function references; Python-only values as 'anything'."""

    def callable_schema(self, schema: Any) -> dict[str, Any]:
        return dict(FUNCTION)

    def is_instance_schema(self, schema: Any) -> dict[str, Any]:
        return {}


def model_schema(model: Any) -> dict[str, Any]:
    """The JSON schema of a pydantic model (callables as function references)."""
    return model.model_json_schema(schema_generator=Generator)
