"""The one JSON-schema validator (draft 7) behind state ``schema`` checks, ``Machine.validate``
and the file steps' ``validation_schema``."""

from __future__ import annotations

import pytest

from fsm_actors.config.schema import compile_schema
from fsm_actors.platform.errors import FSMConfigError


def errors(schema, data):
    return compile_schema(schema, "states[0].schema")(data)


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("string", "s", 1),
        ("integer", 3, True),
        ("integer", 3, 3.5),
        ("number", 3.5, "3.5"),
        ("number", 3, False),
        ("boolean", False, 0),
        ("object", {}, []),
        ("array", [1], {}),
        ("null", None, 0),
        (["string", "null"], None, 2),
    ],
)
def test_types(type_, good, bad):
    assert errors({"type": type_}, good) == []
    (message,) = errors({"type": type_}, bad)
    wanted = " or ".join(type_) if isinstance(type_, list) else type_
    assert message == f"record: expected {wanted}, got {type(bad).__name__}"


def test_nested_properties_required_and_extra_fields():
    schema = {
        "type": "object",
        "required": ["user"],
        "additionalProperties": False,
        "properties": {
            "user": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "integer"}, "tags": {"items": {"type": "string"}}},
            }
        },
    }
    assert errors(schema, {"user": {"id": 1, "tags": ["a"]}}) == []
    assert errors(schema, {"other": 1}) == [
        "missing required field 'user'",
        "unexpected field 'other'",
    ]
    assert errors(schema, {"user": {"tags": ["a", 2]}}) == [
        "user: missing required field 'id'",
        "user.tags[1]: expected string, got int",
    ]


def test_a_wrong_type_skips_the_other_rules_of_that_value():
    assert errors({"minLength": 3, "type": "string"}, 5) == ["record: expected string, got int"]


def test_value_rules():
    schema = {
        "properties": {
            "n": {"minimum": 1, "maximum": 3},
            "s": {"minLength": 2, "maxLength": 3, "pattern": "^a"},
            "e": {"enum": ["x", "y"]},
        }
    }
    assert errors(schema, {"n": 2, "s": "ab", "e": "x"}) == []
    assert errors(schema, {"n": 0, "s": "b", "e": "z"}) == [
        "n: 0 is below the minimum 1",
        "s: length 1 is under the minLength 2",
        "s: 'b' does not match pattern '^a'",
        "e: 'z' is not one of ['x', 'y']",
    ]
    assert errors(schema, {"n": 4, "s": "abcd"}) == [
        "n: 4 is above the maximum 3",
        "s: length 4 is over the maxLength 3",
    ]


def test_annotations_are_ignored():
    schema = {"title": "t", "description": "d", "$schema": "x", "format": "email", "default": 1}
    assert errors(schema, "anything") == []


@pytest.mark.parametrize(
    ("schema", "key_path", "fragment"),
    [
        ({"oneOf": []}, "states[0].schema.oneOf", "malformed schema rule 'oneOf'"),
        ({"minLenght": 3}, "states[0].schema.minLenght", "unsupported schema keyword(s) minLenght"),
        ({"type": "strng"}, "states[0].schema.type", "unknown type 'strng'"),
        ({"minimum": "low"}, "states[0].schema.minimum", "malformed schema rule 'minimum'"),
        ({"pattern": "("}, "states[0].schema.pattern", "malformed schema rule 'pattern'"),
        ({"additionalProperties": 3}, "states[0].schema.additionalProperties", "malformed"),
        (
            {"properties": {"a": {"anyOf": []}}},
            "states[0].schema.properties.a.anyOf",
            "malformed",
        ),
        (
            {"properties": {"a": {"items": {"typo": 1}}}},
            "states[0].schema.properties.a.items.typo",
            "unsupported",
        ),
    ],
)
def test_schema_errors_name_the_rule(schema, key_path, fragment):
    with pytest.raises(FSMConfigError) as info:
        compile_schema(schema, "states[0].schema", "fsm.yaml")
    assert info.value.key_path == key_path
    assert fragment in str(info.value) and str(info.value).startswith("fsm.yaml: ")


def test_draft7_keywords_beyond_the_old_subset_work():
    schema = {"oneOf": [{"type": "string"}, {"type": "integer", "multipleOf": 5}],
              "not": {"const": "no"}}
    assert errors(schema, "s") == [] and errors(schema, 10) == []
    assert errors(schema, 7) and errors(schema, "no")


def test_none_is_a_value_unless_the_caller_says_nulls_are_missing():
    schema = {"required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert errors(schema, {"a": None}) == ["a: expected integer, got NoneType"]
    loose = compile_schema(schema, "s", nulls_as_missing=True)
    assert loose({"a": None}) == ["missing required field 'a'"]
    assert loose({"a": 1, "b": None}) == []


def test_file_steps_and_the_engine_share_the_validator():
    from patterns._records import make_validator

    schema = {"required": ["id"], "properties": {"id": {"type": "integer", "minimum": 0}},
              "minProperties": 1}
    check = make_validator(schema)
    engine = compile_schema(schema, "s", nulls_as_missing=True)
    for record in ({"id": 1}, {"id": -1}, {"id": None}, {"x": 1}, {"id": "1"}):
        assert (check(record) is None) == (engine(record) == [])
    with pytest.raises(FSMConfigError):
        make_validator({"properties": {"id": {"tpye": "integer"}}})
