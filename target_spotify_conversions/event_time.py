"""`$event_time` in the forms warehouses and analytics tools write it (docs/contract.md §2)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TypeGuard

from .values import finite_decimal

UTC = dt.timezone.utc
# Epoch values are read by magnitude: below 1e11 seconds (1e11 s is the year 5138), below 1e14
# milliseconds (1e11 ms is 1973, 1e14 ms is 5138), above that microseconds (GA4's
# event_timestamp; 1e14 us is 1973).
_MILLIS_THRESHOLD = decimal.Decimal(10**11)
_MICROS_THRESHOLD = decimal.Decimal(10**14)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MICROS = decimal.Decimal(10**18)  # past the year 9999 in every unit


def parse_event_time(value: object) -> dt.datetime:
    """An aware UTC datetime from an ISO 8601 string, a datetime, or epoch (s, ms or us).

    Raises ValueError for anything else, so the caller can reject the record with a reason.
    Strings and datetimes without an offset are taken as UTC.
    """
    if isinstance(value, dt.datetime):
        return _as_utc(value)
    if isinstance(value, str):
        text = value.strip()
        if text[-1:].isdigit() and _looks_numeric(text):
            return _from_epoch(finite_decimal(text))
        return _as_utc(from_iso(text))
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    return _from_epoch(finite_decimal(value))


def format_event_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`, as in Spotify's examples."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


def in_spotify_form(value: object) -> TypeGuard[str]:
    """Whether a value is a real time written exactly as Spotify's string (RFC 3339 in UTC with
    milliseconds and `Z`, JavaScript's Date.toISOString(): what analytics tools write).

    Most events arrive so, and such strings sort as the times they stand for: the mapping
    compares them as text. The layout is checked by one slice; the C parser proves the rest
    (digits, a real date, the time of day in range).
    """
    if type(value) is not str or len(value) != 24 or value[23] != "Z":
        return False
    if value[4:20:3] != "--T::.":  # the separators at 4, 7, 10, 13, 16 and 19
        return False
    try:
        from_iso(value)
    except ValueError:
        return False
    return True


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def from_iso(text: str) -> dt.datetime:
    """datetime.fromisoformat, also on Python 3.10, whose version does not read a trailing Z."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        if text[-1:] not in ("Z", "z"):
            raise
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")


def _looks_numeric(text: str) -> bool:
    return text.replace(".", "", 1).lstrip("-").isdigit()


def _from_epoch(number: decimal.Decimal | None) -> dt.datetime:
    """Exact to the microsecond: a float loses microseconds at today's epoch values."""
    if number is None:
        raise ValueError("not a time")
    size = number.copy_abs()
    if size >= _MICROS_THRESHOLD:
        micros = number
    elif size >= _MILLIS_THRESHOLD:
        micros = number * 1000
    else:
        micros = number * 1_000_000
    if micros.copy_abs() > _MAX_MICROS:  # int() of 1E+999999 would take minutes
        raise ValueError("epoch value out of range")
    try:
        micros = micros.to_integral_value()
        return EPOCH + dt.timedelta(microseconds=int(micros))
    except (OverflowError, ValueError, decimal.DecimalException) as exc:
        raise ValueError("epoch value out of range") from exc
