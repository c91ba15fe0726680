"""First and later CLI runs of a CSV -> JSON Lines job vs a plain Python loop, interleaved.

    .venv/bin/python benchmarks/cli_cold.py [--rows 1000000] [--rounds 3] [--attached] [--embedded]

* ``python``: ``csv.DictReader`` -> the lambda -> ``json.dumps`` per row, in a fresh
  interpreter (its start-up included);
* ``cli_first``: ``fsm-actors run job.yaml`` on a machine without Ray (own
  ``FSM_ACTORS_HOME`` and ``RAY_TMPDIR``): a small run (up to ``FSM_ACTORS_IN_PROCESS_MB``)
  goes in-process, on lanes forked from the CLI;
* ``cli_later``: the same command again (``--rounds`` times, each right after a ``python``
  run, so both see the same machine load): in-process again;
* ``cli_head_start`` and ``cli_attached`` (``--attached``): the same job with
  ``FSM_ACTORS_IN_PROCESS_MB=0``, so it goes to the background head: the first starts it,
  the next ``--rounds`` attach to it (Ray starts the job's workers for each);
* ``cli_embedded`` (``--embedded``): ``--address local``, a Ray of its own started and stopped.

One JSON line each: wall seconds, CPU seconds (the command and its children, plus every
process of the background head's session over the run: its start-up, its workers), and
ratios to the ``python`` run just before (wall and CPU). On a shared machine the CPU ratio
is the steadier figure. The head is stopped with ``fsm-actors down`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PLAIN = """
import csv, json, sys
with open(sys.argv[1], newline="") as src, open(sys.argv[2], "w") as out:
    for r in csv.DictReader(src):
        r = {**r, "id": int(r["id"]), "amount": float(r["amount"]), "qty": int(r["qty"])}
        r = {**r, "total": r["amount"] * r["qty"]}
        if r["qty"] % 2 == 0:
            out.write(json.dumps(r) + "\\n")
"""

JOB = """kind: file_processing
input_path: {csv}
output_path: {out}
transformations: ["lambda r: {{**r, 'total': r['amount'] * r['qty']}}"]
filters: ["lambda r: r['qty'] % 2 == 0"]
"""


def make_csv(path: Path, rows: int) -> None:
    with open(path, "w") as fh:
        fh.write("id,name,amount,qty,note\n")
        for start in range(0, rows, 100_000):
            fh.write("".join(f"{i},name-{i},{i * 0.25:.2f},{i % 7},note {i % 13}\n"
                             for i in range(start, min(rows, start + 100_000))))


def session_cpu(sid: int | None) -> dict[int, float]:
    """CPU seconds of each live process of session ``sid`` (its own and reaped children's)."""
    if sid is None:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid:
            out[int(entry)] = sum(int(x) for x in fields[11:15]) / tick
    return out


class SessionSampler:
    """CPU of a session's processes over a stretch of time, sampled every 0.2 s: a Ray
    worker that exits is not reaped into anyone's CPU figures, so its last sample counts."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.before = session_cpu(head_pid(home))
        self.last: dict[int, float] = dict(self.before)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.done.wait(0.2):
            self.last.update(session_cpu(head_pid(self.home)))

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self.last.update(session_cpu(head_pid(self.home)))
        return sum(v - self.before.get(pid, 0.0) for pid, v in self.last.items())


def head_pid(home: Path) -> int | None:
    for name, key in (("head.json", "pid"), ("head.starting", None)):
        try:
            text = (home / name).read_text()
            return int(json.loads(text)[key]) if key else int(text.strip())
        except (OSError, ValueError, KeyError):
            continue
    return None


def timed(cmd: list[str], env: dict[str, str] | None = None,
          home: Path | None = None) -> tuple[float, float, float]:
    """(wall, CPU, head CPU) of ``cmd``: CPU is its own and its children's plus the head
    session's over the run; head CPU is that last part alone."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = SessionSampler(home) if home else None
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    head = sampler.stop() if sampler else 0.0
    return wall, cpu + head, head


def line(name: str, wall: float, cpu: float, head: float, rows: int,
         base: tuple[float, float, float] | None, **extra) -> None:
    doc = {"path": name, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
           "rows_per_s": round(rows / wall)}
    if head:
        doc["of_which_head_cpu_seconds"] = round(head, 2)
    if base:
        doc["ratio_vs_python"] = round(base[0] / wall, 2)
        doc["cpu_ratio_vs_python"] = round(base[1] / cpu, 2)
    print(json.dumps({**doc, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--attached", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fsm-cold-"))
    home = work / "home"
    (work / "rt").mkdir()
    env = {**os.environ, "FSM_ACTORS_HOME": str(home), "RAY_TMPDIR": str(work / "rt"),
           "FSM_ACTORS_BACKGROUND_HEAD": "1"}
    for var in ("RAY_ADDRESS", "FSM_ACTORS_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        env.pop(var, None)
    fsm = [str(BIN / "fsm-actors")]
    try:
        csv = work / "in.csv"
        make_csv(csv, args.rows)
        job = work / "job.yaml"
        job.write_text(JOB.format(csv=csv, out=work / "out.jsonl"))
        (work / "plain.py").write_text(PLAIN)
        plain = [sys.executable, str(work / "plain.py"), str(csv), str(work / "p.jsonl")]
        cli = [*fsm, "run", str(job), "--no-progress", "--json"]

        def after_python(name: str, cmd: list[str], run_env: dict[str, str],
                         head: Path | None = home, **extra: Any) -> None:
            """A ``python`` run, then ``cmd`` right after it (both see the same load)."""
            base = timed(plain)
            line("python", *base, args.rows, None)
            line(name, *timed(cmd, run_env, head), args.rows, base, **extra)

        after_python("cli_first", cli, env)
        for n in range(args.rounds):
            after_python("cli_later", cli, env, round=n + 1)
        if args.attached:  # the same job sent to the background head (any input is "big")
            big = {**env, "FSM_ACTORS_IN_PROCESS_MB": "0"}
            after_python("cli_head_start", cli, big)
            for n in range(args.rounds):
                after_python("cli_attached", cli, big, round=n + 1)
        if args.embedded:
            after_python("cli_embedded", [*cli, "--address", "local"], env, head=None)
    finally:
        subprocess.run([*fsm, "down"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=180)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
