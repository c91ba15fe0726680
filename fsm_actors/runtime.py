"""The connection to Ray: the only module of the project that calls ``ray.init``.

``ensure_ray()`` starts an embedded local Ray when there is no cluster and no address, or
attaches to an existing cluster (``"auto"``, ``"ray://host:10001"``, ``RAY_ADDRESS`` or
``FSM_ACTORS_ADDRESS``). It is idempotent: a second call returns the same connection.

``actor_options(role)`` gives the resource requests of long-lived actors. They ask for
fractional CPUs (brokers for none) because on a 2-core node actors at ``num_cpus=1`` hold
every CPU while the tasks they wait on queue forever (see the project's RAY-NOTES).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import ray

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


class RuntimeConnectError(RuntimeError):
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
    return None, None


def _our_packages() -> list[Any]:
    import fsm_actors
    import patterns
    import resource_actors

    return [fsm_actors, resource_actors, patterns]


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
        _token_auth_for_this_machine(address)
    if address and address.startswith("ray://") and "runtime_env" not in init_kw:
        init_kw["runtime_env"] = {"py_modules": _our_packages()}
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
            ctx = ray.init(address=address, namespace=namespace, **init_kw)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = f"address {address!r} (from {source})" if address else "a local Ray instance"
        raise RuntimeConnectError(
            f"Could not connect to Ray at {where}: {exc}. "
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


_AUTH_HINT = (
    " If the cluster uses token authentication (Ray's default), set RAY_AUTH_MODE=token and "
    "give this machine the cluster's token (~/.ray/auth_token, or RAY_AUTH_TOKEN)."
)


def _token_auth_for_this_machine(address: str) -> None:
    """Use this machine's Ray token for a cluster on this machine.

    Ray enables token auth by itself only for clusters it finds on its own; for an explicit
    address it never sends the local token, since that address may be someone else's
    cluster. A head on this machine shares the token file, so sending it there is safe.
    """
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    host = address.removeprefix("ray://").rpartition(":")[0].strip("[]")
    if host not in {"127.0.0.1", "localhost", "::1", ray.util.get_node_ip_address()}:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token auth needs nothing here
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


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
