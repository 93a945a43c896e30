"""Small predicates on the values the SDK hands over (str, bool, int, Decimal, datetime, list)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

import msgspec

# Entries in a per-value cache (phone digests): repeat users are cheap, and memory stays
# bounded (about 6 MB when full) however long the input.
CACHE_ENTRIES = 16384


def is_absent(value: object) -> bool:
    """Null, empty and whitespace-only values count as absent everywhere (docs/contract.md §2)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value or value.isspace()
    if isinstance(value, (list, dict)):
        return not value
    return False


# No id, phone, epoch or amount has 1000 digits; int(Decimal("1E+999999999")) would take minutes
# and str() of an int over 4300 digits raises, so such numbers are no whole number here.
_MAX_WHOLE_DIGITS = 1000
_WHOLE_LIMIT = 10**_MAX_WHOLE_DIGITS


def whole_number(value: object) -> int | None:
    """The integer a JSON number stands for, or None (bools, fractions, NaN, strings, huge)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_WHOLE_LIMIT < value < _WHOLE_LIMIT else None
    if isinstance(value, (decimal.Decimal, float)):
        if isinstance(value, decimal.Decimal) and value.adjusted() >= _MAX_WHOLE_DIGITS:
            return None
        try:
            as_int = int(value)
        except (ValueError, OverflowError, decimal.InvalidOperation):
            return None
        return as_int if as_int == value else None
    return None


def finite_decimal(value: object) -> decimal.Decimal | None:
    """A JSON number or numeric string as an exact Decimal; None for NaN, Infinity, bools."""
    if isinstance(value, decimal.Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
    if not isinstance(value, (str, int, float, decimal.Decimal)):
        return None
    try:
        number = decimal.Decimal(value)
    except (decimal.InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


# --- values JSON cannot carry ----------------------------------------------------------------
# A stream map can make what no Singer line holds: a string with a lone surrogate
# (json.loads('"\\ud800"')), an integer of thousands of digits, a complex number, any object.
# Such a value must reject its record, not stop the run where it is first encoded.
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_UNENCODABLE = (TypeError, ValueError, OverflowError, UnicodeEncodeError)
_MAX_INT_BITS = 14_000  # about 4,200 digits: below Python's limit for int-to-text (4,300)


def unjsonable(record: Mapping[str, Any]) -> tuple[str, object] | None:
    """The first property (a dotted path) whose value JSON cannot carry, and the value; None
    when the record encodes, which one C-level encoding proves for nearly every record."""
    try:
        _ENCODER.encode(record)
    except _UNENCODABLE:
        return _first_unjsonable(record, "")
    return None


def _first_unjsonable(value: object, path: str) -> tuple[str, object] | None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _first_unjsonable(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            found = _first_unjsonable(item, f"{path}.{n}")
            if found is not None:
                return found
        return None
    try:
        _ENCODER.encode(value)
    except _UNENCODABLE:
        return path or "record", value
    return None


def json_safe(value: object) -> object:
    """A value as a JSON file can keep it: datetimes as ISO 8601 text, non-finite decimals as
    text, and what JSON cannot carry at all as a description of it (never the value)."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, str) and not value.isascii() and not _utf8(value):
        return "(a string JSON cannot carry)"
    if isinstance(value, (str, int, float, bool, decimal.Decimal)) or value is None:
        if isinstance(value, int) and abs(value).bit_length() > _MAX_INT_BITS:
            return "(an integer too long for JSON)"
        return value
    return f"(a value of type {type(value).__name__}: not JSON)"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True
