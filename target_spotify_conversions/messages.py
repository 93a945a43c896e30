"""The shape of a Singer message, checked before the SDK touches it.

The SDK trusts its input: a RECORD whose `record` is a list, a `type` that is a list or a
`key_properties` of 5 each end the run with a TypeError deep inside it, and every re-run dies at
the same line. Here a record that cannot be read becomes a rejection (the run goes on), and a
SCHEMA that is no usable schema stops the run with one line naming the stream and the problem.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from singer_sdk.singerlib.exceptions import InvalidInputLine

from .escaping import printable
from .privacy import quoted
from .schema_memo import SchemaMemo
from .unreadable import MAX_DEPTH, NESTED_TOO_DEEP, line_may_be_too_deep, too_deep


class SchemaMessageError(Exception):
    """A SCHEMA message that cannot be used: the run stops, naming the stream."""


def check_message(message: dict[str, Any], line: str | bytes) -> None:
    """Raise InvalidInputLine for a RECORD or STATE that cannot be read (SCHEMA: see below)."""
    kind = message["type"]
    if not isinstance(kind, str):
        raise InvalidInputLine(f"its type is not a string ({type(kind).__name__})")
    if kind == "RECORD":
        if not isinstance(message.get("stream"), str):
            raise InvalidInputLine("a RECORD message whose stream is not a string")
        if not isinstance(message.get("record"), dict):
            raise InvalidInputLine("a RECORD message whose record is not a JSON object")
    elif kind == "STATE" and "value" not in message:
        raise InvalidInputLine("a STATE message without a value")
    if kind != "SCHEMA" and line_may_be_too_deep(line) and too_deep(message):
        raise InvalidInputLine(NESTED_TOO_DEEP)


def check_schema_message(message: dict[str, Any]) -> None:
    """Raise SchemaMessageError unless the stream, schema and key_properties are usable."""
    stream = message.get("stream")
    if not isinstance(stream, str):
        raise SchemaMessageError(f"a SCHEMA message's stream is a {type(stream).__name__}")
    where = f"SCHEMA of stream '{printable(stream)}'"
    schema = message.get("schema")
    if not isinstance(schema, dict):
        raise SchemaMessageError(f"{where}: the schema is a {type(schema).__name__}, not an object")
    if too_deep(schema):
        raise SchemaMessageError(f"{where}: the schema is nested more than {MAX_DEPTH} levels deep")
    if "properties" not in schema:  # as the SDK's own standard tests take it: no schema
        raise SchemaMessageError(
            f"{where}: the schema names no properties; give the stream a schema that lists "
            "them (with Meltano, the extractor's `schema` extra can set one)"
        )
    if not isinstance(schema["properties"], dict):
        raise SchemaMessageError(f"{where}: the schema's properties are not an object")
    keys = message.get("key_properties")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise SchemaMessageError(
            f"{where}: key_properties must be a list of property names, not {quoted(keys)}"
        )
    problem = schema_problem(schema)
    if problem is not None:
        raise SchemaMessageError(f"{where}: not a valid JSON schema: {problem}")


def schema_problem(schema: dict[str, Any]) -> str | None:
    """What makes a schema unusable (unknown type, bad regex, dangling $ref), or None; found
    once for all streams that share the schema."""
    return _schema_problems(schema)


def _schema_problem(schema: dict[str, Any]) -> str | None:
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        at = "/".join(map(str, exc.absolute_path)) or "(top)"
        return f"at {printable(at)}: {quoted(exc.message, 120)}"
    for ref in _refs(schema):
        if not ref.startswith("#"):  # a validator would fetch it: no network for a schema
            return f"$ref {quoted(ref)} is not local (#/...)"
        if not _resolves(schema, ref[1:]):
            return f"$ref {quoted(ref)} does not resolve"
    return None


_schema_problems: SchemaMemo[str | None] = SchemaMemo(_schema_problem)


def _refs(schema: object) -> list[str]:
    found: list[str] = []
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _resolves(schema: dict[str, Any], pointer: str) -> bool:
    """Whether a JSON pointer (RFC 6901, as in '#/definitions/x') leads somewhere in `schema`."""
    node: object = schema
    for part in pointer.split("/")[1:] if pointer else []:
        part = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part)
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True
