"""XML as users write it: namespaces, comments, CDATA, nested records, header children;
written XML reads back as the records it was written from."""

from __future__ import annotations

from fsm_actors.platform.io import RecordWriter, RowError, read_record_batches


def read(path, **kw):
    errors: list[RowError] = []
    rows = [r for b in read_record_batches(path, on_error=errors.append, **kw) for r in b]
    return rows, errors


def test_namespaced_records(tmp_path):
    path = tmp_path / "ns.xml"
    path.write_text(
        '<r:root xmlns:r="urn:x" xmlns="urn:default">'
        "<r:item><r:id>1</r:id><name>a</name></r:item>"
        '<r:item><r:id>2</r:id><name xmlns:q="urn:q">b</name></r:item>'
        "</r:root>"
    )
    rows, errors = read(path)
    assert errors == [] and rows == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    rows, errors = read(path, format="xml")
    assert len(rows) == 2


def test_comments_cdata_and_nested_records(tmp_path):
    path = tmp_path / "c.xml"
    path.write_text(
        "<rows>\n"
        "<!-- <item><v>fake</v></item> -->\n"
        "<item><v><![CDATA[a </item> b]]></v></item>\n"
        "<item><v>2</v><item><v>inner</v></item></item>\n"
        "<?pi <item>no</item> ?>\n"
        "<item><v>3</v></item>\n"
        "</rows>\n"
    )
    rows, errors = read(path)
    assert errors == []
    # one Arrow table per batch: a key a record lacks is null there
    assert rows == [
        {"v": "a </item> b", "item": None},
        {"v": "2", "item": {"v": "inner"}},
        {"v": "3", "item": None},
    ]


def test_a_header_child_is_not_taken_for_the_records(tmp_path):
    path = tmp_path / "h.xml"
    body = "".join(f"<row><n>{i}</n></row>" for i in range(5))
    path.write_text(f"<export><meta><created>today</created></meta>{body}</export>")
    rows, errors = read(path)
    assert errors == [] and [r["n"] for r in rows] == [0, 1, 2, 3, 4]


def test_written_xml_keeps_null_empty_and_whitespace(tmp_path):
    path = tmp_path / "o.xml"
    records = [
        {"a": None, "b": "", "c": "  padded  ", "d": "x"},
        {"a": "1x", "b": "y", "c": "\tz", "d": None},
    ]
    with RecordWriter(path) as writer:
        writer.write(records)
    rows, errors = read(path)
    assert errors == [] and rows == records


def test_values_that_would_change_stay_text(tmp_path):
    path = tmp_path / "z.xml"
    path.write_text("<r><i><zip>00501</zip><n>7</n></i><i><zip>10001</zip><n>8</n></i></r>")
    rows, _ = read(path)
    assert rows == [{"zip": "00501", "n": 7}, {"zip": "10001", "n": 8}]


def test_unterminated_record_at_the_end_is_an_error(tmp_path):
    path = tmp_path / "t.xml"
    path.write_text("<r><i><a>1</a></i><i><a>2</a>")
    rows, errors = read(path)
    assert rows == [{"a": 1}] and len(errors) == 1 and "unterminated" in errors[0].reason
