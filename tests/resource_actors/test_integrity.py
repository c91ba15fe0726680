"""Data-integrity and honesty fixes of the adapters (issues 9 and 10), in-process.

Each test names the issue item it covers. The actor-mode halves are in test_recovery.py.
"""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from resource_actors import (
    DatabaseResourceAdapter,
    FileSystemResourceAdapter,
    HTTPResourceAdapter,
    PoolConfig,
    ResourceError,
    ResourceHealth,
    ResourceManager,
)
from tests.servers import free_port


@pytest.fixture
def sqlite(tmp_path):
    adapter = DatabaseResourceAdapter("lite", "sqlite", database=str(tmp_path / "i.db"))
    yield adapter
    adapter.close()


@pytest.fixture
def pg(postgres_server):
    adapter = DatabaseResourceAdapter("pg", "postgresql", postgres_server.plain_url)
    yield adapter
    adapter.close()


def _ragged_insert(adapter: DatabaseResourceAdapter, table: str) -> list[dict]:
    conn = adapter.acquire()
    try:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id INTEGER, name TEXT, note TEXT)")
        rows = [{"id": 20, "name": "a"}, {"id": 21, "name": "b", "note": "x"}, {"note": "y", "id": 22}]
        assert conn.insert_batch(table, rows) == 3
        return conn.query(f"SELECT id, name, note FROM {table} ORDER BY id")
    finally:
        adapter.release(conn)


EXPECTED_RAGGED = [{"id": 20, "name": "a", "note": None}, {"id": 21, "name": "b", "note": "x"},
                   {"id": 22, "name": None, "note": "y"}]


def test_insert_batch_takes_the_union_of_keys_sqlite(sqlite):  # issue 9 item 7
    assert _ragged_insert(sqlite, "ragged") == EXPECTED_RAGGED


@pytest.mark.postgres
def test_insert_batch_takes_the_union_of_keys_postgres_copy(pg):  # issue 9 item 7
    assert _ragged_insert(pg, "ragged") == EXPECTED_RAGGED


@pytest.mark.postgres
def test_postgres_read_batches_keep_the_source_types(pg):  # issue 9 item 13
    conn = pg.acquire()
    try:
        conn.execute("DROP TABLE IF EXISTS typed")
        conn.execute("CREATE TABLE typed (id int, price numeric(12,2), n bigint, tag text)")
        conn.execute("INSERT INTO typed VALUES (1, 1.5, NULL, NULL), (2, NULL, NULL, NULL), "
                     "(3, 12345.67, 7, 'x')")
        batches = list(conn.read_batches("SELECT * FROM typed ORDER BY id", batch_size=1))
        schemas = {b.schema for b in batches}
        assert len(schemas) == 1
        schema = schemas.pop()
        assert schema.field("price").type == pa.decimal128(12, 2)
        assert schema.field("n").type == pa.int64() and schema.field("id").type == pa.int32()
        assert schema.field("tag").type == pa.string()
        table = pa.Table.from_batches(batches)
        assert table.column("price").to_pylist() == [decimal.Decimal("1.50"), None,
                                                     decimal.Decimal("12345.67")]
    finally:
        pg.release(conn)


@pytest.mark.postgres
def test_postgres_read_batches_interleaved_with_insert_batch(pg):  # issue 9 item 22
    conn = pg.acquire()
    try:
        conn.execute("DROP TABLE IF EXISTS src")
        conn.execute("DROP TABLE IF EXISTS dst")
        conn.execute("CREATE TABLE src (id int, v text)")
        conn.execute("CREATE TABLE dst (id int, v text)")
        conn.insert_batch("src", [{"id": i, "v": f"v{i}"} for i in range(2500)])
        for batch in conn.read_batches("SELECT * FROM src ORDER BY id", batch_size=1000):
            conn.insert_batch("dst", batch)
        assert conn.query("SELECT count(*) AS n, sum(id) AS s FROM dst") == [
            {"n": 2500, "s": sum(range(2500))}]
    finally:
        pg.release(conn)


def test_sqlite_accepts_decimal_parameters(sqlite):  # issue 9 item 28
    conn = sqlite.acquire()
    try:
        conn.execute("CREATE TABLE money (amount NUMERIC, label TEXT)")
        conn.execute("INSERT INTO money VALUES (:a, :l)", {"a": decimal.Decimal("2.50"), "l": "x"})
        conn.insert_batch("money", [{"amount": decimal.Decimal("1.25"), "label": "y"}])
        assert conn.query("SELECT amount FROM money ORDER BY amount") == [{"amount": 1.25},
                                                                          {"amount": 2.5}]
    finally:
        sqlite.release(conn)


def test_a_stale_local_handle_says_its_lease_ended(sqlite):  # issue 9 item 28
    manager = ResourceManager(local=True)
    manager.register_provider("lite", sqlite)
    db = manager.acquire("lite", "o")
    assert db.query("SELECT 1 AS one") == [{"one": 1}]
    manager.release("lite", "o")
    with pytest.raises(ResourceError, match="lease ended") as err:
        db.query("SELECT 1 AS one")
    assert "This Connection is closed" not in str(err.value)
    manager.close()


def test_reset_rolls_back_and_says_so(sqlite):  # issue 9 item 3 support
    conn = sqlite.acquire()
    try:
        conn.execute("CREATE TABLE r (id INTEGER)")
        assert conn.reset() is False  # nothing open
        conn.begin()
        conn.execute("INSERT INTO r VALUES (1)")
        assert conn.reset() is True and not conn.in_transaction
        conn.begin()  # a fresh transaction can start: nothing carried over
        conn.execute("INSERT INTO r VALUES (2)")
        conn.commit()
        assert conn.query("SELECT id FROM r") == [{"id": 2}]
    finally:
        sqlite.release(conn)


def test_create_temp_refuses_prefixes_that_escape(tmp_path):  # issue 9 item 14
    adapter = FileSystemResourceAdapter("fs", base_path=tmp_path / "b", temp_dir=tmp_path / "t")
    session = adapter.acquire()
    for bad in ({"prefix": "../../escape"}, {"prefix": "a/b"}, {"suffix": "/../x"}):
        with pytest.raises(ResourceError, match="create_temp refused"):
            session.create_temp(**bad)
    assert not list(tmp_path.glob("escape*")) and not list((tmp_path / "b").iterdir())
    assert session.create_temp(prefix="ok_").startswith(str((tmp_path / "t").resolve()))
    adapter.close()


def test_http_retries_only_idempotent_methods_and_raises_after_5xx(http_server):  # 9.15
    adapter = HTTPResourceAdapter("api", http_server.url, retry_count=2, retry_backoff=0.01)
    api = adapter.acquire()
    try:
        http_server.fail_next(1, 503)
        hits = http_server.hits
        with pytest.raises(ResourceError, match="answered HTTP 503 after 1 attempt"):
            api.post("/echo", json={"a": 1})
        assert http_server.hits == hits + 1  # a POST is not sent twice
        http_server.fail_next(1, 503)
        assert api.post("/echo", json={"a": 2}, idempotent=True).json()["json"] == {"a": 2}
        http_server.fail_next(5, 502)
        with pytest.raises(ResourceError, match="answered HTTP 502 after 3 attempt"):
            api.get("/users/1")
        http_server.fail_next(0)
    finally:
        adapter.close()
    retrying = HTTPResourceAdapter("api2", http_server.url, retry_count=1, retry_backoff=0.01,
                                   retry_methods=["GET", "POST"])
    try:
        http_server.fail_next(1, 503)
        assert retrying.acquire().post("/echo", json={"b": 1}).attempts == 2
    finally:
        retrying.close()


@pytest.mark.parametrize("live", [True, False])
def test_http_validate_and_health_see_a_closed_port(http_server, live):  # issue 10 item 3
    url = http_server.url if live else f"http://127.0.0.1:{free_port()}"
    with ResourceManager(local=True) as manager:
        manager.register_provider("svc", HTTPResourceAdapter("svc", url, timeout=2))
        assert manager.validate_resource("svc") is live
        expected = ResourceHealth.HEALTHY if live else ResourceHealth.UNHEALTHY
        assert manager.health_check("svc") == {"svc": expected}


def test_release_of_an_unknown_name_raises(sqlite):  # issue 10 item 4
    with ResourceManager(local=True) as manager:
        manager.register_provider("lite", sqlite, PoolConfig(max_size=1))
        manager.acquire("lite", "o")
        with pytest.raises(ResourceError, match="unknown resource 'lte'") as err:
            manager.release("lte", "o")
        assert (err.value.resource_name, err.value.operation) == ("lte", "release")
        manager.release("lite", "someone-else")  # registered, not held: a documented no-op
        assert manager.get_resource_owners("lite") == {"o"}
