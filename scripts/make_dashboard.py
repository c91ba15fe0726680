"""Write dashboards/fsm-actors.json: a Grafana dashboard with one panel per metric of
fsm_actors.platform.metrics.CHARTED (the ones real runs record), and a row of FSM state panels repeated per state (the
``state`` variable) over STATE_CATALOG (run again after adding a metric; a test checks they
match)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fsm_actors.platform.metrics import CATALOG, CHARTED, PREFIX, STATE_CATALOG  # noqa: E402

BY = "pipeline, run, role"


def query(name: str, kind: str) -> tuple[str, str]:
    """PromQL and unit of the panel for one metric (Ray exports as ray_<name>)."""
    metric = f"ray_{PREFIX}{name}"
    if kind == "counter":
        return f"sum by ({BY}) (rate({metric}_total{{run=~\"$run\"}}[1m]))", "ops"
    if kind == "gauge":
        return f"sum by ({BY}) ({metric}{{run=~\"$run\"}})", "short"
    return (f"histogram_quantile(0.95, sum by (le, {BY}) "
            f"(rate({metric}_bucket{{run=~\"$run\"}}[5m])))", "s")


def state_panel(panel_id: int, y: int) -> dict:
    """One panel per FSM state (repeated by Grafana for each value of ``$state``): records
    entering, ending and failing there per second, and the seconds spent there per second."""
    targets = []
    for i, name in enumerate(STATE_CATALOG):
        if name == "arc_taken":
            continue
        metric = f"ray_{PREFIX}{name}_total"
        targets.append({
            "refId": chr(ord("A") + i),
            "expr": f"sum by (fsm, state) (rate({metric}{{fsm=~\"$fsm\", "
                    f"state=~\"$state\"}}[1m]))",
            "legendFormat": "{{fsm}} {{state}} " + name.removeprefix("state_"),
        })
    return {
        "id": panel_id, "type": "timeseries", "title": "State $state (per s)",
        "description": "state_entered, state_ended, state_failed, state_seconds: counters "
                       "tagged fsm and state; one panel per state",
        "repeat": "state", "repeatDirection": "h", "maxPerRow": 3,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 8, "x": 0, "y": y},
        "fieldConfig": {"defaults": {"unit": "ops"}, "overrides": []},
        "targets": targets,
    }


def arc_panel(panel_id: int, y: int) -> dict:
    """Transitions per second along each arc of the chosen FSMs."""
    metric = f"ray_{PREFIX}arc_taken_total"
    return {
        "id": panel_id, "type": "timeseries", "title": "Arcs taken (per s)",
        "description": "arc_taken: counter tagged fsm and state ('from->to')",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 24, "x": 0, "y": y},
        "fieldConfig": {"defaults": {"unit": "ops"}, "overrides": []},
        "targets": [{"refId": "A",
                     "expr": f"sum by (fsm, state) (rate({metric}{{fsm=~\"$fsm\"}}[1m]))",
                     "legendFormat": "{{fsm}} {{state}}"}],
    }


def dashboard() -> dict:
    panels = []
    for i, name in enumerate(CHARTED):
        kind, description, _ = CATALOG[name]
        expr, unit = query(name, kind)
        title = description + (" (per s)" if kind == "counter" else
                               " (p95)" if kind == "histogram" else "")
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title, "description": f"{name}: {kind}",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr,
                         "legendFormat": "{{pipeline}} {{role}} {{run}}"}],
        })
    top = 8 * ((len(panels) + 1) // 2)
    panels.append(arc_panel(len(panels) + 1, top))
    panels.append(state_panel(len(panels) + 1, top + 8))
    return {
        "title": "fsm-actors", "uid": "fsm-actors", "schemaVersion": 39, "version": 1,
        "tags": ["ray", "fsm-actors"], "time": {"from": "now-30m", "to": "now"},
        "refresh": "10s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Prometheus"},
            {"name": "run", "type": "query", "label": "run",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": f"label_values(ray_{PREFIX}records_total, run)",
             "includeAll": True, "allValue": ".*", "multi": True,
             "current": {"text": "All", "value": "$__all"}},
            {"name": "fsm", "type": "query", "label": "FSM",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": f"label_values(ray_{PREFIX}state_entered_total, fsm)",
             "includeAll": True, "allValue": ".*", "multi": True,
             "current": {"text": "All", "value": "$__all"}},
            {"name": "state", "type": "query", "label": "state",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": f"label_values(ray_{PREFIX}state_entered_total{{fsm=~\"$fsm\"}}, state)",
             "includeAll": True, "allValue": ".*", "multi": True,
             "current": {"text": "All", "value": "$__all"}},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "dashboards" / "fsm-actors.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out} ({len(CHARTED) + 2} panels; the state panel repeats per state)")
