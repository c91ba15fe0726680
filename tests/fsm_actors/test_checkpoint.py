"""CheckpointStore: atomic msgpack documents; PartitionState bookkeeping."""

from __future__ import annotations

import os

import msgpack
import pytest

from fsm_actors.platform.jobs.checkpoint import Checkpoint, CheckpointStore, PartitionState


def test_save_load_delete(tmp_path):
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.load("run-1") is None
    store.save("run-1", {"a": 1, "nested": {"b": [1, 2]}, "raw": b"\x00"})
    assert store.load("run-1") == {"a": 1, "nested": {"b": [1, 2]}, "raw": b"\x00"}
    store.save("run-1", {"a": 2})
    assert store.load("run-1") == {"a": 2}
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["run-1.ckpt"]
    store.delete("run-1")
    store.delete("run-1")
    assert store.load("run-1") is None


def test_odd_run_ids_get_distinct_safe_files(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("a/b", {"x": 1})
    store.save("a_b", {"x": 2})
    assert store.load("a/b") == {"x": 1} and store.load("a_b") == {"x": 2}
    assert all("/" not in p.name for p in tmp_path.iterdir())


def test_a_failed_write_leaves_the_old_document(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    store.save("r", {"v": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.save("r", {"v": 2})
    monkeypatch.undo()
    assert store.load("r") == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.ckpt"]


def test_partition_state_tracks_out_of_order_batches_and_counts():
    part = PartitionState()
    part.mark_done(1, {"rows": 10})
    part.mark_done(3, {"rows": 5})
    assert part.next_batch == 0 and part.done == {1, 3}
    part.mark_done(0, {"rows": 10})
    part.mark_done(1, {"rows": 10})  # a re-sent batch counts once
    assert part.next_batch == 2 and part.done == {3}
    assert part.counts == {"rows": 25}
    assert part.is_done(0) and part.is_done(3) and not part.is_done(2)
    part.total_batches = 4
    assert not part.complete
    part.mark_done(2)
    assert part.complete and part.next_batch == 4 and part.done == set()


def test_checkpoint_round_trip(tmp_path):
    store = CheckpointStore(tmp_path)
    cp = Checkpoint("etl-1", meta={"inputs": ["a.csv"]})
    part = cp.partition("table_a")
    part.mark_done(0, {"rows": 3})
    part.mark_done(2, {"rows": 1})
    part.cursor, part.last_key, part.offset = "c1", 42, 3
    store.save_checkpoint(cp)
    loaded = store.load_checkpoint("etl-1")
    assert loaded.partitions["table_a"] == part
    assert loaded.meta == {"inputs": ["a.csv"]} and loaded.state == "running"
    raw = msgpack.unpackb(store.path("etl-1").read_bytes())
    assert raw["partitions"]["table_a"]["done"] == [2]


def test_other_format_versions_are_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("old", {"version": 0, "run_id": "old", "partitions": {}})
    with pytest.raises(ValueError, match="delete it"):
        store.load_checkpoint("old")
