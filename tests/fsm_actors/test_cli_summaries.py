"""``fsm-actors run``'s summary says each thing once (issue 24 item 11): records ending in a
non-output state are counted once, under that state's name; rejected records once (not
again as "failed"); the rates say which is the run's and which the wall clock's; aggregation
figures are rounded for people; a resumed run says so; an API FANOUT names its sink, its
error file and why calls failed. A finished run within its error_threshold exits 0
(``--strict``: 1). Pipeline files' ``runs`` listing shows their kind and pipeline."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_actors.cli.main import cli
from tests.fsm_actors.test_cli_person import REPO, client_env

ORDERS = REPO / "examples" / "orders_fsm.yaml"


def _invoke(*args: str, cwd: Path | None = None):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _orders(path: Path, rows: int) -> Path:
    """Orders where every 10th has quantity 0 (the FSM's 'rejected' state) and every 25th a
    quantity that is not a number (a failed record)."""
    lines = []
    for i in range(rows):
        quantity = "x" if i % 25 == 24 else 0 if i % 10 == 0 else i % 7 + 1
        lines.append(json.dumps({"order_id": i, "quantity": quantity,
                                 "unit_price": i % 13 + 0.1}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fsm_summary_counts_each_record_once_and_names_the_rates(tmp_path):
    src = _orders(tmp_path / "orders.jsonl", 1000)
    out = tmp_path / "out.jsonl"
    result = _invoke("run", str(ORDERS), "-i", str(src), "-o", str(out), "--local",
                     "--no-progress")
    text = result.output
    assert result.exit_code == 0, text  # finished within its error_threshold
    head = next(line for line in text.splitlines() if line.startswith("done"))
    # 100 with quantity 0 end in 'rejected'; 40 with quantity 'x' fail in 'price'
    assert "1,000 records in, 860 written, 100 not written (ended in non-output state " \
           "'rejected' 100), 40 rejected" in head, text
    assert "skipped" not in text and "failed" not in head, text
    assert "not written (ended in a non-output state)" not in text  # said once, above
    assert re.search(r"[\d,]+ records/s over the job's [\d.]+ s \(incl\. starting its "
                     r"workers and committing, which the bar's rate leaves out\); "
                     r"wall [\d.]+ s incl\. reading the config", text), text  # no Ray in --local
    strict = _invoke("run", str(ORDERS), "-i", str(src), "-o", str(out), "--local",
                     "--no-progress", "--strict")
    assert strict.exit_code == 1, strict.output


SLOW = ("name: slow\nstates:\n  - {name: start, is_start: true}\n"
        "  - name: done\n    is_end: true\n    transforms:\n"
        "      - \"lambda data, ctx: (__import__('time').sleep(0.002), data)[1]\"\n"
        "arcs:\n  - {from: start, to: done}\n")


def test_a_stopped_run_is_listed_with_kind_and_pipeline_and_its_resume_says_so(tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(6000)))
    config = tmp_path / "slow.yaml"
    config.write_text(SLOW)
    args = [sys.executable, "-m", "fsm_actors.cli.main", "run", str(config), "-i", "in.csv",
            "-o", "out.jsonl", "--local", "--no-progress", "--chunk-size", "200",
            "--checkpoint-id", "again"]
    proc = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL, env=client_env())
    seen = ""
    assert proc.stderr is not None
    for line in proc.stderr:
        seen += line
        if "actors ready" in line:
            time.sleep(3)  # a few chunks done and saved (the checkpoint is saved every 1 s)
            proc.send_signal(signal.SIGTERM)
            break
    seen += proc.stderr.read()
    assert proc.wait(timeout=120) == 143, seen
    listed = _invoke("runs", "-C", str(tmp_path))
    row = next(x for x in listed.output.splitlines() if x.startswith("again"))
    assert row.split()[1:3] == ["fsm", "slow"], listed.output  # kind and pipeline name
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env=client_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    found = re.search(r"resumed: ([\d,]+) records already done by an earlier run", done.stderr)
    assert found, done.stderr
    assert 0 < int(found.group(1).replace(",", "")) < 6000
    assert "6,000 records in, 6,000 written" in done.stderr


@pytest.mark.ray
def test_aggregations_are_rounded_for_people(ray_session, tmp_path):
    (tmp_path / "in.csv").write_text(
        "a,b\n" + "".join(f"{i},{i * 0.1 + 0.05}\n" for i in range(3000)))
    job = tmp_path / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: in.csv\noutput_path: out/out.jsonl\n"
                   "aggregations: {total: 'sum:b', average: 'mean:b'}\n")
    result = _invoke("run", str(job), "--no-progress", "--address", ray_session.address)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "aggregations:" in x)
    figures = re.findall(r"\d[\d,]*\.?\d*", line)
    assert figures and all(len(f.partition(".")[2]) <= 2 for f in figures), line
    assert "450,000" in line, line  # sum of i/10 + 0.05 over 3000 rows = 449,850 + 150


@pytest.mark.ray
def test_api_fanout_summary_names_sink_error_file_and_the_reasons(ray_session, tmp_path):
    from tests.patterns.api_servers import APITestServer

    server = APITestServer().start()
    try:
        items = ", ".join("500" if i == 7 else "200" for i in range(15))
        job = tmp_path / "fan.yaml"
        job.write_text(f"kind: api\nname: fan\nbase_url: {server.url}\nmode: fanout\n"
                       "endpoints: [{name: item, url: '/reflect/{item}', retry_config: "
                       "{max_attempts: 1}}]\n"
                       f"input: {{items: [{items}]}}\nsink: out/items.jsonl\n")
        result = _invoke("run", str(job), "--no-progress", "--address", ray_session.address)
    finally:
        server.stop()
    text = result.output
    assert result.exit_code == 1, text
    assert "FANOUT 'item': 15 items, 14 succeeded, 1 failed" in text, text
    assert "sink: " in text and "items.jsonl" in text, text
    assert re.search(r"errors: \S+items\.jsonl\.errors\.jsonl", text), text
    assert "item: HTTP 500" in text, text
    down = tmp_path / "down.yaml"
    down.write_text("kind: api\nname: down\nbase_url: http://127.0.0.1:9\nmode: fanout\n"
                    "endpoints: [{name: item, url: '/{item}', retry_config: "
                    "{max_attempts: 1}}]\ninput: {items: [a, b]}\nsink: out/down.jsonl\n")
    result = _invoke("run", str(down), "--no-progress", "--address", ray_session.address)
    assert result.exit_code == 1, result.output
    assert "2 items, 0 succeeded, 2 failed" in result.output, result.output
    assert re.search(r"item: 2 x no answer: \S", result.output), result.output
