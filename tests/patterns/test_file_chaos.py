"""Chaos: workers die mid-run, the driver crashes mid-run; every record comes out once."""

from __future__ import annotations

import os
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray

from fsm_actors.platform.io import read_record_batches
from patterns.file_processing import FileProcessingConfig, FileProcessor, vectorized

pytestmark = pytest.mark.ray

ROWS = 60_000


def make_input(path) -> None:
    path.write_text("id,group,value\n" + "".join(f"{i},{i % 7},{i * 3}\n" for i in range(ROWS)))


def ids_in(path) -> Counter:
    return Counter(r["id"] for batch in read_record_batches(path, chunk_size=10000) for r in batch)


@vectorized
def slow_copy(table: pa.Table) -> pa.Table:
    import time

    time.sleep(0.05)  # leave time to kill a worker while chunks are in flight
    return table.append_column("tripled", pc.multiply(table["value"], 3))


def test_killed_worker_is_replaced_and_output_is_exactly_once(ray_session, tmp_path):
    make_input(tmp_path / "in.csv")
    killed = []

    def kill_one(progress):
        if progress.batches_done == 3 and not killed:
            actor = ray.get_actor("file_processing/chaos-kill/worker/0")
            ray.kill(actor, no_restart=True)
            killed.append(actor)

    out = tmp_path / "out.jsonl"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(tmp_path / "in.csv"),
            output_path=str(out),
            chunk_size=2000,
            workers=2,
            transformations=[slow_copy],
        )
    ).run(checkpoint_id="chaos-kill", on_progress=kill_one)
    assert killed
    counts = ids_in(out)
    assert len(counts) == ROWS and set(counts.values()) == {1}
    assert result["records_written"] == ROWS == result["lines_read"]


def test_worker_process_exit_inside_a_transformation(ray_session, tmp_path):
    make_input(tmp_path / "in.csv")
    marker = tmp_path / "crashed-once"

    def crash_once(record):
        if record["id"] == 31_337 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return record

    out = tmp_path / "out.parquet"
    result = FileProcessor(
        FileProcessingConfig(
            input_path=str(tmp_path / "in.csv"),
            output_path=str(out),
            chunk_size=5000,
            workers=2,
            transformations=[crash_once],
        )
    ).run()
    assert marker.exists()
    counts = ids_in(out)
    assert len(counts) == ROWS and set(counts.values()) == {1}
    assert result["errors"] == 0


def test_driver_crash_resumes_from_checkpoint_without_loss_or_duplicates(
    ray_session, tmp_path, monkeypatch
):
    monkeypatch.setattr("fsm_actors.platform.jobs.driver.SAVE_EVERY", 0.0)
    make_input(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    config = FileProcessingConfig(
        input_path=str(tmp_path / "in.csv"),
        output_path=str(out),
        chunk_size=2000,
        workers=2,
        aggregations={"n": "count", "sum": "sum:value"},
        checkpoint_id="resume-me",
    )

    class Crash(Exception):
        pass

    def crash(progress):
        if progress.batches_done == 12:
            raise Crash

    with pytest.raises(Crash):
        FileProcessor(config).run(on_progress=crash)
    assert not out.exists()
    assert (tmp_path / ".fsm_actors" / "checkpoints").exists()
    second_run = []
    result = FileProcessor(config).run(on_progress=lambda p: second_run.append(p.batches_done))
    assert len(second_run) < ROWS // 2000 - 10
    counts = ids_in(out)
    assert len(counts) == ROWS and set(counts.values()) == {1}
    assert result["records_written"] == ROWS == result["lines_read"]
    assert result["aggregations"] == {"n": ROWS, "sum": sum(i * 3 for i in range(ROWS))}
    assert not (tmp_path / ".fsm_actors").exists()
