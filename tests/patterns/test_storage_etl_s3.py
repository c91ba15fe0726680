"""ETL from and to an object store (moto's S3 server on 127.0.0.1): CSV objects listed
from the bucket, a JSON Lines object written whole; every row once, a failed run leaves an
existing target object as it was, nothing written to the working directory."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from fsm_actors.platform.io import storage
from patterns.etl import DatabaseETL, ETLMode
from tests.s3_server import serve_s3_to_ray

pytestmark = pytest.mark.ray

FILES, ROWS = 3, 4_000


@pytest.fixture(scope="module")
def s3(s3_store):
    return serve_s3_to_ray(s3_store)


@pytest.fixture(scope="module")
def source(s3):
    bucket = s3.make_bucket("etl-src")
    for f in range(FILES):
        rows = "".join(f"{f * ROWS + i},{i % 5},name {i}\n" for i in range(ROWS))
        storage.put_bytes(f"{bucket}/in/part-{f}.csv", ("id,g,name\n" + rows).encode())
    return f"{bucket}/in/*.csv"


def ids(uri: str) -> Counter:
    return Counter(json.loads(line)["id"] for line in storage.read_bytes(uri).splitlines())


def double(record):
    return {**record, "twice": record["id"] * 2}


def etl(source: str, target: str) -> DatabaseETL:
    return DatabaseETL(source={"type": "csv", "path": source},
                       target={"type": "file", "path": target}, mode=ETLMode.FULL_REFRESH,
                       transformations=[double], batch_size=500, parallel_workers=2)


def test_s3_csv_objects_to_an_s3_jsonl_object_every_row_once(ray_session, s3, source, empty_cwd):
    bucket = s3.make_bucket("etl-out")
    target = f"{bucket}/out/all.jsonl"
    result = etl(source, target).run_sync()
    assert (result["extracted"], result["loaded"], result["rejected"]) == (FILES * ROWS,) * 2 + (0,)
    assert result["output_path"] == target
    counts = ids(target)
    assert sorted(counts) == list(range(FILES * ROWS)) and set(counts.values()) == {1}
    first = json.loads(storage.read_bytes(target).splitlines()[0])
    assert first["twice"] == first["id"] * 2
    assert storage.list_files(bucket) == [target]  # staging and run files gone


def test_failed_etl_leaves_the_existing_target_object_untouched(ray_session, s3, source,
                                                                 empty_cwd):
    bucket = s3.make_bucket("etl-keep")
    target = f"{bucket}/all.jsonl"
    storage.put_bytes(target, b'{"old": 1}\n')

    class Crash(Exception):
        pass

    def crash(progress):
        if progress.batches_done >= 3:
            raise Crash

    with pytest.raises(Crash):
        asyncio.run(etl(source, target).run(on_progress=crash))
    assert storage.read_bytes(target) == b'{"old": 1}\n'
    assert storage.list_files(bucket) == [target]
