"""Reading the YAML/JSON files the command line is given, and saying where a problem is.

A file that does not parse is reported as ``FILE:LINE:COLUMN: what is wrong``; a problem
with a key is reported at the key's line (``FILE:LINE: key.path: what is wrong``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import yaml


class UserError(click.ClickException):
    """A mistake in what the user gave: printed as is (no "Error:" prefix, no traceback)."""

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


def read_document(path: Path) -> dict[str, Any]:
    """The mapping in a YAML or JSON file; ``UserError`` with line and column otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            what = " ".join(filter(None, [exc.problem, f"({exc.context})" if exc.context else ""]))
            raise UserError(f"{where}: {what or 'not valid YAML'}") from None
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(
            f"{path}:1:1: expected a mapping (key: value) at the top level, "
            f"not {type(data).__name__}"
        )
    return data


def key_line(path: Path, key_path: str | list[Any] | tuple[Any, ...] | None) -> int | None:
    """The line (1-based) of ``key_path`` (``"a.b[2].c"`` or a tuple of parts) in ``path``.

    The deepest part of the path that exists in the file is used, so a missing key points at
    its parent. None when the file cannot be composed (JSON with tabs, say).
    """
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if node is None:
        return None
    parts = _split(key_path) if isinstance(key_path, str) or key_path is None else list(key_path)
    line = node.start_mark.line + 1
    for part in parts:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _split(key_path: str | None) -> list[Any]:
    parts: list[Any] = []
    for chunk in (key_path or "").replace("]", "").split("."):
        for i, piece in enumerate(chunk.split("[")):
            if piece:
                parts.append(int(piece) if i and piece.isdigit() else piece)
    return parts


def at(path: Path, key_path: Any, message: str) -> str:
    """``FILE:LINE: key.path: message`` (without the line when it cannot be found)."""
    line = key_line(path, key_path)
    where = f"{path}:{line}" if line else str(path)
    shown = key_path if isinstance(key_path, str) else _join(key_path or ())
    return f"{where}: {shown}: {message}" if shown else f"{where}: {message}"


def _join(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def without_path(path: Path, message: str) -> str:
    """``message`` with a leading ``<path>:`` removed (errors of lower layers often name the
    file already; the command line names it once)."""
    prefixes = [str(path), path.name]
    try:
        prefixes.append(os.path.abspath(path))
    except OSError:  # the working directory is gone
        pass
    for prefix in prefixes:
        if message.startswith(prefix + ":"):
            return message[len(prefix) + 1 :].lstrip()
    return message


# -- what kind of file it is ----------------------------------------------------------------

FSM_KEYS = ("states", "networks", "main_network")


def pipeline_kinds() -> tuple[str, ...]:
    """Job kinds the pipeline-file loader runs (registered as ``"pipeline_files"``)."""
    from fsm_actors.platform.extensions import lookup

    return tuple(lookup("pipeline_files").kinds)


def document_kind(path: Path, spec: dict[str, Any]) -> str:
    """``"fsm"`` for an FSM config, else the pipeline kind; ``UserError`` for anything else."""
    kind = spec.get("kind")
    if kind is None:
        if isinstance(spec.get("file_processing"), dict):
            return "file_processing"
        if any(key in spec for key in FSM_KEYS):
            return "fsm_config"
        raise UserError(
            f"{path}:1:1: neither an FSM config (it has no 'states' or 'networks') nor a "
            f"pipeline file (it has no 'kind'; one of: {', '.join(pipeline_kinds())})"
        )
    kinds = pipeline_kinds()
    if kind not in kinds:
        raise UserError(at(path, "kind", f"unknown kind {kind!r}; this version runs "
                                         f"{', '.join(kinds)} pipeline files, or FSM configs "
                                         "(no 'kind')"))
    return str(kind)
