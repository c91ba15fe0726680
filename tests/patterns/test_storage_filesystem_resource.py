"""FileSystemResourceAdapter with an object-store base (issue 22): sessions read, write,
append, list and delete objects under the base URI (moto's S3 server on 127.0.0.1), refuse
paths that leave it, open() reads and writes whole objects, storage_options stay hidden."""

from __future__ import annotations

import pickle

import pytest

from fsm_actors.platform.io import storage
from resource_actors.base import ResourceHealth
from resource_actors.errors import ResourceError
from resource_actors.filesystem import FileSystemResourceAdapter

SECRET = "fs-secret-0123456789"


@pytest.fixture(scope="module")
def s3(s3_store):
    s3_store.make_bucket("fsres")
    s3_store.make_bucket("other")
    return s3_store


def test_a_session_under_an_s3_base(s3):
    adapter = FileSystemResourceAdapter("store", base_path="s3://fsres/base/")
    session = adapter.acquire()
    assert session.write("a/x.json", {"n": 1}) == "s3://fsres/base/a/x.json"
    assert session.read_text("a/x.json") == '{"n": 1}'
    session.append("log.txt", "one\n")
    session.append("log.txt", b"two\n")
    assert session.read_bytes("log.txt") == b"one\ntwo\n"
    assert session.exists("a/x.json") and not session.exists("a/none")
    assert session.list() == ["log.txt"]
    assert session.list("*.json", recursive=True) == ["a/x.json"]
    assert session.resolve("s3://fsres/base/a/x.json") == "s3://fsres/base/a/x.json"
    for bad in ("../outside.txt", "a/../../outside.txt", "s3://other/base/x", "s3://fsres/x"):
        with pytest.raises(ResourceError, match="refused"):
            session.write(bad, "no")
    assert storage.list_files("s3://other") == []
    with pytest.raises(ResourceError, match="read of 'missing' in 'store' failed"):
        session.read("missing")
    assert session.delete("a") and not session.exists("a/x.json")
    assert session.delete("log.txt") and not session.delete("log.txt")
    tmp = session.create_temp(content="t")
    adapter.release(session)
    assert session.closed and not __import__("os").path.exists(tmp)
    assert adapter.health_check() is ResourceHealth.HEALTHY


def test_adapter_open_exists_list_and_hidden_options(s3):
    opts = {"access_key": "testing-key-id", "secret_key": SECRET,
            "endpoint_override": s3.endpoint.removeprefix("http://"), "scheme": "http",
            "region": "us-east-1"}
    adapter = FileSystemResourceAdapter("store2", base_path="s3://fsres/direct",
                                        storage_options=opts)
    with adapter.open("d/out.txt", "w") as fh:
        fh.write("hello\n")
    with adapter.open("d/out.txt", "a") as fh:
        fh.write("again\n")
    with adapter.open("d/out.txt") as fh:
        assert fh.read() == "hello\nagain\n"
    with adapter.open("d/out.txt", "rb") as fh:
        assert fh.read() == b"hello\nagain\n"
    assert adapter.exists("d/out.txt") and adapter.list_files("**/*.txt") == ["d/out.txt"]
    assert adapter.delete("d/out.txt") and not adapter.exists("d/out.txt")
    copy = pickle.loads(pickle.dumps(adapter))  # as shipped to a provider actor
    assert copy.base_uri == "s3://fsres/direct"
    for shown in (repr(adapter), str(adapter.config), repr(adapter.acquire()), repr(copy)):
        assert SECRET not in shown
