"""Request templates: ``{dotted.path}`` placeholders filled from the input and earlier results.

A template string is compiled once (``compile_value``) and rendered per call. Placeholder
roots, in the order they are looked up: ``input`` (the endpoint's input), ``results`` (the
results of the endpoints that ran before), ``item`` (FANOUT: the current input item; for a
mapping item its keys are roots too), then a key of the input mapping, then an endpoint name.
Segments after the root index mappings by key and sequences by number (``{auth.items.0.id}``);
a format spec works as in ``str.format`` (``{n:05d}``); ``{{`` and ``}}`` are literal braces.
A string that is exactly one placeholder renders to the value itself (a number stays a
number in a JSON body). In a URL, filled values are percent-quoted unless the placeholder is
the whole URL. Dicts and lists are rendered recursively; a callable is called as
``fn(input, results)``; a ``Literal`` is used as it is.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

_FORMATTER = string.Formatter()
_MISSING = object()
#: ``Scope.item`` when the call has no FANOUT item.
NO_ITEM: Any = _MISSING


class TemplateError(LookupError):
    """A placeholder could not be filled (``path`` names it) or a template is malformed."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class Literal:
    """A value used as it is, never read as a template (e.g. a GraphQL query's braces)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self):
        return (Literal, (self.value,))


class Scope:
    """What placeholders see for one call."""

    __slots__ = ("input", "results", "item")

    def __init__(self, input: Any, results: Mapping[str, Any], item: Any = _MISSING) -> None:
        self.input = input
        self.results = results
        self.item = item

    def root(self, name: str) -> Any:
        if name == "input":
            return self.input
        if name == "results":
            return self.results
        if self.item is not _MISSING:
            if name == "item":
                return self.item
            if isinstance(self.item, Mapping) and name in self.item:
                return self.item[name]
        if isinstance(self.input, Mapping) and name in self.input:
            return self.input[name]
        if name in self.results:
            return self.results[name]
        return _MISSING


def _step(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(key, _MISSING)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes) and key.lstrip("-").isdigit():
        index = int(key)
        return value[index] if -len(value) <= index < len(value) else _MISSING
    return getattr(value, key, _MISSING) if not key.startswith("_") else _MISSING


class _Field:
    __slots__ = ("path", "spec", "conversion", "text")

    def __init__(self, name: str, spec: str, conversion: str | None) -> None:
        self.text = name
        self.path = tuple(name.replace("[", ".").replace("]", "").split("."))
        if not all(self.path):
            raise TemplateError(f"placeholder {{{name}}} has an empty segment", name)
        self.spec = spec
        self.conversion = conversion

    def value(self, scope: Scope) -> Any:
        value = scope.root(self.path[0])
        for key in self.path[1:]:
            if value is _MISSING:
                break
            value = _step(value, key)
        if value is _MISSING:
            raise TemplateError(f"placeholder {{{self.text}}} has no value", self.text)
        if self.conversion == "r":
            value = repr(value)
        elif self.conversion in ("s", "a"):
            value = str(value) if self.conversion == "s" else ascii(value)
        return value

    def text_value(self, scope: Scope) -> str:
        value = self.value(scope)
        return format(value, self.spec) if self.spec else str(value)


class Template:
    """One compiled template string."""

    __slots__ = ("source", "parts", "whole", "url")

    def __init__(self, source: str, *, url: bool = False) -> None:
        self.source = source
        self.url = url
        parts: list[str | _Field] = []
        try:
            for literal, name, spec, conversion in _FORMATTER.parse(source):
                if literal:
                    parts.append(literal)
                if name is not None:
                    if not name:
                        raise TemplateError(f"template {source!r} has an empty placeholder {{}}")
                    parts.append(_Field(name, spec or "", conversion))
        except ValueError as exc:
            raise TemplateError(f"template {source!r} is malformed: {exc}") from None
        self.parts = parts
        self.whole = parts[0] if len(parts) == 1 and isinstance(parts[0], _Field) else None

    @property
    def fields(self) -> list[str]:
        return [p.text for p in self.parts if isinstance(p, _Field)]

    def render(self, scope: Scope) -> Any:
        if self.whole is not None and not self.whole.spec:
            value = self.whole.value(scope)
            return str(value) if self.url else value
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif self.url:
                out.append(quote(part.text_value(scope), safe=""))
            else:
                out.append(part.text_value(scope))
        return "".join(out)


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, scope: Scope) -> Any:
        return self.value


class _Call:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any, Mapping[str, Any]], Any]) -> None:
        self.fn = fn

    def render(self, scope: Scope) -> Any:
        return self.fn(scope.input, scope.results)


class _Dict:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self.items = items

    def render(self, scope: Scope) -> Any:
        return {k.render(scope): v.render(scope) for k, v in self.items}


class _List:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def render(self, scope: Scope) -> Any:
        return [v.render(scope) for v in self.items]


Renderer = Template | _Const | _Call | _Dict | _List
_NONE = _Const(None)


def compile_value(value: Any, *, url: bool = False) -> Renderer:
    """A renderer of ``value`` (a template string, a callable, or a structure of them).

    Raises ``TemplateError`` for a malformed template string."""
    if value is None:
        return _NONE
    if type(value) is str and "{" not in value and "}" not in value:
        return _Const(value)  # no placeholder, no brace: nothing to parse
    if isinstance(value, Literal):
        return _Const(value.value)
    if isinstance(value, str):
        template = Template(value, url=url)
        # no placeholder: the text itself, with escaped braces ({{ }}) made plain
        return template if template.fields else _Const("".join(template.parts))  # type: ignore[arg-type]
    if callable(value):
        return _Call(value)
    if isinstance(value, Mapping):
        items = [(compile_value(k), compile_value(v)) for k, v in value.items()]
        if all(isinstance(k, _Const) and isinstance(v, _Const) for k, v in items):
            return _Const({k.value: v.value for k, v in items})  # type: ignore[union-attr]
        return _Dict(items)
    if isinstance(value, list | tuple):
        rendered = [compile_value(v) for v in value]
        if all(isinstance(v, _Const) for v in rendered):
            return _Const([v.value for v in rendered])  # type: ignore[union-attr]
        return _List(rendered)
    return _Const(value)


def constant(renderer: Renderer) -> tuple[bool, Any]:
    """``(True, value)`` for a renderer whose value needs no scope (no placeholder, no
    callable), else ``(False, None)``."""
    if isinstance(renderer, _Const):
        return True, renderer.value
    return False, None


def placeholders(renderer: Renderer) -> list[str]:
    """Every placeholder of a compiled value (callables are opaque)."""
    if isinstance(renderer, Template):
        return renderer.fields
    if isinstance(renderer, _Dict):
        return [f for k, v in renderer.items for f in (*placeholders(k), *placeholders(v))]
    if isinstance(renderer, _List):
        return [f for v in renderer.items for f in placeholders(v)]
    return []
