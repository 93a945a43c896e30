"""Record validation: the verdict of the stream's schema, reasons that name no value."""

from __future__ import annotations

import decimal
import subprocess
import sys

import pytest

from target_spotify_conversions.sdk_seams import datetime_properties
from target_spotify_conversions.validation import (
    FastValidator,
    RecordChecks,
    SafeSDKValidator,
    SchemaViolation,
    unreadable_datetimes,
    validator_for,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "quantity": {"type": "integer"},
        "$event_time": {"type": ["null", "string"], "format": "date-time"},
    },
}
SECRET = "jane.doe@example.com"


def reason(validator, record):
    with pytest.raises(SchemaViolation) as caught:
        validator.validate(record)
    return str(caught.value)


def test_valid_records_pass():
    validator = validator_for(SCHEMA)
    assert isinstance(validator, FastValidator)
    validator.validate({"email": SECRET, "amount": decimal.Decimal("9.5"), "quantity": 2})
    validator.validate({"email": None, "unknown": object()})


def test_a_wrong_type_names_the_field_and_rule_but_not_the_value():
    validator = validator_for(SCHEMA)
    message = reason(validator, {"email": [SECRET]})
    assert "email" in message
    assert "type" in message
    assert SECRET not in message


def test_what_the_fast_check_refuses_the_schema_still_decides():
    validator = validator_for(SCHEMA)
    validator.validate({"quantity": 2.0})  # an integer to JSON Schema, not to msgspec
    assert "quantity" in reason(validator, {"quantity": 2.5})


def test_keywords_beyond_types_are_enforced():
    schema = {"type": "object", "properties": {"currency": {"type": "string", "enum": ["EUR"]}}}
    validator = validator_for(schema)
    validator.validate({"currency": "EUR"})
    assert "enum" in reason(validator, {"currency": "USD"})


def test_a_schema_fastjsonschema_cannot_compile_falls_back_to_the_sdk_validator():
    schema = {"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}}
    validator = validator_for(schema)
    assert isinstance(validator, SafeSDKValidator)
    validator.validate({"b": 1})
    typed = {"type": "object", "properties": {"a": {"type": "integer"}}, "$ref": "#/nowhere"}
    validator = validator_for(typed)
    assert isinstance(validator, SafeSDKValidator)
    message = reason(validator, {"a": SECRET})
    assert "data.a" in message
    assert SECRET not in message


def test_date_like_fields_are_found_once_and_checked_per_record():
    fields = datetime_properties(SCHEMA)
    assert fields == (("$event_time", "date-time"),)
    assert unreadable_datetimes({"$event_time": "2024-05-01T12:00:00Z"}, fields) == []
    problems = unreadable_datetimes({"$event_time": "yesterday"}, fields)
    assert [problem.code for problem in problems] == ["invalid_date_time"]


def test_spotify_form_date_times_pass_unparsed_and_impossible_ones_do_not():
    fields = (("$event_time", "date-time"),)
    for good in ("2024-05-01T12:00:00.250Z", "2024-02-29T23:59:59.999Z", "2024-05-01 12:00"):
        assert unreadable_datetimes({"$event_time": good}, fields) == []
    for bad in ("2023-02-29T12:00:00.250Z", "2024-05-01T24:00:00.000Z", "0000-01-01T00:00:00Z"):
        problems = unreadable_datetimes({"$event_time": bad}, fields)
        assert [problem.code for problem in problems] == ["invalid_date_time"], bad


def test_the_checks_workers_run_import_nothing_of_the_sdk_or_the_http_stack():
    # The mapping workers are lean interpreters: an import of the SDK there would double
    # their memory.
    code = (
        "import sys, target_spotify_conversions.worker_pool; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'singer_sdk', 'requests', 'urllib3', 'jsonschema', 'click'}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_record_checks_give_every_reason_a_record_is_refused_and_none_quote_a_value():
    checks = RecordChecks(
        SCHEMA, ["$event_id"], validate=True, datelike=datetime_properties(SCHEMA)
    )
    record = {"email": 5, "quantity": 1, "$event_time": SECRET}
    problems = checks.problems(record)
    assert [p.code for p in problems] == [
        "schema_validation", "invalid_date_time", "missing_key_properties",
    ]
    assert problems[2].detail == "missing $event_id"
    assert not any(SECRET in p.detail for p in problems)
    assert checks.problems({"quantity": 1, "$event_id": "e-1"}) == []


def test_record_checks_without_validation_still_check_dates_and_keys():
    checks = RecordChecks(
        SCHEMA, ["$event_id"], validate=False, datelike=datetime_properties(SCHEMA)
    )
    problems = checks.problems({"email": 5, "$event_time": "soon"})
    assert [p.code for p in problems] == ["invalid_date_time", "missing_key_properties"]


def test_a_key_that_looks_like_an_email_is_described_in_a_reason():
    """A record whose keys are values (a CSV header row of data, a map keyed by address)."""
    schema = {"type": "object", "properties": {}, "additionalProperties": {"type": "integer"}}
    problems = RecordChecks(schema, [], validate=True).problems({SECRET: "x"})
    assert [p.code for p in problems] == ["schema_validation"]
    assert SECRET not in str(problems)
    assert problems[0].detail == (
        "data.(a key that looks like an email or a phone number) fails 'type'")


def test_a_missing_key_property_that_looks_like_an_email_is_described():
    """Found by an attack: a tap's key_properties naming an address was quoted in the reason
    (logged, and kept in the rejects file)."""
    problems = RecordChecks(SCHEMA, [f"note for {SECRET}", "$event_id"], validate=False).problems(
        {"quantity": 1})
    assert [str(p) for p in problems] == [
        "missing_key_properties: missing (a key that looks like an email or a phone number), "
        "$event_id"]


def test_a_value_json_cannot_carry_is_the_one_reason_given_where_it_may_occur():
    checks = RecordChecks(SCHEMA, ["id"], validate=True, check_json=True)
    assert [str(p) for p in checks.problems({"email": SECRET, "x": [1, {"y": 1j}]})] == [
        "value_not_json: x.1.y holds a value of type complex"]
    assert RecordChecks(SCHEMA, [], validate=True).problems({"email": "\ud800"}) == []
