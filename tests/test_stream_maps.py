"""The README's stream_maps example: a warehouse table with its own column names."""

from __future__ import annotations

import hashlib
import json

from tests.harness import record_message, run_target, target_config

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
    "orders": {
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
    lines = [json.dumps({"type": "SCHEMA", "stream": "orders", "schema": ORDERS_SCHEMA,
                         "key_properties": ["order_id"]}),
             *(record_message(row, "orders") for row in rows)]
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
