"""Pooled external resources (databases, files, HTTP services) hosted by Ray actors.

Public names live here; the modules hold one idea each: ``base`` (the provider contract),
``pool``, ``database``/``sql``, ``filesystem``, ``http``, ``simple``, ``factory`` (dicts to
providers), ``broker`` (the lease core), ``host`` (live resources), ``local`` (in-process
driver), ``actors``/``broker_actor`` (Ray shells), ``handle``, ``remote``, ``manager`` (the
facade) and ``binder`` (the FSM engine's view). Importing this package does not import Ray.
"""

from resource_actors.base import (
    BaseResourceProvider,
    IResourceProvider,
    ResourceHealth,
    ResourceMetrics,
    ResourceStatus,
)
from resource_actors.binder import ManagerResourceBinder, register_fsm_resources
from resource_actors.database import DatabaseResourceAdapter
from resource_actors.errors import ResourceError
from resource_actors.factory import create_provider_from_dict, register_resource_type
from resource_actors.filesystem import (
    FileSystemResource,
    FileSystemResourceAdapter,
    FileSystemSession,
)
from resource_actors.http import (
    HTTPClient,
    HTTPResourceAdapter,
    HTTPResponse,
    HTTPServiceResource,
    RetryPolicy,
)
from resource_actors.manager import ResourceManager
from resource_actors.pool import PoolConfig, PoolMetrics, ResourcePool
from resource_actors.requirements import ResourceConfig
from resource_actors.simple import SimpleResourceProvider, UnavailableResourceProvider
from resource_actors.sql import DatabaseConnection

__all__ = [
    "BaseResourceProvider", "DatabaseConnection", "DatabaseResourceAdapter",
    "FileSystemResource", "FileSystemResourceAdapter", "FileSystemSession", "HTTPClient",
    "HTTPResourceAdapter", "HTTPResponse", "HTTPServiceResource", "IResourceProvider",
    "ManagerResourceBinder", "PoolConfig", "PoolMetrics", "ResourceConfig", "ResourceError",
    "ResourceHealth", "ResourceManager", "ResourceMetrics", "ResourcePool", "ResourceStatus",
    "RetryPolicy", "SimpleResourceProvider", "UnavailableResourceProvider",
    "create_provider_from_dict", "register_fsm_resources", "register_resource_type",
]
