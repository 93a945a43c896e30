"""The fake Spotify endpoint is strict and its faults work, so tests built on it can be trusted."""

from __future__ import annotations

import copy
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from target_spotify_conversions.sandbox import FakeSpotify, check_body, count_body

REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-fake"
CID = "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01"
OTHER_CID = "0b8e2f1a-9c3d-4e5f-a6b7-c8d9e0f1a2b3"
EMAIL = "alice.example@example.com"
PHONE = "+15550102030"
H_EMAIL = hashlib.sha256(EMAIL.encode()).hexdigest()
H_PHONE = hashlib.sha256(PHONE.encode()).hexdigest()


def make_event(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A PURCHASE carrying every field, valid under the contract."""
    event: dict[str, Any] = {
        "event_name": "PURCHASE",
        "event_id": f"order-{i}",
        "event_time": "2025-01-17T21:42:16.123Z",
        "user_data": {
            "hashed_emails": [H_EMAIL],
            "hashed_phone_number": H_PHONE,
            "ip_address": "192.0.2.120",
            "device_id": "B338AFD6-B776-4568-A9CA-4BB956E78EC7",
            "user_agent": "Mozilla/5.0",
            "gender": "FEMALE",
            "request_ip_address": "2001:db8::1",
            "event_ip_address": "198.51.100.7",
            "platform_id": "p",
            "session_id": "s",
            "alias_id": "a",
            "cookie1": "c",
            "page_id": "pg",
            "connection_type": "wifi",
            "age_group": "25-34",
            "clickID": "1DUlBhTgKzU696Qk8BzQYY",
        },
        "event_details": {
            "amount": 64.0,
            "currency": "GBP",
            "content_name": "Pleated Midi Skirt",
            "content_category": "1581",
        },
        "action_source": "WEB",
        "event_source_url": "https://shop.example.com/products/skirt",
        "opt_out_targeting": False,
    }
    event.update(overrides)
    return event


def make_body(events: list[Any], cid: str = CID) -> dict[str, Any]:
    return {"conversion_events": {"capi_connection_id": cid, "events": events}}


def post(
    fake: FakeSpotify,
    payload: Any = None,
    *,
    token: str | None = TOKEN,
    session: requests.Session | None = None,
    url: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    if payload is not None and "data" not in kwargs:
        kwargs["json"] = payload
    return (session or requests).post(url or fake.url, headers=headers, timeout=5, **kwargs)


def assert_error_envelope(response: requests.Response) -> dict[str, Any]:
    payload = response.json()
    assert set(payload) == {"sp_trace_id", "messages", "error_codes"}
    assert len(payload["sp_trace_id"]) == 36
    assert isinstance(payload["messages"], list)
    assert isinstance(payload["error_codes"], list)
    assert payload["error_codes"]
    return payload


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify(token=TOKEN, connection_id=CID) as server:
        yield server
        assert server.internal_errors == []


# ---- accepting ------------------------------------------------------------------------------


def test_valid_request_is_accepted_and_recorded(fake: FakeSpotify) -> None:
    events = [make_event(0), make_event(1, event_name="VIEW", event_details={})]
    response = post(fake, make_body(events))
    assert response.status_code == 200
    assert response.json() == {"message": "SUCCESS"}
    assert response.headers["Content-Type"] == "application/json"
    assert fake.accepted_ids() == {"order-0", "order-1"}
    assert fake.accepted["order-0"] == events[0]
    assert (fake.accepted_count, fake.unique_count) == (2, 2)
    assert fake.contract_violations == []
    [record] = fake.requests
    assert record.status == 200
    assert record.event_ids == ["order-0", "order-1"]
    assert record.fault is None
    assert record.body_size == len(response.request.body)


def test_resent_events_count_twice_but_stay_unique(fake: FakeSpotify) -> None:
    body = make_body([make_event(0), make_event(1)])
    post(fake, body)
    post(fake, body)
    assert (fake.accepted_count, fake.unique_count) == (4, 2)
    assert fake.stats()["statuses"] == {200: 2}


MINIMAL = {
    "event_name": "VIEW",
    "event_id": "v-1",
    "event_time": "2025-01-01T00:00:00Z",
    "user_data": {"device_id": "dev-1"},
}


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(MINIMAL, id="minimal-device-id"),
        pytest.param({**MINIMAL, "user_data": {"ip_address": "2001:db8::17"}}, id="ipv6-only"),
        pytest.param({**MINIMAL, "user_data": {"hashed_emails": [H_EMAIL]}}, id="email-only"),
        pytest.param({**MINIMAL, "user_data": {"hashed_phone_number": H_PHONE}}, id="phone-only"),
        pytest.param({**MINIMAL, "event_time": "2025-01-01T00:00:00.123456789Z"}, id="ns-time"),
        pytest.param(
            {
                **MINIMAL,
                "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3)),
            },
            id="3s-ahead",
        ),
        pytest.param({**MINIMAL, "event_name": "CUSTOM_EVENT_5"}, id="custom-5"),
        pytest.param({**MINIMAL, "event_name": "ALIAS"}, id="alias"),
        pytest.param(make_event(event_details={"amount": 0, "currency": "JPY"}), id="int-amount"),
        pytest.param({**MINIMAL, "action_source": "OFFLINE", "opt_out_targeting": True}, id="opt"),
        pytest.param({**MINIMAL, "event_source_url": "http://example.com"}, id="http-url"),
    ],
)
def test_valid_variants_are_accepted(fake: FakeSpotify, event: dict[str, Any]) -> None:
    response = post(fake, make_body([event]))
    assert response.status_code == 200, response.text
    assert fake.contract_violations == []


def test_charset_parameter_and_chunked_body_are_accepted(fake: FakeSpotify) -> None:
    raw = json.dumps(make_body([make_event(0)])).encode()
    response = post(
        fake,
        data=iter([raw[:100], raw[100:]]),  # a generator makes requests send it chunked
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert fake.accepted_ids() == {"order-0"}


# ---- strictness: events -----------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return mutate


def _only_user_data(**user_data: Any) -> Callable[[dict[str, Any]], None]:
    return _set("user_data", user_data)


def _two_minutes_ahead(event: dict[str, Any]) -> None:
    """Dated when the test runs: a time fixed at collection lies in the past once a long
    suite reaches this test."""
    event["event_time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))


BROKEN_EVENTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown-key", _set("event_type", "x"), "events[1]: unexpected key 'event_type'"),
    ("missing-name", _drop("event_name"), "events[1]: missing event_name"),
    ("name-wrong-case", _set("event_name", "Purchase"), "events[1].event_name"),
    ("name-diagnostic", _set("event_name", "CHECKOUT"), "events[1].event_name"),
    ("name-custom-6", _set("event_name", "CUSTOM_EVENT_6"), "events[1].event_name"),
    ("name-not-string", _set("event_name", ["PURCHASE"]), "events[1].event_name"),
    ("missing-id", _drop("event_id"), "events[1]: missing event_id"),
    ("empty-id", _set("event_id", ""), "events[1].event_id"),
    ("blank-id", _set("event_id", "  "), "events[1].event_id"),
    ("numeric-id", _set("event_id", 42), "events[1].event_id"),
    ("missing-time", _drop("event_time"), "events[1]: missing event_time"),
    ("time-offset", _set("event_time", "2025-01-01T00:00:00+00:00"), "events[1].event_time"),
    ("time-naive", _set("event_time", "2025-01-01T00:00:00"), "events[1].event_time"),
    ("time-space", _set("event_time", "2025-01-01 00:00:00Z"), "events[1].event_time"),
    ("time-lower-z", _set("event_time", "2025-01-01T00:00:00z"), "events[1].event_time"),
    ("time-epoch", _set("event_time", 1735689600), "events[1].event_time"),
    ("time-impossible", _set("event_time", "2025-02-30T00:00:00Z"), "events[1].event_time"),
    ("time-future", _two_minutes_ahead, "in the future"),
    ("missing-user-data", _drop("user_data"), "events[1]: missing user_data"),
    ("user-data-list", _set("user_data", [H_EMAIL]), "events[1].user_data: not a JSON object"),
    ("no-identifier", _only_user_data(user_agent="UA", gender="MALE"), "none of"),
    ("emails-string", _set("user_data.hashed_emails", H_EMAIL), "user_data.hashed_emails"),
    ("emails-empty", _set("user_data.hashed_emails", []), "user_data.hashed_emails"),
    ("emails-raw", _set("user_data.hashed_emails", [H_EMAIL, EMAIL]), "hashed_emails[1]"),
    ("emails-upper", _set("user_data.hashed_emails", [H_EMAIL.upper()]), "hashed_emails[0]"),
    ("emails-short", _set("user_data.hashed_emails", [H_EMAIL[:63]]), "hashed_emails[0]"),
    ("emails-dup", _set("user_data.hashed_emails", [H_EMAIL, H_EMAIL]), "duplicate digests"),
    ("phone-list", _set("user_data.hashed_phone_number", [H_PHONE]), "hashed_phone_number"),
    ("phone-raw", _set("user_data.hashed_phone_number", PHONE), "hashed_phone_number"),
    ("ip-bad", _set("user_data.ip_address", "999.1.2.3"), "user_data.ip_address"),
    ("ip-hashed", _set("user_data.ip_address", H_EMAIL), "user_data.ip_address"),
    ("ip-number", _set("user_data.ip_address", 3232235777), "user_data.ip_address"),
    ("request-ip", _set("user_data.request_ip_address", "localhost"), "request_ip_address"),
    ("event-ip", _set("user_data.event_ip_address", "1.2.3"), "event_ip_address"),
    ("gender-lower", _set("user_data.gender", "female"), "user_data.gender"),
    ("gender-letter", _set("user_data.gender", "F"), "user_data.gender"),
    ("user-data-email", _set("user_data.email", EMAIL), "user_data: unexpected key 'email'"),
    ("device-number", _set("user_data.device_id", 12345), "user_data.device_id"),
    ("ua-empty", _set("user_data.user_agent", ""), "user_data.user_agent"),
    ("click-null", _set("user_data.clickID", None), "user_data.clickID"),
    ("details-list", _set("event_details", []), "event_details: not a JSON object"),
    ("details-key", _set("event_details.value", 3), "event_details: unexpected key 'value'"),
    ("amount-string", _set("event_details.amount", "64.00"), "event_details.amount"),
    ("amount-bool", _set("event_details.amount", True), "event_details.amount"),
    ("amount-null", _set("event_details.amount", None), "event_details.amount"),
    ("currency-lower", _set("event_details.currency", "gbp"), "event_details.currency"),
    ("currency-unknown", _set("event_details.currency", "XYZ"), "event_details.currency"),
    ("currency-symbol", _set("event_details.currency", "$"), "event_details.currency"),
    ("name-number", _set("event_details.content_name", 7), "event_details.content_name"),
    ("category-text", _set("event_details.content_category", "Apparel"), "content_category"),
    ("category-int", _set("event_details.content_category", 1581), "content_category"),
    ("purchase-no-amount", _drop("event_details.amount"), "PURCHASE without event_details.amount"),
    ("purchase-no-currency", _drop("event_details.currency"), "without event_details.currency"),
    ("purchase-no-details", _drop("event_details"), "PURCHASE without event_details.amount"),
    ("source-lower", _set("action_source", "web"), "events[1].action_source"),
    ("source-other", _set("action_source", "EMAIL"), "events[1].action_source"),
    ("url-ftp", _set("event_source_url", "ftp://shop.example.com"), "event_source_url"),
    ("url-bare", _set("event_source_url", "shop.example.com/p"), "event_source_url"),
    ("url-scheme-only", _set("event_source_url", "https://"), "event_source_url"),
    ("opt-out-string", _set("opt_out_targeting", "true"), "opt_out_targeting"),
    ("opt-out-int", _set("opt_out_targeting", 1), "opt_out_targeting"),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in BROKEN_EVENTS]
)
def test_each_broken_event_is_refused_and_recorded(
    fake: FakeSpotify, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    broken = copy.deepcopy(make_event(1))
    mutate(broken)
    response = post(fake, make_body([make_event(0), broken]))
    assert response.status_code == 400
    payload = assert_error_envelope(response)
    assert any(expected in m for m in payload["messages"]), payload["messages"]
    violations = fake.contract_violations
    assert violations
    assert any(expected in v for v in violations), violations
    assert all(v.startswith("request #1 (400): ") for v in violations)
    assert fake.accepted == {}
    assert fake.accepted_count == 0


def test_duplicate_event_id_in_one_request_is_a_violation(fake: FakeSpotify) -> None:
    response = post(fake, make_body([make_event(0), make_event(1), make_event(0)]))
    assert response.status_code == 400
    assert fake.contract_violations == [
        "request #1 (400): events[2].event_id: duplicates events[0]"
    ]


def test_messages_carry_no_personal_data(fake: FakeSpotify) -> None:
    event = make_event(0)
    event["user_data"].update(
        hashed_emails=[EMAIL],
        hashed_phone_number=PHONE,
        ip_address="not-an-ip-10.1.2.3",
        device_id="",
        gender="woman",
    )
    event["user_data"][EMAIL] = "x"  # a value used as a key
    event["event_details"]["content_category"] = "Clothing secret-category"
    response = post(fake, make_body([event]))
    assert response.status_code == 400
    text = response.text + "\n".join(fake.contract_violations)
    for value in (EMAIL, "alice", PHONE, "5550102030", "10.1.2.3", "woman", "secret"):
        assert value not in text
    assert "<non-identifier key>" in text


# ---- strictness: transport and envelope ----------------------------------------------------------


def _raw(fake: FakeSpotify, body: bytes, **headers: str) -> requests.Response:
    base = {"Content-Type": "application/json"}
    return post(fake, data=body, headers={**base, **headers})


def _body_with(**envelope: Any) -> dict[str, Any]:
    body = make_body([make_event(0)])
    body["conversion_events"].update(envelope)
    return body


BROKEN_REQUESTS: list[tuple[str, Callable[[FakeSpotify], requests.Response], str]] = [
    (
        "method-put",
        lambda f: requests.put(
            f.url, json=make_body([make_event()]), headers={"Authorization": f"Bearer {TOKEN}"}
        ),
        "method is not POST",
    ),
    (
        "method-get",
        lambda f: requests.get(f.url, headers={"Authorization": f"Bearer {TOKEN}"}),
        "method is not POST",
    ),
    (
        "query-string",
        lambda f: post(f, make_body([make_event()]), url=f.url + "?test=1"),
        "query string present",
    ),
    (
        "content-type-text",
        lambda f: _raw(
            f, json.dumps(make_body([make_event()])).encode(), **{"Content-Type": "text/plain"}
        ),
        "Content-Type is not application/json",
    ),
    (
        "content-type-missing",
        lambda f: post(f, data=json.dumps(make_body([make_event()])).encode()),
        "Content-Type is not application/json",
    ),
    (
        "gzip",
        lambda f: _raw(
            f, json.dumps(make_body([make_event()])).encode(), **{"Content-Encoding": "gzip"}
        ),
        "Content-Encoding",
    ),
    ("not-json", lambda f: _raw(f, b"{conversion_events: []}"), "body is not UTF-8 JSON"),
    ("not-utf8", lambda f: _raw(f, b'{"a": "\xff"}'), "body is not UTF-8 JSON"),
    ("empty-body", lambda f: _raw(f, b""), "body is not UTF-8 JSON"),
    (
        "nan",
        lambda f: _raw(
            f,
            json.dumps(make_body([make_event()])).replace("64.0", "NaN").encode(),
        ),
        "body is not UTF-8 JSON",
    ),
    (
        "duplicate-json-key",
        lambda f: _raw(
            f,
            json.dumps(make_body([make_event()]))
            .replace('"event_name": "PURCHASE"', '"event_name": "PURCHASE", "event_name": "VIEW"')
            .encode(),
        ),
        "duplicate key",
    ),
    ("body-list", lambda f: post(f, [make_event()]), "body: not a JSON object"),
    (
        "extra-top-key",
        lambda f: post(f, {**make_body([make_event()]), "test_event_code": "x"}),
        "body: unexpected key 'test_event_code'",
    ),
    (
        "missing-envelope",
        lambda f: post(f, {"events": [make_event()]}),
        "body.conversion_events: missing",
    ),
    (
        "extra-envelope-key",
        lambda f: post(f, _body_with(third_party_source="x")),
        "body.conversion_events: unexpected key 'third_party_source'",
    ),
    (
        "connection-not-uuid",
        lambda f: post(f, _body_with(capi_connection_id="my-connection")),
        "capi_connection_id",
    ),
    (
        "connection-number",
        lambda f: post(f, _body_with(capi_connection_id=42)),
        "capi_connection_id",
    ),
    (
        "events-missing",
        lambda f: post(f, {"conversion_events": {"capi_connection_id": CID}}),
        "events: missing",
    ),
    ("events-empty", lambda f: post(f, make_body([])), "events: missing, not a list, or empty"),
    ("events-object", lambda f: post(f, _body_with(events=make_event())), "events: missing"),
    ("event-string", lambda f: post(f, make_body([make_event(), "x"])), "events[1]: not a JSON"),
]


@pytest.mark.parametrize(
    ("send", "expected"), [pytest.param(s, e, id=i) for i, s, e in BROKEN_REQUESTS]
)
def test_each_broken_request_is_refused_and_recorded(
    fake: FakeSpotify, send: Callable[[FakeSpotify], requests.Response], expected: str
) -> None:
    response = send(fake)
    assert response.status_code == 400, response.text
    payload = assert_error_envelope(response)
    assert any(expected in m for m in payload["messages"]), payload["messages"]
    assert any(expected in v for v in fake.contract_violations), fake.contract_violations
    assert fake.accepted_count == 0


def test_wrong_path_is_404_and_a_violation(fake: FakeSpotify) -> None:
    response = post(fake, make_body([make_event()]), url=fake.url.rstrip("/"))
    assert response.status_code == 404
    assert_error_envelope(response)
    assert fake.contract_violations == ["request #1 (404): path is not /capi-direct/events/"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="basic"),
    ],
)
def test_bad_token_is_401_without_violation(fake: FakeSpotify, headers: dict[str, str]) -> None:
    response = post(fake, make_body([make_event()]), token=None, headers=headers)
    assert response.status_code == 401
    assert assert_error_envelope(response)["error_codes"] == ["UNAUTHENTICATED"]
    assert fake.contract_violations == []
    assert fake.accepted_count == 0


def test_other_connection_id_is_403(fake: FakeSpotify) -> None:
    response = post(fake, make_body([make_event()], cid=OTHER_CID))
    assert response.status_code == 403
    assert assert_error_envelope(response)["error_codes"] == ["PERMISSION_DENIED"]
    assert fake.contract_violations == []
    assert fake.accepted_count == 0


def test_several_token_and_connection_pairs_each_keep_their_own_events() -> None:
    other_token = "test-token-other"
    with FakeSpotify(token=TOKEN, connection_id=CID, credentials={other_token: OTHER_CID}) as fake:
        assert post(fake, make_body([make_event(0)])).status_code == 200
        other = make_body([make_event(1)], cid=OTHER_CID)
        assert post(fake, other, token=other_token).status_code == 200
        assert post(fake, other).status_code == 403  # a token of another connection
        assert post(fake, make_body([make_event(2)]), token=other_token).status_code == 403
        assert post(fake, other, token="test-token-none").status_code == 401
        assert fake.accepted_ids_by_connection() == {CID: {"order-0"}, OTHER_CID: {"order-1"}}
        assert [r.connection_id for r in fake.requests][:2] == [CID, OTHER_CID]
        assert fake.contract_violations == []


def test_a_retry_after_holds_only_the_token_it_was_given_to() -> None:
    other_token = "test-token-other"
    with FakeSpotify(token=TOKEN, connection_id=CID, credentials={other_token: OTHER_CID}) as fake:
        fake.fail_next(1, 429, retry_after=3)
        assert post(fake, make_body([make_event(0)])).status_code == 429
        time.sleep(0.3)  # past the slack for requests already in flight
        other = make_body([make_event(1)], cid=OTHER_CID)
        assert post(fake, other, token=other_token).status_code == 200
        assert fake.retry_after_violations == []
        assert post(fake, make_body([make_event(0)])).status_code == 200
        assert len(fake.retry_after_violations) == 1


def test_oversize_body_and_too_many_events_are_413(fake: FakeSpotify) -> None:
    huge = make_event(0)
    huge["event_details"]["content_name"] = "x" * 1_000_000
    response = post(fake, make_body([huge]))  # default limit 1,000,000 bytes
    assert response.status_code == 413
    assert_error_envelope(response)

    fake.configure(max_events=2, max_body_bytes=1_000)
    assert post(fake, make_body([make_event(i) for i in range(3)])).status_code == 413
    assert post(fake, make_body([make_event(i) for i in range(2)])).status_code == 413  # bytes
    fake.configure(max_events=2, max_body_bytes=None)
    assert post(fake, make_body([make_event(i) for i in range(2)])).status_code == 200
    assert fake.accepted_ids() == {"order-0", "order-1"}
    assert fake.contract_violations == []
    assert [r.status for r in fake.requests] == [413, 413, 413, 200]


def test_reject_events_names_the_offending_indexes(fake: FakeSpotify) -> None:
    fake.reject_events({"order-1", "order-3"})
    response = post(fake, make_body([make_event(i) for i in range(4)]))
    assert response.status_code == 400
    assert assert_error_envelope(response)["messages"] == [
        "events[1]: event refused",
        "events[3]: event refused",
    ]
    assert fake.requests[0].fault == "reject_events"
    assert fake.accepted_count == 0
    assert post(fake, make_body([make_event(0), make_event(2)])).status_code == 200
    fake.reject_events(set())
    assert post(fake, make_body([make_event(1)])).status_code == 200
    assert fake.accepted_ids() == {"order-0", "order-1", "order-2"}
    assert fake.contract_violations == []


def test_check_body_works_on_its_own() -> None:
    assert check_body(make_body([make_event(0), MINIMAL])).violations == []
    found = check_body(make_body([make_event(0, event_name="Purchase")]))
    assert found.violations == ["events[0].event_name: not a Spotify event name"]


# ---- faults --------------------------------------------------------------------------------------


def test_429_carries_retry_after_and_an_early_request_is_a_violation(fake: FakeSpotify) -> None:
    fake.configure(p_429=1.0, retry_after=0.2)
    response = post(fake, make_body([make_event(0)]))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"  # delay-seconds: rounded up to an integer
    assert assert_error_envelope(response)["error_codes"] == ["RESOURCE_EXHAUSTED"]
    assert fake.requests[0].fault == "p_429"
    assert fake.requests[0].retry_after == 1
    assert fake.requests[0].answered >= fake.requests[0].arrival
    assert fake.accepted_count == 0
    fake.configure()
    time.sleep(0.3)  # beyond the slack for requests that were already in flight
    assert post(fake, make_body([make_event(0)])).status_code == 200
    [violation] = fake.retry_after_violations
    assert violation.startswith("request #2 arrived ")
    assert "request #1" in violation
    assert fake.stats()["retry_after_violations"] == 1


def test_waiting_out_retry_after_is_no_violation(fake: FakeSpotify) -> None:
    fake.fail_next(1, 429, retry_after=1)
    first = post(fake, make_body([make_event(0)]))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    time.sleep(1.0)
    assert post(fake, make_body([make_event(0)])).status_code == 200
    assert fake.retry_after_violations == []


def test_429_without_retry_after(fake: FakeSpotify) -> None:
    fake.configure(p_429=1.0, retry_after=None)
    response = post(fake, make_body([make_event(0)]))
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert post(fake, make_body([make_event(0)])).status_code == 429
    assert fake.retry_after_violations == []


def test_fail_next_queues_and_faults_are_not_accepted(fake: FakeSpotify) -> None:
    fake.fail_next(2, 503)
    fake.fail_next(1, 401)
    statuses = [post(fake, make_body([make_event(0)])).status_code for _ in range(4)]
    assert statuses == [503, 503, 401, 200]
    assert [r.fault for r in fake.requests] == ["fail_next"] * 3 + [None]
    assert fake.accepted_count == 1
    assert fake.stats()["faults"] == {"fail_next": 3}


def test_fail_next_can_announce_retry_after_on_5xx(fake: FakeSpotify) -> None:
    fake.fail_next(1, 503, retry_after=2.5)
    response = post(fake, make_body([make_event(0)]))
    assert (response.status_code, response.headers["Retry-After"]) == (503, "3")
    fake.fail_next(1, 503)
    time.sleep(0.3)  # past the slack for requests already in flight
    assert "Retry-After" not in post(fake, make_body([make_event(0)])).headers
    assert len(fake.retry_after_violations) == 1  # the second request came 3 s too early


def test_violations_across_events_are_all_reported(fake: FakeSpotify) -> None:
    events = [make_event(0), make_event(1), make_event(2)]
    del events[0]["event_id"]
    events[2]["event_name"] = "Purchase"
    response = post(fake, make_body(events))
    assert response.status_code == 400
    assert response.json()["messages"] == [
        "events[0]: missing event_id",
        "events[2].event_name: not a Spotify event name",
    ]


def test_fault_keeps_recording_violations(fake: FakeSpotify) -> None:
    fake.fail_next(1, 503)
    response = post(fake, make_body([make_event(0, event_name="Purchase")]))
    assert response.status_code == 503
    assert fake.contract_violations == [
        "request #1 (503): events[0].event_name: not a Spotify event name"
    ]


def test_random_5xx_is_seeded() -> None:
    def run(seed: int) -> list[int]:
        with FakeSpotify(token=TOKEN, connection_id=CID, seed=seed) as server:
            server.configure(p_5xx=0.5)
            return [post(server, make_body([make_event(0)])).status_code for _ in range(12)]

    first = run(7)
    assert first == run(7)
    assert set(first) <= {200, 500, 502, 503, 504}
    assert 200 in first
    assert set(first) - {200}


def test_drop_closes_without_answer_and_the_session_recovers(fake: FakeSpotify) -> None:
    session = requests.Session()
    assert post(fake, make_body([make_event(0)]), session=session).status_code == 200
    fake.configure(p_drop=1.0)
    with pytest.raises(requests.ConnectionError):
        post(fake, make_body([make_event(1)]), session=session)
    fake.fail_next(1, FakeSpotify.DROP)
    fake.configure()
    with pytest.raises(requests.ConnectionError):
        post(fake, make_body([make_event(1)]), session=session)
    assert post(fake, make_body([make_event(1)]), session=session).status_code == 200
    records = fake.requests
    assert [(r.status, r.fault) for r in records] == [
        (200, None),
        (None, "p_drop"),
        (None, "fail_next"),
        (200, None),
    ]
    assert records[1].event_ids == ["order-1"]  # the body was read before hanging up
    assert fake.accepted_count == 2
    assert fake.stats()["dropped"] == 2


def test_latency_delays_answers(fake: FakeSpotify) -> None:
    fake.configure(latency=0.25)
    start = time.monotonic()
    assert post(fake, make_body([make_event(0)])).status_code == 200
    assert time.monotonic() - start >= 0.25
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            fake.url,
            json=make_body([make_event(1)]),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=0.05,
        )


def test_outage_ends_after_its_seconds(fake: FakeSpotify) -> None:
    fake.outage(0.3)
    assert post(fake, make_body([make_event(0)])).status_code == 503
    assert post(fake, make_body([make_event(0)])).status_code == 503
    time.sleep(0.35)
    assert post(fake, make_body([make_event(0)])).status_code == 200
    assert [r.fault for r in fake.requests] == ["outage", "outage", None]


def test_an_events_per_second_limit_answers_429_beyond_it(fake: FakeSpotify) -> None:
    fake.configure(events_per_second=10)
    ten = make_body([make_event(i) for i in range(10)])
    assert post(fake, ten).status_code == 200, "a full bucket takes one second's worth"
    refused = post(fake, make_body([make_event(10)]))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert assert_error_envelope(refused)["error_codes"] == ["RESOURCE_EXHAUSTED"]
    assert fake.requests[-1].fault == "rate_limit"
    time.sleep(1.0)  # the announced second: the bucket has refilled
    assert post(fake, make_body([make_event(10)])).status_code == 200
    assert fake.unique_count == 11
    assert fake.retry_after_violations == []
    assert fake.stats()["faults"]["rate_limit"] == 1


def test_a_request_larger_than_the_rate_passes_on_a_full_bucket(fake: FakeSpotify) -> None:
    fake.configure(events_per_second=5)
    assert post(fake, make_body([make_event(i) for i in range(8)])).status_code == 200
    refused = post(fake, make_body([make_event(8)]))
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")


def test_refuse_for_refuses_connections_then_serves_on_the_same_port() -> None:
    with FakeSpotify(token=TOKEN, connection_id=CID, refuse_for=0.5) as server:
        with pytest.raises(requests.ConnectionError, match=r"[Rr]efused"):
            post(server, make_body([make_event(0)]))
        time.sleep(0.6)
        assert post(server, make_body([make_event(0)])).status_code == 200
        assert server.unique_count == 1


def test_a_fake_stopped_during_its_refusal_stops_at_once() -> None:
    server = FakeSpotify(token=TOKEN, connection_id=CID, refuse_for=30).start()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


def test_always_and_back(fake: FakeSpotify) -> None:
    fake.always(500)
    assert post(fake, make_body([make_event(0)])).status_code == 500
    fake.always(None)
    assert post(fake, make_body([make_event(0)])).status_code == 200


def test_reset_faults(fake: FakeSpotify) -> None:
    fake.always(503)
    fake.fail_next(3, 500)
    fake.outage(60)
    fake.reject_events({"order-0"})
    fake.configure(p_5xx=1.0)
    fake.reset_faults()
    assert post(fake, make_body([make_event(0)])).status_code == 200


def test_keep_alive_and_stop_closes_kept_connections() -> None:
    server = FakeSpotify(token=TOKEN, connection_id=CID).start()
    session = requests.Session()
    for i in range(5):
        assert post(server, make_body([make_event(i)]), session=session).status_code == 200
    assert server.stats()["connections"] == 1
    url = server.url
    server.stop()
    with pytest.raises(requests.ConnectionError):
        post(server, make_body([make_event(9)]), session=session, url=url)


def test_concurrent_clients_are_counted_exactly(fake: FakeSpotify) -> None:
    fake.configure(p_5xx=0.3, p_429=0.1, retry_after=0)
    accepted: list[int] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        session = requests.Session()
        for n in range(15):
            events = [make_event(worker * 1000 + n * 10 + k) for k in range(3)]
            if post(fake, make_body(events), session=session).status_code == 200:
                with lock:
                    accepted.append(len(events))

    threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = fake.stats()
    assert stats["requests"] == 90
    assert stats["accepted_count"] == sum(accepted) == fake.unique_count
    assert stats["statuses"][200] == len(accepted)
    assert fake.contract_violations == []


def test_stats_endpoint(fake: FakeSpotify) -> None:
    post(fake, make_body([make_event(0)]))
    payload = requests.get(fake.stats_url, timeout=5).json()
    assert payload["requests"] == 1
    assert payload["accepted_count"] == 1
    assert payload["statuses"] == {"200": 1}
    assert len(fake.requests) == 1  # /_stats itself is not recorded


def test_stats_count_accepted_events_and_refused_events_by_reason(fake: FakeSpotify) -> None:
    bad_gender = make_event(1)
    bad_gender["user_data"]["gender"] = "X"
    bad_email = make_event(2)
    bad_email["user_data"]["hashed_emails"] = [H_EMAIL, "alice@example.com"]
    for _ in range(2):  # a client bisecting a refused request sends the bad event again
        refused = post(fake, make_body([make_event(0), bad_gender, bad_email]))
        assert refused.status_code == 400
        assert "events[1].user_data.gender: not MALE or FEMALE" in refused.json()["messages"]
    assert post(fake, make_body([make_event(0), make_event(3)])).status_code == 200
    fake.reject_events({"order-4"})
    assert post(fake, make_body([make_event(4)])).status_code == 400
    stats = requests.get(fake.stats_url, timeout=5).json()
    assert stats["accepted_events"] == 2
    assert stats["refused_events"] == {
        "event refused": 1,
        "user_data.gender: not MALE or FEMALE": 1,
        "user_data.hashed_emails: not a lowercase hex SHA-256 digest": 1,
    }
    assert "alice" not in json.dumps(stats)


# ---- count_only --------------------------------------------------------------------------------


def test_count_only_counts_unique_ids_without_keeping_events() -> None:
    with FakeSpotify(token=TOKEN, connection_id=CID, count_only=True) as server:
        odd = make_event(2, event_name="not checked in count_only")
        assert post(server, make_body([make_event(0), make_event(1), odd])).status_code == 200
        assert post(server, make_body([make_event(1), make_event(3)])).status_code == 200
        assert (server.accepted_count, server.unique_count) == (5, 4)
        assert server.accepted_ids() == {"order-0", "order-1", "order-2", "order-3"}
        assert server.accepted == {}
        assert server.requests[0].event_ids == []
        assert server.requests[0].n_events == 3
        assert server.contract_violations == []
        # still checked: auth, envelope, ids, sizes
        assert post(server, make_body([make_event(0)]), token="bad").status_code == 401
        assert post(server, {"conversion_events": {"events": []}}).status_code == 400
        assert post(server, make_body([make_event(5), make_event(5)])).status_code == 400
        server.configure(max_events=1)
        assert post(server, make_body([make_event(6), make_event(7)])).status_code == 413
        assert len(server.contract_violations) == 3
        assert server.unique_count == 4


def test_count_body_reads_what_check_body_reads_of_a_good_body() -> None:
    body = make_body([make_event(0), make_event(1, event_name="not checked")])
    quick = count_body(json.dumps(body).encode())
    full = check_body(body, per_event=False)
    assert quick is not None
    assert (quick.connection_id, quick.event_ids, quick.violations) == (
        full.connection_id,
        full.event_ids,
        [],
    )
    assert [event["event_id"] for event in quick.events] == ["order-0", "order-1"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"conversion_events": {"capi_connection_id": "%s", "events": [{"event_id": NaN}]}}',
        json.dumps(make_body([make_event(0)]) | {"extra": 1}).encode(),
        json.dumps(make_body([make_event(0)], cid="not-a-uuid")).encode(),
        json.dumps(make_body([])).encode(),
        json.dumps(make_body([make_event(0), make_event(0)])).encode(),
        json.dumps(make_body([make_event(0, event_id=" ")])).encode(),
        json.dumps(make_body([make_event(0, event_id=7)])).encode(),
        json.dumps(make_body([{"event_name": "PURCHASE"}])).encode(),
        json.dumps(make_body(["not an object"])).encode(),
    ],
)
def test_count_body_leaves_every_odd_body_to_the_full_check(body: bytes) -> None:
    body = body.replace(b"%s", CID.encode())
    assert count_body(body) is None
    with FakeSpotify(token=TOKEN, connection_id=CID, count_only=True) as server:
        answer = post(server, data=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400
        assert server.contract_violations, "the full check names what is wrong"
        assert server.unique_count == 0


def test_count_only_counts_every_event_of_full_size_requests() -> None:
    # How fast it counts is the benchmark's business (benchmarks/run.py measures it).
    with FakeSpotify(token=TOKEN, connection_id=CID, count_only=True) as server:
        session = requests.Session()
        bodies = [
            json.dumps(make_body([make_event(n * 500 + k) for k in range(500)])).encode()
            for n in range(50)
        ]
        for body in bodies:
            response = post(
                server, data=body, session=session, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200
        assert server.unique_count == 25_000
        assert server.accepted == {}, "count-only keeps no events"


# ---- stand-alone process -----------------------------------------------------------------------


def test_standalone_process_prints_url_serves_and_reports() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "target_spotify_conversions.sandbox",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--connection-id",
            CID,
            "--credential",
            f"test-token-other={OTHER_CID}",
            "--count-only",
            "--latency",
            "0.01",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("URL http://127.0.0.1:")
        url = line.split()[1]
        assert url.endswith("/capi-direct/events/")
        response = requests.post(
            url,
            json=make_body([make_event(0), make_event(1)]),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert response.status_code == 200
        other = requests.post(
            url,
            json=make_body([make_event(2)], cid=OTHER_CID),
            headers={"Authorization": "Bearer test-token-other"},
            timeout=5,
        )
        assert other.status_code == 200
        live = requests.get(url.replace("/capi-direct/events/", "/_stats"), timeout=5).json()
        assert live["unique_count"] == 3
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    final = json.loads(lines[0])
    assert (final["requests"], final["accepted_count"], final["unique_count"]) == (2, 3, 3)
    assert err == ""
