"""Schemas as msgspec types: what the fast check passes, the schema must accept."""

from __future__ import annotations

import decimal
from typing import Any

import fastjsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_spotify_conversions.schema_types import record_type

D = decimal.Decimal

TAP_SCHEMA = {
    "type": "object",
    "properties": {
        "$event_id": {"type": ["string"]},
        "email": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "quantity": {"type": ["null", "integer"]},
        "opt_out_targeting": {"type": ["null", "boolean"]},
        "$event_time": {"type": ["null", "string"], "format": "date-time"},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "context": {
            "type": ["null", "object"],
            "properties": {"ip": {"type": "string"}, "page": {"type": "object"}},
        },
        "anything": {},
    },
}


def fast_accepts(types: Any, value: object) -> bool:
    try:
        msgspec.convert(value, types, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def schema_accepts(schema: dict[str, Any], value: object) -> bool:
    validate = fastjsonschema.compile(schema, use_formats=False, use_default=False)
    try:
        validate(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


GOOD = {
    "$event_id": "e-1",
    "email": "jane@example.com",
    "amount": D("19.99"),
    "quantity": 3,
    "opt_out_targeting": False,
    "$event_time": "2024-05-01T12:00:00Z",
    "tags": ["a", "b"],
    "context": {"ip": "203.0.113.9", "page": {"path": "/"}},
    "anything": [1, {"x": None}],
    "not_in_schema": object(),
}


def test_a_typical_tap_schema_becomes_a_struct_that_passes_good_records():
    types = record_type(TAP_SCHEMA)
    assert types is not None
    assert fast_accepts(types, GOOD)
    assert fast_accepts(types, {"$event_id": "only the id"})
    assert fast_accepts(types, {**GOOD, "email": None, "context": None, "amount": 5})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("$event_id", None),
        ("email", 5),
        ("amount", "19.99"),
        ("amount", True),
        ("quantity", D("1.5")),
        ("quantity", False),
        ("opt_out_targeting", "false"),
        ("tags", ["a", 1]),
        ("tags", "a"),
        ("context", {"ip": 7}),
        ("context", {"page": "home"}),
    ],
)
def test_wrong_types_are_refused_by_both(key, value):
    record = {**GOOD, key: value}
    del record["not_in_schema"]
    assert not fast_accepts(record_type(TAP_SCHEMA), record)
    assert not schema_accepts(TAP_SCHEMA, record)


def test_an_integral_float_is_refused_fast_but_left_to_the_schema():
    # JSON Schema counts 2.0 as an integer; msgspec does not: the full validator decides.
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert not fast_accepts(record_type(schema), {"n": 2.0})
    assert schema_accepts(schema, {"n": 2.0})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}},
        {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}},
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}},
        {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}},
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/a"}}},
        {"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
        {"type": "object", "properties": {"a": {"type": "object", "additionalProperties": {}}}},
        {"type": "object", "properties": {"a": {"type": "date"}}},
        {"type": "object", "properties": {"a": False}},
        {"type": "object", "properties": {"a": {"properties": {"b": {"type": "string"}}}}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{}]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "definitions": {}},
    ],
)
def test_schemas_that_say_more_than_types_are_left_to_the_full_validator(schema):
    assert record_type(schema) is None


def test_a_schema_without_type_at_the_top_describes_the_record_object():
    types = record_type({"properties": {"a": {"type": "string"}}})
    assert fast_accepts(types, {"a": "x"})
    assert not fast_accepts(types, {"a": 1})


def test_required_and_closed_objects_are_kept():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    types = record_type(schema)
    assert fast_accepts(types, {"a": "x"})
    assert not fast_accepts(types, {"b": "x"})
    assert not fast_accepts(types, {"a": "x", "c": 1})


# --- the property: whatever the fast check passes, the schema accepts -------------------------

KINDS = ["string", "number", "integer", "boolean", "null", "object", "array"]


def schemas(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.builds(
        lambda kinds: {"type": kinds[0] if len(kinds) == 1 else kinds},
        st.lists(st.sampled_from(KINDS[:5]), min_size=1, max_size=3, unique=True),
    )
    if depth == 0:
        return scalar
    inner = schemas(depth - 1)
    obj = st.builds(
        lambda props, nullable, closed: {
            "type": ["object", "null"] if nullable else "object",
            "properties": props,
            **({"additionalProperties": False} if closed else {}),
        },
        st.dictionaries(st.sampled_from(["a", "b", "$c", "d e"]), inner, max_size=3),
        st.booleans(),
        st.booleans(),
    )
    array = st.builds(lambda items: {"type": "array", "items": items}, inner)
    return st.one_of(scalar, obj, array, st.just({}), st.just({"type": "object"}))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.decimals(allow_nan=False, allow_infinity=False, places=3),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=3),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "$c", "d e", "z"]), children, max_size=4),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "$c", "d e"]), schemas(), max_size=4),
    st.lists(json_values, min_size=1, max_size=8),
)
def test_what_the_fast_check_passes_the_schema_accepts(properties, values):
    schema = {"type": "object", "properties": properties}
    types = record_type(schema)
    if types is None:
        return
    for value in values:
        record = value if isinstance(value, dict) else {"a": value}
        if fast_accepts(types, record):
            assert schema_accepts(schema, record), (schema, record)
