"""The registry of pipeline-file kinds: a kind is one ``PipelineKind`` registered once.

A kind says how its mapping becomes the pattern's config (``prepare``: paths and functions
resolved; ``build``: the config object, by default ``model(**spec)``), what can be checked
before a run (``problems``), its JSON schema (``schema``, by default the model's) and how a
built job runs (``run``). The built-in kinds are the ``patterns._pipeline.kind_*`` modules;
other packages add kinds through the ``fsm_actors.pipeline_kinds`` entry points (each names a
module that calls ``register_kind`` when imported), or by calling ``register_kind``.
"""

from __future__ import annotations

import pkgutil
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from patterns.errors import PatternError

#: the entry-point group through which other packages add pipeline kinds
GROUP = "fsm_actors.pipeline_kinds"


@dataclass
class RunContext:
    """What a kind's ``run`` gets besides its spec and config."""

    on_progress: Callable[[Any], Any] | None = None
    address: str | None = None
    checkpoint_id: str | None = None
    #: the job's ``options:`` (``patterns._pipeline.options.JobOptions``) or ``None``
    options: Any = None
    #: the job's ``error_handling:`` (``patterns._pipeline.options.ErrorHandling``) or ``None``
    error_handling: Any = None


@dataclass(frozen=True)
class PipelineKind:
    """One kind of pipeline file.

    ``run(spec, config, context) -> result dict`` (a coroutine function) runs one built job.
    ``model``: the config model (a pydantic model or a class with ``from_dict``); ``build``
    overrides how it is made. ``prepare(job, base, where)`` resolves paths against the
    pipeline file's folder ``base`` and functions. ``problems(job)`` lists ``(key path,
    message)`` pairs seen before a run. ``schema()`` is the JSON schema of the kind's own keys
    (without ``kind``, ``name``, ``retry``, ``options``, ``error_handling``). ``expand`` makes
    a kind of kinds (``steps``): ``expand(mapping, path) -> [(kind, job mapping, where)]``.
    ``unsupported``: ``"options"``, ``"options.NAME"`` or ``"error_handling"`` -> why this
    kind cannot honour it (such sections are refused, with that reason). ``option_fields``:
    option name -> the kind's own key it sets (``batch_size`` -> ``chunk_size``...).
    ``check_options(spec, options, error_handling, where)`` refuses combinations.
    ``input_key``: the key naming the job's input (for progress displays).
    """

    name: str
    run: Callable[[dict[str, Any], Any, RunContext], Awaitable[dict[str, Any]]] | None = None
    model: Any = None
    prepare: Callable[[dict[str, Any], Path, str], dict[str, Any]] | None = None
    build: Callable[[dict[str, Any], str], Any] | None = None
    problems: Callable[[Any], list[tuple[list[Any], str]]] | None = None
    schema: Callable[[], dict[str, Any]] | None = None
    expand: Callable[[dict[str, Any], Path], list[tuple[str, dict[str, Any], str]]] | None = None
    unsupported: Mapping[str, str] = field(default_factory=lambda: dict(NOT_WIRED))
    option_fields: Mapping[str, str] = field(default_factory=dict)
    check_options: Callable[[dict[str, Any], Any, Any, str], None] | None = None
    input_key: str = "input"
    description: str = ""

    def make(self, spec: dict[str, Any], where: str) -> Any:
        """The config object of ``spec`` (errors name the file and the key)."""
        try:
            if self.build is not None:
                return self.build(spec, where)
            if self.model is None:
                return spec
            if hasattr(self.model, "from_dict"):
                return self.model.from_dict(spec)
            return self.model(**spec)
        except PatternError:
            raise
        except ValidationError as exc:
            raise PatternError(f"{where}: invalid {self.name} job: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise PatternError(f"{where}: invalid {self.name} job: {exc}") from exc

    def json_schema(self) -> dict[str, Any]:
        """The schema of the kind's own keys (a copy the caller may change)."""
        if self.schema is not None:
            return self.schema()
        from patterns._pipeline.generator import model_schema

        if self.model is None:
            return {"type": "object"}
        return model_schema(self.model)


#: what a kind that says nothing about ``options``/``error_handling`` refuses
NOT_WIRED = {
    "options": "this kind does not take job options",
    "error_handling": "this kind does not take a task retry policy; use 'retry:' to retry "
                      "the whole job",
}

_kinds: dict[str, PipelineKind] = {}
_lock = threading.RLock()
_loaded = False


def register_kind(kind: PipelineKind) -> PipelineKind:
    """Make ``kind`` available to pipeline files (the last registration of a name wins)."""
    if not isinstance(kind, PipelineKind):
        raise TypeError(f"register_kind takes a PipelineKind, got {type(kind).__name__}")
    with _lock:
        _kinds[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove the kind ``name`` (tests, plugins that unload)."""
    with _lock:
        _kinds.pop(name, None)


def _load() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        import patterns._pipeline as package

        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("kind_"):
                import_module(f"{package.__name__}.{info.name}")
        for point in entry_points(group=GROUP):
            try:
                import_module(point.value.split(":", 1)[0])
            except ImportError as exc:  # a broken plugin must not hide the others
                import logging

                logging.getLogger(__name__).warning(
                    "pipeline kind %r (entry point %s) cannot be imported: %s",
                    point.name, point.value, exc)


def kind_names() -> tuple[str, ...]:
    """Every registered kind's name (built-in first, in a stable order)."""
    _load()
    order = ("file_processing", "fsm", "etl", "api", "steps")
    names = list(_kinds)
    return tuple(sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n)))


def get_kind(name: str) -> PipelineKind:
    """The kind ``name``; ``PatternError`` naming the known ones otherwise."""
    _load()
    kind = _kinds.get(name)
    if kind is None:
        raise PatternError(f"unknown pipeline kind {name!r}; known: {', '.join(kind_names())}")
    return kind
