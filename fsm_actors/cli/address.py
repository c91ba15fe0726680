"""One cluster address for every command, in any of Ray's forms.

``--address`` (else ``FSM_ACTORS_ADDRESS``, ``RAY_ADDRESS``, ``RAY_API_SERVER_ADDRESS``, the
head of ``fsm-actors up``, the latest ``ray start`` on this machine) may be the dashboard
(``http://HEAD:8265``), the GCS (``HEAD:6379``), Ray Client (``ray://HEAD:10001``) or
``auto``. Each command takes what it needs from it: the job commands the dashboard URL (a GCS
address is turned into it through the GCS's own record of its dashboard, a ``ray://`` address
by connecting), ``run`` and ``status`` an address ``ray.init`` takes (a dashboard URL is
turned into the GCS address the head wrote in its session directory, when the head runs on
this machine). A form that points at the wrong server gets a message with the right one.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsm_actors.cli.documents import UserError
from fsm_actors.platform import runtime

#: where an address may come from, in order, after --address
ENV_VARS = ("FSM_ACTORS_ADDRESS", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
FORMS = ("http://HEAD:8265 (dashboard), HEAD:6379 (GCS), ray://HEAD:10001 (Ray Client) or "
         "auto (the latest `ray start` on this machine)")
HELP = (f"The cluster: {FORMS}. Default: FSM_ACTORS_ADDRESS, RAY_ADDRESS, "
        "RAY_API_SERVER_ADDRESS, the head of `fsm-actors up`, else the latest `ray start` here.")
TIMEOUT = 3.0


@dataclass
class Cluster:
    """A cluster as found: what was given, where it came from, and what is known of it."""

    given: str
    source: str
    gcs: str | None = None
    dashboard: str | None = None
    client: str | None = None

    def describe(self) -> str:
        """``http://… (GCS …; from RAY_ADDRESS)``: the name a command prints."""
        main = self.dashboard or self.gcs or self.client or self.given
        others = [f"GCS {self.gcs}" if self.gcs and self.gcs != main else "",
                  f"Ray Client {self.client}" if self.client and self.client != main else ""]
        details = "; ".join(filter(None, [*others, f"from {self.source}"]))
        return f"{main} ({details})"


def given_address(address: str | None) -> tuple[str, str] | None:
    """``(address, source)`` by the order in the module docstring; None when none is set."""
    if address:
        return address, "--address"
    for var in ENV_VARS:
        if os.environ.get(var):
            return os.environ[var], var
    head = runtime.local_head()
    if head is not None:
        return head["address"], "`fsm-actors up`"
    return None


def find(address: str | None) -> Cluster:
    """The cluster named by ``address`` (or the defaults); ``UserError`` when there is none
    or the address is of no form that answers."""
    given = given_address(address)
    if given is None:
        given = ("auto", "nothing given")
    text, source = given
    text = text.strip()
    if text == "auto":
        found = runtime._running_local_cluster()
        if not found:
            why = "no address was given" if source == "nothing given" else f"{source} is auto"
            raise UserError(f"no Ray cluster runs on this machine (looked for the latest `ray "
                            f"start` because {why}): start one with `fsm-actors up`, or give "
                            f"--address as {FORMS}")
        return _with_auth(Cluster(text, source if source != "nothing given" else
                                  "the latest `ray start` on this machine", gcs=found))
    if text == "local":
        raise UserError(f"address 'local' (from {source}) means a new embedded Ray, which only "
                        f"`fsm-actors run` starts; give a running cluster as {FORMS}")
    scheme, _, rest = text.rpartition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host or not port.isdigit() or scheme not in ("", "http", "https", "ray"):
        raise UserError(f"address {text!r} (from {source}) is not one of Ray's forms: {FORMS}")
    hostport = f"{host}:{port}"
    speaks = _what_answers(host, int(port), source, text)
    wants = {"http": "dashboard", "https": "dashboard", "ray": "client"}.get(scheme)
    if speaks == wants or (not scheme and speaks in ("dashboard", "gcs")):
        cluster = Cluster(text, source)
        if speaks == "dashboard":
            cluster.dashboard = text.rstrip("/") if scheme else f"http://{hostport}"
        elif speaks == "gcs":
            cluster.gcs = hostport
        else:
            cluster.client = text
        return _with_auth(cluster)
    raise UserError(_wrong(text, source, speaks, hostport))


def _with_auth(cluster: Cluster) -> Cluster:
    """Speak the cluster's authentication mode (token or none) from now on."""
    try:
        runtime.use_cluster_auth(cluster.dashboard or cluster.gcs or cluster.client or "",
                                 cluster.source)
    except runtime.RuntimeConnectError as exc:
        raise UserError(str(exc)) from None
    return cluster


def _what_answers(host: str, port: int, source: str, text: str) -> str:
    """``"dashboard"`` (Ray's HTTP API), ``"gcs"``, ``"client"`` (Ray Client) or ``"other"``."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            pass
    except OSError as exc:
        raise UserError(f"nothing answers at {host}:{port} (address {text!r} from {source}): "
                        f"{exc.strerror or exc}. Check that the head runs and the port; "
                        f"forms: {FORMS}") from None
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/version", timeout=TIMEOUT) as r:
            if "ray_version" in json.loads(r.read() or b"{}"):
                return "dashboard"
    except urllib.error.HTTPError as exc:
        return "dashboard" if exc.code in (401, 403) else "other"
    except (OSError, ValueError, http.client.HTTPException):
        pass  # not HTTP: a gRPC server (GCS or Ray Client)?
    if runtime.cluster_auth_mode(f"{host}:{port}") is not None:
        return "gcs"
    if runtime.cluster_auth_mode(f"ray://{host}:{port}") is not None:
        return "client"
    return "other"


def _wrong(text: str, source: str, speaks: str, hostport: str) -> str:
    what = {"dashboard": f"the Ray dashboard: give it as http://{hostport}",
            "gcs": f"the cluster's GCS: give it as {hostport}",
            "client": f"the Ray Client server: give it as ray://{hostport}",
            "other": f"not a Ray server; forms: {FORMS}"}[speaks]
    return f"address {text!r} (from {source}): {hostport} is {what}"


def dashboard_url(cluster: Cluster) -> str:
    """The dashboard URL of ``cluster`` (what the job commands talk to)."""
    if cluster.dashboard:
        return cluster.dashboard
    if cluster.gcs:
        found = _dashboard_of_gcs(cluster.gcs)
    else:
        found = known_dashboard(cluster.client or "") or _dashboard_of_client(cluster)
    if not found:
        raise no_dashboard(cluster)
    return note_dashboard(cluster, found)


def no_dashboard(cluster: Cluster) -> UserError:
    return UserError(f"the cluster at {cluster.describe()} runs without a dashboard; this "
                     "command needs it (start the head with --include-dashboard=true)")


def note_dashboard(cluster: Cluster, found: str) -> str:
    """Set ``found`` (``host:port`` or a URL) as ``cluster``'s dashboard URL; remembered for
    its Ray Client address (``known_dashboard``)."""
    cluster.dashboard = found if "://" in found else f"http://{found}"
    if cluster.client:
        remember_dashboard(cluster.client, cluster.dashboard)
    return cluster.dashboard


#: dashboards found through Ray Client, by client address, in ``$FSM_ACTORS_HOME``
KNOWN_DASHBOARDS = "client_dashboards.json"


def known_dashboard(client: str) -> str | None:
    """The dashboard an earlier command found for the Ray Client address ``client``, if it
    still answers as a dashboard. A Ray Client connection forks a server process on the head
    (~3 s on a quiet 2-core head, far more on a loaded one), so ``jobs``, ``logs``, ``stop``
    and ``submit`` by ``ray://`` connect once per address, not once per command. A head
    restarted with another dashboard port is looked up again (the old URL does not
    answer)."""
    try:
        url = json.loads((runtime.state_dir() / KNOWN_DASHBOARDS).read_text()).get(client)
    except (OSError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) and _is_dashboard(url) else None


def remember_dashboard(client: str, url: str) -> None:
    """Note ``url`` as the dashboard of ``client`` (best effort: a home that cannot be
    written only costs the next command a connection)."""
    path = runtime.state_dir() / KNOWN_DASHBOARDS
    try:
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        if not isinstance(known, dict) or known.get(client) == url:
            return
        known[client] = url
        from fsm_actors.platform.io.writers import atomic_write  # (pyarrow: only on a write)

        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(known, indent=1)),
                     fsync=False)
    except OSError:
        pass


def _is_dashboard(url: str) -> bool:
    """Whether Ray's dashboard answers at ``url`` (its version, or a refusal without a
    token)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/version", timeout=TIMEOUT) as r:
            return "ray_version" in json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)
    except (OSError, ValueError, http.client.HTTPException):
        return False


def _dashboard_of_gcs(gcs: str) -> str | None:
    from ray._raylet import GcsClient

    try:
        value = GcsClient(address=gcs).internal_kv_get(b"dashboard", b"dashboard",
                                                       timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - Ray's RPC errors have no common base
        raise UserError(f"the GCS at {gcs} did not say where its dashboard is: {exc}") from None
    return value.decode() if value else None


def _dashboard_of_client(cluster: Cluster) -> str | None:
    """Connect through Ray Client once: its context names the dashboard."""
    from fsm_actors.platform import runtime

    try:
        return runtime.client_dashboard_url(cluster.client)
    except runtime.RuntimeConnectError as exc:
        raise UserError(f"cannot connect to {cluster.describe()}: {exc}") from None


def ray_address(cluster: Cluster) -> str:
    """An address ``ray.init`` takes (GCS or ray://) for ``cluster``."""
    if cluster.gcs or cluster.client:
        return cluster.gcs or cluster.client  # type: ignore[return-value]
    gcs = _gcs_of_dashboard(cluster.dashboard or "")
    if gcs is None:
        raise UserError(
            f"the dashboard {cluster.dashboard} (from {cluster.source}) does not tell its GCS "
            "port to another machine: give this command the head's GCS address (HEAD:6379) "
            "or ray://HEAD:10001")
    cluster.gcs = gcs
    return gcs


def _gcs_of_dashboard(url: str) -> str | None:
    """The GCS address of the head behind ``url``, from the head's session directory (which
    the dashboard names; readable when the head runs on this machine)."""
    try:
        from ray._private.authentication.http_token_authentication import (
            get_auth_headers_if_auth_enabled,
        )

        headers = get_auth_headers_if_auth_enabled({})
    except ImportError:  # a Ray without token authentication
        headers = {}
    request = urllib.request.Request(f"{url}/nodes?view=summary", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            nodes = json.loads(reply.read())["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for node in nodes:
        raylet = node.get("raylet") or {}
        if not raylet.get("isHeadNode"):
            continue
        try:
            text = (Path(raylet["tempDir"]) / "ray_current_cluster").read_text().strip()
        except (OSError, KeyError, TypeError):
            return None
        return text.splitlines()[0] if text else None
    return None


def driver_options(address: str | None) -> dict[str, Any]:
    """Prepare a driver on this machine for the cluster at ``address`` (a GCS
    ``host:port``; see ``runtime.loopback_driver``); returns extra ``ray.init`` options (none
    so far)."""
    if not address or "://" in address or address in ("local", "auto"):
        return {}
    try:
        runtime.use_cluster_auth(address)
    except Exception:  # noqa: BLE001 - the connection itself reports what is wrong
        return {}
    runtime.loopback_driver(address)
    return {}
