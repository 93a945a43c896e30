"""The stream_maps example of README.md and docs/mapping.md: a warehouse table with its own
column names."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.harness import (
    DEBUG_LOGGING_WAYS,
    debug_logging,
    purchase,
    record_message,
    run_target,
    singer_lines,
    target_config,
)

ORDERS_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "integer"},
        "ordered_at": {"type": "string", "format": "date-time"},
        "customer_email": {"type": ["string", "null"]},
        "customer_phone": {"type": ["string", "null"]},
        "total": {"type": "number"},
        "currency_code": {"type": "string"},
        "client_ip": {"type": ["string", "null"]},
        "internal_note": {"type": ["string", "null"]},
    },
}

README_MAP = {
    "public-orders": {
        "$event_id": "order_id",
        "$event_time": "ordered_at",
        "spotify_event_name": "'PURCHASE'",
        "email": "customer_email",
        "phone": "customer_phone",
        "amount": "total",
        "currency": "currency_code",
        "$ip": "client_ip",
        "__else__": "__NULL__",
        "__key_properties__": ["$event_id"],
    }
}


def test_readme_stream_map_turns_warehouse_columns_into_spotify_events(fake, tmp_path):
    rows = [
        {"order_id": 10023, "ordered_at": "2026-11-02T09:30:00+01:00",
         "customer_email": " Ana@Example.org ", "customer_phone": "+44 20 7946 0958",
         "total": 42.5, "currency_code": "gbp", "client_ip": "198.51.100.23",
         "internal_note": "vip"},
        {"order_id": 10024, "ordered_at": "2026-11-02T10:00:00Z", "customer_email": None,
         "customer_phone": None, "total": 5, "currency_code": "EUR", "client_ip": None,
         "internal_note": None},
    ]
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": ORDERS_SCHEMA,
                         "key_properties": ["order_id"]}),
             *(record_message(row, "public-orders") for row in rows)]
    config = target_config(fake.url, stream_maps=README_MAP)
    run = run_target(tmp_path / "run", config, lines)

    assert run.returncode == 0, run.stderr[-2000:]
    event = fake.accepted["10023"]
    assert event["event_name"] == "PURCHASE"
    assert event["event_time"] == "2026-11-02T08:30:00.000Z"
    assert event["event_details"] == {"amount": 42.5, "currency": "GBP"}
    assert event["user_data"] == {
        "hashed_emails": [hashlib.sha256(b"ana@example.org").hexdigest()],
        "hashed_phone_number": hashlib.sha256(b"+442079460958").hexdigest(),
        "ip_address": "198.51.100.23",
    }
    assert "vip" not in json.dumps(fake.accepted)
    assert [r["event_id"] for r in run.rejects()] == ["10024"]
    assert run.rejects()[0]["reasons"] == [
        "no_identifier: no ip_address, device_id, email or phone survives"]


FAILING_MAP = {
    "public-orders": {
        "$event_id": "order_id",
        "$event_time": "ordered_at",
        "spotify_event_name": "'PURCHASE'",
        "email": "customer_email",
        "amount": "float(total_text)",
        "currency": "currency_code",
        "__filter__": "order_id > 0",
        "__else__": "__NULL__",
    }
}
LOOSE_SCHEMA = {"type": "object", "properties": {
    "order_id": {"type": ["integer", "string"]}, "ordered_at": {"type": "string"},
    "customer_email": {},
    "total_text": {}, "currency_code": {"type": "string"}}}


def _order(order_id, **changes):
    row = {"order_id": order_id, "ordered_at": "2026-11-02T10:00:00Z",
           "customer_email": f"buyer{order_id}@example.org", "total_text": "12.50",
           "currency_code": "EUR"}
    row.update(changes)
    return {key: value for key, value in row.items() if value is not ...}


def test_a_stream_map_that_fails_on_one_record_rejects_only_that_record(fake, tmp_path):
    rows = [
        _order(1),
        _order(2, customer_email=...),  # the column is missing: the map names it
        _order(3, total_text="secret-not-a-number"),  # float() fails: ValueError
        _order("secret-id", customer_email="x@example.org"),  # the filter fails: TypeError
        _order(5),
    ]
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": LOOSE_SCHEMA,
                         "key_properties": []}),
             *(record_message(row, "public-orders") for row in rows)]
    run = run_target(tmp_path / "run", target_config(fake.url, stream_maps=FAILING_MAP), lines)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "Internal error" not in run.stderr
    assert sorted(fake.accepted) == ["1", "5"]
    assert fake.accepted["1"]["event_details"] == {"amount": 12.5, "currency": "EUR"}
    reasons = [reject["reasons"] for reject in run.rejects()]
    assert reasons == [
        ["stream_map_failed: stream map property 'email' failed: name 'customer_email' is not "
         "in the record"],
        ["stream_map_failed: stream map property 'amount' failed: ValueError"],
        ["stream_map_failed: stream map property __filter__ failed: TypeError"],
    ]
    assert all(reject["stream"] == "public-orders" for reject in run.rejects())
    assert run.count("records read") == 5
    assert run.count("rejected stream_map_failed") == 3
    everything = run.stdout + run.stderr + json.dumps(run.rejects())
    assert "secret-not-a-number" not in everything
    assert "secret-id" not in everything
    assert "x@example.org" not in everything


def test_a_failing_stream_map_with_on_invalid_fail_stops_the_run_cleanly(fake, tmp_path):
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": LOOSE_SCHEMA,
                         "key_properties": []}),
             record_message(_order(1, customer_email=...), "public-orders"),
             record_message(_order(2), "public-orders")]
    config = target_config(fake.url, stream_maps=FAILING_MAP, on_invalid="fail")
    run = run_target(tmp_path / "run", config, lines)

    assert run.returncode == 1
    assert "Internal error" not in run.stderr
    assert "stream map property 'email'" in run.stderr
    assert fake.accepted == {}


# Expressions that make what no JSON line can hold, for the row whose order_id is 2 only.
UNCARRIABLE = {
    "a lone surrogate": ("email", "json.loads('\"\\\\ud800\"') if order_id == 2 else "
                                  "customer_email"),
    "a 5,000-digit integer": ("amount", "float(total_text) if order_id != 2 else 10 ** 5000"),
    "a complex number": ("amount", "float(total_text) if order_id != 2 else 1j"),
}


@pytest.mark.parametrize("processes", [0, 2])
@pytest.mark.parametrize("kind", sorted(UNCARRIABLE))
def test_a_value_json_cannot_carry_rejects_only_its_record(fake, tmp_path, kind, processes):
    prop, expression = UNCARRIABLE[kind]
    stream_map = {**FAILING_MAP["public-orders"], prop: expression}
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": LOOSE_SCHEMA,
                         "key_properties": []}),
             *(record_message(_order(n), "public-orders") for n in (1, 2, 3))]
    config = target_config(fake.url, stream_maps={"public-orders": stream_map},
                           mapping_processes=processes, summary_file="summary.json")
    run = run_target(tmp_path / "run", config, lines)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "Internal error" not in run.stderr
    assert sorted(fake.accepted) == ["1", "3"]
    [reject] = run.rejects()
    assert reject["event_id"] == "2"
    assert reject["reasons"] == [f"value_not_json: {prop} holds " + {
        "email": "a string with a character JSON cannot carry (a lone surrogate)",
        "amount": "an integer too long for JSON" if "integer" in kind
        else "a value of type complex"}[prop]]
    assert run.count("rejected value_not_json") == 1
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["records_rejected"] == 1


@pytest.mark.parametrize("expression", ["4f3c2a9b8d7e6f5a1b2c3d4e", "QwErTyUiOpAsDfGhJkLz"])
def test_a_token_pasted_as_a_stream_map_expression_is_not_shown(fake, tmp_path, expression):
    """Found by an attack: the SDK's parse error and the name an expression lacks quoted it,
    in the log and in the rejects file."""
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": LOOSE_SCHEMA,
                         "key_properties": []}),
             record_message(_order(1), "public-orders")]
    config = target_config(fake.url, stream_maps={"public-orders": {"email": expression}})
    run = run_target(tmp_path / "run", config, lines)

    assert run.returncode == 1
    everything = run.stdout + run.stderr + json.dumps(run.rejects())
    assert expression[:10] not in everything
    assert "(not shown)" in everything
    assert "Traceback" not in run.stderr
    assert fake.accepted == {}


@pytest.mark.parametrize(("stream_maps", "where"), [
    ({"public-orders": {"__else__": "abc"}}, "stream_maps['public-orders']"),
    ({"public-orders": {"__else__": 5, "email": "customer_email"}}, "stream_maps['public-orders']"),
    ({"__else__": "abc", "public-orders": {"email": "customer_email"}}, "stream_maps"),
])
def test_an_else_that_is_not_null_is_refused_in_one_line(fake, tmp_path, stream_maps, where):
    """Found by an attack: the SDK's own check of it ended in a traceback."""
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": LOOSE_SCHEMA,
                         "key_properties": []}),
             record_message(_order(1), "public-orders")]
    run = run_target(tmp_path / "run", target_config(fake.url, stream_maps=stream_maps), lines)

    assert run.returncode == 1
    assert f"{where}: __else__ may only be null" in run.stderr
    assert "Traceback" not in run.stderr
    assert fake.accepted == {}


@pytest.mark.parametrize("rule", ["customer_email != 'ceo@example.com'",
                                  "customer_email != 'ceo@example.com' and (("])
def test_an_email_in_a_filter_rule_is_not_logged(fake, tmp_path, rule):
    """Found by an attack: the SDK logs every filter expression, and its parse errors quote
    the expression, email and all."""
    lines = [json.dumps({"type": "SCHEMA", "stream": "public-orders", "schema": LOOSE_SCHEMA,
                         "key_properties": []}),
             record_message(_order(1), "public-orders")]
    maps = {"public-orders": {"__filter__": rule}}
    run = run_target(tmp_path / "run", target_config(fake.url, stream_maps=maps), lines)
    assert "ceo@example.com" not in run.stdout + run.stderr + json.dumps(run.rejects())
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("how", DEBUG_LOGGING_WAYS)
def test_debug_logging_of_stream_maps_shows_no_record_value(fake, tmp_path, monkeypatch, how):
    """Found by an attack: at DEBUG the SDK logs each record's filter result beside the
    filter's expression, and `phone and email` makes the email itself."""
    debug_logging(how, tmp_path, monkeypatch)
    maps = {"conversions": {"email": "email.strip().lower()", "__filter__": "phone and email"}}
    records = [purchase(i) for i in range(3)]
    run = run_target(tmp_path / "run", target_config(fake.url, stream_maps=maps),
                     singer_lines(records))  # which checks every output for a raw email/phone

    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted_ids() == {"ord-0", "ord-1", "ord-2"}
    for record in records:
        for raw in (record["email"].strip(), record["email"].strip().lower(), record["phone"]):
            assert raw not in run.stderr
    made = f"a string of {len(records[0]['email'])} characters"  # the email, described
    assert run.stderr.count("Filter result for 'a string of 15 characters (not shown)' in "
                            f"'{{self.name}}' stream: {made}") == 3


def test_a_filter_result_line_stays_unquoted_when_the_sdk_names_the_stream():
    """The SDK's line leaves `{self.name}` unformatted; a release that formats it must not let
    a record's value through."""
    import logging

    logger = logging.getLogger("singer_sdk.mapper")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        import target_spotify_conversions.stream_maps  # noqa: F401 - its filter on the logger

        for line in ("Filter result for '%s' in '{self.name}' stream: %s",
                     "Filter result for '%s' in 'conversions' stream: %s"):
            logger.debug(line, "email", "jane.doe@example.com")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(seen) == 2
    assert not any("jane.doe" in message for message in seen)
