"""Reading `$event_time` and writing Spotify's `event_time` (docs/contract.md §2)."""

from __future__ import annotations

import datetime as dt
import decimal
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_spotify_conversions.event_time import (
    format_event_time,
    in_spotify_form,
    parse_event_time,
)

UTC = dt.timezone.utc
RFC3339_Z_MILLIS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
PLUS_2 = dt.timezone(dt.timedelta(hours=2))
MINUS_5_30 = dt.timezone(-dt.timedelta(hours=5, minutes=30))

# 1700000000 s after the epoch is 2023-11-14 22:13:20 UTC.
EPOCH = "2023-11-14T22:13:20.000Z"

ACCEPTED = [
    # ISO 8601 strings
    ("2024-03-10T12:34:56Z", "2024-03-10T12:34:56.000Z"),
    ("2024-03-10T12:34:56z", "2024-03-10T12:34:56.000Z"),
    ("2024-03-10T12:34:56.789Z", "2024-03-10T12:34:56.789Z"),
    ("2024-03-10T12:34:56+00:00", "2024-03-10T12:34:56.000Z"),
    ("2024-03-10T12:34:56.789+02:00", "2024-03-10T10:34:56.789Z"),
    ("2024-03-10T12:34:56-05:30", "2024-03-10T18:04:56.000Z"),
    ("2024-01-01T01:00:00+02:00", "2023-12-31T23:00:00.000Z"),  # crosses a year
    ("2024-03-10T12:34:56", "2024-03-10T12:34:56.000Z"),  # no offset = UTC
    ("2024-03-10T12:34:56.5", "2024-03-10T12:34:56.500Z"),
    ("2024-03-10 12:34:56", "2024-03-10T12:34:56.000Z"),
    ("  2024-03-10T12:34:56Z  ", "2024-03-10T12:34:56.000Z"),
    ("2024-03-10", "2024-03-10T00:00:00.000Z"),
    # datetimes and dates
    (dt.datetime(2024, 3, 10, 12, 34, 56, 789000, tzinfo=UTC), "2024-03-10T12:34:56.789Z"),
    (dt.datetime(2024, 3, 10, 12, 34, 56, tzinfo=PLUS_2), "2024-03-10T10:34:56.000Z"),
    (dt.datetime(2024, 3, 10, 12, 34, 56, tzinfo=MINUS_5_30), "2024-03-10T18:04:56.000Z"),
    (dt.datetime(2024, 3, 10, 12, 34, 56), "2024-03-10T12:34:56.000Z"),  # naive = UTC
    (dt.date(2024, 3, 10), "2024-03-10T00:00:00.000Z"),
    # epoch seconds
    (1700000000, EPOCH),
    (0, "1970-01-01T00:00:00.000Z"),
    (decimal.Decimal("1700000000"), EPOCH),
    (decimal.Decimal("1700000000.5"), "2023-11-14T22:13:20.500Z"),
    (decimal.Decimal("1700000000.123"), "2023-11-14T22:13:20.123Z"),
    ("1700000000", EPOCH),
    (" 1700000000 ", EPOCH),
    ("1700000000.25", "2023-11-14T22:13:20.250Z"),
    # epoch milliseconds
    (1700000000000, EPOCH),
    (1700000000123, "2023-11-14T22:13:20.123Z"),
    (decimal.Decimal("1700000000123"), "2023-11-14T22:13:20.123Z"),
    ("1700000000123", "2023-11-14T22:13:20.123Z"),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_accepted_forms(value, expected):
    parsed = parse_event_time(value)
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == dt.timedelta(0)
    assert format_event_time(parsed) == expected


def test_parse_returns_the_right_instant():
    assert parse_event_time("2024-03-10T12:34:56.789+02:00") == dt.datetime(
        2024, 3, 10, 10, 34, 56, 789000, tzinfo=UTC
    )
    assert parse_event_time(1700000000) == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_seconds_and_millis_agree():
    assert parse_event_time(1700000000) == parse_event_time(1700000000000)
    assert parse_event_time("1700000000") == parse_event_time("1700000000000")


def test_microseconds_as_ga4_exports_them_agree():
    assert parse_event_time(1700000000123456) == dt.datetime(
        2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC
    )
    assert parse_event_time("1700000000000000") == parse_event_time(1700000000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (99_999_999_999, dt.datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),  # seconds
        (100_000_000_000, dt.datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),  # milliseconds
        (99_999_999_999_999, dt.datetime(5138, 11, 16, 9, 46, 39, 999000, tzinfo=UTC)),
        (100_000_000_000_000, dt.datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),  # microseconds
    ],
)
def test_epoch_units_are_read_by_magnitude(value, expected):
    assert parse_event_time(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "not a time",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-03-10T25:00:00Z",
        "10/03/2024",
        "1.2.3",
        "--5",
        "",
        "   ",
        "NaN",
        "Infinity",
        None,
        True,
        False,
        [],
        ["2024-03-10T12:34:56Z"],
        {"time": "2024-03-10T12:34:56Z"},
        decimal.Decimal("NaN"),
        decimal.Decimal("Infinity"),
        decimal.Decimal("-Infinity"),
        10**30,
        decimal.Decimal("1E+400"),
        decimal.Decimal("1E+999999999"),  # must fail at once, not build a huge integer
        "1" * 5000,
    ],
)
def test_garbage_raises_value_error(value):
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract
        parse_event_time(value)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05.000Z"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "2024-01-02T03:04:05.006Z"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=PLUS_2), "2024-01-02T01:04:05.120Z"),
        (dt.datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "1999-12-31T23:59:59.999Z"),
    ],
)
def test_format_event_time(moment, expected):
    text = format_event_time(moment)
    assert text == expected
    assert RFC3339_Z_MILLIS.fullmatch(text)


def test_format_drops_sub_millisecond_digits():
    text = format_event_time(dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC))
    assert RFC3339_Z_MILLIS.fullmatch(text)
    assert text.startswith("2024-01-02T03:04:05.12")


# --- in_spotify_form: a value already in Spotify's form is passed on as it is ---------------


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_only_a_value_that_formats_to_itself_is_in_spotify_form(value, expected):
    assert in_spotify_form(value) == (value == expected)


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_value_in_spotify_form_is_exactly_what_formatting_gives(moment):
    text = format_event_time(moment)
    assert in_spotify_form(text)
    assert format_event_time(parse_event_time(text)) == text


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-10T12:34:56.789z",
        "2024-03-10 12:34:56.789Z",
        "2024-03-10T12:34:56,789Z",
        " 2024-03-10T12:34:56.789Z",
        "2024-03-10T12:34:56.7890Z",
    ],
)
def test_near_misses_of_spotify_form_are_not_in_it(value):
    assert not in_spotify_form(value)
    assert format_event_time(parse_event_time(value)) == "2024-03-10T12:34:56.789Z"


@pytest.mark.parametrize(
    "value",
    [
        "2023-02-29T12:00:00.000Z",  # no such day
        "2024-04-31T12:00:00.000Z",
        "0000-01-01T00:00:00.000Z",  # no year 0
        "2024-01-01T24:00:00.000Z",
        "2024-01-01T23:60:00.000Z",
        "2024-01-01T23:59:60.000Z",  # a leap second: Python has none
        "2024-13-01T00:00:00.000Z",
    ],
)
def test_impossible_times_in_spotify_shape_are_not_in_spotify_form(value):
    assert not in_spotify_form(value)
    with pytest.raises(ValueError, match=r"\w"):
        parse_event_time(value)


def test_only_strings_are_in_spotify_form():
    assert not in_spotify_form(None)
    assert not in_spotify_form(dt.datetime(2024, 1, 1, tzinfo=UTC))
