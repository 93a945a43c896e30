"""Small predicates on the values the SDK hands over (str, bool, int, Decimal, datetime, list)."""

from __future__ import annotations

import decimal


def is_absent(value: object) -> bool:
    """Null, empty and whitespace-only values count as absent everywhere (SPEC section 2)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value
    return False


def whole_number(value: object) -> int | None:
    """The integer a JSON number stands for, or None (bools, fractions, NaN, strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (decimal.Decimal, float)):
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
