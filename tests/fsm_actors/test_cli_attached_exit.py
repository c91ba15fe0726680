"""An ``fsm-actors run`` attached to a running cluster ends without Ray's disconnect (issue 26
item 1, ``fsm_actors/cli/leaving.py``): its output, stdout and exit code are complete, the
cluster sees its job end, and the interpreter's exit work (Ray's ``shutdown`` among it) is
skipped. The command runs under a wrapper that registers one more exit hook, writing a
file: the old way ran it (after Ray's shutdown), the new way does not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.ops.ray_heads import client_env

ROWS = 300

WRAPPER = """
import atexit, os, runpy
from pathlib import Path
atexit.register(lambda: Path(os.environ["EXIT_MARKER"]).write_text("exit work ran"))
runpy.run_module("fsm_actors.cli.main", run_name="__main__", alter_sys=True)
"""


def _job(tmp_path: Path) -> Path:
    (tmp_path / "in.csv").write_text("id,qty\n" + "".join(f"{i},{i % 5}\n" for i in range(ROWS)))
    job = tmp_path / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: in.csv\noutput_path: out.jsonl\n"
                   "transformations: [\"lambda r: {**r, 'double': r['qty'] * 2}\"]\n")
    return job


def _driver_job(address: str, pid: int) -> object | None:
    from ray._raylet import GcsClient

    for job in GcsClient(address=address).get_all_job_info(timeout=30).values():
        if job.driver_pid == pid:
            return job
    return None


def _run(tmp_path: Path, address: str, *args: str) -> tuple[subprocess.Popen, str, str]:
    """The command attached to ``address`` under the wrapper; (process, stdout, stderr)."""
    (tmp_path / "wrapper.py").write_text(WRAPPER)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "wrapper.py"), "run", *args, "--address", address,
         "--no-progress"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=client_env(EXIT_MARKER=str(tmp_path / "exit-work.txt")), stdin=subprocess.DEVNULL)
    out, err = proc.communicate(timeout=240)
    return proc, out, err


def test_an_attached_run_leaves_without_the_interpreters_exit_work(ray_session, tmp_path):
    proc, out, err = _run(tmp_path, ray_session.address, str(_job(tmp_path)), "--json")
    assert proc.returncode == 0, err
    result = json.loads(out)  # all of it printed before the process ended
    assert result["records_written"] == ROWS
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == ROWS and all(r["double"] == r["qty"] * 2 for r in rows)
    assert "Ray ready: Ray cluster at" in err
    assert not (tmp_path / "exit-work.txt").exists(), "the run waited for Ray's disconnect"
    # the cluster ended the run's job when its connection dropped
    deadline = time.monotonic() + 120
    seen = _driver_job(ray_session.address, proc.pid)
    while seen is not None and not seen.is_dead and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = _driver_job(ray_session.address, proc.pid)
    assert seen is not None and seen.is_dead


def test_an_attached_strict_run_with_rejected_records_leaves_with_exit_1(ray_session, tmp_path):
    job = _job(tmp_path)
    job.write_text(job.read_text().replace("r['qty'] * 2", "6 // r['qty']")
                   + "error_threshold: 0.5\n")  # qty 0: a fifth of the rows rejected
    proc, out, err = _run(tmp_path, ray_session.address, str(job), "--strict")
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    rows = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(rows) == ROWS - ROWS // 5
    assert not (tmp_path / "exit-work.txt").exists()
