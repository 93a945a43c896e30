"""input_format and property_paths: where each property is read from, nested or flattened."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_spotify_conversions import event_id as ids
from target_spotify_conversions.input_formats import (
    SEGMENT_PATHS,
    check_property_paths,
    flattened,
    lookup,
    make_reader,
)
from target_spotify_conversions.mapping import (
    INPUT_PROPERTIES,
    EventMapper,
    Mapped,
    MappingOptions,
    Rejected,
)
from target_spotify_conversions.privacy import plainly_personal
from target_spotify_conversions.settings import Settings, SettingsError
from tests.harness import record_message, run_target, schema_message, target_config

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def reader(input_format: str = "freshpaint", **paths: list[str]):
    return make_reader(input_format, paths, INPUT_PROPERTIES)


def segment(record: dict[str, Any]) -> dict[str, Any]:
    return dict(reader("segment")(record))


def mapper(**options: Any) -> EventMapper:
    return EventMapper(MappingOptions(**options))


# --- paths --------------------------------------------------------------------------------


def test_lookup_walks_objects_and_list_indexes_and_finds_nothing_on_a_wrong_turn():
    record = {"a": {"b": [{"c": 1}, {"c": 2}]}, "s": "text"}
    assert lookup(record, ("a", "b", "1", "c")) == 2
    assert lookup(record, ("a", "x")) is None
    assert lookup(record, ("a", "b", "5", "c")) is None
    assert lookup(record, ("a", "b", "c")) is None
    assert lookup(record, ("s", "t")) is None
    assert lookup({"a": None}, ("a", "b")) is None


def test_flattened_forms_are_the_warehouse_column_and_the_sdk_column():
    assert flattened(("context", "userAgent")) == [
        ("context", "userAgent"), ("context_user_agent",), ("context_userAgent",),
        ("context__userAgent",), ("context.userAgent",)]
    assert flattened(("properties", "revenue")) == [
        ("properties", "revenue"), ("revenue",), ("properties__revenue",),
        ("properties.revenue",)]
    assert flattened(("context", "device", "advertisingId"))[1] == (
        "context_device_advertising_id",)
    assert flattened(("traits", "email"))[1] == ("email",)
    assert flattened(("messageId",)) == [("messageId",), ("message_id",)]
    assert flattened(("timestamp",)) == [("timestamp",)]


# --- freshpaint -----------------------------------------------------------------------------


def test_freshpaint_top_level_record_is_read_as_it_is():
    record = {"email": "a@b.org", "amount": 3}
    assert reader()(record) is record


def test_freshpaint_reads_names_inside_properties_when_the_top_level_lacks_them():
    record = {"event": "Order Completed", "email": " ", "amount": None,
              "properties": {"email": "a@b.org", "amount": decimal.Decimal("9.50"),
                             "event": "ignored", "other": "not read", "$ip": ""}}
    view = reader()(record)
    assert view["event"] == "Order Completed"  # the top level wins
    assert view["email"] == "a@b.org"
    assert view["amount"] == decimal.Decimal("9.50")  # the JSON type is kept
    assert "other" not in view
    assert "$ip" not in view  # an empty nested value is absent too


def test_freshpaint_ignores_a_properties_value_that_is_no_object():
    record = {"properties": "a string", "email": "a@b.org"}
    assert reader()(record) is record


# --- property_paths -------------------------------------------------------------------------


def test_property_paths_come_first_and_fall_through_in_order():
    read = reader(email=["customer.email_address", "customer.alt"], amount=["order.total"],
                  currency=["order.items.0.currency"])
    view = read({"email": "top@b.org", "customer": {"alt": "alt@b.org"},
                 "order": {"total": 12, "items": [{"currency": "EUR"}]}})
    assert view["email"] == "alt@b.org"
    assert view["amount"] == 12
    assert view["currency"] == "EUR"
    view = read({"email": "top@b.org", "customer": "not an object"})
    assert view["email"] == "top@b.org"  # nothing at the paths: the format's own place
    assert "amount" not in view


def test_property_paths_work_with_the_segment_format_too():
    view = reader("segment", email=["user.mail"])(
        {"user": {"mail": "u@b.org"}, "context": {"traits": {"email": "c@b.org"}}})
    assert view["email"] == "u@b.org"


def test_property_paths_setting_is_checked():
    assert check_property_paths({"email": "a.b"}, INPUT_PROPERTIES) == {"email": ["a.b"]}
    assert check_property_paths(None, INPUT_PROPERTIES) == {}
    with pytest.raises(ValueError, match="'mail' is not a property"):
        check_property_paths({"mail": ["a"]}, INPUT_PROPERTIES)
    for bad in ([""], ["a..b"], [3], {"a": 1}):
        with pytest.raises(ValueError, match=r"property_paths\['email'\]"):
            check_property_paths({"email": bad}, INPUT_PROPERTIES)
    with pytest.raises(ValueError, match="must be an object"):
        check_property_paths(["email"], INPUT_PROPERTIES)


def test_settings_check_input_format_and_property_paths():
    base = {"dry_run": True}
    options = Settings.from_config(
        {**base, "input_format": "segment", "property_paths": {"amount": ["order.total"]}}
    ).mapping_options
    assert options.input_format == "segment"
    assert options.property_paths == {"amount": ["order.total"]}
    assert Settings.from_config(base).mapping_options.input_format == "freshpaint"
    with pytest.raises(SettingsError, match="input_format"):
        Settings.from_config({**base, "input_format": "mixpanel"})
    with pytest.raises(SettingsError, match="property_paths"):
        Settings.from_config({**base, "property_paths": {"e-mail": ["x"]}})


# --- segment: every row of the table, nested and flattened ----------------------------------

SEGMENT_CASES = [
    # (property, nested record, warehouse row, expected value)
    ("spotify_event_name", {"properties": {"spotify_event_name": "LEAD"}},
     {"spotify_event_name": "LEAD"}, "LEAD"),
    ("event", {"event": "Order Completed"}, {"event_text": "Order Completed"},
     "Order Completed"),
    ("$event_id", {"messageId": "m-1", "id": "x"}, {"message_id": "m-1", "id": "x"}, "m-1"),
    ("$event_id", {"id": "m-2"}, {"id": "m-2"}, "m-2"),
    ("$event_time", {"timestamp": "T1", "originalTimestamp": "T2", "receivedAt": "T3"},
     {"timestamp": "T1", "original_timestamp": "T2", "received_at": "T3"}, "T1"),
    ("$event_time", {"originalTimestamp": "T2", "receivedAt": "T3"},
     {"original_timestamp": "T2", "received_at": "T3"}, "T2"),
    ("$event_time", {"receivedAt": "T3"}, {"received_at": "T3"}, "T3"),
    ("email", {"context": {"traits": {"email": "c@x.org"}}, "traits": {"email": "t@x.org"}},
     {"context_traits_email": "c@x.org"}, "c@x.org"),
    ("email", {"traits": {"email": "t@x.org"}, "properties": {"email": "p@x.org"}},
     {"email": "t@x.org"}, "t@x.org"),
    ("email", {"properties": {"email": "p@x.org"}}, {"email": "p@x.org"}, "p@x.org"),
    ("phone", {"context": {"traits": {"phone": "+44 20 7946 0958"}}},
     {"context_traits_phone": "+44 20 7946 0958"}, "+44 20 7946 0958"),
    ("$ip", {"context": {"ip": "203.0.113.7"}}, {"context_ip": "203.0.113.7"}, "203.0.113.7"),
    ("$user_agent", {"context": {"userAgent": "UA/1"}}, {"context_user_agent": "UA/1"},
     "UA/1"),
    ("$device_id", {"context": {"device": {"advertisingId": "ad-1", "id": "dev-1"}}},
     {"context_device_advertising_id": "ad-1", "context_device_id": "dev-1"}, "ad-1"),
    ("$device_id", {"context": {"device": {"id": "dev-1"}}}, {"context_device_id": "dev-1"},
     "dev-1"),
    ("event_source_url", {"context": {"page": {"url": "https://a.example/1"}},
                          "properties": {"url": "https://a.example/2"}},
     {"context_page_url": "https://a.example/1", "url": "https://a.example/2"},
     "https://a.example/1"),
    ("event_source_url", {"properties": {"url": "https://a.example/2"}},
     {"url": "https://a.example/2"}, "https://a.example/2"),
    ("amount", {"properties": {"revenue": 1.5, "total": 2, "value": 3}},
     {"revenue": 1.5, "total": 2, "value": 3}, 1.5),
    ("amount", {"properties": {"total": 2, "value": 3}}, {"total": 2, "value": 3}, 2),
    ("amount", {"properties": {"value": 3}}, {"value": 3}, 3),
    ("currency", {"properties": {"currency": "eur"}}, {"currency": "eur"}, "eur"),
    ("content_name", {"properties": {"name": "Shirt"}}, {"name": "Shirt"}, "Shirt"),
    ("content_category", {"properties": {"category": "Apparel & Accessories"}},
     {"category": "Apparel & Accessories"}, "Apparel & Accessories"),
]


@pytest.mark.parametrize(("name", "nested", "row", "expected"), SEGMENT_CASES)
def test_segment_reads_each_property_nested_and_from_warehouse_columns(
    name, nested, row, expected
):
    assert segment(nested)[name] == expected
    assert segment(row)[name] == expected


def test_segment_reads_the_sdk_flattened_columns():
    view = segment({"context__ip": "203.0.113.7", "context__traits__email": "a@b.org",
                    "properties__revenue": 4})
    assert (view["$ip"], view["email"], view["amount"]) == ("203.0.113.7", "a@b.org", 4)


def test_segment_reads_dotted_keys_and_unconverted_warehouse_columns():
    view = segment({"context.ip": "203.0.113.7", "context_userAgent": "UA/2",
                    "properties.total": 4, "context.device.advertisingId": "ad-9"})
    assert (view["$ip"], view["$user_agent"], view["amount"], view["$device_id"]) == (
        "203.0.113.7", "UA/2", 4, "ad-9")


def test_segment_page_call_is_a_page_view_and_an_event_wins_over_it():
    assert segment({"type": "page"})["event"] == "Page Viewed"
    assert segment({"type": "page", "event": "Signed Up"})["event"] == "Signed Up"
    assert "event" not in segment({"type": "identify"})


def test_segment_keeps_json_types_and_treats_missing_nested_keys_as_absent():
    view = segment({"properties": {"revenue": decimal.Decimal("10.10"), "total": None},
                    "context": {"traits": None, "device": "not an object"}})
    assert view["amount"] == decimal.Decimal("10.10")
    assert type(view["amount"]) is decimal.Decimal
    for name in ("email", "$device_id", "$ip"):
        assert name not in view


def test_segment_table_names_only_properties_the_mapping_reads():
    assert set(SEGMENT_PATHS) <= set(INPUT_PROPERTIES)


def test_segment_falls_back_to_the_freshpaint_name_for_properties_it_does_not_name():
    assert segment({"gender": "f"})["gender"] == "f"
    assert segment({"properties": {"$action_source": "WEB"}})["$action_source"] == "WEB"


# --- the mapping ---------------------------------------------------------------------------

SEGMENT_PURCHASE = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "msg-1",
    "timestamp": "2026-11-02T09:30:00.250+01:00",
    "context": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0",
                "traits": {"email": " Ana@Example.org "},
                "page": {"url": "https://shop.example/checkout"},
                "device": {"advertisingId": "ad-42"}},
    "properties": {"total": 50, "currency": "gbp", "name": "Shirt",
                   "category": "Apparel & Accessories > Clothing"},
}
WAREHOUSE_PURCHASE = {
    "id": "msg-1", "event": "order_completed", "event_text": "Order Completed",
    "timestamp": "2026-11-02T09:30:00.250+01:00", "context_ip": "203.0.113.9",
    "context_user_agent": "Mozilla/5.0", "context_traits_email": " Ana@Example.org ",
    "context_page_url": "https://shop.example/checkout", "context_device_advertising_id": "ad-42",
    "total": 50, "currency": "gbp", "name": "Shirt",
    "category": "Apparel & Accessories > Clothing",
}
EXPECTED_PURCHASE = {
    "event_name": "PURCHASE",
    "event_id": "msg-1",
    "event_time": "2026-11-02T08:30:00.250Z",
    "event_source_url": "https://shop.example/checkout",
    "user_data": {"hashed_emails": [sha("ana@example.org")], "ip_address": "203.0.113.9",
                  "user_agent": "Mozilla/5.0", "device_id": "ad-42"},
    "event_details": {"amount": 50, "currency": "GBP", "content_name": "Shirt",
                      "content_category": "1604"},
    "opt_out_targeting": True,
}


@pytest.mark.parametrize("record", [SEGMENT_PURCHASE, WAREHOUSE_PURCHASE])
def test_segment_purchase_maps_every_field(record):
    result = mapper(input_format="segment").map(record, "tracks", NOW)
    assert isinstance(result, Mapped), result
    assert result.event == EXPECTED_PURCHASE


def test_freshpaint_derived_event_id_is_unchanged_for_top_level_records():
    record = {"event": "Order Completed", "email": "a@b.org", "amount": 1, "currency": "EUR"}
    expected = ids.derive_event_id(record, "s")
    assert mapper().event_id(record, "s") == expected
    assert mapper().map(record, "s", NOW).event_id == expected
    assert expected == "aac44579-69c8-b4c8-fb50-c0ed5e065413"  # the id earlier runs sent


def test_derived_event_id_is_computed_from_the_record_as_received():
    record = {"type": "page", "context": {"ip": "203.0.113.7"}}
    result = mapper(input_format="segment").map(record, "pages", NOW)
    assert result.event_id == ids.derive_event_id(record, "pages")


def test_rejected_segment_event_keeps_what_was_read_with_the_email_hashed():
    record = {"messageId": "m-9", "event": "Order Completed",
              "context": {"traits": {"email": "Zed@Example.org"}}, "properties": {"total": 5}}
    m = mapper(input_format="segment")
    result = m.map(record, "tracks", NOW)
    assert isinstance(result, Rejected)
    assert [p.code for p in result.reasons] == ["purchase_without_currency"]
    kept = m.redact(record, result.event_id)
    assert kept["email"] == sha("zed@example.org")
    assert kept["amount"] == 5
    assert "context" not in kept
    assert "zed@example.org" not in json.dumps(kept).lower()


def test_freshpaint_record_in_a_properties_object_maps_like_a_flat_one():
    flat = {"$event_id": "e1", "spotify_event_name": "LEAD", "$ip": "203.0.113.7",
            "$event_time": "2026-11-02T10:00:00Z"}
    nested = {"event": "x", "properties": dict(flat)}
    assert mapper().map(nested, "s", NOW).event == {
        **mapper().map(flat, "s", NOW).event}


# --- property-based: nested and flattened Segment events map to the same event --------------

_TEXT = st.text(alphabet="abcdefgh XYZ-_.@", min_size=0, max_size=12)
_OPTIONAL = st.none() | _TEXT
_NUMBER = st.none() | st.integers(-10**6, 10**6) | st.decimals(
    min_value=-10**6, max_value=10**6, places=2, allow_nan=False)
_EVENT = st.sampled_from(["Order Completed", "Product Added", "Page Viewed", "Signed Up",
                          "Search", ""]) | _TEXT


@st.composite
def segment_events(draw: st.DrawFn) -> dict[str, Any]:
    """A Segment-spec event with any of the fields the target reads, some of them odd."""
    def maybe(value: Any) -> Any:
        return value if draw(st.booleans()) else None
    record: dict[str, Any] = {
        "type": draw(st.sampled_from(["track", "page", "identify"])),
        "event": draw(_EVENT | st.none()),
        "messageId": draw(_OPTIONAL),
        "timestamp": draw(st.none() | st.sampled_from(
            ["2026-11-01T10:00:00Z", "2026-11-01T10:00:00.5+02:00", "not a time", ""])),
        "receivedAt": draw(st.none() | st.just("2026-11-01T09:00:00Z")),
        "context": {
            "ip": draw(st.none() | st.sampled_from(["203.0.113.7", "2001:DB8::1", "300.1.1.1"])),
            "userAgent": draw(_OPTIONAL),
            "traits": {"email": draw(st.none() | st.sampled_from(
                ["a@example.org", " B@Example.org ", "nope"])),
                "phone": draw(st.none() | st.just("+44 20 7946 0958"))},
            "page": {"url": draw(st.none() | st.sampled_from(["https://a.example/x", "ftp://x"]))},
            "device": {"advertisingId": draw(_OPTIONAL), "id": draw(_OPTIONAL)},
        },
        "properties": {
            "revenue": draw(_NUMBER), "total": draw(_NUMBER), "value": draw(_NUMBER),
            "currency": draw(st.none() | st.sampled_from(["eur", "USD", "XYZ"])),
            "name": draw(_OPTIONAL),
            "category": draw(st.none() | st.sampled_from(["Apparel & Accessories", "166", "x"])),
            "spotify_event_name": draw(st.none() | st.sampled_from(["PURCHASE", "LEAD", "bad"])),
            "url": maybe("https://a.example/p"),
        },
    }
    return record


def warehouse_row(record: dict[str, Any]) -> dict[str, Any]:
    """How Segment's and RudderStack's warehouses store an event: one snake_case column per
    field, properties and traits without their prefix; written out here by hand."""
    context, props = record["context"], record["properties"]
    row = {
        "id": record["messageId"], "event_text": record["event"], "type": record["type"],
        "timestamp": record["timestamp"], "received_at": record["receivedAt"],
        "context_ip": context["ip"], "context_user_agent": context["userAgent"],
        "context_traits_email": context["traits"]["email"],
        "context_traits_phone": context["traits"]["phone"],
        "context_page_url": context["page"]["url"],
        "context_device_advertising_id": context["device"]["advertisingId"],
        "context_device_id": context["device"]["id"],
        **props,
    }
    return {key: value for key, value in row.items() if value is not None}


@settings(max_examples=300, deadline=None)
@given(segment_events())
def test_a_segment_event_and_its_warehouse_row_map_to_the_same_event(record):
    m = mapper(input_format="segment", default_event_name="CUSTOM_EVENT_1")
    nested, flat = m.map(record, "tracks", NOW), m.map(warehouse_row(record), "tracks", NOW)
    assert type(nested) is type(flat)
    same_id = (  # an id that is plainly an email or a phone is refused, and a derived one shown
        record["messageId"] is not None
        and record["messageId"].strip() != ""
        and not plainly_personal(record["messageId"])
    )
    if isinstance(nested, Mapped):
        if not same_id:  # derived from each record as received, so they differ
            nested.event.pop("event_id"), flat.event.pop("event_id")
        assert nested.event == flat.event
        assert nested.warnings == flat.warnings
    else:
        assert nested.reasons == flat.reasons
        assert not same_id or nested.event_id == flat.event_id


# --- the real CLI ---------------------------------------------------------------------------


def test_cli_delivers_segment_events_nested_and_from_warehouse_rows(fake, tmp_path):
    page = {"type": "page", "messageId": "page-1", "timestamp": "2026-11-02T10:00:00Z",
            "context": {"ip": "198.51.100.4", "page": {"url": "https://shop.example/"}},
            "properties": {"title": "Home"}}
    identify = {"type": "identify", "messageId": "id-1", "traits": {"email": "x@example.org"}}
    lines = [schema_message("tracks", {"type": "object", "properties": {}}),
             *(record_message(r, "tracks")
               for r in (SEGMENT_PURCHASE, page, identify)),
             record_message({**WAREHOUSE_PURCHASE, "id": "msg-2"}, "tracks")]
    config = target_config(fake.url, input_format="segment")
    run = run_target(tmp_path / "run", config, lines)

    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted["msg-1"] == EXPECTED_PURCHASE
    assert fake.accepted["msg-2"] == {**EXPECTED_PURCHASE, "event_id": "msg-2"}
    assert fake.accepted["page-1"] == {
        "event_name": "VIEW", "event_id": "page-1", "event_time": "2026-11-02T10:00:00.000Z",
        "event_source_url": "https://shop.example/", "user_data": {"ip_address": "198.51.100.4"},
        "opt_out_targeting": True}
    assert [(r["event_id"], r["reasons"]) for r in run.rejects()] == [
        ("id-1", ["unknown_event_name: neither event (absent) nor stream 'tracks' resolves, and no "
                  "default_event_name is set"])]
    everything = run.stdout + run.stderr + json.dumps(run.rejects())
    assert "x@example.org" not in everything
    assert "Ana@Example.org" not in everything


# --- flattening_enabled ----------------------------------------------------------------------


def flat_reader(input_format: str = "freshpaint", separator: str = "__", **paths: list[str]):
    return make_reader(input_format, paths, INPUT_PROPERTIES, separator)


def test_the_sdk_flattened_names_of_properties_are_read_when_flattening_is_on():
    record = {"spotify_event_name": "PURCHASE", "properties__email": "a@b.org",
              "properties__amount": 5, "properties__$ip": "203.0.113.9"}
    view = flat_reader()(record)
    assert (view["email"], view["amount"], view["$ip"]) == ("a@b.org", 5, "203.0.113.9")
    assert "email" not in reader()(record)  # flattening off: the names mean nothing
    # The property's own name, and its nested place, come first.
    assert flat_reader()({**record, "email": "top@b.org"})["email"] == "top@b.org"
    assert flat_reader(separator=".")({"properties.email": "a@b.org"})["email"] == "a@b.org"


def test_flattened_segment_events_and_property_paths_are_read():
    view = flat_reader("segment")({"context__traits__email": "c@b.org", "properties__revenue": 9,
                                   "properties__content_name": "Tee"})
    assert (view["email"], view["amount"], view["content_name"]) == ("c@b.org", 9, "Tee")
    read = flat_reader(phone=["customer.phone"])
    assert read({"customer__phone": "+1 415 555 0100"})["phone"] == "+1 415 555 0100"
    assert read({"customer": {"phone": "+1 415 555 0101"}})["phone"] == "+1 415 555 0101"


def test_cli_maps_a_flattened_stream_and_hints_at_identifiers_seen_only_flattened(
        fake, tmp_path):
    schema = {"type": "object", "properties": {
        "$event_id": {"type": "string"}, "spotify_event_name": {"type": "string"},
        "$event_time": {"type": "string"},
        "properties": {"type": "object", "properties": {
            "email": {"type": "string"}, "amount": {"type": "number"},
            "currency": {"type": "string"}}},
        "customer": {"type": "object", "properties": {"phone": {"type": "string"}}}}}
    rows = [{"$event_id": f"e{n}", "spotify_event_name": "PURCHASE",
             "$event_time": "2026-11-01T10:00:00Z",
             "properties": {"email": f"buyer{n}@example.org", "amount": 5, "currency": "EUR"},
             "customer": {"phone": f"+44 20 7946 09{n:02d}"}} for n in range(3)]
    lines = [schema_message("tracks", schema), *(record_message(row, "tracks") for row in rows)]
    config = target_config(fake.url, flattening_enabled=True, flattening_max_depth=1,
                           summary_file="summary.json")
    run = run_target(tmp_path / "run", config, lines)

    assert run.returncode == 0, run.stderr[-2000:]
    assert fake.accepted["e1"]["user_data"] == {"hashed_emails": [sha("buyer1@example.org")]}
    assert fake.accepted["e1"]["event_details"] == {"amount": 5, "currency": "EUR"}
    hints = json.loads((tmp_path / "run" / "summary.json").read_text())["hints"]
    assert hints == [
        'email was found only under flattened names ("properties__email" in 3 records), from '
        "which it was read; flattening_enabled is not needed by this target (it reads nested "
        "records itself)",
        'phone was found only under flattened names ("customer__phone" in 3 records), and '
        '"customer__phone" is read by no input format, so it was not sent: add its path to '
        'property_paths ({"phone": ["customer.phone"]}), which reads it flattened or not']
    assert all(f"Hint: {hint}" in run.stderr for hint in hints)

    config["property_paths"] = {"phone": ["customer.phone"]}
    run = run_target(tmp_path / "with-paths", config, lines)
    assert fake.accepted["e2"]["user_data"]["hashed_phone_number"] == sha("+442079460902")
    assert ('Hint: phone was found only under flattened names ("customer__phone" in 3 records), '
            "from which it was read") in run.stderr

