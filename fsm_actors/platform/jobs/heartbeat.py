"""A running job's live progress, read from its workers at a steady pace (Ray; driver side).

``Heartbeat`` polls the job workers' ``status()`` (answered while they run a task) every
``TICK`` seconds, sums their figures (records, errors, per-state counts of FSM stages),
computes rates over the last ``WINDOW`` seconds and an ETA when the record total is known,
and

* publishes the document in Ray's internal KV (``progress/<run id>`` under the namespace
  ``KV_NAMESPACE``), where ``fsm-actors status`` reads each job's pipeline, input and
  progress;
* prints a progress line to stderr every ``progress.line_every()`` seconds (runs without a
  terminal: submitted jobs, ``run --no-progress``; ``FSM_ACTORS_PROGRESS_EVERY`` sets it).

A local run (no Ray) reads this process's ``progress.LIVE``; one the CLI sent in-process
(``progress.in_process()``) also keeps its document in ``$FSM_ACTORS_HOME/live/<run
id>.json`` (with its pid; removed when it ends), where ``fsm-actors status`` finds the
in-process runs of this machine (``running_here``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fsm_actors.platform.background_head import pid_alive, state_dir
from fsm_actors.platform.jobs import progress

TICK = 2.0
WINDOW = 30.0
KV_NAMESPACE = "fsm_actors_progress"


#: callables given each job's live document after every beat, and ``{"notice": text}`` for
#: what the driver is doing before tasks report (``fsm-actors run``'s bar and phase lines)
WATCHERS: list[Callable[[dict[str, Any]], None]] = []


def notice(text: str) -> None:
    """Tell the watchers what the driver is doing (a long step with no records yet)."""
    for watcher in list(WATCHERS):
        with contextlib.suppress(Exception):  # a watcher never stops a run
            watcher({"notice": text})


def pipeline_of(kind: Any) -> str:
    """The pipeline name of a job (its label without the pattern word: ``fsm orders`` ->
    ``orders``; the pattern when it has no label)."""
    label = str(getattr(kind, "label", "") or kind.pattern)
    prefix = f"{kind.pattern} "
    return label[len(prefix):] if label.startswith(prefix) else label


def _input_of(kind: Any) -> str:
    spec = getattr(kind, "spec", None)
    source = getattr(spec, "input_path", None) or getattr(kind, "source", None)
    if source:
        return str(source) if not isinstance(source, list) else ", ".join(map(str, source))
    try:
        parts = list(kind.partitions())
    except Exception:  # the kind's own business; the input is then only not named
        parts = []
    if not parts:
        return ""
    return parts[0] + (f" (+{len(parts) - 1} more)" if len(parts) > 1 else "")


class Heartbeat:
    """Live figures of one running job; ``start()`` then ``stop()`` (idempotent)."""

    def __init__(self, kind: Any, runner: Any, *, tick: float = TICK) -> None:
        self.kind = kind
        self.runner = runner
        self.tick = tick
        self.every = progress.line_every()
        self.started = time.time()
        self.doc: dict[str, Any] = {
            "run": kind.run_id, "pattern": kind.pattern, "pipeline": pipeline_of(kind),
            "input": _input_of(kind), "started": self.started,
        }
        self._seen: deque[tuple[float, int, dict[str, list[int]]]] = deque()
        self._base = progress.LIVE.snapshot()  # a local run: this process's figures
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_line = time.monotonic()
        self._kv = False
        self._file: Any = None

    def start(self) -> Heartbeat:
        self._kv = _on_ray() and getattr(self.runner, "pool", None) is not None
        if not self._kv and progress.in_process():
            self._file = _live_dir() / f"{self.kind.run_id}.json"
        self._thread = threading.Thread(target=self._loop, name="job-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick + 5)
        if self._kv:
            _kv_delete(self.kind.run_id)
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.unlink()

    def _loop(self) -> None:
        while not self._stop.wait(min(self.tick, self.every or self.tick)):
            try:
                self.beat()
            except Exception as exc:  # never let progress stop a run
                print(f"progress: cannot read the workers' figures: {exc}", file=sys.stderr)

    def beat(self) -> dict[str, Any]:
        """Read the workers once; update, publish and (when due) print the document."""
        figures = self._read()
        now = time.monotonic()
        records = figures["records"]
        self._seen.append((now, records, figures["states"]))
        while len(self._seen) > 2 and now - self._seen[0][0] > WINDOW:
            self._seen.popleft()
        t0, r0, s0 = self._seen[0]
        dt = now - t0
        rate = (records - r0) / dt if dt > 0 else 0.0
        total = progress.expected_records()
        if total is not None and records > total:
            total = records  # the count was an estimate
        eta = (total - records) / rate if total and rate > 0 else None
        states = {
            name: {"entered": row[0], "ended": row[1], "failed": row[2],
                   "rate": (row[0] - s0.get(name, [0])[0]) / dt if dt > 0 else 0.0}
            for name, row in figures["states"].items()
        }
        self.doc.update(
            records=records, errors=figures["errors"], written=figures["written"],
            total=total, rate=rate, eta=eta, states=states, workers=figures["workers"],
            inputs=figures["inputs"], updated=time.time(),
        )
        if self._kv:
            _kv_put(self.kind.run_id, self.doc)
        if self._file is not None:
            _file_put(self._file, {**self.doc, "pid": os.getpid()})
        for watcher in list(WATCHERS):
            with contextlib.suppress(Exception):  # a watcher never stops a run
                watcher(dict(self.doc))
        if self.every and now - self._last_line >= self.every - 0.05:
            self._last_line = now
            print(self.line(), file=sys.stderr, flush=True)
        return self.doc

    def line(self) -> str:
        doc = self.doc
        where = ", ".join(doc.get("inputs") or []) or doc.get("input") or ""
        text = (f"progress {doc['pattern']} {doc['pipeline']!r} run {doc['run']}: "
                f"{progress.progress_text(doc)}")
        return text + (f"; reading {where}" if where else "")

    def _read(self) -> dict[str, Any]:
        pool = getattr(self.runner, "pool", None)
        if pool is None:
            now, base = progress.LIVE.snapshot(), self._base
            states: dict[str, list[int]] = {}
            progress.add_states(states, now["states"])
            for name, row in base["states"].items():
                states[name] = [a - b for a, b in zip(states.get(name, [0, 0, 0]), row,
                                                       strict=False)]
            return {"records": now["records_read"] - base["records_read"],
                    "errors": now["errors"] - base["errors"],
                    "written": now["records_written"] - base["records_written"],
                    "states": states, "workers": getattr(self.runner, "lanes", 1),
                    "inputs": [now["input"]] if now["input"] else []}
        import ray

        refs = [actor.status.remote() for actor in pool.actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.tick)
        out: dict[str, Any] = {"records": 0, "errors": 0, "written": 0, "states": {},
                               "workers": len(refs), "inputs": []}
        for ref in ready:
            try:
                status = ray.get(ref)
            except ray.exceptions.RayError:  # a worker died: the pool replaces it
                continue
            out["records"] += status.get("records_read", 0)
            out["errors"] += status.get("errors", 0)
            out["written"] += status.get("records_written", 0)
            progress.add_states(out["states"], status.get("states"))
            if status.get("input") and status["input"] not in out["inputs"]:
                out["inputs"].append(status["input"])
        return out


def _on_ray() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _kv_put(run_id: str, doc: dict[str, Any]) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(f"progress/{run_id}", json.dumps(doc), overwrite=True,
                                 namespace=KV_NAMESPACE)


def _kv_delete(run_id: str) -> None:
    from ray.experimental import internal_kv

    try:
        internal_kv._internal_kv_del(f"progress/{run_id}", namespace=KV_NAMESPACE)
    except Exception:  # the cluster went away first: nothing left to clean
        pass


def running(max_age: float = 60.0) -> list[dict[str, Any]]:
    """The progress documents of the cluster's running jobs (updated in the last
    ``max_age`` seconds; a driver killed outright leaves its last one, then stale)."""
    from ray.experimental import internal_kv

    docs = []
    for key in internal_kv._internal_kv_list("progress/", namespace=KV_NAMESPACE):
        raw = internal_kv._internal_kv_get(key, namespace=KV_NAMESPACE)
        if not raw:
            continue
        doc = json.loads(raw)
        if time.time() - doc.get("updated", 0) <= max_age:
            docs.append(doc)
    return sorted(docs, key=lambda d: d.get("started", 0))


def _live_dir():
    return state_dir() / "live"


def _file_put(path: Any, doc: dict[str, Any]) -> None:
    """Replace ``path`` with ``doc`` at once (a reader sees the old or the new one); no
    fsync: a live figure lost in a crash is replaced by the next beat, or goes with its run."""
    from fsm_actors.platform.io.writers import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, default=str)), fsync=False)


def running_here(max_age: float = 60.0) -> list[dict[str, Any]]:
    """The progress documents of this machine's in-process CLI runs (their process alive,
    updated in the last ``max_age`` seconds); a document left by a killed run is removed."""
    docs = []
    for path in sorted(_live_dir().glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(int(doc.get("pid") or 0)):
            with contextlib.suppress(OSError):
                path.unlink()
        elif time.time() - doc.get("updated", 0) <= max_age:
            docs.append(doc)
    return sorted(docs, key=lambda d: d.get("started", 0))
