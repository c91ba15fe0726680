"""Providers from plain dicts: ``{"type": ..., ...}`` / ``{"backend": ...}`` / ``{"data": ...}``.

``type`` picks the adapter: ``database`` (with ``backend``, or ``provider`` as in the ETL
pattern's dicts), a backend name itself (``postgresql``, ``mysql``, ``sqlite``, ``memory``),
``filesystem``, ``http``, ``custom`` (``class``: a dotted path, built with ``name`` and
``params``/the other keys), or ``simple`` (``data``). With no ``type``: a ``backend`` means a
database; otherwise ``data`` (or the whole dict) is served as static data. Nested
``connection_params`` (the shape of ``ResourceConfig``) are merged in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from resource_actors.base import IResourceProvider
from resource_actors.db_backends import BACKENDS
from resource_actors.errors import ResourceError
from resource_actors.static_providers import SimpleResourceProvider

ProviderFactory = Callable[[str, dict[str, Any]], IResourceProvider]


def _database(name: str, params: dict[str, Any]) -> IResourceProvider:
    from resource_actors.database import DatabaseResourceAdapter  # SQLAlchemy: on first use

    backend = params.pop("backend", None) or params.pop("provider", None) or "memory"
    if "connection" in params and isinstance(params["connection"], str):
        params["connection_string"] = params.pop("connection")
    return DatabaseResourceAdapter(name, backend=backend, **params)


def _custom(name: str, params: dict[str, Any]) -> IResourceProvider:
    path = params.pop("class", None) or params.pop("class_name", None)
    if not path or "." not in str(path):
        raise ResourceError(f"custom resource {name!r} needs 'class': a dotted path such as "
                            "'mypkg.providers.RedisProvider'", name, "configure")
    module_name, _, attr = str(path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ResourceError(f"cannot load class {path!r} for resource {name!r}: {exc}",
                            name, "configure") from exc
    kwargs = params.pop("params", None) or params.pop("config", None) or params
    return cls(name=name, **kwargs)


def _filesystem(name: str, params: dict[str, Any]) -> IResourceProvider:
    from resource_actors.filesystem import FileSystemResourceAdapter

    return FileSystemResourceAdapter(name, **params)


def _http(name: str, params: dict[str, Any]) -> IResourceProvider:
    from resource_actors.http import HTTPResourceAdapter  # aiohttp: on first use

    return HTTPResourceAdapter(name, **params)


_TYPES: dict[str, ProviderFactory] = {
    "database": _database, "db": _database, "sql": _database, "async_database": _database,
    "filesystem": _filesystem, "file_system": _filesystem, "fs": _filesystem,
    "http": _http, "api": _http, "rest": _http,
    "custom": _custom,
    "simple": lambda n, p: SimpleResourceProvider(n, p.get("data", {})),
    "static": lambda n, p: SimpleResourceProvider(n, p.get("data", {})),
}


def register_resource_type(type_name: str, factory: ProviderFactory) -> None:
    """Teach ``create_provider_from_dict`` a new ``type``: ``factory(name, params)``."""
    _TYPES[type_name.lower()] = factory


def known_types() -> list[str]:
    """The ``type`` values understood (backend names included)."""
    return sorted(set(_TYPES) | set(BACKENDS))


def create_provider_from_dict(name: str, config: Mapping[str, Any]) -> IResourceProvider:
    """Build the provider ``config`` describes; ``ResourceError`` for an unknown ``type``."""
    params = dict(config)
    params.update(params.pop("connection_params", None) or {})
    params.pop("name", None)
    kind = params.pop("type", None)
    if kind is None:
        if "backend" in params:
            return _database(name, params)
        return SimpleResourceProvider(name, params["data"] if "data" in params else params)
    key = str(kind).lower()
    if key in BACKENDS:
        params.setdefault("backend", key)
        return _database(name, params)
    factory = _TYPES.get(key)
    if factory is None:
        raise ResourceError(
            f"unknown resource type {kind!r} for {name!r}; known types: "
            f"{', '.join(known_types())}; for others use {{'type': 'custom', 'class': "
            "'package.module.ProviderClass'}", name, "configure")
    try:
        return factory(name, params)
    except TypeError as exc:
        raise ResourceError(f"bad settings for resource {name!r} of type {kind!r}: {exc}",
                            name, "configure") from exc
