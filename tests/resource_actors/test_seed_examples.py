"""Every example of the resource-management guide (shared/seeds/003), run for real.

Each example is the guide's code with only the import prefix changed
(``dataknobs_fsm.resources.*`` -> ``resource_actors.*``, ``dataknobs_fsm.functions.base`` ->
``fsm_actors.functions``, ``dataknobs_fsm.api.simple`` -> ``fsm_actors``) and the service
endpoints pointed at this test set-up's servers: the PostgreSQL URL/host/port/credentials
(through the standard ``PG*`` variables where the guide gives none) and the HTTP base URL.
The names the guide leaves undefined (``config``, ``processed_data``, ``owner_id``, ...) are
supplied before each example. Managers are the default, cluster-wide kind.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from resource_actors.base import ResourceHealth
from resource_actors.manager import ResourceManager

pytestmark = [pytest.mark.ray, pytest.mark.postgres]
logger = logging.getLogger("seed")


@pytest.fixture(autouse=True)
def _ray(ray_session):
    return ray_session


@pytest.fixture
def pg(postgres_server, monkeypatch):
    """The test PostgreSQL, also as the PG* environment the guide's bare adapters use."""
    for key, value in postgres_server.env().items():
        monkeypatch.setenv(key, value)
    engine = create_engine(postgres_server.url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS users (id int primary key, name text)"))
        conn.execute(text("INSERT INTO users VALUES (1, 'ada'), (2, 'bob') ON CONFLICT DO NOTHING"))
    engine.dispose()
    return postgres_server


@pytest.fixture
def managers():
    """Closes every manager an example made (the guide leaves them open)."""
    made: list[ResourceManager] = []
    yield made
    for manager in made:
        manager.close()


def _registered(name: str) -> bool:
    from resource_actors.remote import BrokerClient

    return name in BrokerClient().names()


def test_resource_interface():
    from typing import Any, Protocol, runtime_checkable  # noqa: F401

    from resource_actors.base import IResourceProvider, ResourceHealth, ResourceMetrics  # noqa: F401
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.filesystem import FileSystemResourceAdapter
    from resource_actors.http import HTTPResourceAdapter

    assert isinstance(DatabaseResourceAdapter("d", backend="memory"), IResourceProvider)
    assert isinstance(FileSystemResourceAdapter("f", base_path="/tmp/fsm-seed-fs"), IResourceProvider)
    assert isinstance(HTTPResourceAdapter("h", base_url="http://127.0.0.1:1"), IResourceProvider)


def test_resource_manager(pg, managers):
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    # Create resource manager
    manager = ResourceManager()
    managers.append(manager)
    # Register a database resource
    db_resource = DatabaseResourceAdapter(
        name="main_db",
        backend="postgresql",
        connection_string=pg.plain_url,
    )
    manager.register_provider("database", db_resource)
    # Acquire resource with owner tracking
    resource = manager.acquire("database", owner_id="state_123")
    # Use resource...
    assert resource.query("SELECT 1 AS one") == [{"one": 1}]
    # Release when done
    manager.release("database", owner_id="state_123")
    # Or use context manager
    with manager.resource_context("database", owner_id="state_456") as db:
        # Use database
        assert db.query("SELECT count(*) AS n FROM users")[0]["n"] == 2
    assert manager.get_resource_owners("database") == set()

    # Resource Status and Metrics
    manager.acquire("database", owner_id="state_789")
    status = manager.get_resource_status("database")
    print(f"Active connections: {status['active_count']}")
    print(f"Current owners: {status['owners']}")
    assert status["active_count"] == 1 and status["owners"] == ["state_789"]
    manager.release("database", owner_id="state_789")
    # Get metrics
    metrics = manager.get_metrics("database")
    print(f"Total acquisitions: {metrics['database'].total_acquisitions}")
    print(f"Average hold time: {metrics['database'].average_hold_time}s")
    assert metrics["database"].total_acquisitions == 3
    # Health check
    health = manager.health_check("database")
    print(f"Database health: {health['database']}")  # ResourceHealth.HEALTHY
    assert health["database"] is ResourceHealth.HEALTHY


def test_database_resource(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter

    # Create database resource
    db_resource = DatabaseResourceAdapter(
        name="postgres_db",
        backend="postgresql",
        host=pg.host,
        port=pg.port,
        database=pg.database,
        user=pg.user,
        password=pg.password,
    )
    # Register with manager
    manager.register_provider("database", db_resource)
    with manager.resource_context("database", "state_db") as db:
        assert db.query("SELECT name FROM users WHERE id = :id", {"id": 1}) == [{"name": "ada"}]
    assert pg.password not in repr(db_resource)


def test_database_resource_with_simple_fsm(pg, managers):
    from fsm_actors import SimpleFSM

    config = {"name": "seed", "states": [{"name": "start", "is_start": True},
                                         {"name": "end", "is_end": True}],
              "arcs": [{"from": "start", "to": "end"}]}
    db_config = {"backend": "postgresql", "host": pg.host, "port": pg.port}
    # Use in FSM
    fsm = SimpleFSM(config)
    fsm.close()
    # Resources can be passed to SimpleFSM constructor
    fsm = SimpleFSM(config, resources={"database": db_config})
    assert fsm.get_resources() == ["database"]
    fsm.close()
    assert not _registered("database")  # closing the FSM ends its registrations


def test_file_system_resource(managers):
    base, temp = Path("/data/processing"), Path("/tmp/fsm")
    created = not base.exists()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        pytest.skip("the guide's /data/processing cannot be created by this user")
    (base / "input.csv").write_text("id,name\n1,ada\n")
    manager = ResourceManager()
    managers.append(manager)
    processed_data = {"rows": 1}
    try:
        from resource_actors.filesystem import FileSystemResourceAdapter

        # Create filesystem resource
        fs_resource = FileSystemResourceAdapter(
            name="data_fs",
            base_path="/data/processing",
            temp_dir="/tmp/fsm",
            auto_cleanup=True
        )
        manager.register_provider("filesystem", fs_resource)
        # Acquire and use
        with manager.resource_context("filesystem", "state_123") as fs:
            # Read file
            content = fs.read("input.csv")
            # Write file
            fs.write("output.json", processed_data)
            # Create temp file
            temp_path = fs.create_temp()
            assert Path(temp_path).exists() and Path(temp_path).parent == temp
        assert content == "id,name\n1,ada\n"
        assert (base / "output.json").read_text() == '{"rows": 1}'
        assert not Path(temp_path).exists()  # auto_cleanup
    finally:
        if created:
            shutil.rmtree(base, ignore_errors=True)
        else:
            (base / "output.json").unlink(missing_ok=True)


def test_http_service_resource(http_server, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.http import HTTPResourceAdapter

    # Create HTTP resource
    http_resource = HTTPResourceAdapter(
        name="api_service",
        base_url=http_server.url,
        timeout=30,
        headers={"Authorization": "Bearer token"},
        retry_count=3
    )
    manager.register_provider("api", http_resource)
    # Use in state
    with manager.resource_context("api", "state_123") as api:
        response = api.get("/users/123")
        data = response.json()
    assert data == {"id": 123, "name": "user123"}
    assert http_server.last_headers["Authorization"] == "Bearer token"
    assert "Bearer token" not in repr(http_resource)


def test_resource_pooling(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.pool import PoolConfig, ResourcePool  # noqa: F401

    # Configure pool
    pool_config = PoolConfig(
        min_size=2,
        max_size=10,
        max_idle_time=300,  # 5 minutes
        acquire_timeout=30
    )
    # Register pooled resource
    db_resource = DatabaseResourceAdapter(name="db", backend="postgresql")
    manager.register_provider("database", db_resource, pool_config=pool_config)
    # Pool metrics
    pool_metrics = manager.get_metrics("database_pool")
    print(f"Pool size: {pool_metrics['database_pool'].size}")
    print(f"Available: {pool_metrics['database_pool'].available}")
    assert pool_metrics["database_pool"].size == 2  # warmed to min_size
    assert pool_metrics["database_pool"].available == 2


def _requirements_example(manager: ResourceManager, ResourceConfig: Any) -> dict[str, Any]:
    # Define resource requirements
    requirements = [
        ResourceConfig(name="database", required=True, timeout=30),
        ResourceConfig(name="cache", required=False)
    ]
    # Configure resources from requirements
    resources = manager.configure_from_requirements(requirements, owner_id="state_123")
    return resources


def test_code_based_requirements(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    from resource_actors.requirements import ResourceConfig

    resources = _requirements_example(manager, ResourceConfig)
    assert list(resources) == ["database"]  # the optional, unregistered cache is skipped
    manager.release_all("state_123")
    from fsm_actors.functions import ResourceConfig  # type: ignore[no-redef]

    resources = _requirements_example(manager, ResourceConfig)
    assert list(resources) == ["database"]


def test_resource_lifecycle(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))

    # Resource lifecycle in state execution
    class StateExecution:
        def execute(self, state, context):
            owner_id = f"state_{state.name}_{context.id}"
            # 1. Acquire required resources
            for resource_name in state.resources:
                resource = manager.acquire(resource_name, owner_id)
                context.resources[resource_name] = resource
            try:
                # 2. Execute state with resources
                result = state.transform(context.data, context.resources)
                # 3. Release resources on success
                for resource_name in state.resources:
                    manager.release(resource_name, owner_id)
                return result
            except Exception:
                # 4. Cleanup on error
                manager.release_all(owner_id)
                raise

    class State:
        def __init__(self, name, transform):
            self.name, self.resources, self.transform = name, ["database"], transform

    class Context:
        id, data = "exec1", {"id": 2}

        def __init__(self):
            self.resources = {}

    lookup = State("lookup", lambda d, r: r["database"].query(
        "SELECT name FROM users WHERE id = :id", d)[0])
    assert StateExecution().execute(lookup, Context()) == {"name": "bob"}

    def boom(data, resources):
        raise RuntimeError("transform failed")
    with pytest.raises(RuntimeError):
        StateExecution().execute(State("broken", boom), Context())
    assert manager.get_resource_owners("database") == set()


def test_owner_tracking(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    manager.acquire("database", "state_123")
    # Check if owner has resource
    if manager.has_resource("database", "state_123"):
        db = manager.get_resource("database", "state_123")
    assert db.query("SELECT 2 AS two") == [{"two": 2}]
    # Get all owners of a resource
    owners = manager.get_resource_owners("database")
    print(f"Database is used by: {owners}")
    assert owners == {"state_123"}
    # Release all resources for an owner
    manager.release_all("state_123")
    assert not manager.has_resource("database", "state_123")


def test_custom_resources(managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.base import (
        BaseResourceProvider,
        ResourceHealth,
        ResourceMetrics,  # noqa: F401
        ResourceStatus,
    )

    class RedisResourceProvider(BaseResourceProvider):
        def __init__(self, name: str, host: str, port: int = 6379):
            super().__init__(name, {"host": host, "port": port})
            self.host = host
            self.port = port
            self.client = None

        def acquire(self, **kwargs):
            import redis
            if not self.client:
                self.client = redis.Redis(host=self.host, port=self.port)
            self.status = ResourceStatus.ACTIVE
            return self.client

        def release(self, resource):
            self.status = ResourceStatus.IDLE
            # Keep connection for reuse

        def validate(self, resource):
            try:
                return resource.ping()
            except:  # noqa: E722
                return False

        def health_check(self):
            if self.validate(self.client):
                return ResourceHealth.HEALTHY
            return ResourceHealth.UNHEALTHY

        def close(self):
            if self.client:
                self.client.close()
                self.client = None

    # Register custom resource
    redis = RedisResourceProvider("cache", "localhost")
    manager.register_provider("redis", redis)
    assert manager.get_resource_status("redis")["provider_exists"]
    # No Redis server here: the provider reports it, and nothing leaks.
    assert manager.health_check("redis")["redis"] is ResourceHealth.UNHEALTHY
    assert manager.validate_resource("redis") is False


def test_simple_resource_provider(managers):
    manager = ResourceManager()
    managers.append(manager)
    # Create simple provider from dict
    manager.register_from_dict("config", {
        "data": {
            "api_key": "secret",
            "endpoint": "https://api.example.com"
        }
    })
    # Or create simple provider with static data
    simple_provider = manager.create_simple_provider("settings", {"timeout": 30})
    manager.register_provider("settings", simple_provider)
    with manager.resource_context("config", "o") as cfg, manager.resource_context("settings", "o") as st:
        assert cfg == {"api_key": "secret", "endpoint": "https://api.example.com"}
        assert st == {"timeout": 30}


def test_health_monitoring(pg, http_server, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.http import HTTPResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    manager.register_provider("api", HTTPResourceAdapter("api", base_url=http_server.url))
    # Check specific resource health
    health = manager.health_check("database")
    if health["database"] == ResourceHealth.UNHEALTHY:
        # Handle unhealthy resource
        pass
    # Check all resources
    all_health = manager.health_check()
    for name, status in all_health.items():
        print(f"{name}: {status}")
    assert all_health == {"database": ResourceHealth.HEALTHY, "api": ResourceHealth.HEALTHY}


def test_resource_metrics(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    with manager.resource_context("database", "state_1") as db:
        db.query("SELECT 1")
    from resource_actors.base import ResourceMetrics

    # Get metrics for specific resource
    metrics = manager.get_metrics("database")
    db_metrics = metrics["database"]
    print(f"Total acquisitions: {db_metrics.total_acquisitions}")
    print(f"Active connections: {db_metrics.active_connections}")
    print(f"Failed acquisitions: {db_metrics.failed_acquisitions}")
    print(f"Average hold time: {db_metrics.average_hold_time}s")
    print(f"Average acquisition time: {db_metrics.average_acquisition_time}s")
    # Get all metrics
    all_metrics = manager.get_metrics()
    assert isinstance(db_metrics, ResourceMetrics)
    assert (db_metrics.total_acquisitions, db_metrics.active_connections) == (1, 0)
    assert db_metrics.average_hold_time > 0 and "database" in all_metrics


def test_async_cleanup(pg):
    manager = ResourceManager()
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    manager.acquire("database", "state_1")

    async def cleanup_resources():
        # Async cleanup of all resources
        await manager.cleanup()
    # Run cleanup
    asyncio.run(cleanup_resources())
    assert "database" not in ResourceManager().resource_names()


def test_manager_as_context_manager(pg):
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.manager import ResourceManager

    db_resource = DatabaseResourceAdapter("db", backend="postgresql")
    # Auto-cleanup with context manager
    with ResourceManager() as manager:
        manager.register_provider("db", db_resource)
        # Use resources
        with manager.resource_context("db", "owner1") as db:
            result = db.query("SELECT * FROM users")
    # Manager and all resources cleaned up automatically
    assert len(result) == 2
    assert "db" not in ResourceManager().resource_names()


def test_shared_resource_manager(pg, managers):
    from resource_actors.database import DatabaseResourceAdapter

    # Singleton pattern for shared resources
    class SharedResources:
        _instance = None
        _manager = None

        @classmethod
        def get_manager(cls):
            if cls._instance is None:
                cls._instance = cls()
                cls._manager = ResourceManager()
                cls._setup_resources()
            return cls._manager

        @classmethod
        def _setup_resources(cls):
            # Register shared resources
            cls._manager.register_provider(
                "database",
                DatabaseResourceAdapter("db", backend="postgresql")
            )

    manager = SharedResources.get_manager()
    managers.append(manager)
    assert SharedResources.get_manager() is manager
    with manager.resource_context("database", "state_shared") as db:
        assert db.query("SELECT 1 AS x") == [{"x": 1}]


def test_resource_with_fsm_registration(pg, managers):
    """The guide's FSM resources dict, registered as SimpleFSM will register it."""
    from resource_actors.binder import register_fsm_resources

    manager = ResourceManager()
    managers.append(manager)
    register_fsm_resources(manager, {
        "database": {"backend": "postgresql", "host": "localhost"},
        "cache": {"type": "redis", "host": "localhost"},
    })
    with manager.resource_context("database", "state_load_1") as db:
        assert db.query("SELECT 1 AS x") == [{"x": 1}]
    from resource_actors.errors import ResourceError
    with pytest.raises(ResourceError, match="unknown resource type 'redis'"):
        manager.acquire("cache", "state_load_1")


def test_resource_with_fsm(pg):
    from fsm_actors import SimpleFSM

    config = {"name": "seed", "states": [{"name": "start", "is_start": True},
                                         {"name": "end", "is_end": True}],
              "arcs": [{"from": "start", "to": "end"}]}
    # Pass resources to FSM
    fsm = SimpleFSM(
        config,
        resources={
            "database": {"backend": "postgresql", "host": "localhost"},
            "cache": {"type": "redis", "host": "localhost"}
        }
    )
    # Resources are automatically registered and available in states
    fsm.close()
    assert not _registered("database") and not _registered("cache")


def test_best_practices(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    owner_id, sql = "state_bp_1", "SELECT count(*) AS n FROM users"

    def use_resource(db):
        return db.query(sql)

    # Good - automatic cleanup
    with manager.resource_context("database", owner_id) as db:
        result = db.query(sql)
    # Also good - explicit cleanup
    resource = manager.acquire("database", owner_id)
    try:
        result = use_resource(resource)
    finally:
        manager.release("database", owner_id)
    assert result == [{"n": 2}]

    # 2. Use Owner IDs
    state_name, execution_id = "load", "e42"
    # Good - traceable owner
    owner_id = f"state_{state_name}_{execution_id}"
    resource = manager.acquire("database", owner_id)
    # Bad - generic owner
    resource = manager.acquire("database", "state")
    assert manager.get_resource_owners("database") == {"state_load_e42", "state"}
    manager.release_all("state_load_e42")
    manager.release_all("state")

    # 4. Configure Appropriate Pools
    from resource_actors.pool import PoolConfig
    # High-throughput configuration
    pool_config = PoolConfig(
        min_size=5,
        max_size=20,
        acquire_timeout=10
    )
    # Low-throughput configuration
    pool_config = PoolConfig(
        min_size=1,
        max_size=5,
        max_idle_time=600  # Longer idle time
    )
    assert pool_config.max_idle_time == 600


def test_monitor_resources_thread(pg):
    manager = ResourceManager(local=True)
    from resource_actors.database import DatabaseResourceAdapter

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    manager.register_provider("broken", DatabaseResourceAdapter(
        "broken", backend="postgresql", port=1, connect_timeout=1))
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())
    logger.addHandler(Capture())

    # Periodic health check
    import threading
    import time

    def monitor_resources():
        while True:
            health = manager.health_check()
            for name, status in health.items():
                if status != ResourceHealth.HEALTHY:
                    logger.warning(f"Resource {name} is {status}")
            time.sleep(60)
    monitor_thread = threading.Thread(target=monitor_resources, daemon=True)
    monitor_thread.start()
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == ["Resource broken is ResourceHealth.UNHEALTHY"]


def _error_example(manager: ResourceManager, ResourceError: Any, owner_id: str) -> Any:
    resource = None
    try:
        resource = manager.acquire("database", owner_id, timeout=30)
    except ResourceError as e:
        logger.error(f"Failed to acquire {e.resource_name}: {e}")
        # Use fallback or retry
    return resource


def test_handle_resource_errors(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.errors import ResourceError

    assert _error_example(manager, ResourceError, "state_e1") is None  # not registered: logged
    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"))
    assert _error_example(manager, ResourceError, "state_e1") is not None
    manager.release_all("state_e1")
    from fsm_actors.functions import ResourceError as FunctionsResourceError  # type: ignore

    assert _error_example(manager, FunctionsResourceError, "state_e2") is not None


def test_common_pitfalls(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.base import BaseResourceProvider
    from resource_actors.database import DatabaseResourceAdapter

    db_resource = DatabaseResourceAdapter("db", backend="postgresql")
    manager.register_provider("database", db_resource)
    manager.register_provider("api", CallableProvider("api"))
    assert isinstance(CallableProvider("x"), BaseResourceProvider)
    owner_id = "state_p1"

    def process(resource):
        return resource.query("SELECT 1 AS x")

    def bad():
        # ❌ Bad - resource not released
        resource = manager.acquire("database", owner_id)
        result = process(resource)
        return result  # Resource never released!

    def good():
        # ✅ Good - proper cleanup
        with manager.resource_context("database", owner_id) as resource:
            result = process(resource)
            return result
    assert bad() == good() == [{"x": 1}]
    assert not manager.has_resource("database", owner_id)  # the context released the lease

    # ❌ Bad - no owner tracking
    db = db_resource.acquire()  # Direct acquisition
    # ✅ Good - use manager with owner
    db2 = manager.acquire("database", "state_123")
    db_resource.release(db)
    manager.release("database", "state_123")
    assert db2 is not None

    # ❌ Bad - no health validation
    resource = manager.acquire("api", owner_id)
    result = resource.call()  # Might be unhealthy!
    # ✅ Good - validate health
    if manager.validate_resource("api"):
        resource = manager.acquire("api", owner_id)
        result = resource.call()
    else:
        # Handle unhealthy resource
        pass
    assert result == "called"


def test_debug_resource_status(pg, managers):
    manager = ResourceManager()
    managers.append(manager)
    from resource_actors.database import DatabaseResourceAdapter
    from resource_actors.pool import PoolConfig

    manager.register_provider("database", DatabaseResourceAdapter("db", backend="postgresql"),
                              pool_config=PoolConfig(max_size=3))
    manager.acquire("database", "state_dbg")
    # Get detailed resource information
    all_resources = manager.get_all_resources()
    for name, status in all_resources.items():
        print(f"\nResource: {name}")
        print(f"  Has provider: {status['provider_exists']}")
        print(f"  Has pool: {status['has_pool']}")
        print(f"  Active count: {status['active_count']}")
        print(f"  Owners: {status['owners']}")
    assert all_resources["database"]["has_pool"] is True
    assert all_resources["database"]["owners"] == ["state_dbg"]


class CallableResource:
    def call(self) -> str:
        return "called"


from resource_actors.base import BaseResourceProvider  # noqa: E402


class CallableProvider(BaseResourceProvider):
    """A service whose resources have ``call()``, as the guide's pitfall example assumes."""

    def acquire(self, **kwargs):
        return CallableResource()

    def release(self, resource):
        return None

