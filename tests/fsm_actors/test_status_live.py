"""Live figures of a running job (issue 25 item 2): ``fsm-actors status`` answers while the
job workers are mid-task (pipeline, input, progress, per-state counts with rates), also as
``status --watch`` in a real pseudo-terminal, and a run without a progress bar logs
progress lines at a steady interval.

A real head with its dashboard; the CLI in subprocesses, as a person runs it."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.make_orders import write_orders
from tests.ops.ray_heads import REPO, client_env, start_head

EXAMPLES = REPO / "examples"
SLOW = "lambda data, ctx: (__import__('time').sleep(0.002), {**data, 'total': round(" \
       "data['quantity'] * data['unit_price'], 2)})[1]"


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    node = start_head(auth="token", cpus=2, dashboard=True,
                      log_dir=tmp_path_factory.mktemp("head"))
    try:
        yield node
    finally:
        node.stop()


def fsm_actors(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsm_actors.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=client_env(**env))


def _slow_stream(tmp_path: Path, rows: int) -> Path:
    """examples/orders_stream.yaml over ``rows`` orders, its price state slowed down."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    fsm = (EXAMPLES / "orders_fsm.yaml").read_text()
    price = "      - \"lambda data, ctx: {**data, 'total': round(data['quantity'] * " \
            "data['unit_price'], 2)}\""
    assert price in fsm
    (tmp_path / "orders_fsm.yaml").write_text(fsm.replace(price, f'      - "{SLOW}"'))
    job = tmp_path / "orders_stream.yaml"
    shutil.copy(EXAMPLES / "orders_stream.yaml", job)
    job.write_text(job.read_text().replace("chunk_size: 5000", "chunk_size: 500"))
    write_orders(tmp_path / "data" / "orders.csv", rows)
    return job


def _start_run(job: Path, head, log: Path, **env: str) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fsm_actors.cli.main", "run", str(job), "--no-progress",
             "--address", head.address],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=client_env(**env))


def _wait_for(what, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.5)
    return what()


@pytest.mark.ray
def test_status_answers_while_workers_run_and_names_the_job(head, tmp_path):
    job = _slow_stream(tmp_path / "w", 30_000)
    log = tmp_path / "run.log"
    run = _start_run(job, head, log, FSM_ACTORS_PROGRESS_EVERY="1")
    try:
        def mid_task():
            shown = fsm_actors("status", "--address", head.address).stdout
            # a worker mid-task (current set) that answered, with records counted live
            # and the run's progress record (written each second: on a loaded machine it can
            # lag the live counts) with its per-state counts
            ok = (re.search(r"current=\S+#", shown) and "progress: " in shown
                  and re.search(r"records_read=[1-9]", shown)
                  and re.search(r"^\s+price\s+[\d,]+\s+[\d,]+", shown, re.M))
            return shown if ok else None

        shown = _wait_for(mid_task)
        assert shown, fsm_actors("status", "--address", head.address).stdout + log.read_text()
        assert "busy (no answer" not in shown, shown
        assert re.search(r"^fsm run \S+: 2 actors$", shown, re.M), shown
        run_id = re.search(r"^fsm run (\S+):", shown, re.M).group(1)
        assert f"fsm/{run_id}/worker/0" in shown, shown  # not listed as an FSM pool
        assert f"FSM pool '{run_id}" not in shown, shown
        assert "pipeline 'orders', input " in shown and "orders.csv" in shown, shown
        assert re.search(r"progress: [\d,]+ / 30,000 records \(", shown), shown
        assert re.search(r"^\s+price\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d,]+$", shown, re.M), shown

        watch = _watch(head, tmp_path / "watch.txt")
        assert re.search(r"records_read/s=[1-9]", watch), watch[-3000:]
        assert "busy (no answer" not in watch, watch[-3000:]
    finally:
        run.wait(timeout=300)
    text = log.read_text()
    assert run.returncode == 0, text
    # the names `run` announced are the ones status showed
    assert "fsm/<run id>/worker/<i>" in text and f"run {run_id}:" in text, text
    lines = [line for line in text.splitlines() if line.startswith("progress fsm 'orders'")]
    assert len(lines) >= 2, text
    assert re.search(r"records \(\d+\.\d%\), [\d,]+/s", lines[-1]), lines


def _watch(head, out: Path, seconds: float = 12) -> str:
    """``status --watch --interval 1`` in a pseudo-terminal for ``seconds``: what it drew."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsm_actors.cli.main", "status", "--watch", "--interval", "1",
         "--address", head.address],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=client_env(TERM="xterm"),
        close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunks.append(os.read(master, 65536))
                except OSError:
                    break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    out.write_text(text)
    return text
