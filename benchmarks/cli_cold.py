"""Cold and attached CLI runs of a CSV -> JSON Lines job vs a plain Python loop, one run.

    .venv/bin/python benchmarks/cli_cold.py [--rows 1000000]

* ``python``: ``csv.DictReader`` -> the lambda -> ``json.dumps`` per row, in a fresh
  interpreter (its start-up included);
* ``cli_cold``: ``fsm-actors run job.yaml --address local`` (starts an embedded Ray, runs,
  stops it), wall time of the whole command;
* ``cli_attached``: the same command attached to a head started beforehand with
  ``ray start --head`` (own temp dir and ports), plus the time ``ensure_ray`` takes to attach.

One JSON line each (wall seconds, rows/s, ratio to ``python``). The job is the per-record
path: one transformation, one filter. Numbers are noisy on a shared machine; ratios of one
run count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def line(name: str, seconds: float, rows: int, base: float | None, **extra) -> None:
    doc = {"path": name, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}
    if base:
        doc["ratio_vs_python"] = round(base / seconds, 2)
    print(json.dumps({**doc, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fsm-cold-"))
    try:
        csv = work / "in.csv"
        make_csv(csv, args.rows)
        job = work / "job.yaml"
        job.write_text(JOB.format(csv=csv, out=work / "out.jsonl"))
        (work / "plain.py").write_text(PLAIN)
        base = timed([sys.executable, str(work / "plain.py"), str(csv), str(work / "p.jsonl")])
        line("python", base, args.rows, None)
        cli = [str(BIN / "fsm-actors"), "run", str(job), "--no-progress", "--json"]
        line("cli_cold", timed([*cli, "--address", "local"]), args.rows, base)
        port = free_port()
        temp = work / "ray"
        head = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
             f"--temp-dir={temp}", "--num-cpus=2", "--include-dashboard=false",
             f"--min-worker-port={port + 1}", f"--max-worker-port={port + 200}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            address = f"127.0.0.1:{port}"
            attach = [sys.executable, "-c",
                      "import time, sys; t=time.perf_counter();"
                      "from fsm_actors.platform import runtime; runtime.ensure_ray(sys.argv[1]);"
                      "print(time.perf_counter()-t)", address]
            deadline = time.time() + 60
            while True:
                done = subprocess.run(attach, capture_output=True, text=True)
                if done.returncode == 0 or time.time() > deadline:
                    break
                time.sleep(1)
            attach_s = float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
            line("cli_attached", timed([*cli, "--address", address]), args.rows, base,
                 attach_seconds=attach_s and round(attach_s, 2))
        finally:
            head.terminate()
            head.wait(60)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
