"""``fsm-actors`` as a person uses it from a shell: what goes to stdout and stderr, what is
written where, and one clear line (never a traceback) for a mistake."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.terminal import in_terminal
from tests.ops.ray_heads import client_env

REPO = Path(__file__).resolve().parents[2]
ORDERS_FSM = REPO / "examples" / "orders_fsm.yaml"
ORDERS = ("order_id,quantity,unit_price\n1,2,3\n2,0,5\n3,5,500\n4,-1,2\n5,1,1\n")


def cli(*args: str, cwd: Path, timeout: float = 240, **env: str
        ) -> subprocess.CompletedProcess:
    """``fsm-actors ARGS`` in a fresh process, stdout and stderr apart, no Ray address."""
    return subprocess.run([sys.executable, "-m", "fsm_actors.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env=client_env(**env), stdin=subprocess.DEVNULL)


def test_run_without_output_writes_json_lines_to_stdout_and_the_summary_to_stderr(tmp_path):
    (tmp_path / "in.csv").write_text(ORDERS)
    done = cli("run", str(ORDERS_FSM), "-i", "in.csv", "--local", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["order_id"] for r in rows) == [1, 3, 5]
    assert {r["tier"] for r in rows} == {"standard", "high"}
    assert "done: 5 records in, 3 written" in done.stderr
    assert "output: stdout" in done.stderr and "{" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # nothing written here


def test_run_without_output_and_with_json_is_one_clear_message(tmp_path):
    (tmp_path / "in.csv").write_text(ORDERS)
    done = cli("run", str(ORDERS_FSM), "-i", "in.csv", "--local", "--json", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "give -o FILE" in done.stderr and done.stdout == ""


UNWRITABLE = "/proc/nonexistent/fp.jsonl"


def test_an_output_that_cannot_be_created_is_one_line_in_validate_and_run(tmp_path):
    (tmp_path / "in.csv").write_text(ORDERS)
    job = tmp_path / "fp.yaml"
    job.write_text(f"kind: file_processing\ninput_path: in.csv\noutput_path: {UNWRITABLE}\n")
    for command in ("validate", "run"):
        done = cli(command, str(job), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip() == (
            f"{job}:3: output_path: cannot write {UNWRITABLE}: cannot create a folder in "
            "/proc: No such file or directory"), done.stderr
        assert "connecting" not in done.stderr  # refused before any work


def test_an_unwritable_output_option_is_refused_before_any_work(tmp_path):
    (tmp_path / "in.csv").write_text(ORDERS)
    done = cli("run", str(ORDERS_FSM), "-i", "in.csv", "-o", UNWRITABLE, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"--output {UNWRITABLE}: cannot write it: cannot create a "
                                   "folder in /proc: No such file or directory")


def test_ctrl_c_while_an_embedded_ray_starts_exits_130_with_one_line(tmp_path):
    (tmp_path / "in.csv").write_text(ORDERS)
    out, code = in_terminal(["run", str(ORDERS_FSM), "-i", "in.csv", "--address", "local"],
                            cwd=tmp_path, interrupt_when=b"connecting to a new embedded",
                            FSM_ACTORS_HOME=str(tmp_path / "home"))
    assert code == 130, out
    assert "run: interrupted before the run started; nothing was written" in out
    assert "Aborted!" not in out and "Traceback" not in out, out


SLOW_JOB = ("kind: file_processing\ninput_path: in.csv\noutput_path: out.jsonl\nchunk_size: 250\n"
            "transformations: [\"lambda r: (__import__('time').sleep(0.001), r)[1]\"]\n")


@pytest.mark.ray
def test_a_stopped_run_cleans_up_says_how_to_resume_and_the_resume_leaves_no_temp_file(
        ray_session, tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(10_000)))
    job = tmp_path / "job.yaml"
    job.write_text(SLOW_JOB)
    args = [sys.executable, "-m", "fsm_actors.cli.main", "run", str(job), "--no-progress",
            "--address", ray_session.address, "--checkpoint-id", "stop1"]
    proc = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL, env=client_env(
                                FSM_ACTORS_HOME=str(tmp_path / "home")))
    seen = ""
    for line in proc.stderr:  # SIGTERM, as `fsm-actors stop` (Ray's job stop) sends it
        seen += line
        if "actors ready" in line:
            proc.send_signal(signal.SIGTERM)
            break
    seen += proc.stderr.read()
    assert proc.wait(timeout=120) == 143, seen
    assert "stopped (SIGTERM) after" in seen and "run the same command again to resume" in seen
    assert "SIGTERM received" not in seen and "PC: @" not in seen and "Traceback" not in seen
    assert not list(tmp_path.glob(".out.jsonl.*.tmp")), seen
    # a run killed outright (SIGKILL) leaves its temp file: the resume removes it
    stale = tmp_path / ".out.jsonl.0badc0de.tmp"
    stale.write_bytes(b"x" * 100_000)
    done = cli("run", str(job), "--no-progress", "--address", ray_session.address,
               "--checkpoint-id", "stop1", cwd=tmp_path, FSM_ACTORS_HOME=str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert "removed 1 temp file(s) an earlier stopped run left" in done.stderr
    assert not stale.exists() and not list(tmp_path.glob(".out.jsonl.*.tmp"))
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(int(r["a"]) for r in rows) == list(range(10_000))


def test_submit_names_the_inputs_the_working_dir_upload_would_leave_out(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / ".gitignore").write_text("# local files\nout/\ndata/\n")
    (project / "data" / "in.csv").write_text("a,b\n1,2\n")
    (project / "job.yaml").write_text("kind: file_processing\ninput_path: data/in.csv\n"
                                      "output_path: out/out.jsonl\n")
    done = cli("submit", "job.yaml", "--working-dir", ".", "--address", "127.0.0.1:1",
               cwd=project, FSM_ACTORS_HOME=str(tmp_path / "home"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert (f"  data/in.csv (input_path): it matches 'data/' in {project}/.gitignore (line 3)"
            in done.stderr.splitlines()), done.stderr
    assert "RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1" in done.stderr
    assert "nothing answers" not in done.stderr  # refused before any cluster is asked


PRINTING_FSM = ("name: loud\nstates:\n  - {name: start, is_start: true}\n  - name: shout\n"
                "    is_end: true\n    transforms:\n"
                "      - \"lambda data, ctx: (print('NOISE', data['order_id']), data)[1]\"\n"
                "arcs:\n  - {from: start, to: shout}\n")


@pytest.mark.parametrize("json_result", [False, True])
def test_stdout_carries_only_the_data_when_a_function_prints(tmp_path, json_result):
    """A function's print (and what Ray forwards to the driver: workers' prints, autoscaler
    notices) goes to stderr; stdout stays parseable for `| jq` (CI saw an autoscaler notice
    in front of --json)."""
    (tmp_path / "in.csv").write_text(ORDERS)
    (tmp_path / "loud.yaml").write_text(PRINTING_FSM)
    extra = ["-o", "out.jsonl", "--json"] if json_result else []
    done = cli("run", "loud.yaml", "-i", "in.csv", "--local", *extra, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "NOISE 3" in done.stderr and "NOISE" not in done.stdout, done.stdout
    if json_result:
        assert json.loads(done.stdout)["records_processed"] == 5
    else:
        assert sorted(json.loads(line)["order_id"] for line in done.stdout.splitlines()) == \
            [1, 2, 3, 4, 5]
