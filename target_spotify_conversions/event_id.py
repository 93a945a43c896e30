"""Event ids: the key Spotify deduplicates on, so a re-run must reproduce them exactly."""

from __future__ import annotations

import decimal
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from .privacy import plainly_personal
from .values import json_safe, whole_number

# Sorted keys, datetimes as RFC 3339, decimals as the digits they arrived with: one fixed way.
_CANONICAL = msgspec.json.Encoder(order="sorted", decimal_format="number", enc_hook=str)


def event_id_text(value: object) -> str:
    """`$event_id` as Spotify's string; numbers become their digits (1001, not 1001.0)."""
    if isinstance(value, str):
        if not value.isascii() and json_safe(value) is not value:
            raise ValueError("$event_id holds a character JSON cannot carry (a lone surrogate)")
        if "\x00" in value:  # SQLite (the ledger) cuts text at it: never found, sent each run
            raise ValueError("$event_id holds a NUL character (\\u0000)")
        if plainly_personal(value):  # a column shifted into $event_id: never sent raw
            raise ValueError("$event_id is an email or a phone number, not an id")
        return value.strip()
    number = whole_number(value)
    if number is not None:
        return str(number)
    if isinstance(value, decimal.Decimal) and value.is_finite() and abs(value.adjusted()) < 1000:
        return format(value, "f")  # bounded: 1E+999999999 written out is a gigabyte
    raise ValueError(f"$event_id must be a string or a number, got {type(value).__name__}")


def derive_event_id(record: Mapping[str, Any], stream: str) -> str:
    """A stable id for a record that carries none: a digest of the stream and the record.

    `_sdc_*` metadata is left out because it changes on every run.
    """
    content = {key: value for key, value in record.items() if not key.startswith("_sdc_")}
    try:
        canonical = _CANONICAL.encode([stream, content])
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError):  # see values.unjsonable
        canonical = _CANONICAL.encode([stream, json_safe(content)])
    digest = hashlib.sha256(canonical).digest()
    return str(uuid.UUID(bytes=digest[:16]))
