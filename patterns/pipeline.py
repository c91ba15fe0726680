"""Pipeline files: a YAML or JSON file that declares a file-processing job.

::

    kind: file_processing            # or a top-level ``file_processing:`` mapping
    input_path: data/*.csv           # relative paths are relative to this file
    output_path: out/clean.jsonl
    mode: stream
    transformations:
      - "lambda r: {**r, 'total': r['price'] * r['qty']}"   # inline lambda
      - mypackage.cleaning.normalize                          # dotted path (or module:attr)
      - {vectorized: mypackage.fast.add_columns}              # takes and returns a pyarrow.Table
    filters:
      - "lambda r: r['active']"
      - {expression: "pc.field('total') > 100"}               # a pyarrow compute expression
    aggregations: {rows: count, revenue: "sum:total"}
    error_threshold: 0.01

Every other key is a ``FileProcessingConfig`` field. Inline code is evaluated with ``pa``
(pyarrow), ``pc`` (pyarrow.compute), ``re``, ``math``, ``json`` and ``datetime`` in scope: a
pipeline file is code, run it only from sources you trust.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import ValidationError

from patterns._files.config import FileProcessingConfig
from patterns._files.functions import Vectorized
from patterns.errors import PatternError

_SCOPE = {"pa": pa, "pc": pc, "re": re, "math": math, "json": json, "datetime": datetime}
_PATH_KEYS = ("output_path", "error_file", "checkpoint_dir")


def load_pipeline_file(path: str | os.PathLike) -> FileProcessingConfig:
    """The job declared in ``path``; raises ``PatternError`` naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        spec = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PatternError(f"{path}: cannot read pipeline file: {exc}", file=str(path)) from exc
    job = _job_section(spec, path)
    base = path.parent
    fields: dict[str, Any] = {}
    for key, value in job.items():
        if key in ("kind", "name", "description"):
            continue
        if key == "input_path":
            value = (
                [_relative(base, v) for v in value]
                if isinstance(value, list)
                else _relative(base, value)
            )
        elif key in _PATH_KEYS and value is not None:
            value = _relative(base, value)
        elif key in ("transformations", "filters"):
            value = [_function(item, f"{path}: {key}[{i}]") for i, item in enumerate(value or [])]
        elif key == "validation_schema" and isinstance(value, str):
            value = _function(value, f"{path}: validation_schema")
        fields[key] = value
    try:
        return FileProcessingConfig(**fields)
    except ValidationError as exc:
        raise PatternError(f"{path}: invalid file_processing job: {exc}", file=str(path)) from exc


def run_pipeline_file(
    path: str | os.PathLike,
    on_progress: Callable[[Any], Any] | None = None,
    *,
    address: str | None = None,
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """Load and run the job in ``path``; returns ``FileProcessor``'s result dict."""
    from patterns.file_processing import FileProcessor

    config = load_pipeline_file(path)
    return FileProcessor(config, address=address).run(checkpoint_id, on_progress)


def _job_section(spec: Any, path: Path) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise PatternError(f"{path}: expected a mapping at the top level", file=str(path))
    if isinstance(spec.get("file_processing"), dict):
        return spec["file_processing"]
    if spec.get("kind") == "file_processing":
        return spec
    raise PatternError(
        f"{path}: no file-processing job: set 'kind: file_processing' or put the job under a "
        "'file_processing:' key",
        file=str(path),
    )


def _relative(base: Path, value: str) -> str:
    return value if os.path.isabs(value) else str(base / value)


def _function(item: Any, where: str) -> Any:
    if isinstance(item, dict):
        if "vectorized" in item:
            return Vectorized(_function(item["vectorized"], where))
        if "expression" in item:
            return _eval(item["expression"], where)
        if "columns" in item:
            return {name: _eval(expr, where) for name, expr in item["columns"].items()}
        raise PatternError(
            f"{where}: a mapping needs 'vectorized', 'expression' or 'columns', got {sorted(item)}"
        )
    if not isinstance(item, str):
        raise PatternError(f"{where}: expected a lambda string or a dotted path, got {item!r}")
    # the project's one resolver (fsm_actors.engine.functions): lambdas, dotted paths, code
    from fsm_actors.engine.functions import resolve_function
    from fsm_actors.errors import FSMConfigError

    try:
        return resolve_function(item.strip(), scope=dict(_SCOPE), where=where)
    except FSMConfigError as exc:
        raise PatternError(f"{where}: {exc.message}") from exc


def _eval(code: str, where: str) -> Any:
    try:
        return eval(compile(code, where, "eval"), dict(_SCOPE))  # noqa: S307 - pipeline files are code
    except SyntaxError as exc:
        raise PatternError(f"{where}: syntax error in {code!r}: {exc.msg}") from exc
