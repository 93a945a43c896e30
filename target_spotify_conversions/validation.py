"""Schema validation that turns a bad record into a rejection reason instead of a crash or a leak.

The SDK's own validator puts the offending value in its message (and logs it), and either stops
the run or passes the record on. Here the message names the field and the rule only.

No SDK import at module level: the mapping workers run these checks in a lean interpreter of
their own (worker_pool.py). Which fields are date-like is the SDK's rule, so the SDK side
works it out (sdk_seams.datetime_properties) and hands the list in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import fastjsonschema
import msgspec

from .event_time import from_iso
from .privacy import looks_personal
from .problems import Problem
from .schema_memo import SchemaMemo
from .schema_types import record_type
from .values import unjsonable


class SchemaViolation(ValueError):
    """A record the stream's schema refuses; the message names the field and rule, no value."""


class Validator(Protocol):
    def validate(self, record: dict[str, Any]) -> None: ...


class FastValidator:
    """fastjsonschema compiles the stream's schema to Python: about 20x the SDK's validator.

    In front of it, for a schema that states only types, the msgspec Struct of schema_types.py
    passes most records at a third of that cost; a record it refuses is judged (and the reason
    given) by fastjsonschema alone.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        # Formats are checked by parsing date-times below, as the SDK does; fastjsonschema's
        # own date-time regex would refuse offset-less times the SDK accepts.
        self._validate = fastjsonschema.compile(schema, use_formats=False, use_default=False)
        self._types = record_type(schema)

    def validate(self, record: dict[str, Any]) -> None:
        if self._types is not None:
            try:
                msgspec.convert(record, self._types, strict=True)
            except msgspec.ValidationError:
                pass
            else:
                return
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise SchemaViolation(f"{_path(exc.path)} fails '{exc.rule}'") from None


class SafeSDKValidator:
    """The SDK's validator for schemas fastjsonschema cannot compile, with value-free messages.

    Rare, so the SDK is imported only then (in a worker too)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        from singer_sdk.sinks.core import JSONSchemaValidator

        self._inner = JSONSchemaValidator(schema)

    def validate(self, record: dict[str, Any]) -> None:
        import jsonschema
        from singer_sdk.exceptions import InvalidRecord

        try:
            self._inner.validate(record)
        except InvalidRecord as exc:
            cause = exc.__cause__
            if isinstance(cause, jsonschema.ValidationError):
                where = _path(["data", *map(str, cause.absolute_path)])
                raise SchemaViolation(f"{where} fails '{cause.validator}'") from None
            raise SchemaViolation("record fails the stream schema") from None


def validator_for(schema: dict[str, Any]) -> Validator:
    """The fastest validator that understands this schema; one for all streams that share it
    (validators keep no state)."""
    return _validators(schema)


def _new_validator(schema: dict[str, Any]) -> Validator:
    try:
        return FastValidator(schema)
    except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError):
        return SafeSDKValidator(schema)


_validators: SchemaMemo[Validator] = SchemaMemo(_new_validator)

# (property, format) of the date-like top-level properties of a stream's schema.
DateFields = Sequence[tuple[str, str]]


class RecordChecks:
    """Everything that rejects a record before mapping, in one place: the stream's schema, its
    date-time fields and its key properties, each failure a rejection reason, none a crash."""

    def __init__(
        self,
        schema: dict[str, Any],
        key_properties: Sequence[str],
        *,
        validate: bool,
        datelike: DateFields = (),
        check_json: bool = False,
    ) -> None:
        """`datelike`: the fields the SDK would parse as dates (sdk_seams.datetime_properties).
        `check_json`: whether a value may be one JSON cannot carry (a stream map made it); a
        record read from a JSON line holds none."""
        self._check_json = check_json
        self._validator = validator_for(schema) if validate else None
        self._datelike = tuple(datelike)
        self._keys = tuple(key_properties)

    def problems(self, record: dict[str, Any]) -> list[Problem]:
        """Why this record cannot be mapped; empty when nothing is wrong with it."""
        if self._check_json:
            found = unjsonable(record)
            if found is not None:  # the only reason given: the other checks may trip on it
                return [not_json_problem(*found)]
        problems = []
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except SchemaViolation as exc:
                problems.append(Problem("schema_validation", str(exc)))
        if self._datelike:
            problems += unreadable_datetimes(record, self._datelike)
        missing = [key for key in self._keys if key not in record]
        if missing:
            shown = [_PERSONAL_KEY if looks_personal(key) else key for key in missing]
            problems.append(Problem("missing_key_properties", "missing " + ", ".join(shown)))
        return problems


def not_json_problem(where: str, value: object) -> Problem:
    """The reason for a value JSON cannot carry: where it is and what it is, never the value."""
    if isinstance(value, str):
        what = "a string with a character JSON cannot carry (a lone surrogate)"
    elif isinstance(value, int):
        what = "an integer too long for JSON"
    else:
        what = f"a value of type {type(value).__name__}"
    return Problem("value_not_json", f"{where} holds {what}")


def unreadable_datetimes(record: dict[str, Any], fields: DateFields) -> list[Problem]:
    """Date-like fields whose value is no date: the SDK would crash the run on them.

    They are checked, not converted: the mapping reads strings.
    """
    problems = []
    for key, kind in fields:
        value = record.get(key)
        if isinstance(value, str):
            try:
                _PARSERS[kind](value)
            except ValueError:
                problems.append(Problem("invalid_date_time", f"{key} is not a {kind}"))
    return problems


_PARSERS: dict[str, Callable[[str], object]] = {
    "date-time": from_iso,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
}
DATE_KINDS = frozenset(_PARSERS)


# A property name that looks like personal data, as a reason shows it (a map keyed by
# address; a tap's key_properties naming one).
_PERSONAL_KEY = "(a key that looks like an email or a phone number)"


def _path(parts: Any) -> str:
    """Where a record fails its schema; a path through a key that looks like personal data
    (a map keyed by address; fastjsonschema splits such a key at its dots) is not shown."""
    if not parts:
        return "record"
    text = ".".join(str(part) for part in parts)
    if looks_personal(text) or any(looks_personal(str(part)) for part in parts):
        return f"{parts[0]}.{_PERSONAL_KEY}"
    return text
