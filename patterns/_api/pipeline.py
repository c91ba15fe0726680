"""Pipeline files of kind ``api``: an orchestration declared in YAML or JSON.

::

    kind: api
    name: users
    mode: fanout                      # any OrchestrationMode
    base_url: https://api.example.com
    auth: {type: bearer, token_env: API_TOKEN}   # secrets from the environment
    rate_limit: 100
    endpoints:
      - {name: user, path: "/users/{item}", transform: "lambda r: r['name']"}
    input: [1, 2, 3]                  # the orchestrate() input, or:
    input_path: ids.jsonl             # FANOUT items read lazily (any fsm_actors.io format)
    sink: out/users.jsonl             # relative paths are relative to this file

Every other key is an ``APIOrchestrationConfig`` field; an endpoint's keys are
``APIEndpoint`` fields (``path`` joins ``base_url``). Function fields (``transform``,
``condition``, ``response_parser``, ``transform_input``, ``error_handler``,
``result_merger``, ``result_transformer``) are lambdas or dotted import paths, resolved by the
project's one resolver. A key ending in ``_env`` inside ``auth`` names the environment
variable that holds that credential. Mistakes raise ``APIConfigError`` naming the file and key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from patterns._api.config import APIEndpoint, APIOrchestrationConfig
from patterns._api.errors import APIConfigError

_ENDPOINT_FUNCTIONS = ("transform", "condition", "response_parser", "transform_input",
                       "error_handler")
_CONFIG_FUNCTIONS = ("result_merger", "result_transformer")
_PATH_KEYS = ("sink",)


def load_api_pipeline(spec: Mapping[str, Any], path: str | os.PathLike
                      ) -> tuple[APIOrchestrationConfig, Any]:
    """``(config, input)`` of the ``kind: api`` job ``spec`` read from ``path``."""
    where = str(path)
    base = Path(path).absolute().parent
    fields = {k: v for k, v in spec.items() if k not in ("kind", "description", "input",
                                                         "input_path")}
    if "input" in spec and "input_path" in spec:
        raise APIConfigError(f"{where}: give 'input' or 'input_path', not both")
    data: Any = spec.get("input")
    if "input_path" in spec:
        data = _records(_relative(base, spec["input_path"]))
    for key in _PATH_KEYS:
        if fields.get(key) is not None:
            fields[key] = str(_relative(base, fields[key]))
    for key in _CONFIG_FUNCTIONS:
        if key in fields:
            fields[key] = _function(fields[key], f"{where}: {key}")
    if "auth" in fields:
        fields["auth"] = _auth(fields["auth"], f"{where}: auth")
    endpoints = fields.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        raise APIConfigError(f"{where}: endpoints must be a non-empty list")
    fields["endpoints"] = [_endpoint(e, i, fields.get("base_url"), where)
                           for i, e in enumerate(endpoints)]
    try:
        return APIOrchestrationConfig.from_dict(fields), data
    except APIConfigError as exc:
        raise APIConfigError(f"{where}: {exc.message}", endpoint=exc.endpoint,
                             file=where) from None


def run_api_pipeline(spec: Mapping[str, Any], path: str | os.PathLike, *,
                     address: str | None = None) -> dict[str, Any]:
    """Load and run the job; ``APIOrchestrator.run``'s result dict."""
    from patterns._api.orchestrator import APIOrchestrator

    config, data = load_api_pipeline(spec, path)
    return APIOrchestrator(config, address=address).run(data)


def _endpoint(spec: Any, index: int, base_url: str | None, where: str) -> APIEndpoint:
    at = f"{where}: endpoints[{index}]"
    if not isinstance(spec, Mapping):
        raise APIConfigError(f"{at}: expected a mapping, got {type(spec).__name__}")
    data = dict(spec)
    for key in _ENDPOINT_FUNCTIONS:
        if key in data:
            data[key] = _function(data[key], f"{at}.{key}")
    if "auth" in data:
        data["auth"] = _auth(data["auth"], f"{at}.auth")
    try:
        return APIEndpoint.from_dict(data, base_url)
    except APIConfigError as exc:
        raise APIConfigError(f"{at}: {exc.message}", endpoint=exc.endpoint, file=where) from None


def _function(ref: Any, where: str) -> Any:
    from fsm_actors.engine.functions import resolve_function
    from fsm_actors.errors import FSMConfigError

    try:
        return resolve_function(ref, where=where)
    except FSMConfigError as exc:
        raise APIConfigError(f"{where}: {exc.message}") from None


def _auth(spec: Any, where: str) -> Any:
    if not isinstance(spec, Mapping):
        return spec
    out = {}
    for key, value in spec.items():
        if str(key).endswith("_env"):
            name = str(value)
            if name not in os.environ:
                raise APIConfigError(f"{where}.{key}: environment variable {name!r} is not set")
            out[str(key)[:-4]] = os.environ[name]
        else:
            out[key] = value
    return out


def _relative(base: Path, value: Any) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() else base / path


def _records(path: Path) -> Iterator[Any]:
    """The records of ``path``, read lazily; a text file gives one string per line."""
    from fsm_actors.io import FormatError, detect_format, read_record_batches

    try:
        text = detect_format(str(path)) in ("text", "log")
    except (FormatError, OSError) as exc:
        raise APIConfigError(f"input_path {str(path)!r}: {exc}", file=str(path)) from None

    def read() -> Iterator[Any]:
        for batch in read_record_batches(str(path)):
            for record in batch:
                yield record["text"] if text else record

    return read()
