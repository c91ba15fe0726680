"""Metrics of the project as ``ray.util.metrics`` (Prometheus, via Ray's metrics agent).

Every layer may call these; they cost a dict lookup when not on Ray and never import Ray
themselves (a plain core that calls them stays free of Ray). Each metric carries the tags
``pipeline``, ``run`` and ``role`` (an empty string when not given)::

    from fsm_actors.platform import metrics
    metrics.inc("records", 5000, pipeline="orders", run=run_id, role="worker")
    metrics.observe("batch_seconds", 0.042, pipeline="orders", role="worker")
    metrics.set_gauge("leases_held", 3, pipeline="db", role="provider")

Ray exports them as ``ray_fsm_actors_<name>`` on each node's metrics port (Prometheus
scrapes it; the Grafana dashboard in ``dashboards/fsm-actors.json`` reads them).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

TAG_KEYS = ("pipeline", "run", "role")
PREFIX = "fsm_actors_"

#: name -> (kind, description, histogram boundaries)
CATALOG: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "records": ("counter", "Records processed", ()),
    "records_written": ("counter", "Records written to an output", ()),
    "errors": ("counter", "Records rejected or failed", ()),
    "batches": ("counter", "Batches (actor calls) done", ()),
    "batch_seconds": ("histogram", "Time of one batch in an actor",
                      (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)),
    "leases_held": ("gauge", "Resource leases held right now", ()),
    "lease_waits": ("counter", "Acquires that had to wait for a free slot", ()),
    "lease_wait_seconds": ("histogram", "Time an acquire waited",
                           (0.001, 0.01, 0.1, 0.5, 1, 5, 30)),
    "breaker_state": ("gauge", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ()),
    "limiter_waits": ("counter", "Calls a rate limiter made wait", ()),
    "limiter_wait_seconds": ("histogram", "Time a rate limiter made a call wait",
                             (0.001, 0.01, 0.1, 0.5, 1, 5)),
}

#: what the Grafana dashboard charts: the metrics every job worker records per batch (file,
#: FSM stream, ETL, API and submitted runs) and FSM actors per process_batch call. The
#: resource metrics above (leases, breaker, limiter) are not recorded by any part yet and
#: have no panel (``scripts/make_dashboard.py``; tests/ops/test_metrics_runs.py reads each
#: charted one from the metrics export after real runs of every kind).
CHARTED = ("records", "records_written", "errors", "batches", "batch_seconds")

_made: dict[str, Any] = {}
_lock = threading.Lock()


def on_ray() -> bool:
    """True when this process is connected to Ray (a driver after ``ensure_ray``, or any
    actor or task); metrics are recorded only then."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _known(name: str) -> None:
    if name not in CATALOG:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(CATALOG)}")


def _metric(name: str) -> Any:
    metric = _made.get(name)
    if metric is not None:
        return metric
    kind, description, boundaries = CATALOG[name]
    from ray.util import metrics as ray_metrics

    with _lock:
        if name not in _made:
            if kind == "counter":
                made = ray_metrics.Counter(PREFIX + name, description, tag_keys=TAG_KEYS)
            elif kind == "gauge":
                made = ray_metrics.Gauge(PREFIX + name, description, tag_keys=TAG_KEYS)
            else:
                made = ray_metrics.Histogram(PREFIX + name, description,
                                             boundaries=list(boundaries), tag_keys=TAG_KEYS)
            _made[name] = made
    return _made[name]


def _tags(pipeline: str | None, run: str | None, role: str | None) -> dict[str, str]:
    return {"pipeline": pipeline or "", "run": run or "", "role": role or ""}


def inc(name: str, value: float = 1, *, pipeline: str | None = None, run: str | None = None,
        role: str | None = None) -> None:
    """Add ``value`` (> 0; zero is skipped) to the counter ``name``."""
    _known(name)
    if value <= 0 or not on_ray():
        return
    _metric(name).inc(value, tags=_tags(pipeline, run, role))


def set_gauge(name: str, value: float, *, pipeline: str | None = None, run: str | None = None,
              role: str | None = None) -> None:
    """Set the gauge ``name`` to ``value``."""
    _known(name)
    if on_ray():
        _metric(name).set(value, tags=_tags(pipeline, run, role))


def observe(name: str, value: float, *, pipeline: str | None = None, run: str | None = None,
            role: str | None = None) -> None:
    """Record one observation of the histogram ``name``."""
    _known(name)
    if on_ray():
        _metric(name).observe(value, tags=_tags(pipeline, run, role))


# -- per-state FSM counts ----------------------------------------------------------------

STATE_TAG_KEYS = ("fsm", "state")

#: name -> description; counters tagged ``fsm`` and ``state`` (``state`` is ``a->b`` for arcs)
STATE_CATALOG: dict[str, str] = {
    "state_entered": "Records that entered an FSM state",
    "state_ended": "Records that ended in an FSM state",
    "state_failed": "Records that failed in an FSM state",
    "state_seconds": "Time spent in an FSM state (estimated from sampled records)",
    "arc_taken": "Transitions taken along an FSM arc (state tag: 'from->to')",
}


def _state_metric(name: str) -> Any:
    metric = _made.get(name)
    if metric is not None:
        return metric
    from ray.util import metrics as ray_metrics

    with _lock:
        if name not in _made:
            _made[name] = ray_metrics.Counter(PREFIX + name, STATE_CATALOG[name],
                                              tag_keys=STATE_TAG_KEYS)
    return _made[name]


def record_states(fsm: str, counts: dict[str, Any]) -> None:
    """Add one chunk's per-state counts (``engine.counts.StateCounts.dump()``) to the
    ``state_*`` and ``arc_taken`` counters, tagged ``fsm`` and ``state``. Off Ray: nothing."""
    if not counts or not on_ray():
        return
    entered, ended, failed = (_state_metric(n) for n in
                              ("state_entered", "state_ended", "state_failed"))
    for state, row in counts.get("states", {}).items():
        tags = {"fsm": fsm, "state": state}
        for metric, value in zip((entered, ended, failed), row, strict=False):
            if value > 0:
                metric.inc(value, tags=tags)
    seconds = _state_metric("state_seconds")
    rows = counts.get("states", {})
    for state, (n, spent) in counts.get("sampled", {}).items():
        if n and spent > 0 and state in rows:
            seconds.inc(spent / n * rows[state][0], tags={"fsm": fsm, "state": state})
    arcs = _state_metric("arc_taken")
    for arc, n in counts.get("arcs", {}).items():
        if n > 0:
            arcs.inc(n, tags={"fsm": fsm, "state": arc})
