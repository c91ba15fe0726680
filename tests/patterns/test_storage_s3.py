"""File jobs on an object store: moto's S3 server on 127.0.0.1, reached only through the
standard AWS_* variables. Inputs listed from the bucket (plain, gzip and a >= 32 MB CSV cut
into ranged reads), outputs written whole, parts and checkpoints beside the output, a
failed run leaving the existing object as it was, nothing written to the working directory.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import ray

from fsm_actors.platform.io import storage
from patterns.file_processing import FileProcessingConfig, FileProcessor
from tests.s3_server import serve_s3_to_ray

pytestmark = pytest.mark.ray

SMALL = 5_000
BIG = 900_000  # ~35 MB of CSV: cut into byte ranges


@pytest.fixture(scope="module")
def s3(s3_store):
    return serve_s3_to_ray(s3_store)


def csv_bytes(start: int, rows: int) -> bytes:
    table = pa.table({
        "id": pa.array(range(start, start + rows), pa.int64()),
        "group": pa.array([i % 7 for i in range(start, start + rows)], pa.int64()),
        "name": pa.array([f"name-{i:08d}-padding-padding" for i in range(start, start + rows)]),
    })
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="none"))
    return sink.getvalue()


@pytest.fixture(scope="module")
def inputs(s3):
    """``s3://inputs/in/``: a.csv (plain), b.csv.gz (gzip), c.csv (>= 32 MB)."""
    bucket = s3.make_bucket("inputs")
    storage.put_bytes(f"{bucket}/in/a.csv", csv_bytes(0, SMALL))
    storage.put_bytes(f"{bucket}/in/b.csv.gz", gzip.compress(csv_bytes(SMALL, SMALL)))
    big = csv_bytes(2 * SMALL, BIG)
    assert len(big) >= 32 << 20
    storage.put_bytes(f"{bucket}/in/c.csv", big)
    storage.put_bytes(f"{bucket}/other/skip.csv", csv_bytes(0, 10))
    return bucket


TOTAL = 2 * SMALL + BIG


def ids_of(table: pa.Table) -> Counter:
    return Counter(table["id"].to_pylist())


def read_parquet(uri: str) -> pa.Table:
    with storage.open_input(uri, random_access=True) as fh:
        return pq.read_table(fh)


def read_jsonl(uri: str) -> pa.Table:
    import pyarrow.json as pajson

    return pajson.read_json(pa.BufferReader(storage.read_bytes(uri)))


def test_glob_of_plain_gzip_and_large_csv_to_parquet_and_jsonl(
    ray_session, s3, inputs, empty_cwd
):
    bucket = s3.make_bucket("out1")
    for name, reader in (("all.parquet", read_parquet), ("all.jsonl", read_jsonl)):
        target = f"{bucket}/{name}"
        result = FileProcessor(
            FileProcessingConfig(input_path=f"{inputs}/in/*.csv*", output_path=target,
                                 chunk_size=50_000)
        ).run()
        assert result["output_path"] == target
        assert result["records_written"] == TOTAL
        counts = ids_of(reader(target))
        assert len(counts) == TOTAL and set(counts.values()) == {1}
        # the staging prefix is gone, only the output (and nothing half-written) is there
        assert storage.list_files(bucket) == sorted(
            f"{bucket}/{n}" for n in ["all.parquet", "all.jsonl"][: 1 + (name != "all.parquet")]
        )


def test_failed_run_leaves_existing_object_untouched(ray_session, s3, inputs, empty_cwd):
    bucket = s3.make_bucket("keep")
    target = f"{bucket}/out.jsonl"
    storage.put_bytes(target, b'{"old": 1}\n')

    class Crash(Exception):
        pass

    def crash(progress):
        if progress.batches_done >= 2:
            raise Crash

    with pytest.raises(Crash):
        FileProcessor(
            FileProcessingConfig(input_path=f"{inputs}/in/a.csv", output_path=target,
                                 chunk_size=500)
        ).run(on_progress=crash)
    assert storage.read_bytes(target) == b'{"old": 1}\n'
    assert storage.list_files(bucket) == [target]


def test_killed_worker_and_killed_driver_resume_exactly_once(
    ray_session, s3, inputs, empty_cwd, monkeypatch
):
    monkeypatch.setattr("fsm_actors.platform.jobs.driver.SAVE_EVERY", 0.0)
    bucket = s3.make_bucket("chaos")
    target = f"{bucket}/out.parquet"
    config = FileProcessingConfig(
        input_path=f"{inputs}/in/[ab].csv*", output_path=target, chunk_size=500, workers=2,
        checkpoint_id="s3-chaos",
    )
    killed = []

    class Crash(Exception):
        pass

    def chaos(progress):
        if progress.batches_done >= 3 and not killed:
            ray.kill(ray.get_actor("file_processing/s3-chaos/worker/0"), no_restart=True)
            killed.append(1)
        if progress.batches_done >= 12:
            raise Crash  # the driver stops here: its checkpoint is on the store

    with pytest.raises(Crash):
        FileProcessor(config).run(on_progress=chaos)
    assert killed and not storage.exists(target)
    assert storage.list_files(f"{bucket}/.fsm_actors/checkpoints")
    second = []
    result = FileProcessor(config).run(on_progress=lambda p: second.append(p.batches_done))
    assert len(second) < 2 * SMALL // 500 - 10  # resumed, not restarted
    counts = ids_of(read_parquet(target))
    assert len(counts) == 2 * SMALL and set(counts.values()) == {1}
    assert result["records_written"] == 2 * SMALL
    assert storage.list_files(bucket) == [target]


MACHINE = {
    "name": "tag",
    "data_mode": "direct",
    "states": [
        {"name": "start", "is_start": True},
        {"name": "tag", "functions": {"transform": "tag"}},
        {"name": "done", "is_end": True},
    ],
    "arcs": [{"from": "start", "to": "tag"}, {"from": "tag", "to": "done"}],
}


def tag(data):
    return {**data, "tagged": data["id"] * 2}


@pytest.mark.parametrize("local", [True, False])
def test_process_stream_s3_to_s3(ray_session, s3, inputs, empty_cwd, local):
    from fsm_actors import SimpleFSM

    bucket = s3.make_bucket(f"stream-{'local' if local else 'actors'}")
    sink = f"{bucket}/tagged.jsonl"
    with SimpleFSM(MACHINE, custom_functions={"tag": tag}, local=local, actors=2) as fsm:
        result = fsm.process_stream(f"{inputs}/in/a.csv", sink, chunk_size=1000)
    table = read_jsonl(sink)
    assert sorted(table["id"].to_pylist()) == list(range(SMALL))
    assert table["tagged"].to_pylist() == [i * 2 for i in table["id"].to_pylist()]
    assert result["output_path"] == sink
    assert storage.list_files(bucket) == [sink]


def test_checkpoint_store_on_s3_saves_whole_documents(s3):
    from fsm_actors.platform.jobs.checkpoint import CheckpointStore

    bucket = s3.make_bucket("ckpt")
    store = CheckpointStore(f"{bucket}/cp")
    assert store.load("run/1") is None
    store.save("run/1", {"n": 1})
    store.save("run/1", {"n": 2})
    assert store.load("run/1") == {"n": 2}
    store.delete("run/1")
    assert store.load("run/1") is None and storage.list_files(bucket) == []


def test_byte_ranges_of_an_s3_csv_are_planned_from_ranged_reads(s3, tmp_path, monkeypatch):
    """The cuts equal the local file's (quoted newlines and doubled quotes across them),
    every record is read once, and planning reads a small part of the object."""
    import random

    from fsm_actors.platform.io import csv_ranges
    from fsm_actors.platform.io.csv_ranges import plan_byte_ranges, read_csv_range

    rng = random.Random(3)
    lines = ["id,text,n"]
    for i in range(120_000):
        lines.append(f'{i},"multi\nline ""q"", {i}",{i}' if rng.random() < 0.3
                     else f"{i},plain {i},{i}")
    data = ("\n".join(lines) + "\n").encode()
    local = tmp_path / "q.csv"
    local.write_bytes(data)
    bucket = s3.make_bucket("ranges")
    uri = f"{bucket}/q.csv"
    storage.put_bytes(uri, data)
    read = []
    real = storage.read_range
    monkeypatch.setattr(storage, "read_range",
                        lambda p, a, b: read.append(b - a) or real(p, a, b))
    monkeypatch.setattr(storage, "read_bytes", lambda p: pytest.fail("read the whole object"))
    monkeypatch.setattr(csv_ranges, "_PROBE", 64 << 10)
    remote = plan_byte_ranges(uri, 6, min_bytes=1)
    assert sum(read) < len(data) // 4
    expected = plan_byte_ranges(local, 6, min_bytes=1)
    assert [(r.start, r.end) for r in remote] == [(r.start, r.end) for r in expected]
    assert remote[1].first_line is None
    ids = []
    for r in remote:
        for chunk in read_csv_range(uri, r.start, r.end, first_line=r.first_line,
                                    types={"id": pa.int64(), "text": pa.string(),
                                           "n": pa.int64()}, chunk_size=10_000):
            ids += chunk.batch.column("id").to_pylist()
            assert not chunk.errors
    assert ids == list(range(120_000))


def test_type_scan_of_an_s3_csv_streams_ranged_reads(s3, tmp_path, monkeypatch):
    """The whole-file type scan of an object holds a block at a time (no read of the whole
    object into memory) and finds what the local scan finds (a type changing at the end)."""
    from fsm_actors.platform.io import csv_ranges
    from fsm_actors.platform.io.csv_ranges import csv_file_types

    rows = "".join(f'{i},"text\n{i}",{i * 0.5}\n' for i in range(60_000))
    data = f"id,text,x\n{rows}60000,last,C1\n".encode()
    local = tmp_path / "t.csv"
    local.write_bytes(data)
    bucket = s3.make_bucket("scan")
    storage.put_bytes(f"{bucket}/t.csv", data)
    monkeypatch.setattr(csv_ranges, "_WHOLE_WINDOW", 256 << 10)
    real = storage.read_range
    monkeypatch.setattr(storage, "read_range", lambda p, a, b: (
        pytest.fail(f"one read of {b - a} bytes") if b - a > 256 << 10 else real(p, a, b)))
    remote = csv_file_types(f"{bucket}/t.csv")
    assert remote == csv_file_types(local)
    assert str(remote[1]["x"]) == "string" and remote[2] is True
