"""storage_options (issue 22): an object store reached only through the options given on a
config (no AWS_ENDPOINT_URL in the driver's or the workers' environment), for a file job,
process_stream, an ETL file source/target and a pipeline file's ``storage:`` key; the
credentials never appear in reprs, strs, errors or results. ``shared_fs: true`` silences
the local-paths warning. The store is moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import json
import pickle

import pytest
import yaml

from fsm_actors.platform.io import storage
from fsm_actors.platform.io.storage import StorageError, StorageOptions
from patterns.errors import PatternError
from patterns.etl import DatabaseETL, ETLConfig
from patterns.file_processing import FileProcessingConfig, FileProcessor
from patterns.pipeline import load_pipeline, run_pipeline_file
from tests.s3_server import restart_ray_with_env

SECRET = "sEcReT-0123456789-never-shown"
ROWS = 3_000


def options(endpoint: str) -> dict[str, str]:
    return {"access_key": "testing-key-id", "secret_key": SECRET,
            "endpoint_override": endpoint.removeprefix("http://"), "scheme": "http",
            "region": "us-east-1"}


@pytest.fixture(scope="module")
def s3(s3_store):
    bucket = s3_store.make_bucket("opts")
    body = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(ROWS))
    storage.put_bytes(f"{bucket}/in/a.csv", body.encode())
    return s3_store


@pytest.fixture(scope="module")
def no_endpoint_env(ray_session, s3):
    """Driver and Ray workers without AWS_ENDPOINT_URL: only the options reach the store.
    Module-scoped: one Ray restart without the variable and one back for the module's tests
    that need it, not two per test."""
    from fsm_actors.platform import runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ENDPOINT_URL")
        restart()
        yield runtime
    restart()


def restart() -> None:
    """Restart Ray; the broker handle cached by an earlier test's Ray goes with it (its
    cache is keyed by job id, which a new Ray repeats: a resource_actors defect)."""
    from resource_actors import broker_actor

    restart_ray_with_env()
    if broker_actor._broker is not None:
        broker_actor.forget_broker(broker_actor._broker[1])


def ids_of(uri: str) -> list[int]:
    with storage.open_input(uri) as fh:
        data = fh.read()
    return sorted(int(json.loads(line)["id"]) for line in data.splitlines())


def test_reprs_strs_and_pickles_never_show_the_secret():
    opts = options("http://127.0.0.1:1")
    config = FileProcessingConfig(input_path="s3://a/in.csv", output_path="s3://b/out.jsonl",
                                  storage_options=opts)
    etl = ETLConfig(source={"type": "file", "path": "s3://a/in.csv", "storage_options": opts},
                    target={"type": "file", "path": "s3://b/out.jsonl",
                            "storage_options": opts})
    endpoint = etl.source_endpoint()
    for shown in (repr(config), str(config), repr(config.storage_options), repr(etl), str(etl),
                  repr(endpoint), repr(DatabaseETL(etl))):
        assert SECRET not in shown, shown
    assert "secret_key=***" in repr(config) and "region='us-east-1'" in repr(config)
    assert config.storage_options.scopes == (("s3", "a"), ("s3", "b"))
    copy = pickle.loads(pickle.dumps(config))  # what a worker gets: registers the options
    assert dict(copy.storage_options) == opts
    with pytest.raises(ValueError, match="storage_options must be a mapping"):
        FileProcessingConfig(input_path="s3://a/x.csv", storage_options="key=1")


def test_a_store_that_fails_names_no_secret(tmp_path):
    bad = {**options("http://127.0.0.1:1"), "no_such_argument": SECRET}
    with pytest.raises(StorageError) as info:
        storage.filesystem("s3://nowhere/x.csv", StorageOptions(bad))
    assert SECRET not in str(info.value) and "no_such_argument" in str(info.value)


@pytest.mark.ray
def test_file_job_and_process_stream_reach_the_store_through_options_only(s3, no_endpoint_env):
    from fsm_actors import SimpleFSM

    opts = options(s3.endpoint)
    result = FileProcessor(FileProcessingConfig(
        input_path="s3://opts/in/*.csv", output_path="s3://opts/out/job.jsonl",
        chunk_size=500, workers=2, storage_options=opts)).run()
    assert ids_of("s3://opts/out/job.jsonl") == list(range(ROWS))
    assert SECRET not in json.dumps(result, default=str)

    machine = {"name": "copy", "states": [{"name": "start", "is_start": True},
                                          {"name": "done", "is_end": True}],
               "arcs": [{"from": "start", "to": "done"}]}
    with SimpleFSM(machine, actors=2) as fsm:
        result = fsm.process_stream("s3://opts/in/a.csv", "s3://opts/out/stream.jsonl",
                                    chunk_size=500, storage_options=opts)
    assert ids_of("s3://opts/out/stream.jsonl") == list(range(ROWS))
    assert SECRET not in json.dumps(result, default=str)


@pytest.mark.ray
def test_pipeline_storage_key_for_file_processing_and_etl(s3, no_endpoint_env, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("MY_STORE_SECRET", SECRET)
    store = {**options(s3.endpoint), "secret_key": "${MY_STORE_SECRET}"}
    files = tmp_path / "files.yaml"
    files.write_text(yaml.safe_dump({
        "kind": "file_processing", "input_path": "s3://opts/in/a.csv",
        "output_path": "s3://opts/out/pipe.jsonl", "storage": store}))
    etl = tmp_path / "etl.yaml"
    etl.write_text(yaml.safe_dump({
        "kind": "etl", "source": {"type": "file", "path": "s3://opts/in/a.csv"},
        "target": {"type": "file", "path": "s3://opts/out/etl.jsonl"},
        "storage": store, "parallel_workers": 2}))
    for path, out in ((files, "pipe"), (etl, "etl")):
        job = load_pipeline(path).jobs[0]
        assert SECRET not in repr(job) and SECRET not in repr(job.config)
        result = run_pipeline_file(path)
        assert ids_of(f"s3://opts/out/{out}.jsonl") == list(range(ROWS))
        assert SECRET not in json.dumps(result, default=str)
    files.write_text(yaml.safe_dump({"kind": "file_processing", "input_path": "s3://x/a.csv",
                                     "storage": "secret"}))
    with pytest.raises(PatternError, match="storage: a mapping"):
        load_pipeline(files)


def test_shared_fs_silences_the_local_paths_notice(tmp_path):
    from fsm_actors.platform.jobs import FileJobKind

    src = tmp_path / "in.csv"
    src.write_text("id\n1\n")
    for shared, expect in ((None, True), (True, False)):
        config = FileProcessingConfig(input_path=str(src), output_path=str(tmp_path / "o.jsonl"),
                                      shared_fs=shared)
        from patterns._files.job import _spec

        kind = FileJobKind(_spec(config), None, "r1")
        notice = storage.local_paths_notice(kind.local_paths(), ["10.0.0.2"])
        assert (notice is not None) is expect
