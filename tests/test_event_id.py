"""Event ids: `$event_id` as a string, or a stable id derived from the record (contract §2).

The contract is docs/contract.md.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from target_spotify_conversions.event_id import derive_event_id, event_id_text

RECORD = {
    "event": "Order Completed",
    "email": "jane.doe@example.com",
    "amount": decimal.Decimal("12.50"),
    "currency": "EUR",
    "$event_time": "2024-03-10T12:34:56Z",
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
    "context": {"page": {"url": "https://example.com/checkout", "title": "Checkout"}, "n": 3},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("order-1001", "order-1001"),
        ("  order-1001 ", "order-1001"),
        (1001, "1001"),
        (0, "0"),
        (-7, "-7"),
        (12345678901234567890, "12345678901234567890"),
        (decimal.Decimal("1001"), "1001"),
        (decimal.Decimal("1001.0"), "1001"),
        (decimal.Decimal("1001.00"), "1001"),
        (decimal.Decimal("1E+3"), "1000"),
        (decimal.Decimal("10.5"), "10.5"),
    ],
)
def test_event_id_text(value, expected):
    assert event_id_text(value) == expected


@pytest.mark.parametrize(
    "value",
    [True, False, None, [1], {"id": 1}, decimal.Decimal("NaN"), decimal.Decimal("Infinity"),
     "ord-\x00-4"],
)
def test_event_id_text_rejects_other_types(value):
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract
        event_id_text(value)


def test_derived_id_is_stable():
    assert derive_event_id(RECORD, "orders") == derive_event_id(dict(RECORD), "orders")
    assert derive_event_id(RECORD, "orders") == derive_event_id(
        {key: RECORD[key] for key in RECORD}, "orders"
    )


def test_derived_id_is_a_non_empty_string():
    derived = derive_event_id(RECORD, "orders")
    assert isinstance(derived, str)
    assert derived.strip()
    assert len(derived) >= 16


def test_derived_id_ignores_key_order_at_every_level():
    reordered = {
        "context": {"n": 3, "page": {"title": "Checkout", "url": "https://example.com/checkout"}},
        "items": [{"qty": 2, "sku": "A-1"}, {"qty": 1, "sku": "B-2"}],
        "$event_time": "2024-03-10T12:34:56Z",
        "currency": "EUR",
        "amount": decimal.Decimal("12.50"),
        "email": "jane.doe@example.com",
        "event": "Order Completed",
    }
    assert reordered == RECORD
    assert list(reordered) != list(RECORD)
    assert derive_event_id(reordered, "orders") == derive_event_id(RECORD, "orders")


def test_derived_id_ignores_sdc_fields():
    with_sdc = {
        **RECORD,
        "_sdc_received_at": "2024-03-10T13:00:00Z",
        "_sdc_batched_at": dt.datetime(2024, 3, 10, 13, 0, 1, tzinfo=dt.timezone.utc),
        "_sdc_sequence": 1710075600123,
        "_sdc_table_version": None,
    }
    assert derive_event_id(with_sdc, "orders") == derive_event_id(RECORD, "orders")
    other_run = {**with_sdc, "_sdc_received_at": "2025-01-01T00:00:00Z", "_sdc_sequence": 9}
    assert derive_event_id(other_run, "orders") == derive_event_id(RECORD, "orders")


@pytest.mark.parametrize(
    "change",
    [
        {"event": "Product Added"},
        {"email": "john@example.org"},
        {"amount": decimal.Decimal("12.51")},
        {"currency": "USD"},
        {"$event_time": "2024-03-10T12:34:57Z"},
        {"items": [{"sku": "A-1", "qty": 3}, {"sku": "B-2", "qty": 1}]},
        {"items": [{"sku": "B-2", "qty": 1}, {"sku": "A-1", "qty": 2}]},  # list order matters
        {"context": {"page": {"url": "https://example.com/cart", "title": "Checkout"}, "n": 3}},
        {"extra": "x"},
        {"email": None},
        {"sdc_not_metadata": 1},
    ],
)
def test_derived_id_changes_with_any_value(change):
    assert derive_event_id({**RECORD, **change}, "orders") != derive_event_id(RECORD, "orders")


def test_derived_id_changes_with_a_dropped_key():
    without = {key: value for key, value in RECORD.items() if key != "currency"}
    assert derive_event_id(without, "orders") != derive_event_id(RECORD, "orders")


def test_derived_id_changes_with_the_stream():
    assert derive_event_id(RECORD, "orders") != derive_event_id(RECORD, "orders_v2")
    assert derive_event_id(RECORD, "a") != derive_event_id(RECORD, "b")


def test_derived_id_distinguishes_types():
    assert derive_event_id({"x": 1}, "s") != derive_event_id({"x": "1"}, "s")
    assert derive_event_id({"x": True}, "s") != derive_event_id({"x": "true"}, "s")
    assert derive_event_id({"x": None}, "s") != derive_event_id({}, "s")


def test_derived_id_handles_datetimes_and_decimals():
    moment = dt.datetime(2024, 3, 10, 12, 34, 56, tzinfo=dt.timezone.utc)
    record = {"t": moment, "d": dt.date(2024, 3, 10), "n": decimal.Decimal("0.1")}
    assert derive_event_id(record, "s") == derive_event_id(dict(record), "s")
    assert derive_event_id(record, "s") != derive_event_id(
        {**record, "t": moment + dt.timedelta(seconds=1)}, "s"
    )
    assert derive_event_id(record, "s") != derive_event_id(
        {**record, "n": decimal.Decimal("0.2")}, "s"
    )


def test_empty_record_still_gets_an_id():
    assert derive_event_id({}, "s")
    assert derive_event_id({}, "s") != derive_event_id({}, "t")


def test_values_json_cannot_carry_still_give_a_stable_id_and_no_crash():
    record = {"a": "\ud800", "b": 10**5000, "c": 1 + 2j}
    assert derive_event_id(record, "s") == derive_event_id(dict(record), "s")
    with pytest.raises(ValueError, match="cannot carry"):
        event_id_text("id-\ud800")
