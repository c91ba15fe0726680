"""Silent data loss in the readers: every record of the file comes out, or an error names it.

A. empty fields of a boolean CSV column are null (like int/float), and a rejected row's
   ``raw`` is its original CSV text (quotes kept), which parses back to the same fields;
B. floats written with 16-17 significant digits (``repr``, pandas) are doubles, not text;
C. JSON input that is an array, one object, or one object per line gives every record.
"""

from __future__ import annotations

import csv
import io
import json
import random

import pyarrow as pa
import pytest

from fsm_actors.platform.io import ReadOptions, RowError, detect_format, read_csv_range
from fsm_actors.platform.io.csv_reader import column_kind, convert_column, fits
from fsm_actors.platform.io.json_records import iter_json_records
from tests.helpers.io_read import read_chunks as read


def fields(text: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV record, parsed the way a redrive would."""
    (row,) = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return row


# --- A: empty booleans, original raw text ------------------------------------------------------


def test_empty_bool_fields_convert_to_null():
    column = pa.array(["true", "", "NA", "False", None, "TRUE"])
    converted, bad = convert_column(column, pa.bool_())
    assert bad == []
    assert converted.to_pylist() == [True, None, None, False, None, True]
    # Still strict about real misfits: "yes" is not a bool.
    converted, bad = convert_column(pa.array(["true", "", "yes"]), pa.bool_())
    assert bad == [2] and converted.to_pylist() == [True, None, None]


def test_csv_with_empty_bool_fields_keeps_every_row(tmp_path):
    path = tmp_path / "b.csv"
    rng = random.Random(7)
    lines = ["id,i,f,b"]
    expected = []
    for n in range(5000):
        b = rng.choice(["true", "false", ""])
        i = "" if n % 11 == 0 else str(n)
        f = "" if n % 13 == 0 else f"{n}.5"
        lines.append(f"{n},{i},{f},{b}")
        expected.append(
            {
                "id": n,
                "i": int(i) if i else None,
                "f": float(f) if f else None,
                "b": {"true": True, "false": False, "": None}[b],
            }
        )
    path.write_text("\n".join(lines) + "\n")
    rows, errors, schemas = read(path, chunk_size=1000, csv_block_size=1 << 14)
    assert errors == []
    assert rows == expected
    assert schemas == {
        pa.schema([("id", pa.int64()), ("i", pa.int64()), ("f", pa.float64()), ("b", pa.bool_())])
    }


ORIGINAL_ROWS = [
    'oops,"comma, inside","say ""hi"""',
    '"quoted","plain",7',  # needless quotes: kept as written
    'bad,"two\nlines",x',  # a quoted line break
    "alsobad,,",
    'crlf,"a\r\nb",y',  # a quoted CRLF stays CRLF
]


@pytest.mark.parametrize("block", [1 << 20, 64])
def test_rejected_row_raw_is_the_original_csv_text(tmp_path, block):
    path = tmp_path / "r.csv"
    body = ["n,s,t", "1,a,b"]
    for k, row in enumerate(ORIGINAL_ROWS):
        body += [row, f"{k + 2},ok,ok"]
    path.write_bytes(("\r\n".join(body) + "\r\n").encode())
    rows, errors, _ = read(path, csv_column_types={"n": "int64"}, csv_block_size=block)
    assert [r["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [e.raw for e in errors] == ORIGINAL_ROWS
    assert [e.line for e in errors] == [3, 5, 7, 10, 12]
    for error, row in zip(errors, ORIGINAL_ROWS, strict=True):
        assert fields(error.raw) == fields(row)


def test_rejected_row_raw_in_a_byte_range_and_other_encoding(tmp_path):
    path = tmp_path / "l.csv"
    text = 'n;s\n1;"caf\xe9; cr\xe8me"\nx;"caf\xe9; ""au"" lait"\n3;z\n'
    path.write_bytes(text.encode("latin-1"))
    options = ReadOptions(csv_delimiter=";", encoding="latin-1", csv_column_types={"n": "int64"})
    _, errors, _ = read(
        path, csv_delimiter=";", encoding="latin-1", csv_column_types={"n": "int64"}
    )
    assert [(e.line, e.raw) for e in errors] == [(3, 'x;"caf\xe9; ""au"" lait"')]
    start = len("n;s\n".encode("latin-1"))
    chunks = list(read_csv_range(path, start, path.stat().st_size, options))
    ranged = [e for c in chunks for e in c.errors]
    assert [(e.line, e.raw) for e in ranged] == [(3, 'x;"caf\xe9; ""au"" lait"')]
    assert fields(ranged[0].raw, ";") == ["x", 'caf\xe9; "au" lait']


def test_rejected_row_raw_from_a_file_object(tmp_path):
    """A caller's file object cannot be read twice at once: ``raw`` is the fields as CSV."""
    path = tmp_path / "o.csv"
    path.write_text('n,s\n1,a\n"x","a, b"\n' + "".join(f"{i},c\n" for i in range(3, 20000)))
    with open(path, "rb") as fh:
        rows, errors, _ = read(
            fh, format="csv", csv_column_types={"n": "int64"}, csv_block_size=4096
        )
    assert [r["n"] for r in rows] == [1, *range(3, 20000)]
    assert [(e.line, e.raw) for e in errors] == [(3, 'x,"a, b"')]


def test_wrong_field_count_raw_keeps_quotes(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text('a,b\n1,2\n"x, y",2,"3"\n4,5\n')
    rows, errors, _ = read(path)
    assert len(rows) == 2
    assert [(e.line, e.raw) for e in errors] == [(3, '"x, y",2,"3"')]


# --- B: 16-17 significant digits are doubles -------------------------------------------------


def test_repr_floats_are_float_kind():
    values = [repr(v) for v in (-352334.4703336753, 0.30000000000000004, 1 / 3, 1e16 / 3)]
    values += ["1.0", "2.50", "1e-05", "-0.0", f"{0.1:.17g}", "1.2345678901234567e+19"]
    values += ["1.2345678901234567E19", "-352334.47033367530", "0.000000000000000"]
    assert column_kind(pa.array(values)) == "float"
    misfits = [
        "00501",
        "+1.5",
        "inf",
        "12345678901234567890",
        "0.12345678901234567890123",
        "1e400",
        "1e-400",
        "0.12345678901234567",
        "9007199254740993.5",
    ]
    for text in [*misfits, "nan"]:
        assert not fits(pa.array(["1.5", text]), "float"), text
    for text in misfits:  # "nan" is a null spelling: null in a typed column
        assert column_kind(pa.array(["1.5", text])) == "string", text


def test_csv_float_columns_written_by_repr_are_doubles(tmp_path):
    rng = random.Random(3)
    values = [rng.uniform(-1e6, 1e6) for _ in range(3000)] + [1.0, 0.1 + 0.2, -0.0]
    path = tmp_path / "f.csv"
    path.write_text("x,zip\n" + "".join(f"{v!r},0{k:04d}\n" for k, v in enumerate(values)))
    rows, errors, schemas = read(path, chunk_size=1000)
    assert errors == []
    assert schemas == {pa.schema([("x", pa.float64()), ("zip", pa.string())])}
    assert [r["x"] for r in rows] == values
    assert rows[0]["zip"] == "00000"


# --- C: JSON input, every record -------------------------------------------------------------

JSON_SHAPES = {
    "array": '[{"a": 1}, {"a": 2},\n {"a": 3}]',
    "object": '{"a": 1, "b": [1, 2]}',
    "lines": '{"a": 1}\n{"a": 2}\n{"a": 3}\n',
    "lines_blank": '{"a": 1}\n\n{"a": 2}\n   \n\n{"a": 3}',
    "pretty_objects": '{\n  "a": 1\n}\n{\n  "a": 2\n}\n{"a": 3}\n',
    "line_then_pretty": '{"a": 1}\n{\n  "a": 2\n}\n',
}
JSON_COUNTS = {
    "array": 3,
    "object": 1,
    "lines": 3,
    "lines_blank": 3,
    "pretty_objects": 3,
    "line_then_pretty": 2,
}


@pytest.mark.parametrize("shape", sorted(JSON_SHAPES))
@pytest.mark.parametrize("fmt", ["json", None])
def test_json_shapes_read_every_record(tmp_path, shape, fmt):
    path = tmp_path / "in.json"
    path.write_text(JSON_SHAPES[shape])
    rows, errors, _ = read(path, format=fmt)
    assert errors == []
    assert len(rows) == JSON_COUNTS[shape]
    records = list(iter_json_records(str(path), ReadOptions(format="json")))
    assert all(isinstance(r, dict) for r in records) and len(records) == JSON_COUNTS[shape]


def test_json_lines_with_a_bad_line_name_it_and_keep_the_others(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"a": 1}\n{"a": 2\n{"a": 3}\nnope\n{"a": 5}\n[1]\n{"a": 7}\n')
    for fmt in ("json", None):
        rows, errors, _ = read(path, format=fmt)
        assert [r["a"] for r in rows] == [1, 3, 5, 7], fmt
        assert [e.line for e in errors] == [2, 4, 6], fmt
    items = list(iter_json_records(str(path), ReadOptions(format="json")))
    assert [i["a"] for i in items if isinstance(i, dict)] == [1, 3, 5, 7]
    assert [i.line for i in items if isinstance(i, RowError)] == [2, 4, 6]


def test_json_first_line_bad_still_reads_the_rest(tmp_path):
    """A bad first line makes detection say ``json``: the rest must still be read."""
    path = tmp_path / "first.json"
    path.write_text('{"a": \n{"a": 2}\n{"a": 3}\n')
    assert detect_format(path) in ("json", "jsonl")
    rows, errors, _ = read(path)
    assert [r["a"] for r in rows] == [2, 3]
    assert [e.line for e in errors] == [1]


def test_content_after_a_json_array_is_an_error(tmp_path):
    path = tmp_path / "two.json"
    path.write_text('[{"a": 1}, {"a": 2}]\n[{"a": 3}]\ntrailing')
    rows, errors, _ = read(path, format="json")
    assert [r["a"] for r in rows] == [1, 2, 3]
    assert [e.line for e in errors] == [3]


def test_large_json_lines_file_as_json(tmp_path):
    path = tmp_path / "many.json"
    n = 50_000
    path.write_text("".join(json.dumps({"i": i, "s": "x" * (i % 40)}) + "\n" for i in range(n)))
    rows, errors, _ = read(path, format="json", chunk_size=7000)
    assert errors == [] and [r["i"] for r in rows] == list(range(n))


def test_json_records_and_bad_lines_across_buffer_boundaries(tmp_path):
    """Records of every size (some larger than the reader's text buffer), numbers and
    literals at every offset, bad lines between them: every good record, every bad line."""
    rng = random.Random(9)
    lines, good, bad = [], [], []
    for i in range(3000):
        if rng.random() < 0.05:
            lines.append(rng.choice(['{"a": ', "nope", '{"x": tru}', "[1, 2]", "42"]))
            bad.append(len(lines))
            continue
        size = rng.choice([1, 10, 100, 1000, 200_000]) if i % 400 == 7 else rng.randrange(40)
        record = {"i": i, "n": rng.random() * 10 ** rng.randrange(20), "ok": rng.random() < 0.5}
        record["s"] = "é" * size
        lines.append(json.dumps(record, ensure_ascii=rng.random() < 0.5))
        good.append(record)
        if rng.random() < 0.1:
            lines.append("")
    path = tmp_path / "mixed.json"
    path.write_text("\n".join(lines) + "\n")
    rows, errors, _ = read(path, format="json", chunk_size=500)
    assert rows == good
    assert sorted({e.line for e in errors}) == bad  # "[1, 2]": one error per element
    items = list(iter_json_records(str(path), ReadOptions(format="json")))
    assert [i for i in items if isinstance(i, dict)] == good
