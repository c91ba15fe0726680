"""``kind: api``: an ``APIOrchestrationConfig`` run by ``APIOrchestrator``; ``output`` is a
JSON file the results are written to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patterns._pipeline.registry import PipelineKind, RunContext, register_kind
from patterns._pipeline.values import function, loc, output_base, relative

ENDPOINT_FUNCTIONS = ("transform", "response_parser", "transform_input", "error_handler",
                      "condition")


def prepare(job: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """``output``/``sink`` relative to the pipeline file; endpoint functions resolved."""
    for key in ("output", "sink"):
        if job.get(key) is not None:
            job[key] = relative(output_base(base), job[key])
    endpoints = []
    for i, endpoint in enumerate(job.get("endpoints") or []):
        endpoint = dict(endpoint) if isinstance(endpoint, dict) else endpoint
        if isinstance(endpoint, dict):
            for key in ENDPOINT_FUNCTIONS:
                if isinstance(endpoint.get(key), str):
                    endpoint[key] = function(endpoint[key],
                                             loc(where, f"endpoints[{i}].{key}"))
        endpoints.append(endpoint)
    job["endpoints"] = endpoints
    return job


def build(job: dict[str, Any], where: str) -> Any:
    from patterns.api_orchestration import APIOrchestrationConfig

    return APIOrchestrationConfig.from_dict(
        {k: v for k, v in job.items() if k not in ("input", "output")})


def schema() -> dict[str, Any]:
    from pydantic import TypeAdapter

    from patterns._api.config import APIOrchestrationConfig
    from patterns._pipeline.generator import Generator

    out = TypeAdapter(APIOrchestrationConfig).json_schema(schema_generator=Generator)
    out["properties"]["input"] = {"description": "the run's input (FANOUT: the items)"}
    out["properties"]["output"] = {"type": "string",
                                   "description": "a JSON file the results are written to"}
    out["additionalProperties"] = False
    endpoint = out.get("$defs", {}).get("APIEndpoint")
    if endpoint is not None:  # APIEndpoint.from_dict refuses unknown keys; so does the schema
        endpoint["properties"]["path"] = {
            "type": "string", "description": "the URL relative to base_url (instead of url)"}
        endpoint["required"] = [r for r in endpoint.get("required", []) if r != "url"]
        endpoint["additionalProperties"] = False
        # the model takes endpoint objects or mappings; a file writes mappings: endpoints
        out["properties"]["endpoints"]["items"] = {"$ref": "#/$defs/APIEndpoint"}
    return out


async def run(spec: dict[str, Any], config: Any, context: RunContext) -> dict[str, Any]:
    from fsm_actors.platform.io import atomic_write
    from patterns.api_orchestration import APIOrchestrator

    results = await APIOrchestrator(config, address=context.address).orchestrate(
        spec.get("input"))
    output = spec.get("output")
    if output:
        data = json.dumps(results, default=str, ensure_ascii=False, indent=2).encode()
        atomic_write(output, lambda tmp: tmp.write_bytes(data))
    errors = results.get("errors") or {}
    return {
            "results": results,
            "errors": sum(len(v) if isinstance(v, list) else 1 for v in errors.values()),
            "output_path": str(output) if output else None,
            "endpoints": len(config.endpoints),
    }


#: what this kind cannot honour, and why (a pipeline file giving it is refused)
UNSUPPORTED = {
    "options.memory_limit": ("an API job moves no file batches; bound the work with "
            "max_concurrent"),
    "options.stream": ("an API job moves no file batches"),
    "options.buffer_size": ("an API job moves no file batches"),
    "options.backpressure": ("an API job moves no file batches"),
    "error_handling": ("API calls take retry_config and timeout per endpoint (or the "
            "config's timeout); set those"),
}


register_kind(PipelineKind(
    name="api", unsupported=UNSUPPORTED,
    option_fields={"batch_size": "batch_size", "parallel_workers": "workers"},
    run=run, build=build, prepare=prepare, schema=schema,
    description="call HTTP endpoints (sequential, parallel, fan-out, pipelined)",
))
