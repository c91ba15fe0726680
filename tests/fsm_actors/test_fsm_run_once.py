"""User functions run exactly once per record per step, even when other records fail
(issue 8, "One record engine, user functions run once")."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from patterns._files.job import BatchPipeline
from patterns._records import make_validator

TABLE = pa.table({"id": list(range(10)), "v": [1.0] * 10})


def test_a_failing_record_does_not_rerun_the_others():
    calls: Counter = Counter()

    def count_filter(r):
        calls[("filter", r["id"])] += 1
        return True

    def count(r):
        calls[("t1", r["id"])] += 1
        return {**r, "seen": 1}

    def explode(r):
        calls[("t2", r["id"])] += 1
        if r["id"] == 4:
            raise ValueError("four")
        return r

    def after(r):
        calls[("t3", r["id"])] += 1

    result = BatchPipeline(filters=[count_filter], transformations=[count, explode, after]).apply(
        TABLE, "f.csv", 0
    )
    assert result.table.column("id").to_pylist() == [i for i in range(10) if i != 4]
    assert set(calls.values()) == {1}
    assert len(calls) == 10 + 10 + 10 + 9  # the failed record goes no further
    [error] = result.errors
    assert error.record == 5 and "explode" in error.reason and "four" in error.reason


def test_an_invalid_record_does_not_rerun_the_others():
    calls: Counter = Counter()

    def count(r):
        calls[r["id"]] += 1
        return r

    validator = make_validator({"properties": {"id": {"maximum": 7}}})
    result = BatchPipeline(transformations=[count], validator=validator).apply(TABLE, None, 0)
    assert result.table.num_rows == 8 and len(result.errors) == 2
    assert calls == Counter({i: 1 for i in range(8)})
    assert all(e.stage == "validate" for e in result.errors)


def test_async_record_steps_run_through_the_sync_bridge():
    async def add(r):
        return {**r, "w": r["v"] + 1}

    async def keep_even(r):
        return r["id"] % 2 == 0

    result = BatchPipeline(filters=[keep_even], transformations=[add]).apply(TABLE, None, 0)
    assert result.table.column("id").to_pylist() == [0, 2, 4, 6, 8]
    assert result.table.column("w").to_pylist() == [2.0] * 5 and not result.errors
