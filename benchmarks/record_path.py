"""How many project modules one record passes through (issue 21's closing note).

Traces (``sys.setprofile`` / ``threading.setprofile``, calls into files of ``fsm_actors``,
``resource_actors`` and ``patterns`` only) a second, warm run of either

* ``file``: ``create_csv_processor(csv, out.jsonl).run()`` over a 3-row CSV, or
* ``fsm``: ``SimpleFSM(ROUTER).process_batch([...])`` over 3 dicts (the tests' router),

so imports and first-use set-up are not counted. ``--local`` runs the same plan, step and
commit in this process (``run_job(local=True)``, ``SimpleFSM(local=True)``): every module of
the path is seen. Without it the work runs on Ray actors and only the driver's side is seen
(the actor side is the local run's step modules). Runs against any checkout: put its root on
``PYTHONPATH`` (``PYTHONPATH=/tmp/old python benchmarks/record_path.py file --local``).

Prints JSON: ``{"target", "local", "count", "modules"}``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

sys.path.insert(0, os.getcwd())  # the checkout's tests package (run from its root)

class Tracer:
    """Collects the project files whose functions are called while it is on."""

    def __init__(self) -> None:
        import fsm_actors

        root = os.path.dirname(os.path.dirname(os.path.abspath(fsm_actors.__file__)))
        self.roots = tuple(os.path.join(root, p) + os.sep
                           for p in ("fsm_actors", "resource_actors", "patterns"))
        self.root = root
        self.seen: set[str] = set()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            name = frame.f_code.co_filename
            if name.startswith(self.roots):
                self.seen.add(name)

    def start(self) -> None:
        threading.setprofile(self)
        sys.setprofile(self)
        # the sync bridge's loop thread (and its executor) exist since the warm-up run
        for module in ("fsm_actors.platform.event_loop", "fsm_actors._sync"):
            try:
                bridge = importlib.import_module(module)
            except ImportError:
                continue
            loop = bridge._background_loop()
            done = threading.Event()

            def inject(done: threading.Event = done) -> None:
                sys.setprofile(self)
                done.set()

            loop.call_soon_threadsafe(inject)
            done.wait(10)
            break
        # and every idle thread of a pool made before (local executors, to_thread): each
        # thread takes one task, held at a barrier until all have one
        for pool in [o for o in gc.get_objects() if isinstance(o, ThreadPoolExecutor)]:
            threads = list(getattr(pool, "_threads", ()))
            if not threads or getattr(pool, "_shutdown", False):
                continue
            barrier = threading.Barrier(len(threads))
            wait([pool.submit(self._arm, barrier) for _ in threads], timeout=10)

    def _arm(self, barrier: threading.Barrier) -> None:
        sys.setprofile(self)
        try:
            barrier.wait(5)
        except threading.BrokenBarrierError:
            pass

    def stop(self) -> list[str]:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        return sorted(os.path.relpath(p, self.root) for p in self.seen)


def file_run(local: bool, work: str, n: int) -> None:
    from patterns.file_processing import create_csv_processor

    csv = os.path.join(work, f"in{n}.csv")
    with open(csv, "w") as f:
        f.write("id,x\n1,5\n2,7\n3,11\n")
    create_csv_processor(csv, os.path.join(work, f"out{n}.jsonl")).run()


def fsm_run(fsm: Any) -> None:
    fsm.process_batch([{"x": 1}, {"x": 5}, {"x": 9}])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["file", "fsm"])
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    tracer = Tracer()
    work = tempfile.mkdtemp(prefix="record_path_")
    if not args.local or args.target == "file":  # FileProcessor.run connects to Ray first
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    if args.target == "file":
        if args.local:
            import patterns._files.job as job

            job.run_job = functools.partial(job.run_job, local=True)
        file_run(args.local, work, 0)
        tracer.start()
        file_run(args.local, work, 1)
    else:
        from fsm_actors import SimpleFSM
        from tests.fsm_actors.fsm_configs import ROUTER, double

        fsm = SimpleFSM(ROUTER, custom_functions={"double": double}, local=args.local)
        fsm_run(fsm)
        tracer.start()
        fsm_run(fsm)
    modules = tracer.stop()
    print(json.dumps({"target": args.target, "local": args.local, "count": len(modules),
                      "modules": modules}, indent=1))
    os._exit(0)  # no Ray shutdown noise


if __name__ == "__main__":
    main()
