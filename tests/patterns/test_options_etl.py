"""``options:`` and ``error_handling:`` of ``kind: etl`` pipeline files take effect.

Each test writes a pipeline file as a user would (a CSV source into SQLite) and runs it
through ``run_pipeline_file`` on the session Ray. A partition task fails by a batch whose
write fails: a transformation puts a value no database can bind into a record.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_actors.cli.main import cli
from patterns.errors import PatternError
from patterns.pipeline import load_pipeline, run_pipeline_file


def _csv(path: Path, rows: int) -> Path:
    """The source file, and the empty target table beside it."""
    path.write_text("id,name,amount\n" + "".join(f"{i},n{i},{i * 10}\n" for i in range(rows)))
    _table(path.parent)
    return path


def _table(folder: Path) -> None:
    with sqlite3.connect(folder / "w.db") as db:
        db.execute("DROP TABLE IF EXISTS t")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount INTEGER)")


def _job(tmp_path: Path, body: str, transform: str | None = None,
         name: str = "etl.yaml") -> Path:
    path = tmp_path / name
    steps = f"transformations: [{json.dumps(transform)}]\n" if transform else ""
    path.write_text("kind: etl\nsource: {type: file, path: in.csv}\ntarget: sqlite:///w.db\n"
                    "target_table: t\nbatch_size: 10\n" + steps + body)
    return path


def _ids(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "w.db") as db:
        return sorted(r[0] for r in db.execute("SELECT id FROM t"))


def _unbindable_once(marker: Path) -> str:
    """The first record seen anywhere gets a value no database binds (its batch's write
    fails); later ones pass."""
    return (f"lambda r: r if __import__('os').path.exists(r'{marker}') else "
            f"(open(r'{marker}', 'w').close(), {{**r, 'amount': object()}})[1]")


#: every record with id 30 gets a value no database binds: its batch fails every time
UNBINDABLE_30 = "lambda r: {**r, 'amount': object()} if r['id'] == 30 else r"


def test_batch_size_and_parallel_workers_are_the_etl_fields(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 60)
    path = tmp_path / "opts.yaml"
    path.write_text("kind: etl\nsource: {type: file, path: in.csv}\ntarget: sqlite:///w.db\n"
                    "target_table: t\noptions: {batch_size: 7, parallel_workers: 1}\n")
    config = load_pipeline(path).jobs[0].config
    assert (config.batch_size, config.parallel_workers) == (7, 1)
    seen: list[int] = []
    run_pipeline_file(path, on_progress=lambda p: seen.append(p.batches_done))
    assert _ids(tmp_path) == list(range(60)) and max(seen) == 9  # 60 rows / 7 a batch


def test_error_handling_retries_a_failed_partition_from_its_last_committed_batch(
        ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    with pytest.raises(PatternError):  # without a policy the failed batch fails the job
        run_pipeline_file(_job(tmp_path, "", _unbindable_once(tmp_path / "m1"), "plain.yaml"))
    _table(tmp_path)
    result = run_pipeline_file(_job(
        tmp_path, "error_handling: {strategy: fixed, initial_delay: 0.01, max_retries: 2}\n",
        _unbindable_once(tmp_path / "m2")))
    assert _ids(tmp_path) == list(range(50))  # each row once: no batch loaded twice
    assert result["loaded"] == 50 and result["rejected"] == 0


def test_on_failure_skip_rejects_the_rest_of_the_failed_partition(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    result = run_pipeline_file(_job(
        tmp_path, "error_threshold: 0.9\n"
        "error_handling: {max_retries: 1, initial_delay: 0, on_failure: skip}\n",
        UNBINDABLE_30))
    loaded = _ids(tmp_path)
    lines = [json.loads(x) for x in Path(result["error_file"]).read_text().splitlines()]
    rejected = sorted(int(json.loads(x["raw"])["id"]) for x in lines)
    assert loaded == list(range(30))  # the batches committed before the failing one
    assert rejected == list(range(30, 50))  # the failing batch on, with the reason
    assert "skipped after 2 attempts" in lines[0]["reason"]


def test_on_failure_fail_stops_the_job(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    with pytest.raises(PatternError, match="failed 2 attempts"):
        run_pipeline_file(_job(tmp_path, "error_handling: {max_retries: 1, initial_delay: 0}\n",
                               UNBINDABLE_30))


def test_on_failure_compensate_runs_the_named_function(ray_session, tmp_path):
    _csv(tmp_path / "in.csv", 50)
    note = tmp_path / "undone.txt"
    body = ("error_handling:\n  max_retries: 0\n  on_failure: compensate\n"
            f"  compensation: \"lambda info: open(r'{note}', 'w').write(info['error'])\"\n")
    with pytest.raises(PatternError, match="compensated: ran"):
        run_pipeline_file(_job(tmp_path, body, UNBINDABLE_30))
    assert "failed 1 attempts" in note.read_text()


@pytest.mark.parametrize(("body", "why"), [
    ("error_handling: {timeout: 5}\n", "cannot be abandoned"),
    ("error_handling: {on_failure: compensate}\n", "needs 'compensation'"),
    ("options: {memory_limit: 1GB}\n", "bound its memory with batch_size"),
])
def test_what_an_etl_job_cannot_honour_is_refused_with_the_reason(tmp_path, body, why):
    _csv(tmp_path / "in.csv", 5)
    out = CliRunner().invoke(cli, ["validate", str(_job(tmp_path, body))])
    assert out.exit_code == 1 and why in out.output and "Traceback" not in out.output
