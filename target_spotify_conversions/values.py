"""Small predicates on the values the SDK hands over (str, bool, int, Decimal, datetime, list)."""

from __future__ import annotations

import decimal

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
