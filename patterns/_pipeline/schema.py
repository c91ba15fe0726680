"""JSON schemas of pipeline files: one per registered kind, and one for any pipeline file.

Generated from each kind's config model (``PipelineKind.json_schema``), so the schema and
the loader cannot drift: a function-valued field (transformations, filters, parsers) is a
string there (a dotted path, ``lambda`` text or inline code, as pipeline files write them).
Every job also takes ``kind``, ``name``, ``description``, ``retry`` (``RetryConfig``
fields), ``options`` and ``error_handling``. The schema of any pipeline file discriminates
on ``kind`` (``if``/``then`` per kind), so a validator reports the misspelled key of the
kind the file declares instead of "matches none of the kinds". Plain core.
"""

from __future__ import annotations

from typing import Any

from patterns._pipeline.generator import model_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"
#: kinds whose files may live on an object store: ``storage:`` holds its filesystem's arguments
STORAGE_KINDS = ("file_processing", "etl")
STORAGE = {"type": "object",
           "description": "arguments of the object store's filesystem (pyarrow.fs; for s3:// "
                          "access_key, secret_key, endpoint_override, region, ...); values may "
                          "be ${ENV} references; never shown in logs or errors"}


def _common(defs: dict[str, Any]) -> dict[str, Any]:
    """The keys every job takes besides its kind's own."""
    from patterns._pipeline.options import ErrorHandling, JobOptions
    from patterns._recovery.policy_config import RetryConfig

    out: dict[str, Any] = {"name": {"type": "string"}, "description": {"type": "string"}}
    for key, model, what in (
        ("retry", RetryConfig, "retry the whole job (RetryConfig fields)"),
        ("options", JobOptions, "batch size, workers, memory bound, streaming reads"),
        ("error_handling", ErrorHandling, "the retry policy of the job's tasks, and what a "
                                          "task that still fails does"),
    ):
        title = model.__name__
        if title not in defs:
            schema = model_schema(model)
            defs.update(schema.pop("$defs", {}))
            schema["description"] = what
            defs[title] = schema
        out[key] = {"$ref": f"#/$defs/{title}"}
    return out


def _refuse(common: dict[str, Any], unsupported: Any) -> None:
    """What the kind refuses is refused by its schema too, with the reason as description."""
    for key in ("options", "error_handling"):
        if key in unsupported:
            common[key] = {"not": {}, "description": f"not supported: {unsupported[key]}"}
            continue
        names = sorted(k.split(".", 1)[1] for k in unsupported if k.startswith(key + "."))
        if names:
            common[key] = {
                "allOf": [common[key]],
                "propertyNames": {"not": {"enum": names}},
                "description": "; ".join(f"{n}: not supported: {unsupported[f'{key}.{n}']}"
                                         for n in names),
            }


def _def_name(kind: str) -> str:
    return "Job_" + kind


def kind_schema(name: str, defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The schema of a pipeline file holding one job of kind ``name`` (``steps``: several
    jobs). With ``defs``, shared definitions go there instead of the schema's ``$defs``."""
    from patterns._pipeline.registry import get_kind

    own = defs if defs is not None else {}
    kind = get_kind(name)
    out = kind.json_schema()
    own.update(out.pop("$defs", {}))
    out.pop("$schema", None)
    props = out.setdefault("properties", {})
    if kind.expand is not None:
        from patterns._pipeline.kind_steps import step_kinds

        props["steps"]["items"] = by_kind(step_kinds(), own)
    common = _common(own)
    _refuse(common, kind.unsupported)
    if name in STORAGE_KINDS:
        common["storage"] = STORAGE
    out["properties"] = {"kind": {"const": name}, **common, **props}
    out["required"] = sorted({"kind", *out.get("required", [])})
    out.setdefault("type", "object")
    if defs is None:
        out = {"$schema": DRAFT, **out}
        if own:
            out["$defs"] = own
    return out


def by_kind(names: tuple[str, ...], defs: dict[str, Any]) -> dict[str, Any]:
    """A job of one of ``names``, chosen by its ``kind`` (one ``if``/``then`` per kind)."""
    branches = []
    for name in names:
        if _def_name(name) not in defs:
            defs[_def_name(name)] = {}  # reserved: a kind's schema may refer to itself
            defs[_def_name(name)] = kind_schema(name, defs)
        branches.append({"if": {"properties": {"kind": {"const": name}}, "required": ["kind"]},
                         "then": {"$ref": f"#/$defs/{_def_name(name)}"}})
    return {"type": "object", "required": ["kind"],
            "properties": {"kind": {"enum": list(names)}}, "allOf": branches}


def pipeline_schema() -> dict[str, Any]:
    """One schema for every pipeline file: a job of a registered kind (``kind:``), or a
    file-processing job under a top-level ``file_processing:`` key."""
    from patterns._pipeline.registry import kind_names

    defs: dict[str, Any] = {}
    jobs = by_kind(kind_names(), defs)
    legacy = dict(defs[_def_name("file_processing")])
    legacy["required"] = [r for r in legacy["required"] if r != "kind"]
    defs["FileProcessingJob"] = legacy
    return {
        "$schema": DRAFT, "title": "fsm-actors pipeline file", "type": "object",
        "if": {"required": ["kind"]}, "then": jobs,
        "else": {"required": ["file_processing"], "additionalProperties": False,
                 "properties": {"file_processing": {"$ref": "#/$defs/FileProcessingJob"}}},
        "$defs": defs,
    }
