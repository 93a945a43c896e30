"""One record in, one Spotify event or its rejection reasons out (docs/contract.md §2-5)."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_spotify_conversions.mapping import (
    INPUT_PROPERTIES,
    MEMO_BYTES,
    MEMO_ENTRY_BYTES,
    MEMO_VALUE_CHARS,
    PROPERTIES,
    EventMapper,
    Mapped,
    MappingOptions,
    Rejected,
)
from tests.contract_tables import CONTRACT_INPUTS

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW_TEXT = "2024-06-01T12:00:00.000Z"
STREAM = "conversions"  # resolves to nothing on its own


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


JANE = sha("jane.doe@example.com")
JOHN = sha("john@example.org")
LONDON = sha("+442079460958")
US_FICTIONAL = sha("+15550102030")

BASE = {
    "spotify_event_name": "VIEW",
    "$event_id": "evt-1",
    "$event_time": "2024-06-01T11:00:00Z",
    "$ip": "203.0.113.7",
}

ALLOWED_EVENT_KEYS = {
    "event_name",
    "event_id",
    "event_time",
    "user_data",
    "event_details",
    "action_source",
    "event_source_url",
    "opt_out_targeting",
}


def mapper(**options) -> EventMapper:
    return EventMapper(MappingOptions(**options))


def mapped(record, stream=STREAM, **options) -> Mapped:
    result = mapper(**options).map(record, stream, NOW)
    assert isinstance(result, Mapped), getattr(result, "reasons", result)
    json.dumps(result.event, allow_nan=False)  # what is sent must be plain JSON
    assert set(result.event) <= ALLOWED_EVENT_KEYS
    return result


def rejected(record, stream=STREAM, **options) -> Rejected:
    result = mapper(**options).map(record, stream, NOW)
    assert isinstance(result, Rejected), result
    assert result.reasons
    return result


def codes(result: Rejected) -> set[str]:
    return {problem.code for problem in result.reasons}


def pick(event, path):
    value = event
    for key in path:
        value = value[key]
    return value


# --- docs/contract.md §2, row by row --------------------------------------------------------------

E, D, U = (), ("event_details",), ("user_data",)

ROWS = [
    # event
    ("spotify_event_name", "lead", E + ("event_name",), "LEAD"),
    ("spotify_event_name", "Product Added", E + ("event_name",), "ADD_TO_CART"),
    ("spotify_event_name", "custom event 2", E + ("event_name",), "CUSTOM_EVENT_2"),
    ("$event_id", "order-1001", E + ("event_id",), "order-1001"),
    ("$event_id", 1001, E + ("event_id",), "1001"),
    ("$event_id", decimal.Decimal("1001"), E + ("event_id",), "1001"),
    ("$event_time", "2024-06-01T13:00:00+02:00", E + ("event_time",), "2024-06-01T11:00:00.000Z"),
    ("$event_time", "2024-06-01T11:00:00", E + ("event_time",), "2024-06-01T11:00:00.000Z"),
    ("$event_time", "2024-06-01T11:00:00.250Z", E + ("event_time",), "2024-06-01T11:00:00.250Z"),
    ("$event_time", 1717239600, E + ("event_time",), "2024-06-01T11:00:00.000Z"),
    ("$event_time", 1717239600000, E + ("event_time",), "2024-06-01T11:00:00.000Z"),
    ("$event_time", "1717239600", E + ("event_time",), "2024-06-01T11:00:00.000Z"),
    (
        "$event_time",
        decimal.Decimal("1717239600.5"),
        E + ("event_time",),
        "2024-06-01T11:00:00.500Z",
    ),
    (
        "$event_time",
        dt.datetime(2024, 6, 1, 11, 0, tzinfo=UTC),
        E + ("event_time",),
        "2024-06-01T11:00:00.000Z",
    ),
    (
        "$event_time",
        dt.datetime(2024, 6, 1, 11, 0),
        E + ("event_time",),
        "2024-06-01T11:00:00.000Z",
    ),
    ("$action_source", "web", E + ("action_source",), "WEB"),
    ("$action_source", " App ", E + ("action_source",), "APP"),
    ("$action_source", "OFFLINE", E + ("action_source",), "OFFLINE"),
    ("opt_out_targeting", True, E + ("opt_out_targeting",), True),
    ("opt_out_targeting", False, E + ("opt_out_targeting",), False),
    ("opt_out_targeting", "true", E + ("opt_out_targeting",), True),
    ("opt_out_targeting", "FALSE", E + ("opt_out_targeting",), False),
    ("opt_out_targeting", 1, E + ("opt_out_targeting",), True),
    ("opt_out_targeting", 0, E + ("opt_out_targeting",), False),
    ("opt_out_targeting", "0", E + ("opt_out_targeting",), False),
    (
        "event_source_url",
        "https://shop.example.com/p/1?x=1",
        E + ("event_source_url",),
        "https://shop.example.com/p/1?x=1",
    ),
    ("event_source_url", "http://example.com", E + ("event_source_url",), "http://example.com"),
    ("amount", 12, D + ("amount",), 12),
    ("amount", decimal.Decimal("12.50"), D + ("amount",), 12.5),
    ("amount", decimal.Decimal("49.99"), D + ("amount",), 49.99),
    ("amount", "12.50", D + ("amount",), 12.5),
    ("amount", "10", D + ("amount",), 10),
    ("amount", 0, D + ("amount",), 0),
    ("currency", "usd", D + ("currency",), "USD"),
    ("currency", " Eur ", D + ("currency",), "EUR"),
    ("currency", "JPY", D + ("currency",), "JPY"),
    ("content_name", "Blue Dress", D + ("content_name",), "Blue Dress"),
    ("content_category", "2271", D + ("content_category",), "2271"),
    ("content_category", 2271, D + ("content_category",), "2271"),
    ("content_category", decimal.Decimal("35"), D + ("content_category",), "35"),
    (
        "content_category",
        "Apparel & Accessories > Clothing > Dresses",
        D + ("content_category",),
        "2271",
    ),
    (
        "content_category",
        "apparel & accessories > clothing > dresses",
        D + ("content_category",),
        "2271",
    ),
    # user data
    ("email", "  Jane.Doe@Example.COM ", U + ("hashed_emails",), [JANE]),
    ("email", ["jane.doe@example.com", "JOHN@example.org"], U + ("hashed_emails",), [JANE, JOHN]),
    ("email", ["jane.doe@example.com", "Jane.Doe@example.com", ""], U + ("hashed_emails",), [JANE]),
    ("email", JANE.upper(), U + ("hashed_emails",), [JANE]),
    ("phone", "+44 20 7946 0958", U + ("hashed_phone_number",), LONDON),
    ("phone", "+1 555 010 2030", U + ("hashed_phone_number",), US_FICTIONAL),
    ("phone", ["bogus", "+1 555 010 2030"], U + ("hashed_phone_number",), US_FICTIONAL),
    ("phone", LONDON.upper(), U + ("hashed_phone_number",), LONDON),
    ("$ip", "198.51.100.23", U + ("ip_address",), "198.51.100.23"),
    ("$ip", "2001:db8::1", U + ("ip_address",), "2001:db8::1"),
    ("$device_id", "8f14e45f-ceea-4e67-a1c2", U + ("device_id",), "8f14e45f-ceea-4e67-a1c2"),
    ("$user_agent", "Mozilla/5.0 (X11; Linux)", U + ("user_agent",), "Mozilla/5.0 (X11; Linux)"),
    ("gender", "male", U + ("gender",), "MALE"),
    ("gender", "FEMALE", U + ("gender",), "FEMALE"),
    ("gender", "m", U + ("gender",), "MALE"),
    ("gender", "F", U + ("gender",), "FEMALE"),
    ("request_ip_address", "192.0.2.1", U + ("request_ip_address",), "192.0.2.1"),
    ("event_ip_address", "2001:db8::2", U + ("event_ip_address",), "2001:db8::2"),
    ("platform_id", "ios", U + ("platform_id",), "ios"),
    ("session_id", "sess-42", U + ("session_id",), "sess-42"),
    ("alias_id", "alias-7", U + ("alias_id",), "alias-7"),
    ("cookie1", "ck-99", U + ("cookie1",), "ck-99"),
    ("page_id", "page-3", U + ("page_id",), "page-3"),
    ("connection_type", "wifi", U + ("connection_type",), "wifi"),
    ("age_group", "25-34", U + ("age_group",), "25-34"),
    ("$spclid", "spclid-abc123", U + ("clickID",), "spclid-abc123"),
]


def test_input_properties_are_the_spec_ones():
    assert set(INPUT_PROPERTIES) == CONTRACT_INPUTS
    assert {rule.source for rule in PROPERTIES} <= CONTRACT_INPUTS


def test_row_table_covers_every_spec_property():
    assert {row[0] for row in ROWS} | {"event"} == CONTRACT_INPUTS


@pytest.mark.parametrize(
    ("prop", "value", "path", "expected"),
    [pytest.param(*row, id=f"{row[0]}={row[1]!r}"[:60]) for row in ROWS],
)
def test_spec_row(prop, value, path, expected):
    event = mapped({**BASE, prop: value}).event
    got = pick(event, path)
    assert got == expected
    assert type(got) is type(expected)


def test_amount_is_a_json_number_not_a_decimal_or_string():
    for value in (decimal.Decimal("12.50"), "12.50", 12, "7"):
        amount = mapped({**BASE, "amount": value}).event["event_details"]["amount"]
        assert type(amount) in (int, float)
    assert json.dumps(mapped({**BASE, "amount": decimal.Decimal("12.50")}).event["event_details"])


def test_full_purchase_event():
    record = {
        "spotify_event_name": "Order Completed",
        "$event_id": 1001,
        "$event_time": "2024-06-01T13:30:00+02:00",
        "$action_source": "web",
        "opt_out_targeting": "false",
        "event_source_url": "https://shop.example.com/thanks",
        "amount": decimal.Decimal("49.99"),
        "currency": "usd",
        "content_name": "Blue Dress",
        "content_category": "Apparel & Accessories > Clothing > Dresses",
        "email": ["Jane.Doe@example.com "],
        "phone": "020 7946 0958",
        "$ip": "203.0.113.7",
        "$device_id": "dev-1",
        "$spclid": "click-1",
    }
    result = mapped(record, phone_default_country="GB")
    assert result.warnings == []
    assert result.event == {
        "event_name": "PURCHASE",
        "event_id": "1001",
        "event_time": "2024-06-01T11:30:00.000Z",
        "action_source": "WEB",
        "opt_out_targeting": False,
        "event_source_url": "https://shop.example.com/thanks",
        "event_details": {
            "amount": 49.99,
            "currency": "USD",
            "content_name": "Blue Dress",
            "content_category": "2271",
        },
        "user_data": {
            "hashed_emails": [JANE],
            "hashed_phone_number": LONDON,
            "ip_address": "203.0.113.7",
            "device_id": "dev-1",
            "clickID": "click-1",
        },
    }
    assert result.event_id == "1001"


def test_uppercase_url_scheme_is_sent_as_spotify_requires():
    url = mapped({**BASE, "event_source_url": "HTTPS://Shop.example.com/P"}).event[
        "event_source_url"
    ]
    assert url.startswith("https://")
    assert url.endswith("Shop.example.com/P")


def test_url_is_trimmed():
    event = mapped({**BASE, "event_source_url": "  https://example.com/a  "}).event
    assert event["event_source_url"] == "https://example.com/a"


@pytest.mark.parametrize("identifier", ["$ip", "$device_id", "email", "phone"])
def test_each_identifier_alone_is_enough(identifier):
    value = {
        "$ip": "203.0.113.7",
        "$device_id": "dev-1",
        "email": "jane.doe@example.com",
        "phone": "+44 20 7946 0958",
    }[identifier]
    record = {key: val for key, val in BASE.items() if key != "$ip"}
    event = mapped({**record, identifier: value}).event
    assert len(event["user_data"]) == 1


# --- docs/contract.md §4: rejections --------------------------------------------------------------

REJECTIONS = [
    ({"spotify_event_name": None, "event": "Search"}, "unknown_event_name"),
    ({"spotify_event_name": None, "event": "Order Refunded"}, "unknown_event_name"),
    ({"spotify_event_name": "PURCHSE"}, "unknown_event_name"),
    ({"spotify_event_name": 7}, "unknown_event_name"),
    ({"$event_id": True}, "invalid_event_id"),
    ({"$event_id": {"id": 1}}, "invalid_event_id"),
    ({"$event_id": [1, 2]}, "invalid_event_id"),
    ({"$event_time": "yesterday"}, "invalid_event_time"),
    ({"$event_time": "2024-02-30T00:00:00Z"}, "invalid_event_time"),
    ({"$event_time": True}, "invalid_event_time"),
    ({"$event_time": {"t": 1}}, "invalid_event_time"),
    ({"$event_time": "0001-01-01T00:00:00+01:00"}, "invalid_event_time"),
    ({"$event_time": "2024-06-01T12:06:00Z"}, "event_time_in_future"),
    ({"$event_time": "2030-01-01T00:00:00Z"}, "event_time_in_future"),
    ({"$ip": None}, "no_identifier"),
    ({"$ip": "not an ip"}, "no_identifier"),
    ({"$ip": None, "phone": "020 7946 0958"}, "no_identifier"),  # unusable without a country
    ({"$ip": None, "email": ["", "  "]}, "no_identifier"),
    ({"$ip": None, "gender": "male", "$user_agent": "UA", "session_id": "s"}, "no_identifier"),
    ({"spotify_event_name": "PURCHASE", "currency": "USD"}, "purchase_without_amount"),
    ({"spotify_event_name": "PURCHASE", "amount": 5}, "purchase_without_currency"),
    ({"spotify_event_name": "Order Completed", "currency": "USD"}, "purchase_without_amount"),
    ({"amount": "twelve"}, "invalid_amount"),
    ({"amount": "NaN"}, "invalid_amount"),
    ({"amount": decimal.Decimal("Infinity")}, "invalid_amount"),
    ({"amount": True}, "invalid_amount"),
    ({"amount": [12]}, "invalid_amount"),
    ({"currency": "XYZ"}, "invalid_currency"),
    ({"currency": "dollars"}, "invalid_currency"),
    ({"currency": "US"}, "invalid_currency"),
    ({"currency": 840}, "invalid_currency"),
    ({"$action_source": "SERVER"}, "invalid_action_source"),
    ({"$action_source": 1}, "invalid_action_source"),
    ({"event_source_url": "www.example.com"}, "invalid_event_source_url"),
    ({"event_source_url": "ftp://example.com/file"}, "invalid_event_source_url"),
    ({"event_source_url": "/checkout"}, "invalid_event_source_url"),
    ({"opt_out_targeting": "maybe"}, "invalid_opt_out_targeting"),
    ({"opt_out_targeting": 2}, "invalid_opt_out_targeting"),
    ({"opt_out_targeting": "yes please"}, "invalid_opt_out_targeting"),
]


@pytest.mark.parametrize(
    ("change", "code"),
    [pytest.param(change, code, id=f"{code}:{change!r}"[:70]) for change, code in REJECTIONS],
)
def test_rejection_reason(change, code):
    record = {**BASE, **change}
    result = rejected(record)
    assert code in codes(result)
    assert all(problem.code and problem.detail for problem in result.reasons)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59.999999"])
def test_event_time_beyond_the_calendar_is_rejected(value):
    # Unrepresentable once moved to UTC: either reason is right, a crash is not.
    result = rejected({**BASE, "$event_time": value})
    assert codes(result) & {"invalid_event_time", "event_time_in_future"}


def test_rejected_record_keeps_its_event_id():
    result = rejected({**BASE, "$event_id": 1001, "currency": "XYZ"})
    assert result.event_id == "1001"
    record = {key: value for key, value in BASE.items() if key != "$event_id"}
    result = rejected({**record, "currency": "XYZ"})
    assert result.event_id == mapper().event_id(record | {"currency": "XYZ"}, STREAM)
    assert result.event_id


def test_every_reason_is_reported_at_once():
    result = rejected(
        {
            "spotify_event_name": "PURCHASE",
            "$event_time": "garbage",
            "currency": "XYZ",
            "$action_source": "SERVER",
        }
    )
    assert {
        "invalid_event_time",
        "no_identifier",
        "invalid_currency",
        "purchase_without_amount",
        "invalid_action_source",
    } <= codes(result)


def test_reason_details_hold_no_personal_data():
    result = rejected(
        {
            "spotify_event_name": "Jane.Doe@example.com",
            "email": "not-an-email-but-private",
            "phone": "020 7946 0958",
        }
    )
    text = " ".join(str(problem) for problem in result.reasons)
    assert "020 7946 0958" not in text
    assert "not-an-email-but-private" not in text


def test_purchase_with_amount_and_currency_is_sent():
    event = mapped(
        {**BASE, "spotify_event_name": "purchase", "amount": "0.99", "currency": "gbp"}
    ).event
    assert event["event_name"] == "PURCHASE"
    assert event["event_details"] == {"amount": 0.99, "currency": "GBP"}


@pytest.mark.parametrize("name", ["VIEW", "LEAD", "ADD_TO_CART", "CHECK_OUT", "SIGN_UP"])
def test_only_purchase_needs_amount_and_currency(name):
    event = mapped({**BASE, "spotify_event_name": name}).event
    assert "event_details" not in event


# --- dropped with a warning ----------------------------------------------------------------------

DROPPED = [
    ("$ip", "999.1.1.1", "invalid_ip", ("user_data", "ip_address")),
    ("$ip", "localhost", "invalid_ip", ("user_data", "ip_address")),
    ("$ip", 3232235777, "invalid_ip", ("user_data", "ip_address")),
    ("phone", "020 7946 0958", "invalid_phone", ("user_data", "hashed_phone_number")),
    ("phone", "+1 555", "invalid_phone", ("user_data", "hashed_phone_number")),
    ("phone", ["nope", "12"], "invalid_phone", ("user_data", "hashed_phone_number")),
    ("email", 42, "invalid_email", ("user_data", "hashed_emails")),
    ("email", {"primary": "x"}, "invalid_email", ("user_data", "hashed_emails")),
    ("gender", "other", "invalid_gender", ("user_data", "gender")),
    ("gender", "x", "invalid_gender", ("user_data", "gender")),
    ("gender", True, "invalid_gender", ("user_data", "gender")),
    (
        "content_category",
        "Dresses",
        "invalid_content_category",
        ("event_details", "content_category"),
    ),
    (
        "content_category",
        "free text",
        "invalid_content_category",
        ("event_details", "content_category"),
    ),
    (
        "request_ip_address",
        "nope",
        "invalid_request_ip_address",
        ("user_data", "request_ip_address"),
    ),
    ("event_ip_address", "1.2.3", "invalid_event_ip_address", ("user_data", "event_ip_address")),
    ("$device_id", True, "invalid_device_id", ("user_data", "device_id")),
    ("$device_id", {"a": 1}, "invalid_device_id", ("user_data", "device_id")),
    ("content_name", ["a"], "invalid_content_name", ("event_details", "content_name")),
    ("session_id", {"id": 1}, "invalid_session_id", ("user_data", "session_id")),
    # phone numbers written with separators, in a column shifted into a free-text field
    ("content_name", "415-555-0123", "invalid_content_name", ("event_details", "content_name")),
    ("$device_id", "212 555 0199", "invalid_device_id", ("user_data", "device_id")),
    ("session_id", "650.253.0000", "invalid_session_id", ("user_data", "session_id")),
    ("$user_agent", "415.555.0123", "invalid_user_agent", ("user_data", "user_agent")),
    ("$spclid", "(415) 555-0123", "invalid_spclid", ("user_data", "clickID")),
    ("content_name", "call +44 20 7946 0958", "invalid_content_name",
     ("event_details", "content_name")),
    ("$user_agent", "Mozilla/5.0 (tel +1 415-555-0123)", "invalid_user_agent",
     ("user_data", "user_agent")),
    # words around a national number, in the field people type words into
    ("content_name", "call 415-555-0123 after 5", "invalid_content_name",
     ("event_details", "content_name")),
    ("content_name", "Gift for Ann (ring 415.555.0123)", "invalid_content_name",
     ("event_details", "content_name")),
    # separators and digits as documents and other countries write them
    ("content_name", "415\u2013555\u20130123", "invalid_content_name",
     ("event_details", "content_name")),
    ("$device_id", "415/555-0123", "invalid_device_id", ("user_data", "device_id")),
    ("session_id", "\uff14\uff11\uff15-\uff15\uff15\uff15-\uff10\uff11\uff12\uff13",
     "invalid_session_id", ("user_data", "session_id")),
]


@pytest.mark.parametrize("value", [
    "00447700900123", "1699999999123", "25-34", "4G", "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    "203.0.113.7", "15.01.2024", "01-15-2024", "20240115-103000", "120.0.6099.109",
    "10.0.19045.1234", "1981-1996", "1.234.567", "10 000 000", "978-0-306-40615-7",
    "100-200-3000", "123-456-789", "12345-6789", "123456789.1234567890", "12/05/2026",
    "2026/11/12", "1920/1080",
])
def test_ids_dates_versions_and_ranges_pass_free_text(value):
    """Free-text fields hold these: only a valid phone number is taken for one."""
    result = mapped({**BASE, "session_id": value})
    assert result.event["user_data"]["session_id"] == value


def test_a_national_number_in_free_text_is_checked_against_phone_default_country():
    uk = "020 7946 0958"
    assert mapped({**BASE, "content_name": uk}).event["event_details"]["content_name"] == uk
    result = mapped({**BASE, "content_name": uk}, phone_default_country="GB")
    assert "content_name" not in result.event.get("event_details", {})
    assert "invalid_content_name" in result.warnings


@pytest.mark.parametrize(
    ("prop", "value", "warning", "path"),
    [pytest.param(*row, id=f"{row[0]}={row[1]!r}") for row in DROPPED],
)
def test_invalid_optional_value_is_dropped_with_a_warning(prop, value, warning, path):
    # Keep an identifier that is not the property under test.
    base = {**BASE, "$device_id": "dev-1"} if prop != "$device_id" else dict(BASE)
    if prop == "$ip":
        base = {**base, "email": "jane.doe@example.com"}
    result = mapped({**base, prop: value})
    assert warning in result.warnings
    section, key = path
    assert key not in result.event.get(section, {})


def test_dropped_identifier_with_another_one_left_keeps_the_record():
    record = {key: value for key, value in BASE.items() if key != "$ip"}
    result = mapped({**record, "$ip": "bad", "phone": "12", "email": "jane.doe@example.com"})
    assert {"invalid_ip", "invalid_phone"} <= set(result.warnings)
    assert result.event["user_data"] == {"hashed_emails": [JANE]}


def test_dropped_identifier_with_none_left_rejects():
    record = {key: value for key, value in BASE.items() if key != "$ip"}
    result = rejected({**record, "$ip": "bad", "phone": "12"})
    assert codes(result) == {"no_identifier"}
    assert {"invalid_ip", "invalid_phone"} <= set(result.warnings)


def test_phone_default_country_makes_national_numbers_usable():
    event = mapped({**BASE, "phone": "020 7946 0958"}, phone_default_country="GB").event
    assert event["user_data"]["hashed_phone_number"] == LONDON
    event = mapped({**BASE, "phone": 2079460958}, phone_default_country="GB").event
    assert event["user_data"]["hashed_phone_number"] == LONDON


# --- null, empty and whitespace-only values are absent -----------------------------------------

ABSENT = [None, "", "   ", "\t\n"]
# Every mapping input but the event's name, id and time, and the identifier kept by BASE.
OPTIONAL = sorted(
    CONTRACT_INPUTS - {"spotify_event_name", "event", "$event_id", "$event_time", "$ip"}
)


@pytest.mark.parametrize("prop", OPTIONAL)
@pytest.mark.parametrize("value", ABSENT, ids=repr)
def test_absent_values_are_ignored(prop, value):
    plain = mapped(BASE).event
    result = mapped({**BASE, prop: value})
    assert result.warnings == []
    assert result.event == plain


@pytest.mark.parametrize("value", [[], {}])
@pytest.mark.parametrize("prop", ["email", "phone", "content_category", "$device_id"])
def test_empty_containers_are_absent(prop, value):
    result = mapped({**BASE, prop: value})
    assert result.warnings == []
    assert result.event == mapped(BASE).event


@pytest.mark.parametrize("value", ABSENT, ids=repr)
def test_absent_identifier_is_no_identifier(value):
    result = rejected({**BASE, "$ip": value, "email": value, "phone": value, "$device_id": value})
    assert codes(result) == {"no_identifier"}
    assert result.warnings == []


@pytest.mark.parametrize("value", ABSENT, ids=repr)
def test_absent_event_id_is_derived(value):
    first = mapped({**BASE, "$event_id": value}).event["event_id"]
    assert first
    assert first == mapped({**BASE, "$event_id": value}).event["event_id"]


@pytest.mark.parametrize("value", ABSENT, ids=repr)
def test_absent_spotify_event_name_falls_through_to_event(value):
    event = mapped({**BASE, "spotify_event_name": value, "event": "Signed Up"}).event
    assert event["event_name"] == "SIGN_UP"


@pytest.mark.parametrize("value", ABSENT, ids=repr)
def test_absent_purchase_values_are_missing_not_invalid(value):
    record = {**BASE, "spotify_event_name": "PURCHASE", "amount": value, "currency": value}
    result = rejected(record)
    assert codes(result) == {"purchase_without_amount", "purchase_without_currency"}


# --- defaults -----------------------------------------------------------------------------------


def test_no_action_source_and_no_default_leaves_it_out():
    assert "action_source" not in mapped(BASE).event


@pytest.mark.parametrize("default", ["APP", "OFFLINE"])  # as settings.py checked it
def test_default_action_source_when_absent(default):
    event = mapped(BASE, default_action_source=default).event
    assert event["action_source"] == default
    event = mapped({**BASE, "$action_source": "  "}, default_action_source=default).event
    assert event["action_source"] == default


def test_record_action_source_beats_the_default():
    event = mapped({**BASE, "$action_source": "web"}, default_action_source="APP").event
    assert event["action_source"] == "WEB"


def test_invalid_action_source_is_rejected_not_defaulted():
    result = rejected({**BASE, "$action_source": "SERVER"}, default_action_source="APP")
    assert "invalid_action_source" in codes(result)


def test_default_opt_out_targeting_is_true():
    assert mapped(BASE).event["opt_out_targeting"] is True


def test_default_opt_out_targeting_setting():
    assert mapped(BASE, default_opt_out_targeting=False).event["opt_out_targeting"] is False
    event = mapped({**BASE, "opt_out_targeting": True}, default_opt_out_targeting=False).event
    assert event["opt_out_targeting"] is True
    event = mapped({**BASE, "opt_out_targeting": "false"}, default_opt_out_targeting=True).event
    assert event["opt_out_targeting"] is False


# --- event_time -------------------------------------------------------------------------------


def at(delta: dt.timedelta) -> str:
    return (NOW + delta).isoformat()


@pytest.mark.parametrize(
    "ahead",
    [dt.timedelta(seconds=1), dt.timedelta(minutes=4, seconds=59), dt.timedelta(minutes=5)],
)
def test_event_time_slightly_ahead_is_clamped_to_now(ahead):
    result = mapped({**BASE, "$event_time": at(ahead)})
    assert result.event["event_time"] == NOW_TEXT
    assert "event_time_clamped" in result.warnings


@pytest.mark.parametrize(
    "ahead",
    [dt.timedelta(minutes=5, seconds=1), dt.timedelta(hours=1), dt.timedelta(days=400)],
)
def test_event_time_too_far_ahead_is_rejected(ahead):
    result = rejected({**BASE, "$event_time": at(ahead)})
    assert codes(result) == {"event_time_in_future"}


def outcome(result):
    if isinstance(result, Mapped):
        return result.event["event_time"], result.warnings
    return None, sorted(codes(result))


@given(
    now=st.datetimes(
        min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    offset_ms=st.one_of(st.integers(-(10**10), 10**7), st.integers(-2, 300_002)),
)
def test_a_time_in_spotify_form_maps_as_the_same_time_in_any_other_form(now, offset_ms):
    # Spotify's form is compared as text with `now`; any other form is parsed and compared as
    # a datetime: both must agree to the millisecond, at the clamp and the 5-minute limit too.
    moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
    moment += dt.timedelta(milliseconds=offset_ms)
    spotify_form = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    other_form = moment.isoformat(timespec="microseconds")
    one = mapper()
    as_text = outcome(one.map({**BASE, "$event_time": spotify_form}, STREAM, now))
    parsed = outcome(one.map({**BASE, "$event_time": other_form}, STREAM, now))
    assert as_text == parsed


def test_event_time_now_and_in_the_past_is_kept():
    assert mapped({**BASE, "$event_time": at(dt.timedelta(0))}).event["event_time"] == NOW_TEXT
    result = mapped({**BASE, "$event_time": "2023-01-01T00:00:00Z"})
    assert result.event["event_time"] == "2023-01-01T00:00:00.000Z"
    assert result.warnings == []


def test_missing_event_time_is_now_with_a_warning():
    record = {key: value for key, value in BASE.items() if key != "$event_time"}
    result = mapped(record)
    assert result.event["event_time"] == NOW_TEXT
    assert result.warnings == ["event_time_missing"]


def test_default_now_is_the_current_time():
    record = {key: value for key, value in BASE.items() if key != "$event_time"}
    before = dt.datetime.now(UTC).replace(microsecond=0)
    result = mapper().map(record, STREAM)
    after = dt.datetime.now(UTC) + dt.timedelta(seconds=1)
    assert isinstance(result, Mapped)
    sent = dt.datetime.strptime(result.event["event_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert before <= sent.replace(tzinfo=UTC) <= after


# --- event name candidates (docs/contract.md §3) --------------------------------------------------


def named(record, stream=STREAM, **options) -> str:
    return mapped({**BASE, "spotify_event_name": None, **record}, stream, **options).event[
        "event_name"
    ]


def test_spotify_event_name_comes_first():
    assert named({"spotify_event_name": "LEAD", "event": "Order Completed"}, "page_view") == "LEAD"


def test_event_comes_before_the_stream():
    assert named({"event": "Product Added"}, "page_view") == "ADD_TO_CART"


def test_stream_when_event_does_not_resolve():
    assert named({"event": "Search"}, "page_viewed") == "VIEW"
    assert named({}, "sign_up") == "SIGN_UP"
    assert named({"event": 12}, "Product-Viewed") == "PRODUCT"


def test_default_event_name_last():
    assert named({"event": "Search"}, "events", default_event_name="CUSTOM_EVENT_3") == (
        "CUSTOM_EVENT_3"
    )
    # Not used when something else resolves.
    assert named({"event": "Signed Up"}, "events", default_event_name="LEAD") == "SIGN_UP"
    assert named({}, "page_view", default_event_name="LEAD") == "VIEW"


def test_nothing_resolves_rejects():
    result = rejected({**BASE, "spotify_event_name": None, "event": "Search"}, "events")
    assert codes(result) == {"unknown_event_name"}


def test_unresolvable_spotify_event_name_rejects_even_if_event_resolves():
    record = {**BASE, "spotify_event_name": "ADD_TO_KART", "event": "Product Added"}
    result = rejected(record, "page_view", default_event_name="VIEW")
    assert "unknown_event_name" in codes(result)


def test_event_name_map_applies_to_every_candidate():
    name_map = {"Search": "CUSTOM_EVENT_1", "Order Completed": "LEAD", "web_events": "VIEW"}
    assert named({"event": "Search"}, event_name_map=name_map) == "CUSTOM_EVENT_1"
    assert named({"event": "search"}, event_name_map=name_map) == "CUSTOM_EVENT_1"
    assert named({"spotify_event_name": "Search"}, event_name_map=name_map) == "CUSTOM_EVENT_1"
    assert named({"event": "Order Completed"}, event_name_map=name_map) == "LEAD"
    assert named({}, "web_events", event_name_map=name_map) == "VIEW"
    assert named({}, "Web Events", event_name_map=name_map) == "VIEW"


def test_search_without_a_map_is_rejected():
    result = rejected({**BASE, "spotify_event_name": "Search"})
    assert codes(result) == {"unknown_event_name"}


# --- nothing else is sent ---------------------------------------------------------------------


def test_unknown_input_keys_never_appear_in_the_event():
    record = {
        **BASE,
        "user_id": "secret-user-id",
        # (Freshpaint names inside `properties` are read: tests/test_input_formats.py.)
        "properties": {"user_email": "hidden@example.com", "value": 5},
        "hashed_emails": ["f" * 64],
        "ip_address": "192.0.2.99",
        "event_name": "PURCHASE",
        "user_data": {"device_id": "smuggled"},
        "_sdc_received_at": "2024-06-01T11:00:00Z",
        "$os": "macOS",
        "context": {"ip": "192.0.2.98"},
    }
    event = mapped(record).event
    text = json.dumps(event)
    for needle in (
        "secret-user-id",
        "hidden@example.com",
        "f" * 64,
        "192.0.2.99",
        "192.0.2.98",
        "smuggled",
        "macOS",
        "_sdc_",
    ):
        assert needle not in text
    assert event["event_name"] == "VIEW"
    assert event["user_data"] == {"ip_address": "203.0.113.7"}


def test_map_does_not_change_the_record():
    record = {**BASE, "email": ["Jane.Doe@example.com"], "amount": decimal.Decimal("1.5")}
    copy = json.loads(json.dumps(record, default=str))
    mapper().map(record, STREAM, NOW)
    assert json.loads(json.dumps(record, default=str)) == copy


@pytest.mark.parametrize(
    "prop",
    [
        "$device_id",
        "amount",
        "phone",
        "content_category",
        "$event_id",
        "opt_out_targeting",
        "$event_time",
        "content_name",
        "email",
        "currency",
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        decimal.Decimal("1E+5000"),
        decimal.Decimal("1E+100000"),
        decimal.Decimal("1E+999999999"),
        decimal.Decimal("-1E+5000"),
        decimal.Decimal("1.5E-5000"),
        decimal.Decimal("1E-999999999"),
        decimal.Decimal("1" * 400 + ".5"),
        10**4299,
    ],
    ids=[
        "1E+5000",
        "1E+100000",
        "1E+999999999",
        "-1E+5000",
        "1.5E-5000",
        "1E-999999999",
        "400-digit.5",
        "int-4300-digits",
    ],
)
def test_extreme_numbers_never_crash(prop, value):
    # The reader turns JSON numbers such as 1e5000 into Decimal('1E+5000') and reads integers of
    # up to 4300 digits as int. None of them may crash the run or take long.
    result = mapper().map({**BASE, prop: value}, STREAM, NOW)
    assert isinstance(result, (Mapped, Rejected))
    if isinstance(result, Mapped):
        json.dumps(result.event, allow_nan=False)


@pytest.mark.parametrize(
    "value",
    [decimal.Decimal("1E+5000"), decimal.Decimal("-1E+400"), "1e400", 10**4299],
    ids=["1E+5000", "-1E+400", "str-1e400", "int"],
)
def test_amount_too_large_for_json_is_invalid(value):
    result = rejected({**BASE, "amount": value})
    assert "invalid_amount" in codes(result)


# --- redact(): what the rejects file keeps (docs/contract.md §5) ----------------------------------


def test_redact_keeps_only_mapping_inputs_and_hashes_email_and_phone():
    record = {
        **BASE,
        "email": ["Jane.Doe@example.com", "john@example.org"],
        "phone": "+44 20 7946 0958",
        "currency": "XYZ",
        "user_id": "secret-user-id",
        "properties": {"email": "hidden@example.com"},
        "_sdc_batched_at": "2024-06-01T11:00:00Z",
    }
    the_mapper = mapper()
    result = the_mapper.map(record, STREAM, NOW)
    assert isinstance(result, Rejected)
    kept = the_mapper.redact(record, result.event_id)
    assert set(kept) <= CONTRACT_INPUTS
    assert kept["email"] == [JANE, JOHN]
    assert kept["phone"] == LONDON
    assert kept["currency"] == "XYZ"
    assert kept["$event_id"] == "evt-1"
    assert kept["$ip"] == "203.0.113.7"
    text = json.dumps(kept)
    for raw in ("Jane.Doe", "jane.doe", "john@example.org", "7946", "secret-user-id", "hidden@"):
        assert raw not in text


def test_redact_hashes_unusable_phones_too():
    kept = mapper().redact({**BASE, "phone": ["020 7946 0958", 2079460958]}, "evt-1")
    text = json.dumps(kept)
    assert "7946" not in text
    assert all(len(item) == 64 for item in kept["phone"])


def test_redact_writes_a_derived_event_id():
    record = {key: value for key, value in BASE.items() if key != "$event_id"}
    the_mapper = mapper()
    event_id = the_mapper.event_id(record, STREAM)
    kept = the_mapper.redact(record, event_id)
    assert kept["$event_id"] == event_id


def test_redacted_record_fed_back_maps_to_the_same_event():
    record = {key: value for key, value in BASE.items() if key != "$event_id"} | {
        "email": "Jane.Doe@example.com",
        "phone": "+44 20 7946 0958",
        "extra": 1,
    }
    the_mapper = mapper()
    first = the_mapper.map(record, STREAM, NOW)
    assert isinstance(first, Mapped)
    again = the_mapper.map(the_mapper.redact(record, first.event_id), STREAM, NOW)
    assert isinstance(again, Mapped)
    assert again.event == first.event


def test_redact_output_is_json():
    record = {
        **BASE,
        "$event_time": dt.datetime(2024, 6, 1, 11, 0, tzinfo=UTC),
        "amount": decimal.Decimal("12.5"),
    }
    kept = mapper().redact(record, "evt-1")
    json.dumps(kept, default=float)
    assert kept["$event_time"].startswith("2024-06-01T11:00:00")


# --- match quality: values that would match nobody, or the wrong people ------------------------

NOT_PUBLIC = [
    "10.0.0.5",
    "172.16.3.4",
    "172.31.255.255",
    "192.168.1.20",
    "127.0.0.1",
    "169.254.10.1",
    "0.0.0.0",
    "224.0.0.251",
    "255.255.255.255",
    "::1",
    "::",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "10.0.0.5/8",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_an_address_that_is_no_users_public_one_is_dropped(address):
    result = mapped({**BASE, "email": "jane.doe@example.com", "$ip": address})
    assert "ip_not_public" in result.warnings
    assert "invalid_ip" not in result.warnings
    assert "ip_address" not in result.event["user_data"]


@pytest.mark.parametrize(
    ("address", "sent"),
    [
        ("172.32.0.1", "172.32.0.1"),  # just outside 172.16/12
        ("203.0.113.7/24", "203.0.113.7"),  # a PostgreSQL inet with its prefix length
        ("203.0.113.7/32", "203.0.113.7"),
        ("2001:DB8::1/64", "2001:db8::1"),
        ("100.64.0.1", "100.64.0.1"),
        ("::ffff:203.0.113.7", "::ffff:203.0.113.7"),
    ],
)
def test_public_addresses_and_inet_prefixes_are_sent(address, sent):
    assert mapped({**BASE, "$ip": address}).event["user_data"]["ip_address"] == sent


@pytest.mark.parametrize("address", ["203.0.113.7/33", "203.0.113.7/", "203.0.113.7/x", "/24"])
def test_a_broken_prefix_is_no_address(address):
    result = mapped({**BASE, "email": "jane.doe@example.com", "$ip": address})
    assert "invalid_ip" in result.warnings


@pytest.mark.parametrize("value", ["n/a", "unknown", "none", "jane.doe", "@example.com", "jane@"])
def test_an_email_without_text_around_an_at_is_dropped(value):
    result = mapped({**BASE, "email": value})
    assert "invalid_email" in result.warnings
    assert "hashed_emails" not in result.event["user_data"]


def test_placeholder_emails_in_a_list_are_dropped_and_real_ones_kept():
    event = mapped({**BASE, "email": ["n/a", "Jane.Doe@Example.com", "unknown"]}).event
    assert event["user_data"]["hashed_emails"] == [JANE]


def test_a_placeholder_email_alone_is_no_identifier():
    record = {key: value for key, value in BASE.items() if key != "$ip"}
    result = rejected({**record, "email": "unknown"})
    assert codes(result) == {"no_identifier"}


def test_a_rejected_placeholder_email_is_still_hashed_in_the_rejects_file():
    kept = mapper().redact({**BASE, "email": "N/A "}, "evt-1")
    assert kept["email"] == sha("n/a")


@pytest.mark.parametrize("amount", [-0.01, "-5", decimal.Decimal("-120.50"), -1])
def test_a_negative_amount_is_rejected(amount):
    result = rejected(
        {**BASE, "spotify_event_name": "PURCHASE", "amount": amount, "currency": "USD"}
    )
    assert codes(result) == {"invalid_amount"}
    assert "refund" in str(result.reasons[0])


@pytest.mark.parametrize("amount", [0, "0.00", decimal.Decimal("-0")])
def test_a_zero_amount_is_sent(amount):
    event = mapped(
        {**BASE, "spotify_event_name": "PURCHASE", "amount": amount, "currency": "USD"}
    ).event
    assert event["event_details"]["amount"] == 0


@pytest.mark.parametrize(
    ("url", "click_id"),
    [
        ("https://shop.example/landing?spclid=abc123", "abc123"),
        ("https://shop.example/landing?utm_source=spotify&spclid=x%2By&b=1", "x+y"),
        ("https://shop.example/?spclid=first&spclid=second", "first"),
    ],
)
def test_the_click_id_is_read_from_the_landing_url(url, click_id):
    event = mapped({**BASE, "event_source_url": url}).event
    assert event["user_data"]["clickID"] == click_id
    assert event["event_source_url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/landing",
        "https://shop.example/?spclid=",
        "https://a.example/?xspclid=1",
    ],
)
def test_no_click_id_in_the_url_sends_none(url):
    assert "clickID" not in mapped({**BASE, "event_source_url": url}).event["user_data"]


def test_an_explicit_spclid_wins_over_the_url():
    record = {**BASE, "$spclid": "given", "event_source_url": "https://s.example/?spclid=url"}
    assert mapped(record).event["user_data"]["clickID"] == "given"


def test_the_rejects_file_keeps_the_properties_that_route_a_record_and_give_consent():
    """A fixed record fed back must go to the same connection, with the same consent: the
    rejects file keeps those properties (hashed if they look personal), not only the mapping's."""
    record = {**BASE, "amount": "n/a", "brand": " brand_a", "ctx": {"ok": "yes"}}
    kept = mapper(connection_property="brand", connection_names=("brand_a",),
                  consent_property="ctx.ok").redact(record, "ev-1")
    assert kept["brand"] == " brand_a"
    assert kept["ctx.ok"] == "yes"
    shifted = mapper(connection_property="brand").redact({**BASE, "brand": "x@y.co"}, "ev-1")
    assert "x@y.co" not in json.dumps(shifted)


def test_an_event_id_that_is_an_object_is_kept_redacted_in_the_rejects_file():
    kept = mapper().redact({**BASE, "$event_id": {"x": ["jane.doe@example.com"]}}, "ev-1")
    assert "jane.doe@example.com" not in json.dumps(kept)


def test_an_email_in_the_page_url_is_not_sent():
    event = mapped({**BASE, "event_source_url": "https://s.example/ty?email=jo@example.com"}).event
    assert event["event_source_url"] == "https://s.example/ty"


def test_a_phone_number_in_amount_is_not_sent_as_an_amount():
    """A column shifted by one: "+14155550004" would go out as 14155550004."""
    result = rejected({**BASE, "amount": "+14155550004"})
    assert "invalid_amount" in {problem.code for problem in result.reasons}
    assert "4155550004" not in str(result.reasons)


@pytest.mark.parametrize("name", [
    "Order 100-200-3000 shipped", "Dress, size 38-40, 2024-06-01 edition",
    "Pack of 3 (500 ml)", "Ticket 2024 1234 5678", "ISBN 978-3-16-148410-0",
])
def test_words_around_numbers_that_are_no_phone_number_reach_spotify(name):
    result = mapped({**BASE, "content_name": name})
    assert result.event["event_details"]["content_name"] == name



# --- values seen before: converted once per mapper (a person's email, a product's name) ---------


def test_a_repeated_value_maps_the_same_in_every_record():
    m = mapper()
    record = {**BASE, "email": " Jane.Doe@example.com ", "$ip": "10.0.0.1", "$device_id": "d-1"}
    first, second = (m.map({**record, "$event_id": f"evt-{n}"}, STREAM, NOW) for n in (1, 2))
    for result in (first, second):
        assert isinstance(result, Mapped)
        assert result.event["user_data"] == {"hashed_emails": [JANE], "device_id": "d-1"}
        assert result.warnings == ["ip_not_public"]  # a private address, dropped both times
    # each event holds its own list: cutting one (the email cap) leaves the other whole
    first.event["user_data"]["hashed_emails"].clear()
    assert second.event["user_data"]["hashed_emails"] == [JANE]


def test_a_repeated_invalid_value_rejects_every_record_that_holds_it():
    m = mapper()
    results = [
        m.map({**BASE, "$event_id": f"evt-{n}", "currency": "usd?"}, STREAM, NOW) for n in (1, 2)
    ]
    for result in results:
        assert isinstance(result, Rejected)
        assert [problem.code for problem in result.reasons] == ["invalid_currency"]
    assert results[0].reasons[0].detail == results[1].reasons[0].detail


def test_the_values_kept_are_bounded():
    m = mapper()
    entries = MEMO_BYTES // (MEMO_ENTRY_BYTES + 12)  # values of 12 characters
    for n in range(entries + 50):
        result = m.map({**BASE, "$event_id": f"e{n}", "$device_id": f"dev-{n:08d}"}, STREAM, NOW)
        assert isinstance(result, Mapped)
        assert result.event["user_data"]["device_id"] == f"dev-{n:08d}"
    held = sum(len(v) + MEMO_ENTRY_BYTES for _, memo in m._rules.values() for v in memo)
    assert 0 < held <= MEMO_BYTES
    assert len(m._rules["$device_id"][1]) < entries  # it started afresh


def test_the_values_kept_are_bounded_in_memory_whatever_their_characters():
    m = mapper()
    emoji = "\U0001f600" * (MEMO_VALUE_CHARS - 9)  # 4 bytes a character, and a UTF-8 copy
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(20_000):  # 40,000 values of 1.7 kB (more once encoded): 68 MB and up
            record = {**BASE, "$event_id": f"e{n}", "$device_id": f"d{n:08d}" + emoji,
                      "session_id": f"s{n:08d}" + emoji}
            assert isinstance(m.map(record, STREAM, NOW), Mapped)
        held = tracemalloc.get_traced_memory()[1] - before  # the peak
    finally:
        tracemalloc.stop()
    assert held < 1.5 * MEMO_BYTES


def test_a_long_value_is_mapped_but_not_kept():
    m = mapper()
    agent = "Mozilla/5.0 " + "x" * MEMO_VALUE_CHARS
    for n in range(3):
        result = m.map({**BASE, "$event_id": f"e{n}", "$user_agent": agent}, STREAM, NOW)
        assert isinstance(result, Mapped)
        assert result.event["user_data"]["user_agent"] == agent
    assert agent not in m._rules["$user_agent"][1]
    assert "203.0.113.7" in m._rules["$ip"][1]  # a short one is
