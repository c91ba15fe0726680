"""Pooled external resources (databases, files, HTTP services) hosted by Ray actors.

Public names live here; the modules hold one idea each: ``base`` (the provider contract),
``errors``, ``pool``, ``lease_book`` (the acquire protocol's pure core: ``LeaseBook``,
``Registration``), ``admission`` (its one driver, for threads), ``host`` (a provider and
its leases), ``local`` (the in-process registry), ``database``/``sql``, ``filesystem``,
``http``, ``static_providers``, ``factory`` (dicts to providers), ``actors``/``broker_actor`` (Ray
shells), ``handle``, ``remote`` (the cluster client), ``manager`` (the facade) and ``binder``
(the FSM engine's view). Names are imported on first use, so importing this package (or
one of its cores) loads neither Ray nor SQLAlchemy nor aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "BaseResourceProvider": "base", "IResourceProvider": "base", "ResourceHealth": "base",
    "ResourceMetrics": "base", "ResourceStatus": "base",
    "ManagerResourceBinder": "binder", "register_fsm_resources": "binder",
    "DatabaseResourceAdapter": "database",
    "NotAProviderError": "errors", "RegistrationConflict": "errors", "ResourceError": "errors",
    "create_provider_from_dict": "factory", "register_resource_type": "factory",
    "FileSystemResource": "filesystem", "FileSystemResourceAdapter": "filesystem",
    "FileSystemSession": "filesystem",
    "HTTPClient": "http", "HTTPResourceAdapter": "http", "HTTPResponse": "http",
    "HTTPServiceResource": "http", "RetryPolicy": "http",
    "ResourceManager": "manager",
    "PoolConfig": "pool", "PoolMetrics": "pool", "ResourcePool": "pool",
    "ResourceConfig": "fsm_actors.functions",
    "SimpleResourceProvider": "static_providers",
    "UnavailableResourceProvider": "static_providers",
    "DatabaseConnection": "sql",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'resource_actors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module if "." in module else f"resource_actors.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
