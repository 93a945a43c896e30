"""A stream's JSON Schema as msgspec types, so that most records are type-checked in C.

Taps' schemas mostly say only which JSON type each property has. Such a schema becomes a
msgspec Struct, and `msgspec.convert(record, struct, strict=True)` checks a record at about a
third of the cost of the validator fastjsonschema compiles. Whatever the Struct accepts, the
schema accepts too; a record it refuses goes on to the full validator, which decides and says why
(validation.py). A schema that says more than types (enum, pattern, anyOf, minimum, ...) is
left to the full validator alone: `record_type` returns None for it.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

# JSON Schema type -> msgspec type. strict msgspec takes int, float and Decimal as a float,
# and never a bool as a number: as JSON Schema does.
_SCALARS: dict[str, Any] = {
    "string": str,
    "number": float,
    "integer": int,
    "boolean": bool,
    "null": None,
}
# Keywords that only describe: they cannot make a record invalid (formats are not checked by
# either validator; date-like values are parsed separately, as the SDK would).
_ANNOTATIONS = frozenset(
    {
        "format",
        "description",
        "title",
        "default",
        "examples",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$schema",
        "$id",
    }
)
# Keywords this module turns into types; any other keyword leaves the schema to the full validator.
_HANDLED = frozenset({"type", "properties", "items", "required", "additionalProperties"})


class Unsupported(Exception):
    """The schema says more than types; only the full validator may judge its records."""


def record_type(schema: dict[str, Any]) -> Any | None:
    """The Struct whose strict conversion accepts only records the schema accepts, or None."""
    # A record is an object: a schema that leaves out "type" at the top means one.
    whole = schema if "type" in schema else {**schema, "type": "object"}
    try:
        struct = _type(whole, "Record")
        msgspec.inspect.type_info(struct)  # msgspec refuses some unions only when it sees them
    except (Unsupported, TypeError, ValueError):
        return None
    return struct


def _type(schema: object, name: str) -> Any:
    if schema is True or (isinstance(schema, dict) and not schema.keys() - _ANNOTATIONS):
        return Any  # true, {} or annotations only: anything goes
    if not isinstance(schema, dict) or "type" not in schema:
        raise Unsupported(name)
    if schema.keys() - _ANNOTATIONS - _HANDLED:
        raise Unsupported(name)
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not kinds or len(set(map(str, kinds))) != len(kinds):
        raise Unsupported(name)
    members = tuple(_kind(kind, schema, name) for kind in kinds)
    return members[0] if len(members) == 1 else Union[members]  # noqa: UP007 - built at runtime


def _kind(kind: object, schema: dict[str, Any], name: str) -> Any:
    """One member of a type union, with the keywords that apply to it (items to an array)."""
    if kind == "object":
        return _object_type(schema, name)
    if kind == "array":
        return list[_type(schema.get("items", True), name + "Item")]  # type: ignore[misc]
    if isinstance(kind, str) and kind in _SCALARS:
        return _SCALARS[kind]
    raise Unsupported(name)


def _object_type(schema: dict[str, Any], name: str) -> Any:
    properties = schema.get("properties")
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if properties is None and not required and extra is True:
        return dict
    if not isinstance(properties, dict) or extra not in (True, False):
        raise Unsupported(name)
    if not isinstance(required, list) or not set(required) <= properties.keys():
        raise Unsupported(name)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for index, (key, spec) in enumerate(properties.items()):
        field = f"f{index}"  # property names need not be identifiers ("$event_id")
        rename[field] = key
        kind = _type(spec, f"{name}_{index}")
        fields.append((field, kind) if key in required else (field, kind, msgspec.UNSET))
    return msgspec.defstruct(
        name, fields, rename=rename, kw_only=True, forbid_unknown_fields=extra is False
    )
