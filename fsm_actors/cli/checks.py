"""Every problem ``validate`` can see in a file, each at its line, before anything runs.

The config loader stops at its first error; these checks walk the whole file first, so a
file with three mistakes gets three lines: inline code that does not compile (lambdas,
conditions, code blocks: the line of the key plus the line within the code), arcs naming a
state that does not exist, and ``${...}`` references (an unset environment variable, a
``${file:PATH}`` that is not there, a ``${`` never closed). ``${steps.…}`` references are a
run's own and are left alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fsm_actors.cli.documents import at, key_line

#: keys whose string values are functions (inline code, or the name of one)
FUNCTION_KEYS = {"transforms", "transform", "validators", "validator", "pre_validators",
                 "pre_validate", "validate", "condition", "pre_test", "test", "code"}
#: keys whose value is an expression even without ``lambda``
EXPRESSION_KEYS = {"condition", "pre_test", "test"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_REF = re.compile(r"\$\{([^}]*)\}")


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``(key path, value)`` of every scalar in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, (*path, i))
    else:
        yield path, value


def _function_key(path: tuple[Any, ...]) -> str | None:
    for part in reversed(path):
        if isinstance(part, str):
            return part if part in FUNCTION_KEYS else None
    return None


def code_problems(file: Path, spec: dict[str, Any]) -> list[str]:
    """Inline code of an FSM config that does not compile, each at its line."""
    found = []
    for path, value in walk(spec):
        key = _function_key(path)
        if key is None or not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        block = "\n" in text and not text.startswith("lambda")
        if not (text.startswith("lambda") or block or key in EXPRESSION_KEYS or key == "code"):
            continue  # the name of a registered function, or an import path
        if not block and _NAME.fullmatch(text):
            continue
        try:
            compile(text, str(file), "exec" if block else "eval")
        except SyntaxError as exc:
            line = key_line(file, list(path))
            if line and block and exc.lineno:
                line += exc.lineno  # a block scalar starts on the line after its key
            where = f"{file}:{line}" if line else str(file)
            column = f" (column {exc.offset})" if exc.offset and not block else ""
            found.append(f"{where}: {_join(path)}: {exc.msg}{column} in {text.splitlines()[0]!r}")
    return found


def arc_problems(file: Path, spec: dict[str, Any]) -> list[str]:
    """Arcs whose ends name no state of their network."""
    found = []
    networks: list[tuple[tuple[Any, ...], dict[str, Any]]] = [((), spec)]
    for i, net in enumerate(spec.get("networks") or []):
        if isinstance(net, dict):
            networks.append((("networks", i), net))
    for base, net in networks:
        states = [s for s in net.get("states") or [] if isinstance(s, dict)]
        names = {str(s.get("name")) for s in states}
        if not names:
            continue
        ends: list[tuple[tuple[Any, ...], Any]] = []
        for i, arc in enumerate(net.get("arcs") or []):
            if isinstance(arc, dict) and not arc.get("target_network"):
                ends += [((*base, "arcs", i, end), arc.get(end)) for end in ("from", "to")
                         if end in arc]
        for i, state in enumerate(net.get("states") or []):
            for j, arc in enumerate(state.get("arcs") or [] if isinstance(state, dict) else []):
                if isinstance(arc, dict) and "target" in arc and not arc.get("target_network"):
                    ends.append(((*base, "states", i, "arcs", j, "target"), arc["target"]))
        for path, name in ends:
            if str(name) not in names:
                found.append(at(file, list(path), f"no state named {name!r} (states: "
                                                  f"{', '.join(sorted(names))})"))
    return found


def reference_problems(file: Path, spec: dict[str, Any]) -> list[str]:
    """``${VAR}`` / ``${file:PATH}`` references that cannot be resolved, and unclosed ``${``."""
    found = []
    for path, value in walk(spec):
        if not isinstance(value, str) or "${" not in value:
            continue
        where = list(path)
        if value.count("${") > len(_REF.findall(value)):
            found.append(at(file, where, f"'${{' is never closed in {value!r}: write ${{NAME}}"))
        for ref in (r.strip() for r in _REF.findall(value)):
            if ref.startswith("steps."):
                continue
            if ref.startswith("file:"):
                target = Path(os.path.expanduser(ref[5:]))
                if not target.is_absolute():
                    target = file.parent / target
                if not target.is_file():
                    found.append(at(file, where, f"${{{ref}}}: no file {target}"))
            elif ref not in os.environ:
                found.append(at(file, where, f"environment variable {ref} is not set; export "
                                             "it before the run"))
    return found


def fsm_problems(file: Path, spec: dict[str, Any]) -> list[str]:
    """Everything these checks find in the FSM config ``spec`` read from ``file``."""
    return code_problems(file, spec) + arc_problems(file, spec) + reference_problems(file, spec)


def _join(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
