"""Prove that nothing is lost and nothing leaks: the mapping over arbitrary JSON-like records.

Every record either becomes an event that satisfies Spotify's contract (docs/spotify-api.md, checked
by a checker written here) or a rejection with reasons; no raw email or phone reaches the event
or the rejects file.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_spotify_conversions.hashing import hash_email, hash_phone
from target_spotify_conversions.mapping import (
    INPUT_PROPERTIES,
    EventMapper,
    Mapped,
    MappingOptions,
    Rejected,
)
from target_spotify_conversions.sandbox import check_body
from tests.contract_tables import CONTRACT_INPUTS
from tests.harness import CONNECTION_ID

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Spotify's contract: the same checks the strict fake API applies to every request ---------

HEX64 = re.compile(r"[0-9a-f]{64}")


def check_event(event: dict, now: dt.datetime) -> None:
    """The event, as it would travel (through JSON), breaks no rule of docs/spotify-api.md."""
    events = json.loads(json.dumps([event]))
    body = {"conversion_events": {"capi_connection_id": CONNECTION_ID, "events": events}}
    assert check_body(body, now=now.timestamp()).violations == []




# --- strategies -------------------------------------------------------------------------------

# No "@" outside the email property, so any "@" text found in an output is a leaked email.
plain_text = st.text(
    alphabet=st.characters(blacklist_characters="@", blacklist_categories=("Cs",)), max_size=12
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [decimal.Decimal("1E+5000"), decimal.Decimal("-1E-400"), decimal.Decimal("0.000")]
    ),
)
moments = st.datetimes(
    min_value=dt.datetime(1999, 1, 1), max_value=dt.datetime(2031, 1, 1), timezones=st.just(UTC)
) | st.sampled_from([NOW + dt.timedelta(seconds=s) for s in (0, 1, 299, 300, 301, 3600)])
interesting = st.sampled_from(
    [
        "VIEW",
        "purchase",
        "Order Completed",
        "Search",
        "lead",
        "usd",
        "WEB",
        "true",
        "0",
        "2271",
        "203.0.113.7",
        "::1",
        "https://example.com/a",
        "2024-05-01T10:00:00Z",
        "1717200000",
        "   ",
        "",
        "f" * 64,
    ]
)
scalars = st.one_of(st.none(), st.booleans(), numbers, plain_text, interesting, moments)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(plain_text, children, max_size=4)
    ),
    max_leaves=10,
)

emails = st.builds(
    "{}@{}.example".format,
    st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=12),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8),
).map(lambda email: email if len(email) % 3 else f"  {email.upper()} ")
email_values = emails | st.lists(emails | st.none() | st.just("") | st.integers(), max_size=4)
PHONES = ["+44 20 7946 0958", "+1 555 010 2030", "020 7946 0958", "(555) 010-2030"]
phone_values = st.one_of(
    st.sampled_from([*PHONES, 2079460958, "12", "+1 555"]),
    st.lists(st.sampled_from([*PHONES, None, "x"]), max_size=3),
)
ips = st.ip_addresses().map(str) | st.sampled_from(["999.1.1.1", "nope", " 10.0.0.1 "])
names = st.sampled_from(
    [
        "VIEW",
        "purchase",
        "Order Completed",
        "Product Added",
        "page_view",
        "custom event 3",
        "Search",
        "PURCHSE",
        "Signed Up",
    ]
)

past = st.datetimes(
    min_value=dt.datetime(1999, 1, 1), max_value=dt.datetime(2024, 5, 31), timezones=st.just(UTC)
) | st.sampled_from([NOW + dt.timedelta(seconds=s) for s in (0, 1, 299, 300)])
# Values that map (or are dropped with a warning): records made of them are mostly sent.
GOOD: dict[str, st.SearchStrategy] = {
    "spotify_event_name": st.sampled_from(
        ["VIEW", "purchase", "Order Completed", "Product Added", "page_view", "custom event 3"]
    ),
    "event": names,
    "$event_id": plain_text | st.integers() | st.decimals(allow_nan=False, allow_infinity=False),
    "$event_time": past
    | past.map(lambda m: m.isoformat())
    | past.map(lambda m: m.replace(tzinfo=None).isoformat())
    | past.map(lambda m: int(m.timestamp()))
    | past.map(lambda m: int(m.timestamp() * 1000))
    | past.map(lambda m: decimal.Decimal(m.timestamp())),
    "$action_source": st.sampled_from(["web", "APP", " offline "]),
    "opt_out_targeting": st.booleans() | st.sampled_from(["true", "False", "1", 0, 1]),
    "event_source_url": st.sampled_from(
        ["https://example.com/a", "http://e.example", "HTTPS://E.example/P"]
    ),
    "amount": st.decimals(min_value=-1000, max_value=100000, places=2)
    | st.integers(min_value=0, max_value=10**6)
    | st.sampled_from(["12.50", "7"]),
    "currency": st.sampled_from(["usd", "EUR", " gbp "]),
    "content_name": plain_text,
    "content_category": st.sampled_from(
        ["2271", 2271, "Apparel & Accessories > Clothing > Dresses", "Dresses", 35, "0"]
    ),
    "email": email_values,
    "phone": phone_values,
    "$ip": ips,
    "$device_id": plain_text | st.integers(),
    "gender": st.sampled_from(["m", "F", "male", "FEMALE", "other", "x"]),
    "request_ip_address": ips,
    "event_ip_address": ips,
}
# Values that must be rejected.
BAD: dict[str, st.SearchStrategy] = {
    "spotify_event_name": st.sampled_from(["Search", "PURCHSE"]),
    "$event_time": moments | st.sampled_from(["yesterday", "2024-02-30", "1e400"]),
    "$action_source": st.sampled_from(["server", "1"]),
    "opt_out_targeting": st.sampled_from([2, "x", "yes"]),
    "event_source_url": st.sampled_from(["ftp://x", "www.x", "/a"]),
    "amount": st.sampled_from(["twelve", "1e400", "NaN"]),
    "currency": st.sampled_from(["xyz", "dollars"]),
}


@st.composite
def plausible_records(draw) -> dict:
    optional = {key: GOOD.get(key, plain_text) for key in INPUT_PROPERTIES}
    return draw(st.fixed_dictionaries({}, optional=optional))


@st.composite
def wild_records(draw) -> dict:
    optional = {
        key: st.one_of(GOOD[key], BAD[key], json_like)
        if key in BAD
        else st.one_of(GOOD[key], json_like)
        if key in GOOD
        else json_like
        for key in INPUT_PROPERTIES
    }
    record = draw(st.fixed_dictionaries({}, optional=optional))
    extra = draw(st.dictionaries(plain_text, json_like, max_size=3))
    for key, value in extra.items():
        record.setdefault(key, value)
    return record


records = st.one_of(plausible_records(), plausible_records(), wild_records())


options = st.builds(
    MappingOptions,
    event_name_map=st.sampled_from([{}, {"Search": "CUSTOM_EVENT_1", "web": "VIEW"}]),
    default_event_name=st.sampled_from([None, "LEAD", "PURCHASE"]),
    default_action_source=st.sampled_from([None, "WEB", "APP"]),  # as settings.py checks it
    default_opt_out_targeting=st.booleans(),
    phone_default_country=st.sampled_from([None, "GB", "US"]),
)
streams = st.sampled_from(["conversions", "page_view", "orders", "Order Completed", "web"])


def raw_emails(value: object) -> list[str]:
    """Every string under `email` that holds an '@': the personal data that must not leak."""
    if isinstance(value, str):
        return [value.strip()] if "@" in value and value.strip() else []
    if isinstance(value, list):
        return [found for item in value for found in raw_emails(item)]
    return []


# --- properties -------------------------------------------------------------------------------


@SETTINGS
@given(record=records, opts=options, stream=streams)
def test_nothing_is_lost_and_nothing_leaks(record, opts, stream):
    mapper = EventMapper(opts)
    result = mapper.map(record, stream, NOW)

    # Nothing is lost: a valid event, or a rejection that says why.
    assert isinstance(result, (Mapped, Rejected))
    assert all(isinstance(warning, str) and warning for warning in result.warnings)
    if isinstance(result, Mapped):
        check_event(result.event, NOW)
        assert result.event_id == result.event["event_id"]
    else:
        assert result.reasons
        assert all(isinstance(p.code, str) and p.code.strip() for p in result.reasons)
        assert isinstance(result.event_id, str)
        assert result.event_id.strip()
        assert result.event_id == mapper.event_id(record, stream)

    # Nothing leaks: no raw email or phone in the event, the result or the rejects record.
    kept = mapper.redact(record, mapper.event_id(record, stream))
    assert set(kept) <= CONTRACT_INPUTS
    assert set(kept) <= set(record) | {"$event_id"}
    outputs = [json.dumps(kept, default=str).lower(), repr(result).lower()]
    if isinstance(result, Mapped):
        outputs.append(json.dumps(result.event).lower())
    secrets = raw_emails(record.get("email"))
    for text in outputs:
        if secrets:
            assert "@" not in text  # no other input holds an '@'
        for secret in secrets:
            assert secret.lower() not in text
        assert "7946 0958" not in text
        assert "555 010 2030" not in text
        assert "010-2030" not in text
        assert "+442079460958" not in text
        assert "+15550102030" not in text


@settings(max_examples=100, deadline=None)
@given(record=records, opts=options, stream=streams)
def test_mapping_is_deterministic_and_ignores_key_order(record, opts, stream):
    first = EventMapper(opts).map(record, stream, NOW)
    reordered = dict(reversed(list(record.items())))
    again = EventMapper(opts).map(reordered, stream, NOW)
    assert type(first) is type(again)
    if isinstance(first, Mapped):
        assert first.event == again.event
    else:
        assert first.event_id == again.event_id
        assert {p.code for p in first.reasons} == {p.code for p in again.reasons}


@settings(max_examples=200, deadline=None)
@given(value=emails | st.text(max_size=30))
def test_hashing_a_hashed_email_changes_nothing(value):
    once = hash_email(value)
    if once is None:
        local, at, domain = value.strip().lower().rpartition("@")
        assert not (local and at and domain)  # only what cannot be an address is refused
        return
    assert HEX64.fullmatch(once)
    assert hash_email(once) == once
    assert hash_email(once.upper()) == once
    if value.isascii():
        assert hash_email(f" {value.upper()}\t") == once


@settings(max_examples=100, deadline=None)
@given(value=phone_values, country=st.sampled_from([None, "GB", "US"]))
def test_hashing_a_hashed_phone_changes_nothing(value, country):
    once = hash_phone(value, country)
    if once is None:
        return
    assert HEX64.fullmatch(once)
    assert hash_phone(once, country) == once
    assert hash_phone(once.upper(), None) == once
