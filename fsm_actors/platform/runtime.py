"""The connection to Ray: the only module of the project that calls ``ray.init``.

``ensure_ray()`` starts an embedded local Ray when there is no cluster and no address, or
attaches to an existing cluster (``"auto"``, ``"ray://host:10001"``, ``RAY_ADDRESS`` or
``FSM_ACTORS_ADDRESS``). It is idempotent: a second call returns the same connection.

``actor_options(role)`` gives the resource requests of long-lived actors. They ask for
fractional CPUs (brokers for none) because on a 2-core node actors at ``num_cpus=1`` hold
every CPU while the tasks they wait on queue forever (see the project's RAY-NOTES).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_actors.platform.errors import FSMError


class _Ray:
    """``ray``, imported at first use: a CLI run that never connects (a small run that
    goes in-process) does not pay for importing Ray (about a second of CPU)."""

    def __getattr__(self, name: str) -> Any:
        import ray as module

        globals()["ray"] = module
        return getattr(module, name)


ray: Any = _Ray()

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "fsm_actors"
ADDRESS_ENV_VARS = ("FSM_ACTORS_ADDRESS", "RAY_ADDRESS")

#: Default CPU request per actor role; override with FSM_ACTORS_<ROLE>_CPUS.
ROLE_CPUS: dict[str, float] = {
    "worker": 0.25,
    "provider": 0.05,
    "broker": 0.0,
}

_RESOURCE_KWARGS = ("num_cpus", "num_gpus", "resources", "object_store_memory", "_memory")


class RuntimeConnectError(FSMError, RuntimeError):
    """Ray could not be started or reached; the message says what was tried and what to do."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``ensure_ray`` connected to."""

    address: str
    namespace: str
    started_local: bool
    dashboard_url: str | None


_info: RuntimeInfo | None = None


def _address_from_env() -> tuple[str | None, str | None]:
    for var in ADDRESS_ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value, var
    head = local_head()
    if head is not None:
        started_by = "`fsm-actors up`" if not head.get("idle_timeout") else "the background head"
        return head["address"], started_by
    return None, None


def state_dir() -> Path:
    """Where ``fsm-actors up`` records its head: ``$FSM_ACTORS_HOME``, else ~/.fsm-actors."""
    from fsm_actors.platform.background_head import state_dir as where

    return where()


def local_head() -> dict[str, Any] | None:
    """The head ``fsm-actors up`` (or a first ``fsm-actors run``) started on this machine,
    while its process lives (see ``platform.background_head.local_head``)."""
    from fsm_actors.platform.background_head import local_head as recorded

    return recorded()


def project_packages() -> tuple[str, ...]:
    """The packages shipped to a ``ray://`` cluster as ``py_modules`` directories: this one
    and every package registered as its extension (entry points, ``platform.extensions``)."""
    from fsm_actors.platform.extensions import extension_packages

    return tuple(extension_packages())


def package_dirs(names: tuple[str, ...] | None = None) -> list[str]:
    """Directories of the named top-level packages (default: ``project_packages()``), found
    without importing them.

    The runtime sits below every package that uses it, so it locates them by path
    (``importlib.util.find_spec`` of a top-level name executes nothing). Paths, not module
    objects, go into ``py_modules``: Ray Client pickles the runtime env, and modules do not
    pickle.
    """
    dirs = []
    for name in names if names is not None else project_packages():
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeConnectError(f"package {name!r} is not importable here; install fsm-actors")
        dirs.append(str(Path(list(spec.submodule_search_locations)[0]).resolve()))
    return dirs


def project_runtime_env(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A runtime env that ships this project's packages as directories (plus ``extra``)."""
    env: dict[str, Any] = dict(extra or {})
    env["py_modules"] = [*env.get("py_modules", []), *package_dirs()]
    env.setdefault("excludes", ["__pycache__", "*.pyc"])
    return env


#: attempts at a Ray Client connection whose per-connection server failed to start
CLIENT_ATTEMPTS = 3
#: how Ray reports that failure: the server said so, or the proxier's wait for the new
#: server process met it already dead (``psutil.ZombieProcess`` from ``cmdline()``)
CLIENT_SERVER_DIED = ("client server failed", "ZombieProcess")


def _init_attached(address: str, namespace: str, init_kw: dict[str, Any]) -> Any:
    """``ray.init`` for an address. Ray Client's per-connection server sometimes dies as it
    starts ("Starting Ray client server failed" or a ``psutil.ZombieProcess``;
    ray-project/ray#63202: gRPC's fork handlers crash it, a few percent of connections and
    up to half of those made right after another, unless the head runs with
    ``GRPC_ENABLE_FORK_SUPPORT=0`` as ours do): each new try gets a new one, up to
    ``CLIENT_ATTEMPTS``."""
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            return ray.init(address=address, namespace=namespace, **init_kw)
        except (ConnectionError, RuntimeError) as exc:
            if (not address.startswith("ray://") or attempt == CLIENT_ATTEMPTS
                    or not any(sign in str(exc) for sign in CLIENT_SERVER_DIED)):
                raise
            log.warning("Ray Client server at %s failed to start; trying again (%d of %d)",
                        address, attempt + 1, CLIENT_ATTEMPTS)
            ray.shutdown()
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def client_dashboard_url(address: str) -> str | None:
    """The dashboard URL that the Ray Client server at ``address`` (``ray://host:port``)
    names, from one short connection (closed again). ``RuntimeConnectError`` saying why when
    it cannot connect (the server's own traceback cut to its last line)."""
    try:
        ctx = _init_attached(address, DEFAULT_NAMESPACE, {"logging_level": "ERROR",
                                                    "log_to_driver": False})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RuntimeConnectError(last_line(exc)) from None
    try:
        return getattr(ctx, "dashboard_url", None) or None
    finally:
        ray.shutdown()


def last_line(exc: BaseException) -> str:
    """An error's text for one line: a server's traceback quoted in it is cut to its last
    line (what was raised), the lines before it dropped."""
    text = str(exc).strip()
    if "Traceback (most recent call last)" not in text:
        return " ".join(text.split())
    head = text.split("Traceback (most recent call last)")[0].strip().rstrip(":")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{head}: {lines[-1]}" if head else lines[-1]


def connect_target(address: str | None = None) -> str:
    """What ``ensure_ray(address)`` would connect to, in words (for "starting Ray" lines)."""
    if ray.is_initialized():
        return "the connected Ray"
    source = "argument"
    if address is None:
        address, source = _address_from_env()
    if address == "local":
        return "a new embedded local Ray"
    if address and address != "auto":
        return f"the Ray cluster at {address}" + (f" (from {source})" if source != "argument" else "")
    found = _running_local_cluster()
    if found:
        return f"the Ray cluster running on this machine ({found})"
    return "a new embedded local Ray" if address is None else "a Ray cluster on this machine"


def connected() -> bool:
    """Whether this process is connected to Ray now (told without importing Ray)."""
    module = sys.modules.get("ray")
    return module is not None and module.is_initialized()


def ensure_ray(
    address: str | None = None, namespace: str = DEFAULT_NAMESPACE, **init_kw: Any
) -> RuntimeInfo:
    """Connect to Ray once and return what we connected to.

    ``address=None`` and no address variable set: attach to a cluster already running on this
    machine (``ray start``), else start an embedded local Ray. ``address="local"`` always starts
    a fresh local instance. ``"ray://…"`` ships this project's packages to the cluster as
    ``py_modules`` unless ``runtime_env`` is given. Raises ``RuntimeConnectError`` when the
    address cannot be reached.
    """
    global _info
    if ray.is_initialized():
        if _info is None:
            _info = _describe(started_local=False)
        return _info

    source = "argument"
    if address is None:
        address, source = _address_from_env()
    if address and address not in ("local", "auto"):
        _probe(address, source)
        use_cluster_auth(address, source)
        loopback_driver(address)
    elif address != "local":
        # Ray finds the latest `ray start` by itself; tell it how that cluster authenticates
        # (it would send this machine's token to any cluster found so, if a token exists)
        found = _running_local_cluster()
        if found:
            use_cluster_auth(found, "the latest `ray start` on this machine")
    if address and address.startswith("ray://") and "runtime_env" not in init_kw:
        init_kw["runtime_env"] = project_runtime_env()
    init_kw.setdefault("log_to_driver", True)
    init_kw.setdefault("configure_logging", False)
    try:
        if address is None:
            try:
                ctx = ray.init(namespace=namespace, **init_kw)
            except ValueError as exc:
                if "must not be provided" not in str(exc):
                    raise
                # A cluster is already running here: attach to it without resource arguments.
                for key in _RESOURCE_KWARGS:
                    init_kw.pop(key, None)
                ctx = ray.init(namespace=namespace, **init_kw)
        else:
            if address not in ("local",):
                for key in _RESOURCE_KWARGS:
                    init_kw.pop(key, None)
            ctx = _init_attached(address, namespace, init_kw)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = f"address {address!r} (from {source})" if address else "a local Ray instance"
        raise RuntimeConnectError(
            f"Could not connect to Ray at {where}: {last_line(exc)}. "
            "Check that the cluster is running (`ray status`), that the address is "
            "host:port of the head node (or ray://host:10001 for Ray Client), or unset "
            "RAY_ADDRESS / FSM_ACTORS_ADDRESS to run on an embedded local Ray."
            + (_AUTH_HINT if address not in (None, "local") else "")
        ) from exc
    dashboard = getattr(ctx, "dashboard_url", None) or None
    if dashboard and not dashboard.startswith("http"):
        dashboard = f"http://{dashboard}"
    _info = _describe(started_local=address in (None, "local"), dashboard_url=dashboard)
    log.info("fsm-actors connected to Ray at %s (namespace %s)", _info.address, namespace)
    return _info


def loopback_driver(address: str) -> None:
    """Prepare this process to drive the cluster at ``address`` (a GCS ``host:port``).

    A head of ``fsm-actors up`` (or the background head) runs on the loopback only (Ray's
    "cluster mode" off, so its node address stays 127.0.0.1 and its servers listen there). A
    driver must take the same view, or Ray swaps 127.0.0.1 for this machine's network address
    and waits for a GCS and a raylet there that never answer: when every live node is on the
    loopback, this process's Ray is put out of cluster mode too. Any other cluster: nothing.
    """
    if not address or "://" in address:
        return
    host = address.rpartition(":")[0].strip("[]")
    if host not in _LOCAL_HOSTS and not host.startswith("127."):
        return  # a network address: Ray keeps it as it is
    try:
        from ray._raylet import GcsClient

        nodes = GcsClient(address=address).get_all_node_info(timeout=PROBE_TIMEOUT).values()
    except Exception:  # noqa: BLE001 - the connection itself reports what is wrong
        return
    alive = [n.node_manager_address for n in nodes if n.state == 0]  # 0: ALIVE
    if alive and all(ip.startswith("127.") or ip == "::1" for ip in alive):
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # read at each call by Ray's services


_AUTH_HINT = (
    " If the cluster uses token authentication (Ray's default), set RAY_AUTH_MODE=token and "
    "give this machine the cluster's token (~/.ray/auth_token, or RAY_AUTH_TOKEN)."
)
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: RAY_AUTH_MODE as it was before ``ensure_ray`` set it for a cluster; restored by shutdown().
_saved_auth_env: list[str | None] = []


def cluster_auth_mode(address: str) -> str | None:
    """``"token"`` or ``"disabled"``: what the cluster at ``address`` uses; None if unknown.

    Asks the GCS (``host:port``) or the Ray Client server (``ray://host:port``) one call
    without a token: a token-auth cluster answers UNAUTHENTICATED, any other cluster serves it.
    """
    if address.startswith(("http://", "https://")):
        return _dashboard_auth_mode(address)
    try:
        import grpc
    except ImportError:  # pragma: no cover - grpc ships with ray[default]
        return None
    target = address.removeprefix("ray://")
    with grpc.insecure_channel(target) as channel:
        try:
            if address.startswith("ray://"):
                from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

                ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                    ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING),
                    timeout=PROBE_TIMEOUT,
                )
            else:
                from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

                gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                    gcs_service_pb2.GetClusterIdRequest(), timeout=PROBE_TIMEOUT
                )
        except grpc.RpcError as exc:
            return "token" if exc.code() == grpc.StatusCode.UNAUTHENTICATED else None
        except ImportError:  # pragma: no cover - a Ray without these protos
            return None
    return "disabled"


def _dashboard_auth_mode(url: str) -> str | None:
    """The dashboard's own answer (``/api/authentication_mode`` needs no token)."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/authentication_mode",
                                    timeout=PROBE_TIMEOUT) as reply:
            mode = json.loads(reply.read()).get("authentication_mode")
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as exc:
        raise RuntimeConnectError(
            f"Could not reach the Ray dashboard at {url}: {getattr(exc, 'reason', exc)}. Check "
            "the address (the head's dashboard, port 8265 by default) and that the head runs."
        ) from None
    return mode if mode in ("token", "disabled") else None


def _is_this_machine(host: str) -> bool:
    return host in _LOCAL_HOSTS or host == ray.util.get_node_ip_address()


def _has_token() -> bool:
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:  # pragma: no cover - a Ray without token auth
        return False
    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()
    return loader.has_token(ignore_auth_mode=True)


def _set_auth_mode(mode: str) -> None:
    """Make this process (and the processes it starts) speak ``mode`` to Ray."""
    if os.environ.get("RAY_AUTH_MODE") == mode:
        return
    if not _saved_auth_env:
        _saved_auth_env.append(os.environ.get("RAY_AUTH_MODE"))
    os.environ["RAY_AUTH_MODE"] = mode
    try:
        from ray._raylet import Config
    except ImportError:  # pragma: no cover
        return
    Config.initialize("")  # Ray caches the mode in its config; refresh it


def use_cluster_auth(address: str, source: str | None = None) -> str | None:
    """Speak the cluster's authentication mode; returns it (None when it cannot be told).

    A cluster without token auth gets none: a driver that requires tokens makes every actor
    die before it runs. A token-auth cluster on this machine gets this machine's token (it
    shares the token file); a remote one only when RAY_AUTH_MODE=token says so, since Ray
    never sends the local token to an explicit address on its own either.
    """
    mode = cluster_auth_mode(address)
    where = f"{address!r}" + (f" (from {source})" if source and source != "argument" else "")
    if mode == "disabled":
        _set_auth_mode("disabled")
    elif mode == "token":
        host = address.split("://", 1)[-1].split("/", 1)[0].rpartition(":")[0].strip("[]")
        explicit = os.environ.get("RAY_AUTH_MODE") == "token"
        if not explicit and not _is_this_machine(host):
            raise RuntimeConnectError(
                f"The Ray cluster at {where} uses token authentication. Set RAY_AUTH_MODE=token "
                "and give this machine that cluster's token: RAY_AUTH_TOKEN=<token>, or the "
                "file ~/.ray/auth_token (`ray get-auth-token` on the head prints it)."
            )
        if not _has_token():
            raise RuntimeConnectError(
                f"The Ray cluster at {where} uses token authentication and this machine has no "
                "token. Set RAY_AUTH_TOKEN=<token> or write it to ~/.ray/auth_token "
                "(`ray get-auth-token` on the head prints it)."
            )
        _set_auth_mode("token")
    return mode


def _running_local_cluster() -> str | None:
    """The GCS address of the latest ``ray start`` on this machine, if it still answers."""
    try:
        from ray._private.services import find_bootstrap_address
    except ImportError:  # pragma: no cover
        return None
    found = find_bootstrap_address(None)
    if not found:
        return None
    host, _, port = found.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return found
    except (OSError, ValueError):
        return None


PROBE_TIMEOUT = 3.0


def _probe(address: str, source: str | None) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``address`` (Ray's own client
    retries a dead address for a long time)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise RuntimeConnectError(
            f"Ray address {address!r} (from {source}) is not host:port; use e.g. "
            "'auto', '10.0.0.5:6379' or 'ray://10.0.0.5:10001'."
        )
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT):
            pass
    except OSError as exc:
        raise RuntimeConnectError(
            f"Could not connect to Ray at {address!r} (from {source}): nothing answered at "
            f"{host}:{port} within {PROBE_TIMEOUT:g}s ({exc.strerror or exc}). Check that the "
            "head node runs (`ray status` there), the port (6379 for the GCS, 10001 for "
            "ray://), and firewalls; or unset RAY_ADDRESS / FSM_ACTORS_ADDRESS to run on an "
            "embedded local Ray."
        ) from None


def _describe(started_local: bool, dashboard_url: str | None = None) -> RuntimeInfo:
    ctx = ray.get_runtime_context()
    gcs = getattr(ctx, "gcs_address", None) or "unknown"
    return RuntimeInfo(
        address=gcs, namespace=ctx.namespace, started_local=started_local, dashboard_url=dashboard_url
    )


def shutdown() -> None:
    """Disconnect from Ray (and stop the embedded instance if we started one)."""
    global _info
    if ray.is_initialized():
        ray.shutdown()
    _info = None
    if _saved_auth_env:
        previous = _saved_auth_env.pop()
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous
        try:
            from ray._raylet import Config

            Config.initialize("")
        except ImportError:  # pragma: no cover
            pass


def namespace() -> str:
    """The namespace of the current connection (``ensure_ray`` must have run)."""
    return ray.get_runtime_context().namespace


def cluster_cpus() -> int:
    """Total CPUs of the connected cluster, at least 1."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def role_cpus(role: str) -> float:
    """CPU request for an actor role, from ``FSM_ACTORS_<ROLE>_CPUS`` or the default."""
    env = os.environ.get(f"FSM_ACTORS_{role.upper()}_CPUS")
    if env is not None:
        return float(env)
    return ROLE_CPUS.get(role, ROLE_CPUS["worker"])


def actor_options(
    role: str = "worker", *, name: str | None = None, num_cpus: float | None = None, **extra: Any
) -> dict[str, Any]:
    """``.options(...)`` for a long-lived actor of ``role`` in this project's namespace.

    Workers are spread over the nodes of a cluster; brokers ask for no CPU at all.
    """
    opts: dict[str, Any] = {
        "num_cpus": role_cpus(role) if num_cpus is None else num_cpus,
        "namespace": namespace(),
        "max_concurrency": extra.pop("max_concurrency", 1),
    }
    if name is not None:
        opts["name"] = name
    if role == "worker":
        opts.setdefault("scheduling_strategy", "SPREAD")
    opts.update(extra)
    return opts
