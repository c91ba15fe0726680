"""Write dashboards/fsm-actors.json: a Grafana dashboard with one panel per metric of
fsm_actors.platform.metrics.CATALOG (run again after adding a metric; a test checks they match)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fsm_actors.platform.metrics import CATALOG, PREFIX  # noqa: E402

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


def dashboard() -> dict:
    panels = []
    for i, (name, (kind, description, _)) in enumerate(CATALOG.items()):
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
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "dashboards" / "fsm-actors.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out} ({len(CATALOG)} panels)")
