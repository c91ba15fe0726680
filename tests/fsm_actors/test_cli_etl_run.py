"""An ETL pipeline file through ``fsm-actors run`` as a person meets it (issue 24 item 10):
the bar moves while the one task of a file source runs (not 0 -> 100% at the end), running
and committing are separate moments, the rejected records are in ``<target>.errors.jsonl``
beside the output with their file, line and record number, the summary counts them once,
the shipped ``examples/orders_to_parquet.yaml`` exits 0, and a misspelt ``mode`` names the
spellings a pipeline file uses. The whole-file type scan of a big CSV is a phase
line with its size (it was 30-54 s of silence before "actors ready")."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fsm_actors.cli.main import cli
from tests.fsm_actors.test_cli_person import REPO, client_env, in_terminal

PHASE = re.compile(r"\[\s*([\d.]+)s\] (.*)")
BAR = re.compile(r"records\W+([\d,]+)/([\d,]+)")


@pytest.mark.ray
def test_an_etl_run_moves_its_bar_and_puts_rejects_beside_the_output(ray_session, tmp_path):
    rows = 40_000
    (tmp_path / "in.csv").write_text("id,quantity\n" + "".join(
        f"{i},{-1 if i % 100 == 7 else i % 9}\n" for i in range(rows)))
    job = tmp_path / "etl.yaml"
    job.write_text(
        "kind: etl\nsource: {type: file, path: in.csv}\n"
        "target: {type: file, path: out/orders.parquet}\nmode: full_refresh\nbatch_size: 1000\n"
        "transformations: [\"lambda r: (__import__('time').sleep(0.0002), r)[1]\"]\n"
        "validation_schema: {type: object, properties: {quantity: {minimum: 0}}}\n")
    shown, code = in_terminal(["run", str(job), "--address", ray_session.address],
                              cwd=tmp_path)
    assert code == 0, shown  # finished within its error_threshold
    phases = {text: float(at) for at, text in PHASE.findall(shown)}
    running = next(at for text, at in phases.items() if text.startswith("actors ready"))
    committing = next(at for text, at in phases.items() if "committing" in text)
    assert committing > running, shown  # two moments, not one line after the other
    before_commit = shown.split("committing")[0]
    moving = [int(done.replace(",", "")) for done, _ in BAR.findall(before_commit)]
    assert any(0 < done < rows for done in moving), shown  # the bar moved during the task
    head = next(line for line in shown.splitlines() if line.startswith("done"))
    assert "40,000 records in, 39,600 written, 400 rejected" in head and "failed" not in head
    errors = tmp_path / "out" / "orders.parquet.errors.jsonl"
    assert f"errors: {errors}" in shown, shown
    lines = [json.loads(x) for x in errors.read_text().splitlines()]
    assert len(lines) == 400
    first = min(lines, key=lambda x: x["record"])
    assert first["file"].endswith("in.csv") and first["record"] == 8 and first["line"] == 9
    assert json.loads(first["raw"])["id"] == 7 and "quantity" in first["reason"]
    assert not list((tmp_path / "out").glob(".fsm_actors/etl/*.errors.jsonl"))


@pytest.mark.ray
def test_the_shipped_orders_to_parquet_example_runs_clean(ray_session, tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(REPO / "examples" / "orders_to_parquet.yaml", examples)
    subprocess.run([sys.executable, str(REPO / "examples" / "make_orders.py"), "--rows",
                    "5000", "--out", str(examples / "data" / "orders.csv")], check=True,
                   capture_output=True)
    done = subprocess.run(
        [sys.executable, "-m", "fsm_actors.cli.main", "run", "examples/orders_to_parquet.yaml",
         "--no-progress", "--address", ray_session.address], cwd=tmp_path,
        capture_output=True, text=True, timeout=240, env=client_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr  # was 1: its own schema's intended rejects
    assert (tmp_path / "out" / "orders.parquet").is_file()
    assert "5,000 records in" in done.stderr and "Traceback" not in done.stderr


def test_a_misspelt_mode_names_the_spellings_a_file_uses(tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    job = tmp_path / "etl.yaml"
    job.write_text("kind: etl\nsource: {type: file, path: in.csv}\n"
                   "target: {type: file, path: out/x.parquet}\nmode: upsertt\n")
    for command in ("validate", "run"):
        result = CliRunner().invoke(cli, [command, str(job)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"{job}:4: mode: 'upsertt' is not a mode; use one of full_refresh, " \
               "incremental, upsert, append; did you mean 'upsert'?" in result.output, \
               result.output
        assert "Input should be" not in result.output


@pytest.mark.ray
def test_the_whole_file_type_scan_of_a_big_csv_is_a_phase_with_its_size(ray_session, tmp_path):
    row = "{i},{i}.5,customer-{i:08d},2026-01-01,some free text to widen the row\n"
    with open(tmp_path / "big.csv", "w") as f:  # > 32 MB: read in byte ranges, types scanned
        f.write("id,amount,customer,day,note\n")
        for start in range(0, 520_000, 10_000):
            f.write("".join(row.format(i=i) for i in range(start, start + 10_000)))
    assert (tmp_path / "big.csv").stat().st_size > 32 << 20
    job = tmp_path / "big.yaml"
    job.write_text("kind: file_processing\ninput_path: big.csv\noutput_path: out.parquet\n")
    shown, code = in_terminal(["run", str(job), "--address", ray_session.address],
                              cwd=tmp_path)
    assert code == 0, shown
    texts = [text for _, text in PHASE.findall(shown)]
    scan = next(i for i, t in enumerate(texts) if t.startswith("reading all of "))
    size = (tmp_path / "big.csv").stat().st_size / 1e6
    assert f"big.csv ({size:,.0f} MB) once for one type per column" in texts[scan], shown
    known = next(i for i, t in enumerate(texts) if t.startswith("column types of "))
    assert known > scan and re.search(r"known after [\d.]+ s", texts[known]), shown
    assert "520,000 records in, 520,000 written" in shown, shown
