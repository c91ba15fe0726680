"""JSON schemas of pipeline files: one per job kind, and one for any pipeline file.

Generated from the patterns' own config models, so the schema and the loader cannot drift:
a function-valued field (transformations, filters, parsers) is a string there (a dotted
path, ``lambda`` text or inline code, as pipeline files write them). Every job also takes
``kind``, ``name`` and ``retry`` (``RetryConfig`` fields). Plain core.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

FUNCTION = {"type": "string",
            "description": "a function: a dotted path (package.module.name), 'lambda r: ...' "
                           "text, or inline code"}


class _Generator(GenerateJsonSchema):
    """Callables as function references; Python-only values as 'anything'."""

    def callable_schema(self, schema: Any) -> dict[str, Any]:
        return dict(FUNCTION)

    def is_instance_schema(self, schema: Any) -> dict[str, Any]:
        return {}


def _model(kind: str) -> dict[str, Any]:
    if kind == "file_processing":
        from patterns._files.config import FileProcessingConfig

        return FileProcessingConfig.model_json_schema(schema_generator=_Generator)
    if kind == "etl":
        from patterns._etl.config import _MODE_ALIASES, ETLConfig, ETLMode

        out = ETLConfig.model_json_schema(schema_generator=_Generator)
        names = [m.value for m in ETLMode] + [m.name.lower() for m in ETLMode]
        out["$defs"]["ETLMode"]["enum"] = sorted({*names, *_MODE_ALIASES})
        return out
    if kind == "api":
        from patterns._api.config import APIOrchestrationConfig

        out = TypeAdapter(APIOrchestrationConfig).json_schema(schema_generator=_Generator)
        out["properties"]["input"] = {"description": "the run's input (FANOUT: the items)"}
        out["properties"]["output"] = {"type": "string",
                                       "description": "a JSON file the results are written to"}
        out["additionalProperties"] = False
        return out
    if kind == "fsm":
        from patterns._pipeline.kinds import FSM_KEYS

        props: dict[str, Any] = {key: {} for key in FSM_KEYS}
        props.update({
            "config": {"description": "an FSM config: a file path (YAML/JSON) or a mapping"},
            "input": {"type": "string", "description": "the input file (any format)"},
            "output": {"type": "string", "description": "the output file"},
            "functions": {"type": "object", "additionalProperties": FUNCTION},
            "chunk_size": {"type": "integer", "minimum": 1},
            "workers": {"type": "integer", "minimum": 1},
            "actors": {"type": "integer", "minimum": 1},
            "checkpoint_id": {"type": "string"},
            "error_threshold": {"type": "number", "minimum": 0},
            "local": {"type": "boolean"},
        })
        return {"title": "FSM job", "type": "object", "properties": props,
                "required": ["config", "input", "output"], "additionalProperties": False}
    raise ValueError(f"no schema for kind {kind!r}")


def _retry() -> dict[str, Any]:
    from patterns._recovery.config import RetryConfig

    out = RetryConfig.model_json_schema(schema_generator=_Generator)
    out["description"] = "retry the whole job (RetryConfig fields)"
    return out


def kind_schema(kind: str, defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The schema of a pipeline file holding one job of ``kind`` (``steps``: several jobs).
    With ``defs``, shared definitions are moved there instead of the schema's ``$defs``."""
    own = defs if defs is not None else {}
    if kind == "steps":
        step_kinds = ("file_processing", "fsm", "etl", "api")
        steps = [kind_schema(k, own) for k in step_kinds]
        out: dict[str, Any] = {
            "title": "steps pipeline", "type": "object", "additionalProperties": False,
            "required": ["kind", "steps"],
            "properties": {"kind": {"const": "steps"}, "name": {"type": "string"},
                           "steps": {"type": "array", "minItems": 1,
                                     "items": {"oneOf": steps}}}}
    else:
        out = _model(kind)
        own.update(out.pop("$defs", {}))
        out["properties"] = {"kind": {"const": kind}, "name": {"type": "string"},
                             "retry": _retry_ref(own), **out["properties"]}
        out["required"] = sorted({"kind", *out.get("required", [])})
    if defs is None and own:
        out["$defs"] = own
    return out


def _retry_ref(defs: dict[str, Any]) -> dict[str, Any]:
    if "RetryConfig" not in defs:
        schema = _retry()
        defs.update(schema.pop("$defs", {}))
        defs["RetryConfig"] = schema
    return {"$ref": "#/$defs/RetryConfig"}


def pipeline_schema() -> dict[str, Any]:
    """One schema for every pipeline file: a job of one of the kinds, or ``steps``."""
    defs: dict[str, Any] = {}
    kinds = [kind_schema(k, defs) for k in ("file_processing", "fsm", "etl", "api", "steps")]
    legacy = {"type": "object", "required": ["file_processing"],
              "properties": {"file_processing": {"$ref": "#/$defs/FileProcessingJob"}}}
    defs["FileProcessingJob"] = dict(kinds[0])
    defs["FileProcessingJob"]["required"] = [r for r in kinds[0]["required"] if r != "kind"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "fsm-actors pipeline file", "oneOf": [*kinds, legacy], "$defs": defs}
