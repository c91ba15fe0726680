"""Clean byte ranges are parsed by Arrow's typed CSV reader (csv_ranges._typed_fast): the
records, their types and their lines equal the exact text-then-convert path's; a range with
a bad row, a blank line, a value Arrow will not convert or a line break in a value takes
the exact path."""

from __future__ import annotations

import random

import pytest

from fsm_actors.platform.io import csv_ranges
from fsm_actors.platform.io.csv_ranges import csv_file_types, plan_byte_ranges, read_csv_range


def clean_csv(path, rows=20_000, extra: dict[int, str] | None = None) -> None:
    rng = random.Random(5)
    lines = ["id,price,flag,name,empty,zip"]
    for i in range(rows):
        price = rng.choice(["", "NA", f"{i / 7!r}", f"{i}.5", "1e5", "-352334.4703336753"])
        flag = rng.choice(["true", "False", "TRUE", "", "null"])
        name = rng.choice(["NA", "", f'"quoted, {i}"', f"plain {i}", '"say ""hi"""'])
        lines.append((extra or {}).get(i, f"{i},{price},{flag},{name},,0{i % 9}"))
    path.write_text("\r\n".join(lines) + "\r\n")


def read_all(path, n, monkeypatch, fast: bool):
    monkeypatch.setattr(csv_ranges, "FAST_RANGES", fast)
    _, types, multiline = csv_file_types(path)
    rows, lines, errors, schemas = [], [], [], set()
    for r in plan_byte_ranges(path, n, min_bytes=1):
        for chunk in read_csv_range(path, r.start, r.end, first_line=r.first_line, types=types,
                                    multiline=multiline, chunk_size=3000):
            rows += chunk.batch.to_pylist()
            lines += chunk.lines.to_pylist() if chunk.lines is not None else []
            errors += [(e.line, e.raw, e.reason) for e in chunk.errors]
            schemas.add(chunk.batch.schema)
    return rows, lines, errors, schemas


@pytest.mark.parametrize("extra", [
    None,
    {777: "777,1.5,true,x"},  # too few fields
    {5000: ""},  # a blank line
    {9000: "9000,1.5,tRuE,x,,01"},  # a boolean Arrow's list does not hold
])
def test_fast_ranges_equal_the_exact_path(tmp_path, monkeypatch, extra):
    path = tmp_path / "c.csv"
    clean_csv(path, extra=extra)
    used = []
    real = csv_ranges._typed_fast
    monkeypatch.setattr(csv_ranges, "_typed_fast",
                        lambda *a: used.append(real(*a) is not None) or real(*a))
    fast = read_all(path, 4, monkeypatch, True)
    took = list(used)  # the fast run's ranges only
    exact = read_all(path, 4, monkeypatch, False)
    assert fast == exact
    rows, lines, errors, schemas = fast
    assert len(schemas) == 1
    types = {f.name: str(f.type) for f in schemas.pop()}
    assert types == {"id": "int64", "price": "double", "flag": "bool", "name": "string",
                     "empty": "null", "zip": "string"}
    assert rows[3]["name"] in ("NA", "", "quoted, 3", "plain 3", 'say "hi"')
    assert any(took)  # clean ranges took the fast path
    if extra is None:
        assert all(took) and not errors and len(rows) == 20_000
    else:
        assert not all(took)  # the range with the odd line took the exact path


def test_threaded_type_scan_equals_one_pass(tmp_path, monkeypatch):
    """A large file's scan by byte ranges at once finds the types and line breaks one pass
    finds: a value that makes a column text at the end, a line break in one value."""
    path = tmp_path / "big.csv"
    rows = [f"{i},{i / 3!r},plain {i}\n" for i in range(400_000)]
    rows[200_000] = '200000,1.5,"two\nlines"\n'
    path.write_text("id,x,t\n" + "".join(rows) + "400000,C7,z\n")
    assert path.stat().st_size >= 2 * csv_ranges.MIN_RANGE_BYTES
    threaded = csv_file_types(path)
    monkeypatch.setattr(csv_ranges, "SCAN_THREADS", 1)
    assert threaded == csv_file_types(path)
    assert str(threaded[1]["x"]) == "string" and str(threaded[1]["id"]) == "int64"
    assert threaded[2] is True
