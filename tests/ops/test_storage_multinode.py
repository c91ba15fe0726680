"""Object storage where local paths fail (issue 22): a file job with s3:// paths on a
cluster of a 0-CPU head and two worker nodes, its actors on both nodes, every record once;
a driver SIGKILLed mid-run and run again resumes from its checkpoint on the store, every
record once. The store is moto's S3 server on 127.0.0.1 (tests/s3_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from fsm_actors.platform.io import storage
from tests.ops.ray_heads import REPO, client_env
from tests.patterns.test_etl_support import run_and_sigkill
from tests.s3_server import restart_ray_with_env

ROWS = 20_000


@pytest.fixture(scope="module")
def s3(s3_store):
    return s3_store


def put_inputs(bucket: str) -> str:
    for f in range(2):
        body = "x\n" + "".join(f"{f * ROWS + i}\n" for i in range(ROWS))
        storage.put_bytes(f"{bucket}/in/part-{f}.csv", body.encode())
    return f"{bucket}/in/*.csv"


def ids(uri: str) -> Counter:
    return Counter(int(json.loads(line)["x"]) for line in storage.read_bytes(uri).splitlines())


def test_s3_file_job_on_a_zero_cpu_head_and_two_worker_nodes(s3):
    bucket = s3.make_bucket("multinode")
    source, target = put_inputs(bucket), f"{bucket}/out/all.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ops.storage_multinode_script", source, target],
        capture_output=True, text=True, timeout=420, cwd=REPO, env=client_env(),
    )
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and docs, proc.stdout + proc.stderr[-4000:]
    doc = docs[-1]
    assert doc["actor_nodes"] == doc["worker_nodes"], doc  # both worker nodes worked
    assert doc["records_written"] == 2 * ROWS and doc["output_path"] == target, doc
    assert doc["warnings"] == [], doc  # URIs: no local-paths warning
    counts = ids(target)
    assert sorted(counts) == list(range(2 * ROWS)) and set(counts.values()) == {1}
    assert storage.list_files(bucket) == sorted([target, *storage.glob(source)])


def slow(record):
    """The resumed run's step (the killed driver's has the same name: same settings)."""
    return record


_DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
import fsm_actors.platform.jobs.driver as driver
driver.SAVE_EVERY = 0.0
from fsm_actors.platform import runtime
runtime.ensure_ray(address={address!r})
from patterns.file_processing import FileProcessingConfig, FileProcessor

def slow(record):
    time.sleep(0.0005)
    return record

def mark(progress):
    if progress.batches_done >= 6:
        open({marker!r}, "w").close()

FileProcessor(FileProcessingConfig(input_path={source!r}, output_path={target!r},
              chunk_size=500, workers=2, checkpoint_id="s3-sigkill",
              transformations=[slow])).run(on_progress=mark)
"""


@pytest.mark.ray
def test_driver_sigkilled_mid_run_resumes_from_its_s3_checkpoint(ray_session, s3, tmp_path,
                                                                  monkeypatch):
    from fsm_actors.platform import runtime
    from patterns.file_processing import FileProcessingConfig, FileProcessor

    restart_ray_with_env()  # the session's workers must see the store's variables
    bucket = s3.make_bucket("sigkill")
    source, target = put_inputs(bucket), f"{bucket}/out.jsonl"
    marker = tmp_path / "six-batches-done"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    script = _DRIVER.format(root=str(REPO), address=runtime.ensure_ray().address,
                            marker=str(marker), source=source, target=target)
    checkpoints = f"{bucket}/.fsm_actors/checkpoints"
    run_and_sigkill(script, str(cwd), lambda: marker.exists() and storage.list_files(checkpoints))
    assert not storage.exists(target)
    monkeypatch.chdir(cwd)
    batches = []

    result = FileProcessor(FileProcessingConfig(
        input_path=source, output_path=target, chunk_size=500, workers=2,
        checkpoint_id="s3-sigkill", transformations=[slow],
    )).run(on_progress=lambda p: batches.append(p.batches_done))
    assert result["records_written"] == 2 * ROWS
    assert len(batches) < 2 * ROWS // 500  # resumed, not started over
    counts = ids(target)
    assert sorted(counts) == list(range(2 * ROWS)) and set(counts.values()) == {1}
    assert os.listdir(cwd) == []  # nothing in the working directories


def _pipeline(folder, rows: int = 200):
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "in.csv").write_text(
        "x\n" + "".join(f"{i}\n" for i in range(rows)))
    job = folder / "job.yaml"
    job.write_text("kind: file_processing\ninput_path: data/in.csv\n"
                   "output_path: out/result.jsonl\n")
    return job


def test_submit_lands_a_relative_output_in_the_submitting_directory(tmp_path):
    """`fsm-actors submit job.yaml --working-dir . --wait` to a head on this machine: the
    output named relative in the file lands beside it here (not in the job's uploaded copy),
    and the final message names it."""
    from tests.ops.ray_heads import start_head

    head = start_head(auth="token", cpus=1, dashboard=True, log_dir=tmp_path)
    try:
        work = tmp_path / "w"
        _pipeline(work)
        proc = subprocess.run(
            [sys.executable, "-m", "fsm_actors.cli.main", "submit", "job.yaml", "--address",
             head.dashboard_url, "--working-dir", ".", "--wait"],
            capture_output=True, text=True, timeout=300, cwd=work, env=client_env())
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        out = work / "out" / "result.jsonl"
        assert [json.loads(line)["x"] for line in out.read_text().splitlines()] == list(
            range(200))
        assert f"output: {out}" in proc.stderr
    finally:
        head.stop()


def test_submit_to_a_remote_head_refuses_a_relative_output_naming_a_uri(tmp_path):
    from fsm_actors.cli.documents import UserError
    from fsm_actors.cli.jobs import submit_outputs

    job = _pipeline(tmp_path)
    with pytest.raises(UserError, match=r"s3://YOUR-BUCKET/out/result.jsonl"):
        submit_outputs(job, (), head_is_local=False)
    job.write_text(job.read_text().replace("out/result.jsonl", "s3://b/out.jsonl"))
    assert submit_outputs(job, (), head_is_local=False) == ((), {}, ["s3://b/out.jsonl"])
