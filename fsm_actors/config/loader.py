"""``load_config``: read a config from a dict, a YAML file or a JSON file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from fsm_actors.config.checks import join_path
from fsm_actors.config.models import FSMConfig
from fsm_actors.platform.errors import FSMConfigError

_SUFFIXES = (".yaml", ".yml", ".json")


def load_config(source: str | Path | Mapping[str, Any] | FSMConfig) -> FSMConfig:
    """Load and check a config; an ``FSMConfig`` is returned as is.

    ``source`` is a mapping, or the path of a ``.yaml``/``.yml``/``.json`` file. Raises
    ``FSMConfigError`` naming the file and key path for anything wrong: unreadable file,
    unknown key, bad value, missing or extra start state, unknown arc target, duplicate
    name.
    """
    if isinstance(source, FSMConfig):
        return source
    if isinstance(source, Mapping):
        raw, where = dict(source), None
    elif not isinstance(source, str | Path):
        raise FSMConfigError(
            f"a config must be a mapping (a dict with 'name' and 'states', or 'networks'), "
            f"the path of a .yaml/.yml/.json file, or an FSMConfig; got a "
            f"{type(source).__name__}"
            + (" (did you pass the list of states? put it under 'states:')"
               if isinstance(source, list) else "")
        )
    else:
        where = str(source)
        raw = _read(Path(source))
    try:
        return FSMConfig.model_validate(raw, context={"source": where})
    except PydanticValidationError as exc:
        raise _config_error(exc, raw, where) from None


def _read(path: Path) -> Any:
    if path.suffix.lower() not in _SUFFIXES:
        raise FSMConfigError(
            f"unsupported config file type '{path.suffix}'; use {', '.join(_SUFFIXES)}",
            source=str(path),
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FSMConfigError(f"cannot read the config: {exc.strerror}", source=str(path)) from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            raw = yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise FSMConfigError(f"cannot parse the config: {exc}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise FSMConfigError(
            f"the config must be a mapping at the top level, not {type(raw).__name__}",
            source=str(path),
        )
    return raw


def _config_error(exc: PydanticValidationError, raw: Any, where: str | None) -> FSMConfigError:
    """One ``FSMConfigError`` for all of pydantic's errors, each under its key path as
    written in the source. Of a union's per-member errors, a specific one (a failed check,
    or an error deeper inside the value) hides the "wrong type" ones."""
    by_path: dict[str, list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        by_path.setdefault(_written_path(raw, error["loc"]), []).append(error)
    # a union reports a mismatch at the value and the real problem inside it: keep the latter
    deepest = {
        path: errors
        for path, errors in by_path.items()
        if not any(other.startswith((f"{path}.", f"{path}[")) for other in by_path if path)
    }
    problems = {path: _describe(errors) for path, errors in deepest.items()}
    first = next(iter(problems))
    if len(problems) == 1:
        return FSMConfigError(problems[first], key_path=first or None, source=where)
    lines = [f"{path or '<top>'}: {text}" for path, text in problems.items()]
    return FSMConfigError(
        f"{len(problems)} invalid values:\n  " + "\n  ".join(lines),
        key_path=first or None,
        source=where,
    )


def _describe(errors: list[dict[str, Any]]) -> str:
    if errors[0]["type"] == "missing":
        return "missing required key"
    specific = [e for e in errors if not e["type"].endswith("_type")] or errors
    texts: list[str] = []
    for error in specific:
        text = error["msg"].removeprefix("Value error, ")
        if texts:
            text = text.removeprefix("Input should be ")
        if text not in texts:
            texts.append(text)
    return f"{' or '.join(texts)} (got {_short(specific[0].get('input'))})"


def _written_path(raw: Any, loc: tuple[str | int, ...]) -> str:
    path, node = "", raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path = join_path(path, str(part))
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path = join_path(path, part)
        elif isinstance(node, dict) and isinstance(part, str) and "[" not in part:
            # a missing key: say which one, unless it is a union member's name
            if not part[:1].isupper() and part not in ("str", "list", "dict", "int"):
                path = join_path(path, part)
                node = None
    return path


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
