"""The shape of a Singer message, checked before the SDK touches it.

The SDK trusts its input: a RECORD whose `record` is a list, a `type` that is a list or a
`key_properties` of 5 each end the run with a TypeError deep inside it, and every re-run dies at
the same line. Here a record that cannot be read becomes a rejection (the run goes on), and a
SCHEMA that is no usable schema stops the run with one line naming the stream and the problem.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from singer_sdk.singerlib.exceptions import InvalidInputLine

from .escaping import printable
from .values import MAX_DEPTH, nests_deeper

# Opening brackets a line may hold before its depth is measured: most lines are not measured.
_BRACKETS_UNCHECKED = MAX_DEPTH
# Why a line nested too deeply is unreadable (after "input line N: ").
NESTED_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


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
    if kind != "SCHEMA" and _brackets(line) > _BRACKETS_UNCHECKED and too_deep(message):
        raise InvalidInputLine(NESTED_TOO_DEEP)


def may_stay_raw(line: bytes, *, text_ok: bool = False) -> bool:
    """Whether a line's record may go to the mapping workers undecoded: two C scans prove
    that its JSON, once the decoder has skipped over it, is all a full decoding would accept
    (ASCII, so no invalid UTF-8; few brackets, so not too deep). The `_sdc_` metadata the
    SDK's path removes, the workers remove too (StreamChecks.metadata).

    `text_ok`: `text_may_stay_raw` already holds for a text the line is part of, so only the
    depth, which each line needs for itself, is left to check."""
    return (text_ok or text_may_stay_raw(line)) and _brackets(line) <= _BRACKETS_UNCHECKED


def envelope_may_stay_raw(line: bytes, record: bytes | msgspec.Raw) -> bool:
    """`may_stay_raw`'s depth check for a RECORD line whose record a mapping worker measures
    (chunk_mapping): what is left is the message around the record. Unless that is long
    (rare: taps add a field or two), it cannot nest too deeply, and the line is not scanned."""
    envelope = len(line) - len(record)
    return envelope <= _BRACKETS_UNCHECKED or _brackets(line) <= _BRACKETS_UNCHECKED


def text_may_stay_raw(text: bytes) -> bool:
    """The scan of `may_stay_raw` that holds for many lines at once if for their whole text."""
    return text.isascii()


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
    if not isinstance(schema.get("properties"), dict):
        raise SchemaMessageError(f"{where}: the schema's properties are missing or not an object")
    keys = message.get("key_properties")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise SchemaMessageError(
            f"{where}: key_properties must be a list of property names, not {_shown(keys)}"
        )
    problem = schema_problem(schema)
    if problem is not None:
        raise SchemaMessageError(f"{where}: not a valid JSON schema: {problem}")


def schema_problem(schema: dict[str, Any]) -> str | None:
    """What makes a schema unusable (unknown type, bad regex, dangling $ref), or None."""
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        at = "/".join(map(str, exc.absolute_path)) or "(top)"
        return f"at {printable(at)}: {_shown(exc.message, 120)}"
    for ref in _refs(schema):
        if not ref.startswith("#"):  # a validator would fetch it: no network for a schema
            return f"$ref {_shown(ref)} is not local (#/...)"
        if not _resolves(schema, ref[1:]):
            return f"$ref {_shown(ref)} does not resolve"
    return None


def too_deep(value: object) -> bool:
    """Whether a decoded value nests more than MAX_DEPTH objects and lists; stops early."""
    return nests_deeper(value, MAX_DEPTH)


def _brackets(line: str | bytes) -> int:
    """Opening brackets in a line: an upper bound of its depth, at the cost of a C scan."""
    if isinstance(line, bytes):
        return line.count(b"{") + line.count(b"[")
    return line.count("{") + line.count("[")


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


def _shown(value: object, limit: int = 40) -> str:
    text = printable(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
