"""Singer messages of every hostile shape: a clean reject, or a clean one-line stop."""

from __future__ import annotations

import decimal
import json

import pytest
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_spotify_conversions.messages import (
    SchemaMessageError,
    check_message,
    check_schema_message,
    schema_problem,
)
from target_spotify_conversions.unreadable import MAX_DEPTH, too_deep
from tests.harness import (
    SCHEMA,
    purchase,
    record_message,
    run_target,
    schema_message,
    state_message,
    target_config,
)

PHONE = '"+14155550100"'


def _nested(depth: int, inner: str = "1") -> str:
    """JSON text of `depth` nested lists (json.dumps itself cannot write it that deep)."""
    return "[" * depth + inner + "]" * depth


def _record_line(record_json: str, stream: str = '"conversions"') -> str:
    return f'{{"type": "RECORD", "stream": {stream}, "record": {record_json}}}'


def test_poison_lines_are_rejected_and_every_good_record_is_delivered(fake, tmp_path):
    good = [purchase(i) for i in range(1, 5)]
    lines = [
        schema_message(),
        record_message(good[0]),
        _record_line(f'{{"$event_id": "deep-1", "x": {_nested(1000)}}}'),  # fails to decode
        _record_line(f'{{"$event_id": "deep-2", "x": {_nested(990)}}}'),  # decodes, too deep
        _record_line(
            f'{{"$event_id": "deep-3", "email": {_nested(500, chr(34) + "a@b.co" + chr(34))}}}'
        ),
        _record_line(f'{{"$event_id": "deep-4", "phone": {_nested(500, PHONE)}}}'),
        state_message({"position": 1}),
        record_message(good[1]),
        _record_line("[1]"),
        _record_line('"a record that is a string"'),
        _record_line("null"),
        _record_line(json.dumps(purchase(9)), stream="5"),
        _record_line(json.dumps(purchase(10)), stream='["conversions"]'),
        '{"type": ["RECORD"], "stream": "conversions", "record": {}}',
        '{"type": 7}',
        '{"type": "RECORD", "stream": "conversions"}',
        _record_line('{"$event_id": "big-1", "amount": 1' + "0" * 5000 + "}"),
        _record_line('{"$event_id": "big-2", "amount": 1e999999}'),
        record_message(good[2]),
        state_message({"position": 2}),
        record_message(good[3]),
        state_message({"position": 3}),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Internal error" not in run.stderr
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(1, 5)}
    assert run.states[-1] == {"position": 3}
    assert run.count("records rejected") == 14
    assert run.count("rejected unreadable_input_line") == 13  # the 5000-digit number too
    assert run.count("rejected invalid_amount") == 1
    assert len(run.rejects()) == 14
    assert len(run.stderr) < 100_000, "no poison line was echoed into the log"


def test_odd_state_values_are_written_back_or_refused_cleanly(fake, tmp_path):
    lines = [
        schema_message(),
        record_message(purchase(1)),
        '{"type": "STATE", "value": 1e999999}',
        '{"type": "STATE", "value": "just a string"}',
        '{"type": "STATE", "value": ' + _nested(1000) + "}",
        '{"type": "STATE"}',
        record_message(purchase(2)),
        '{"type": "STATE", "value": {"position": 2.50}}',
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Internal error" not in run.stderr
    assert fake.accepted_ids() == {"ord-1", "ord-2"}
    assert run.stdout.splitlines()[-1] == '{"position":2.50}'
    assert run.count("rejected unreadable_input_line") == 2


BAD_SCHEMAS = {
    "properties_not_object": ({"type": "object", "properties": 5}, "properties"),
    "no_properties": ({"type": "object"}, "names no properties; give the stream a schema"),
    "schema_not_object": ([1], "schema"),
    "dangling_ref": (
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/nope"}}},
        "$ref",
    ),
    "bad_regex": (
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "(["}}},
        "pattern",
    ),
    "unknown_type": ({"type": "object", "properties": {"a": {"type": "strnig"}}}, "type"),
    "deeply_nested": (json.loads("{" + '"properties": {"a": {' * 300 + "}" * 601), "nested"),
}


@pytest.mark.parametrize("name", sorted(BAD_SCHEMAS))
def test_an_invalid_schema_stops_the_run_with_one_line_naming_the_stream(fake, tmp_path, name):
    schema, problem = BAD_SCHEMAS[name]
    lines = [
        schema_message(),
        record_message(purchase(1)),
        state_message({"position": 1}),
        json.dumps(
            {"type": "SCHEMA", "stream": "orders_v2", "schema": schema, "key_properties": []}
        ),
        record_message(purchase(2), stream="orders_v2"),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 1
    assert "Internal error" not in run.stderr
    assert "Traceback" not in run.stderr
    failed = [line for line in run.stderr.splitlines() if "Run failed" in line]
    assert len(failed) == 1, run.stderr[-3000:]
    assert "'orders_v2'" in failed[0]
    assert problem in failed[0]
    assert "ord-2" not in fake.accepted_ids()


@pytest.mark.parametrize(
    "key_properties",
    ["$event_id", 5, [["x"]], [5], {"a": 1}],
    ids=["string", "number", "nested_list", "list_of_number", "object"],
)
def test_malformed_key_properties_stop_the_run_naming_the_stream(fake, tmp_path, key_properties):
    lines = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "conversions",
                "schema": SCHEMA,
                "key_properties": key_properties,
            }
        ),
        record_message(purchase(1)),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 1
    assert "Internal error" not in run.stderr
    failed = [line for line in run.stderr.splitlines() if "Run failed" in line]
    assert len(failed) == 1, run.stderr[-3000:]
    assert "'conversions'" in failed[0]
    assert "key_properties" in failed[0]
    assert fake.accepted_ids() == set()


def test_a_schema_whose_stream_is_not_a_string_stops_the_run(fake, tmp_path):
    lines = [
        json.dumps({"type": "SCHEMA", "stream": ["conversions"], "schema": SCHEMA}),
        record_message(purchase(1)),
    ]
    run = run_target(tmp_path / "run", target_config(fake.url), lines, timeout=120)
    assert run.returncode == 1
    assert "Internal error" not in run.stderr
    failed = [line for line in run.stderr.splitlines() if "Run failed" in line]
    assert len(failed) == 1, run.stderr[-3000:]
    assert "stream" in failed[0]


def test_a_record_at_the_depth_limit_passes_and_one_deeper_does_not():
    at_limit = json.loads(_nested(MAX_DEPTH - 2))  # within the message and its record
    record = {"type": "RECORD", "stream": "s", "record": {"x": at_limit}}
    check_message(record, json.dumps(record))
    deeper = {"type": "RECORD", "stream": "s", "record": {"x": [at_limit]}}
    with pytest.raises(InvalidInputLine, match="nested more than"):
        check_message(deeper, json.dumps(deeper))
    assert too_deep(json.loads(_nested(MAX_DEPTH + 1)))
    assert not too_deep(json.loads(_nested(MAX_DEPTH)))


def test_depth_is_measured_on_the_deepest_branch_whatever_sits_beside_it():
    """Wide records, containers among scalars, and dict or list subclasses (which the quick
    look at the scalar types must not take for scalars)."""

    class Ordered(dict):
        pass

    deep = json.loads(_nested(MAX_DEPTH - 3))  # three levels below
    wide = {f"k{i}": i for i in range(50)}
    assert not too_deep({**wide, "a": [1, "x", None, 2.5], "b": {"c": [deep]}})
    assert too_deep({**wide, "a": [1, "x", None], "b": {"c": [[deep]]}})
    assert too_deep([1, "x", Ordered(c=[[deep]])])
    assert not too_deep([1, "x", Ordered(c=[deep])])
    assert not too_deep({"a": decimal.Decimal("1.5"), "b": True, "c": None})


@pytest.mark.parametrize(
    "message",
    [
        {"type": ["RECORD"]},
        {"type": "RECORD", "stream": 5, "record": {}},
        {"type": "RECORD", "stream": "s", "record": [1]},
        {"type": "RECORD", "stream": "s"},
        {"type": "STATE"},
    ],
)
def test_messages_that_cannot_be_read_are_refused(message):
    with pytest.raises(InvalidInputLine):
        check_message(message, json.dumps(message))


def test_schema_problems_name_where_they_are():
    assert schema_problem(SCHEMA) is None
    ref = {
        "type": "object",
        "definitions": {"a/b": {}},
        "properties": {"x": {"$ref": "#/definitions/a~1b"}},
    }
    assert schema_problem(ref) is None
    remote = {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/s.json"}}}
    assert "not local" in str(schema_problem(remote))
    dangling = {"type": "object", "properties": {"x": {"$ref": "#/definitions/nope"}}}
    assert "does not resolve" in str(schema_problem(dangling))


def test_a_schema_message_error_escapes_the_stream_name():
    message = {"type": "SCHEMA", "stream": "a\nb", "schema": {"properties": 5}}
    with pytest.raises(SchemaMessageError, match=r"stream 'a\\nb'"):
        check_schema_message(message)
