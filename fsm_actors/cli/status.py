"""``fsm-actors status``: this project's actors on a cluster, grouped, with live counters.

Actors come from Ray's state API (alive, in the project's namespace) and are grouped by
their names: ``fsm/<fsm>/<i>`` (FSM pools), ``<pattern>/<run id>/<role>/<i>`` (job workers
and pattern actors), ``resource/<name>`` (providers) and ``resource-manager`` (the broker).
Counters are read from each actor's ``status()`` method when it has one (job workers
answer while they run a task; another actor busy with a long call is shown as busy). Each
running job is shown with its pipeline, input, progress (records done / total, rate, ETA)
and, for FSMs, its live per-state counts with rates, from the document its driver
publishes (``fsm_actors.platform.jobs.heartbeat``). With ``--watch`` the view refreshes
and shows rates from the change between two readings. Running jobs are listed too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from fsm_actors.cli.address import HELP as ADDRESS_HELP
from fsm_actors.cli.address import (
    dashboard_url,
    driver_options,
    find,
    no_dashboard,
    note_dashboard,
    ray_address,
)
from fsm_actors.cli.documents import UserError
from fsm_actors.platform import runtime
from fsm_actors.platform.jobs import heartbeat
from fsm_actors.platform.jobs.progress import progress_text

#: Counters a rate is computed for (records per second between two readings).
RATE_KEYS = ("records", "records_read", "records_processed", "records_done")
STATUS_TIMEOUT = 2.0


@dataclass
class ActorRow:
    """One live actor: where it belongs, where it runs, what it said about itself."""

    group: tuple[str, str]
    role: str
    name: str
    class_name: str
    node_id: str
    status: dict[str, Any] | None = None
    note: str = ""
    rates: dict[str, float] = field(default_factory=dict)


def group_of(name: str) -> tuple[tuple[str, str], str]:
    """``((kind, id), role)`` for an actor name of this project."""
    parts = name.split("/")
    if name == "resource-manager":
        return ("resources", "broker"), "broker"
    if parts[0] == "resource" and len(parts) >= 2:
        return ("resources", "providers"), "provider"
    if is_job_worker(name):
        return (parts[0], "/".join(parts[1:-2])), "worker"
    if parts[0] == "fsm" and len(parts) >= 3:
        return ("fsm", "/".join(parts[1:-1])), "worker"
    if len(parts) >= 4:
        return (parts[0], parts[1]), "/".join(parts[2:-1])
    return ("other", ""), parts[0] or "?"


def is_job_worker(name: str) -> bool:
    """A job's worker (``<pattern>/<run id>/worker/<i>``), not an FSM pool's actor."""
    parts = name.split("/")
    return len(parts) >= 4 and parts[-2] == "worker"


def collect(dashboard_url: str, namespace: str) -> list[ActorRow]:
    """The project's live actors with their ``status()``, read from the cluster."""
    import ray
    from ray.util.state import list_actors

    listed = list_actors(address=dashboard_url, filters=[("state", "=", "ALIVE")],
                         limit=10_000, raise_on_missing_output=False)
    rows: list[ActorRow] = []
    pending = []
    for actor in listed:
        if actor.ray_namespace != namespace or not actor.name:
            continue
        group, role = group_of(actor.name)
        row = ActorRow(group, role, actor.name, actor.class_name, actor.node_id or "")
        rows.append(row)
        try:
            handle = ray.get_actor(actor.name, namespace=namespace)
            pending.append((row, handle.status.remote()))
        except AttributeError:
            row.note = "no status()"
        except ValueError:  # gone between the listing and now
            row.note = "gone"
        except Exception as exc:  # noqa: BLE001 - one actor's answer, never the command's end
            # (through Ray Client a handle first loads its class from the GCS, which fails
            # for an actor whose job has just ended: a `run` that is finishing)
            row.note = f"no answer ({type(exc).__name__})"
    for row, ref in pending:
        try:
            row.status = ray.get(ref, timeout=STATUS_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            row.note = "busy (no answer in 2s)"
        except Exception as exc:  # noqa: BLE001 - as above: one actor, one note
            row.note = f"status failed: {type(exc).__name__}"
    rows.sort(key=lambda r: (r.group, r.role, r.name))
    return rows


def running_jobs(dashboard_url: str) -> list[tuple[str, str]]:
    """``(id, entrypoint)`` of the cluster's running jobs."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    try:
        jobs = JobSubmissionClient(dashboard_url).list_jobs()
    except (ConnectionError, RuntimeError):
        return []
    return [(j.submission_id, j.entrypoint) for j in jobs
            if j.status == JobStatus.RUNNING and j.submission_id]  # not plain drivers


def _counters(status: dict[str, Any] | None) -> str:
    if not status:
        return ""
    shown = []
    for key, value in status.items():
        if key in ("fsm", "actor", "name") or isinstance(value, dict | list) or value is None:
            continue
        shown.append(f"{key}={value:,}" if isinstance(value, int) and not isinstance(value, bool)
                     else f"{key}={value}")
    return " ".join(shown)


def job_lines(doc: dict[str, Any]) -> list[str]:
    """A running job's pipeline, input, progress and (FSMs) live per-state counts."""
    lines = [f"  pipeline {doc.get('pipeline')!r}, input {doc.get('input') or '?'}",
             f"  progress: {progress_text(doc)}"]
    states = doc.get("states") or {}
    if states:
        width = max(len(name) for name in states)
        lines.append(f"  {'state':<{width}}  {'entered':>10} {'ended':>10} {'failed':>8} "
                     f"{'entered/s':>10}")
        lines += [f"  {name:<{width}}  {row['entered']:>10,} {row['ended']:>10,} "
                  f"{row['failed']:>8,} {row['rate']:>10,.0f}" for name, row in states.items()]
    return lines


def render(rows: list[ActorRow], jobs: list[tuple[str, str]], where: str,
           runs: list[dict[str, Any]] | None = None) -> list[str]:
    """The status view as lines; ``runs``: the running jobs' progress documents
    (``heartbeat.running()``), shown under their workers' group."""
    by_run = {doc["run"]: doc for doc in runs or []}
    lines = [f"cluster {where}: {len(rows)} fsm-actors actors"]
    current = None
    for row in rows:
        if row.group != current:
            current = row.group
            members = sum(1 for r in rows if r.group == current)
            kind, ident = current
            doc = by_run.pop(ident, None) if is_job_worker(row.name) else None
            title = {"fsm": f"FSM pool {ident!r}", "resources": f"resources ({ident})"}.get(
                kind, f"{kind} run {ident}") if not is_job_worker(row.name) else (
                f"{kind} run {ident}")
            lines.append(f"{title}: {members} actor{'s' if members != 1 else ''}")
            if doc is not None:
                lines += job_lines(doc)
        rates = " ".join(f"{k}/s={v:,.0f}" for k, v in row.rates.items())
        detail = " ".join(filter(None, [_counters(row.status), rates, row.note]))
        lines.append(f"  {row.name:<40} {row.role:<9} node {row.node_id[:8]:<8} {detail}")
    for doc in by_run.values():  # local runs and runs whose workers are not listed
        lines.append(f"{doc.get('pattern')} run {doc['run']} (no workers listed)")
        lines += job_lines(doc)
    lines.append(f"running jobs: {len(jobs)}")
    lines += [f"  {job_id}  {entrypoint}" for job_id, entrypoint in jobs]
    return lines


def _rates(rows: list[ActorRow], before: dict[str, tuple[float, dict[str, Any]]]) -> None:
    now = time.monotonic()
    for row in rows:
        if row.status is None:
            continue
        seen = before.get(row.name)
        if seen:
            dt = now - seen[0]
            for key in RATE_KEYS:
                if isinstance(row.status.get(key), int) and key in seen[1] and dt > 0:
                    row.rates[key] = (row.status[key] - seen[1][key]) / dt
        before[row.name] = (now, dict(row.status))


@click.command()
@click.option("--address", default=None, help=ADDRESS_HELP)
@click.option("--watch", "-w", is_flag=True, help="Refresh every --interval seconds.")
@click.option("--interval", type=float, default=2.0, show_default=True)
def status(address: str | None, watch: bool, interval: float) -> None:
    """Show this project's actors on a running cluster, grouped by pipeline and run, and
    this machine's in-process runs."""
    try:
        cluster = find(address)
    except UserError:
        if address is not None or not heartbeat.running_here():
            raise
        # no cluster here, but runs in their own processes
        _show(lambda: ["no Ray cluster runs on this machine",
                       *here_lines(heartbeat.running_here())], watch, interval)
        return
    try:
        target = ray_address(cluster)
        info = runtime.ensure_ray(target, **driver_options(target))
    except runtime.RuntimeConnectError as exc:
        raise UserError(str(exc)) from None
    if cluster.client:  # ray://: this connection names the dashboard (no second one)
        if not info.dashboard_url:
            raise no_dashboard(cluster)
        note_dashboard(cluster, info.dashboard_url)
    dashboard = dashboard_url(cluster)
    runtime.use_cluster_auth(dashboard)
    seen: dict[str, tuple[float, dict[str, Any]]] = {}

    def view() -> list[str]:
        rows = collect(dashboard, info.namespace)
        _rates(rows, seen)
        lines = render(rows, running_jobs(dashboard), cluster.describe(), heartbeat.running())
        return lines + (here_lines(heartbeat.running_here()) if address is None else [])

    _show(view, watch, interval)


def _show(view: Callable[[], list[str]], watch: bool, interval: float) -> None:
    """Print ``view()`` once, or with ``watch`` every ``interval`` s until Ctrl-C."""
    while True:
        lines = view()
        if watch:
            click.clear()
        click.echo("\n".join(lines))
        if not watch:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


def here_lines(docs: list[dict[str, Any]]) -> list[str]:
    """This machine's in-process runs (``heartbeat.running_here``), as ``render`` shows jobs."""
    if not docs:
        return []
    lines = [f"in-process runs on this machine: {len(docs)}"]
    for doc in docs:
        lines.append(f"{doc.get('pattern')} run {doc['run']} (pid {doc.get('pid')}, "
                     f"{doc.get('workers', 1)} lane{'s' if doc.get('workers', 1) != 1 else ''})")
        lines += job_lines(doc)
    return lines

