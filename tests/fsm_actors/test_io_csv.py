"""CSV reading: one type per column for the whole file, values that never change, declared
types, fields larger than the parser's block, and error lines that are file lines."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fsm_actors.platform.io import FormatError, ReadOptions, iter_chunks, require_numeric
from tests.helpers.io_read import read_chunks as read


def test_a_field_larger_than_the_block_is_read(tmp_path):
    """Issue 9 item 6: a 2 MB field (block 1 MB) no longer ends the read."""
    path = tmp_path / "big.csv"
    with open(path, "w") as out:
        out.write("id,text\n")
        out.writelines(f"{i},short\n" for i in range(20000))
        out.write(f'20000,"{"x" * (2 << 20)}"\n')
        out.writelines(f"{i},short\n" for i in range(20001, 40000))
    rows, errors, _ = read(path, chunk_size=7000)
    assert errors == []
    assert [r["id"] for r in rows] == list(range(40000))
    assert len(rows[20000]["text"]) == 2 << 20 and rows[39999]["text"] == "short"


def test_grown_block_keeps_errors_once_and_small_block_option(tmp_path):
    path = tmp_path / "b.csv"
    body = ["a,b"] + [f"{i},v" for i in range(3000)] + ["bad"] + [f'3001,"{"y" * 50000}"']
    body += [f"{i},w" for i in range(3002, 4000)]
    path.write_text("\n".join(body) + "\n")
    rows, errors, _ = read(path, csv_block_size=4096)
    assert len(rows) == 3999 and rows[3000]["a"] == 3001
    assert [(e.line, e.raw) for e in errors] == [(3002, "bad")]


def test_a_column_has_one_type_for_the_whole_file(tmp_path):
    """Issue 9 item 9: ints then text far past the first block: text from the first row."""
    path = tmp_path / "t.csv"
    with open(path, "w") as out:
        out.write("code,n,x\n")
        out.writelines(f"{i},{i},{i}\n" for i in range(70000))
        out.writelines(f"C{i},{i}.5,{i}\n" for i in range(70000, 70010))
    rows, errors, schemas = read(path, chunk_size=10000)
    assert errors == [] and len(rows) == 70010
    assert schemas == {pa.schema([("code", pa.string()), ("n", pa.float64()), ("x", pa.int64())])}
    assert rows[0] == {"code": "0", "n": 0.0, "x": 0}
    assert rows[-1] == {"code": "C70009", "n": 70009.5, "x": 70009}


def test_values_that_would_change_stay_text(tmp_path):
    """Issue 9 item 10: zip codes, phone numbers, huge integers keep their text."""
    path = tmp_path / "t.csv"
    path.write_text(
        "zip,phone,big,price,id,ok,empty\n"
        "00501,+4917612345,12345678901234567890,2.50,7,true,\n"
        "10001,+4917600000,1,3,8,False,NA\n"
    )
    rows, errors, schemas = read(path)
    assert errors == []
    assert rows == [
        {
            "zip": "00501",
            "phone": "+4917612345",
            "big": "12345678901234567890",
            "price": 2.5,
            "id": 7,
            "ok": True,
            "empty": None,
        },
        {
            "zip": "10001",
            "phone": "+4917600000",
            "big": "1",
            "price": 3.0,
            "id": 8,
            "ok": False,
            "empty": None,
        },
    ]


def test_declared_column_types(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("zip,n,day,amount\n00501,1,2024-03-01,1.25\n02134,x,2024-03-02,7\n")
    rows, errors, schemas = read(
        path,
        csv_column_types={
            "zip": "int64",
            "n": "int64",
            "day": "date32",
            "amount": "decimal128(8,2)",
        },
    )
    assert [r["zip"] for r in rows] == [501]
    assert str(rows[0]["day"]) == "2024-03-01" and str(rows[0]["amount"]) == "1.25"
    assert len(errors) == 1 and errors[0].line == 3 and "'x' is not int64" in errors[0].reason
    rows, _, _ = read(path, csv_column_types={"n": "string"}, csv_infer="text")
    assert rows[0] == {"zip": "00501", "n": "1", "day": "2024-03-01", "amount": "1.25"}
    with pytest.raises(FormatError, match="nope"):
        read(path, csv_column_types={"nope": "int64"})
    with pytest.raises(FormatError, match="unknown column type"):
        read(path, csv_column_types={"n": "integer64"})


def test_error_line_is_the_file_line_after_quoted_newlines(tmp_path):
    """Issue 9 item 28: the line of a bad row counts the lines of quoted newlines and blank
    lines before it."""
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,"two\nlines"\n\n2,"three\r\nline\nvalue"\n3\n4,ok\n5,6,7\n')
    rows, errors, _ = read(path)
    assert [r["a"] for r in rows] == [1, 2, 4]
    assert [(e.line, e.raw) for e in errors] == [(8, "3"), (10, "5,6,7")]


def test_error_lines_across_many_blocks(tmp_path):
    path = tmp_path / "m.csv"
    lines = ["a,b"]
    for i in range(3000):
        if i % 500 == 7:
            lines.append("broken")
        lines.append(f'{i},"x\ny"' if i % 3 == 0 else f"{i},z")
    path.write_text("\n".join(lines) + "\n")
    physical = path.read_text().split("\n")
    rows, errors, _ = read(path, chunk_size=100, csv_block_size=2048)
    assert len(rows) == 3000
    got = [e.line for e in errors]
    assert all(physical[line - 1] == "broken" for line in got)
    assert len(got) == 6 and got == sorted(got)


def test_bad_utf8_row_has_its_line(tmp_path):
    path = tmp_path / "u.csv"
    path.write_bytes(b'a,b\n1,"x\ny"\n2,\xff\xfe\n3,ok\n')
    rows, errors, _ = read(path)
    assert [r["a"] for r in rows] == [1, 3]
    assert errors[0].line == 4 and "UTF-8" in errors[0].reason and "\\xff" in errors[0].raw


def test_a_sum_over_a_text_column_is_a_clear_error(tmp_path):
    """Issue 9 item 9: what the file steps check before ``sum:``/``mean:``."""
    path = tmp_path / "t.csv"
    path.write_text("n,m\n1,1\nC2,2\n")
    schema = next(iter_chunks(path, ReadOptions(), 10)).batch.schema
    require_numeric(schema, ["m", "absent"])
    with pytest.raises(FormatError, match="column 'n'.*csv_column_types"):
        require_numeric(schema, ["m", "n"], "sum")


def test_sampled_types_reject_misfits_instead_of_changing_type(tmp_path):
    path = tmp_path / "s.csv"
    with open(path, "w") as out:
        out.write("n,s\n")
        out.writelines(f"{i},x\n" for i in range(60000))
        out.write("C1,late\n")
    rows, errors, schemas = read(path, csv_infer="sample", csv_block_size=1 << 16)
    assert len(rows) == 60000 and schemas == {pa.schema([("n", pa.int64()), ("s", pa.string())])}
    assert [(e.line, e.raw) for e in errors] == [(60002, "C1,late")]
    assert "'C1' is not int64" in errors[0].reason
