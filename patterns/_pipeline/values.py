"""Values in pipeline files: relative paths, ``${...}`` references and inline functions.

``${ENV_VAR}`` is the environment variable's value and ``${file:PATH}`` a file's contents
(credentials stay out of the file); ``${steps.NAME.KEY}`` is a key of an earlier step's
result. A reference that cannot be resolved is an error naming it (never its value).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from patterns.errors import PatternError

SCOPE = {"pa": pa, "pc": pc, "re": re, "math": math, "json": json, "datetime": datetime}
_REF = re.compile(r"\$\{([^}]+)\}")


def relative(base: Path, value: Any) -> Any:
    """``value`` (a path or a list of paths) made relative to ``base`` unless absolute."""
    if isinstance(value, list):
        return [relative(base, v) for v in value]
    if not isinstance(value, str) or "://" in value or os.path.isabs(value):
        return value
    return str(base / value)


def substitute(value: Any, where: str, steps: dict[str, dict[str, Any]] | None = None) -> Any:
    """``value`` with every ``${...}`` reference resolved, recursively; with ``steps=None``
    the ``${steps...}`` references are left for run time."""
    if isinstance(value, dict):
        return {k: substitute(v, loc(where, str(k)), steps) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, f"{where}[{i}]", steps) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole:  # a value that is only a reference keeps the referenced type
        return _lookup(whole.group(1), where, steps)
    return _REF.sub(lambda m: str(_lookup(m.group(1), where, steps)), value)


def _lookup(ref: str, where: str, steps: dict[str, dict[str, Any]] | None) -> Any:
    ref = ref.strip()
    if ref.startswith("steps.") and steps is None:  # resolved when the step runs
        return "${" + ref + "}"
    if ref.startswith("steps."):
        parts = ref.split(".", 2)
        if steps is None or len(parts) < 3 or parts[1] not in steps:
            known = ", ".join(steps or {}) or "none yet"
            raise PatternError(f"{where}: ${{{ref}}} names no earlier step (earlier: {known})")
        result = steps[parts[1]]
        if parts[2] not in result:
            raise PatternError(
                f"{where}: step {parts[1]!r} has no result key {parts[2]!r}; it has "
                f"{', '.join(sorted(result))}"
            )
        return result[parts[2]]
    if ref.startswith("file:"):
        path = Path(ref[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PatternError(
                f"{where}: cannot read {path} for ${{file:...}}: {exc.strerror}"
            ) from None
    if ref not in os.environ:
        raise PatternError(f"{where}: environment variable {ref} is not set; export it")
    return os.environ[ref]


def loc(where: str, key: str) -> str:
    """``where`` (a file, or ``file: steps[i]``) and a key within it, for messages."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def function(item: Any, where: str) -> Any:
    """A function from a pipeline file: a lambda or code string, a dotted path, or a mapping
    (``vectorized``, ``expression``, ``columns``); callables pass through."""
    if callable(item):
        return item
    if isinstance(item, dict):
        from patterns._records import Vectorized

        if "vectorized" in item:
            return Vectorized(function(item["vectorized"], where))
        if "expression" in item:
            return evaluate(item["expression"], where)
        if "columns" in item:
            return {name: evaluate(expr, where) for name, expr in item["columns"].items()}
        raise PatternError(
            f"{where}: a mapping needs 'vectorized', 'expression' or 'columns', got {sorted(item)}"
        )
    if not isinstance(item, str):
        raise PatternError(f"{where}: expected a lambda string or a dotted path, got {item!r}")
    # the project's one resolver (fsm_actors.engine.functions): lambdas, dotted paths, code
    from fsm_actors.engine.functions import resolve_function
    from fsm_actors.platform.errors import FSMConfigError

    try:
        return resolve_function(item.strip(), scope=dict(SCOPE), where=where)
    except FSMConfigError as exc:
        raise PatternError(f"{where}: {exc.message}") from exc


def evaluate(code: str, where: str) -> Any:
    """A Python expression with ``SCOPE`` in scope (pipeline files are code)."""
    try:
        return eval(compile(code, where, "eval"), dict(SCOPE))  # noqa: S307 - pipeline files are code
    except SyntaxError as exc:
        raise PatternError(f"{where}: syntax error in {code!r}: {exc.msg}") from exc


def output_base(base: Path) -> Path:
    """Where relative output paths of a pipeline file in ``base`` resolve: ``base``, or
    the file's folder on the machine it was submitted from (``storage.OUTPUT_BASE_ENV``,
    set by ``fsm-actors submit`` for a head on that machine)."""
    from fsm_actors.platform.io.storage import OUTPUT_BASE_ENV

    given = os.environ.get(OUTPUT_BASE_ENV)
    return Path(given) if given else base


def storage_config(value: Any, where: str) -> Any:
    """A job's ``storage:`` mapping as ``StorageOptions`` (never shown in reprs or errors);
    ``PatternError`` for anything else."""
    from fsm_actors.platform.io.storage import StorageOptions

    if not isinstance(value, dict):
        raise PatternError(f"{where}: storage: a mapping of the object store's filesystem "
                           "arguments is needed (e.g. region: eu-west-1, endpoint_override: "
                           f"host:port), got {type(value).__name__}")
    return StorageOptions(value)
